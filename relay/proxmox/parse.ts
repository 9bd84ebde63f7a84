// Parsers for what the Proxmox VE CLI prints (fixtures/ holds real or source-rendered
// samples, fixtures/README.md says where each came from). They tolerate the variations seen
// in the wild: VMIDs as numbers or strings, compact or pretty JSON, an empty Lock column,
// trailing padding. Nothing parsed here is ever pasted into a command: a VMID is used only
// after it matched Vmid AND appeared in the node's own list (guest-list.ts).
import * as v from 'valibot';
import { GUEST_KINDS, PATCHMAN_SNAPSHOT_PREFIX, Vmid, type GuestKind, type GuestSnapshot } from '../../protocol/proxmox.ts';
import { OpError } from '../errors.ts';

/** One guest as a list prints it. */
export interface ListedGuest {
  vmid: number;
  kind: GuestKind;
  name: string;
  status: string;
  /** The cluster node (from /cluster/resources; `pct list`/`qm list` are this node's only). */
  node: string | null;
  template: boolean;
}

function toVmid(x: unknown): number | null {
  const n = typeof x === 'string' && /^\d+$/.test(x) ? Number(x) : x;
  return v.is(Vmid, n) ? n : null;
}

function parseJson(text: string, what: string): unknown {
  const start = text.search(/[[{]/);
  try {
    if (start < 0) throw new Error('no JSON');
    return JSON.parse(text.slice(start));
  } catch {
    throw new OpError('command-failed', `The output of ${what} was not JSON: ${text.trim().slice(0, 200)}`);
  }
}

/** `pvesh get /cluster/resources --type vm --output-format json`. Entries that are not a
 * container or VM with a valid VMID are skipped. */
export function parseResources(text: string): ListedGuest[] {
  const data = parseJson(text, 'pvesh get /cluster/resources');
  if (!Array.isArray(data)) throw new OpError('command-failed', 'pvesh get /cluster/resources did not print a list');
  const out: ListedGuest[] = [];
  for (const e of data as Record<string, unknown>[]) {
    if (!e || typeof e !== 'object') continue;
    const kind = (GUEST_KINDS as readonly unknown[]).includes(e.type) ? (e.type as GuestKind) : null;
    const vmid = toVmid(e.vmid ?? (typeof e.id === 'string' ? e.id.split('/')[1] : undefined));
    if (!kind || vmid === null) continue;
    out.push({
      vmid,
      kind,
      name: typeof e.name === 'string' ? e.name : '',
      status: typeof e.status === 'string' ? e.status : 'unknown',
      node: typeof e.node === 'string' ? e.node : null,
      template: e.template === 1 || e.template === '1' || e.template === true,
    });
  }
  return out.sort((a, b) => a.vmid - b.vmid);
}

/** `pct list` (VMID Status Lock Name; Lock is often empty) or `qm list` (VMID NAME STATUS
 * MEM(MB) BOOTDISK(GB) PID). Empty output (no guests: the CLI prints nothing) is []. */
export function parseGuestList(text: string, kind: GuestKind): ListedGuest[] {
  const out: ListedGuest[] = [];
  for (const line of text.split('\n')) {
    const w = line.trim().split(/\s+/);
    const vmid = toVmid(w[0]);
    if (vmid === null) continue; // the header, blank lines
    if (kind === 'lxc') {
      // name never holds spaces (a host name); an empty Lock leaves three words
      const [status = 'unknown', a, b] = w.slice(1);
      out.push({ vmid, kind, status, name: (b ?? a) ?? '', node: null, template: false });
    } else {
      out.push({ vmid, kind, name: w[1] ?? '', status: w[2] ?? 'unknown', node: null, template: false });
    }
  }
  return out;
}

/** `pct status <vmid>` / `qm status <vmid>`: `status: running`. */
export function parseStatus(text: string): string | null {
  return /^status:\s*(\S+)/m.exec(text)?.[1] ?? null;
}

/** `pct config` / `qm config`: `key: value` lines of the current configuration (a raw
 * config file's snapshot sections, `[name]`, are cut off). */
export function parseConfig(text: string): Map<string, string> {
  const conf = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (/^\s*\[/.test(line)) break;
    const m = /^([a-z][a-z0-9_-]*):\s?(.*)$/.exec(line.trimEnd());
    if (m) conf.set(m[1], m[2]);
  }
  return conf;
}

/** `pvesh get /storage --output-format json`: storage id → type. */
export function parseStorage(text: string): Map<string, string> {
  const data = parseJson(text, 'pvesh get /storage');
  if (!Array.isArray(data)) throw new OpError('command-failed', 'pvesh get /storage did not print a list');
  const types = new Map<string, string>();
  for (const e of data as Record<string, unknown>[]) {
    if (e && typeof e.storage === 'string' && typeof e.type === 'string') types.set(e.storage, e.type);
  }
  return types;
}

/** `pct listsnapshot` / `qm listsnapshot` (GuestHelpers::print_snapshot_tree), run with
 * TZ=UTC so the times are UTC. Newest first; `current` ("You are here!") left out. */
export function parseSnapshotTree(text: string): GuestSnapshot[] {
  const out: GuestSnapshot[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*`->\s+(\S+)(?:\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d))?(?:\s+(.*?))?\s*$/.exec(line);
    if (!m || m[1] === 'current') continue;
    const time = m[2] ? Date.parse(m[2].replace(' ', 'T') + 'Z') / 1000 : null;
    const description = m[3] === 'no-description' ? '' : (m[3] ?? '');
    out.push({ name: m[1], description: description.slice(0, 500), time: Number.isFinite(time) ? time : null, patchman: m[1].startsWith(PATCHMAN_SNAPSHOT_PREFIX) });
  }
  return out.sort((a, b) => (b.time ?? 0) - (a.time ?? 0));
}

export type GuestExecOutcome =
  | { exited: true; exitCode: number | null; signal: number | null; stdout: string; stderr: string; truncated: boolean }
  | { exited: false; pid: number | null };

/** `qm guest exec` (compact JSON from older PVE, pretty from newer). `{"pid":…}` alone means
 * its --timeout passed while the command was still running. */
export function parseGuestExec(text: string): GuestExecOutcome {
  const d = parseJson(text, 'qm guest exec') as Record<string, unknown>;
  if (!d || typeof d !== 'object' || Array.isArray(d)) throw new OpError('command-failed', 'qm guest exec printed no result object');
  const exited = d.exited === 1 || d.exited === true || d.exited === '1';
  if (!exited) return { exited: false, pid: typeof d.pid === 'number' ? d.pid : null };
  return {
    exited: true,
    exitCode: typeof d.exitcode === 'number' ? d.exitcode : null,
    signal: typeof d.signal === 'number' ? d.signal : null,
    stdout: typeof d['out-data'] === 'string' ? d['out-data'] : '',
    stderr: typeof d['err-data'] === 'string' ? d['err-data'] : '',
    truncated: d['out-truncated'] === 1 || d['out-truncated'] === true || d['err-truncated'] === 1 || d['err-truncated'] === true,
  };
}

/**
 * The bytes of qm's out-data/err-data. qm decodes the agent's base64 into a byte string and
 * prints it with `to_json(…, {utf8 => 1})`, which takes each byte for a character: output
 * that is not ASCII arrives double-encoded ("é" as "Ã©"). Every character of such a string is
 * at most U+00FF, and read as Latin-1 it gives back the command's exact bytes (so log byte
 * offsets stay right). A string with a higher character was not double-encoded: UTF-8.
 */
export function agentOutputBytes(s: string): Buffer {
  return /[^\u0000-\u00ff]/.test(s) ? Buffer.from(s, 'utf8') : Buffer.from(s, 'latin1');
}

/** Why the guest agent does not answer, from `qm guest cmd <vmid> ping`'s stderr; null if
 * the text names no known cause. */
export function agentProblem(stderr: string): string | null {
  if (/No QEMU guest agent configured/i.test(stderr)) return 'the QEMU guest agent is not enabled in the VM\'s options (agent: 1)';
  if (/QEMU guest agent is not running/i.test(stderr)) return 'the QEMU guest agent is not running inside the VM (install and start qemu-guest-agent)';
  if (/VM \d+ (?:is )?not running/i.test(stderr)) return 'the VM is not running';
  return null;
}
