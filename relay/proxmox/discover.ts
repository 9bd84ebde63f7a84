// A scan of a Proxmox VE node also lists its guests: which containers and VMs run here, can
// their storage take a snapshot, and can PatchMan reach inside them through the node. All
// read-only: uname -n, pvesh get /cluster/resources, pvesh get /storage, and per guest of
// this node pct/qm config (+ `qm guest cmd <vmid> ping` for a running VM with the agent on).
import type { ProxmoxGuest } from '../../protocol/proxmox.ts';
import { OpError } from '../errors.ts';
import { tail } from '../pkg/shell.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import { configCommand, NODE_NAME_COMMAND, resourcesCommand, storageCommand, type RootPrefix } from './commands.ts';
import { agentUnavailable } from './guest-list.ts';
import { parseConfig, parseResources, parseStorage, type ListedGuest } from './parse.ts';
import { snapshotCapability } from './storage.ts';

export const DISCOVER_TIMEOUT_MS = 60_000;
/** Guests whose configuration is read at the same time (SSH channels on one connection). */
const CONFIG_CONCURRENCY = 4;
/** ProxmoxGuest's string limits (protocol/proxmox.ts). */
const MAX_NAME = 128;
const MAX_STATUS = 32;
const MAX_REASON = 300;

async function run(node: SshSession, cmd: string, what: string): Promise<string> {
  const r = await node.exec(cmd, { timeoutMs: DISCOVER_TIMEOUT_MS, maxOutputBytes: 8 * 1024 * 1024 });
  if (r.code !== 0) throw new OpError('command-failed', `${what} on ${describeTarget(node.target)} exited with status ${r.code}: ${tail(r.stderr || r.stdout, 200)}`);
  return r.stdout;
}

/** This node's guests (templates left out), each with what PatchMan can do with it. */
export async function discoverGuests(node: SshSession, prefix: RootPrefix): Promise<ProxmoxGuest[]> {
  const nodeName = (await run(node, NODE_NAME_COMMAND, 'uname -n')).trim().split('.')[0] ?? '';
  const listed = parseResources(await run(node, resourcesCommand(prefix), 'pvesh get /cluster/resources')).filter((g) => !g.template && (g.node === null || g.node === nodeName));
  const storage = parseStorage(await run(node, storageCommand(prefix), 'pvesh get /storage'));
  const out: ProxmoxGuest[] = new Array(listed.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < listed.length) {
      const i = next++;
      out[i] = await describeGuest(node, prefix, listed[i], nodeName, storage);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONFIG_CONCURRENCY, listed.length) }, worker));
  return out;
}

async function describeGuest(node: SshSession, prefix: RootPrefix, g: ListedGuest, nodeName: string, storage: Map<string, string>): Promise<ProxmoxGuest> {
  const base = { vmid: g.vmid, kind: g.kind, name: g.name.slice(0, MAX_NAME), status: g.status.slice(0, MAX_STATUS), node: (g.node ?? nodeName).slice(0, MAX_NAME) };
  let conf: Map<string, string>;
  try {
    conf = parseConfig(await run(node, configCommand(prefix, g.kind, g.vmid), `${g.kind === 'lxc' ? 'pct' : 'qm'} config`));
  } catch (err) {
    const why = `its configuration could not be read: ${(err as Error).message}`.slice(0, MAX_REASON);
    return { ...base, snapshots: false, snapshotReason: why, reachable: false, reachReason: why, ostype: null };
  }
  const cap = snapshotCapability(g.kind, conf, storage);
  const reach = await reachability(node, prefix, g, conf);
  return {
    ...base,
    snapshots: cap.snapshots,
    snapshotReason: cap.reason?.slice(0, MAX_REASON) ?? null,
    reachable: reach === null,
    reachReason: reach?.slice(0, MAX_REASON) ?? null,
    ostype: conf.get('ostype')?.slice(0, 32) ?? null,
  };
}

/** null when PatchMan can run commands inside the guest now, else why not. */
async function reachability(node: SshSession, prefix: RootPrefix, g: ListedGuest, conf: Map<string, string>): Promise<string | null> {
  if (g.status !== 'running') return `it is ${g.status}; PatchMan does not start guests`;
  if (g.kind === 'lxc') return null;
  // `agent: 1` or `agent: enabled=1,…`; `agent: 0` or no line: off
  const agent = conf.get('agent') ?? '';
  if (!/^(?:1|enabled=1)(?:,|$)/.test(agent)) return 'the QEMU guest agent is not enabled in the VM\'s options (agent: 1); add it as an ordinary SSH host instead';
  try {
    return await agentUnavailable(node, prefix, g.vmid);
  } catch (err) {
    return `the guest agent could not be asked: ${(err as Error).message}`;
  }
}
