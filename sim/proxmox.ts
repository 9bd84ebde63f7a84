// A simulated Proxmox VE node's guests: the node answers the `pvesh`, `pct` and `qm` commands
// the relay sends (their exact shapes are relay/proxmox/commands.ts), in the formats of the
// recorded/rendered fixtures beside the relay's parsers (relay/proxmox/fixtures, see its
// README), and runs `pct exec` / `qm guest exec`-wrapped commands in a simulated machine per
// guest (sim/upgrade.ts), so scans, upgrades and rollbacks of a guest change that guest's
// packages. A snapshot keeps a guest's disk (SimMachine.diskState); a rollback restores it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PVE_ENV } from '../relay/proxmox/commands.ts';
import type { CommandTable, ExecInfo, Reply, SimHost } from './host.ts';
import type { MachineDisk, SimMachine } from './upgrade.ts';

export interface SimGuestSpec {
  vmid: number;
  kind: 'lxc' | 'qemu';
  name: string;
  status: 'running' | 'stopped';
  /** The storage of its root disk: `local-lvm` (lvmthin) and `local-zfs` snapshot; `local`
   * (dir, a raw image) cannot (relay/proxmox/storage.ts). */
  storage: 'local-lvm' | 'local-zfs' | 'local';
  /** VMs: is the QEMU guest agent enabled and answering? */
  agent?: boolean;
  ostype: string;
  /** Snapshots someone else took (PatchMan never deletes or rolls back to them). */
  snapshots?: { name: string; description: string }[];
}

/** The demo node's guests: containers running and stopped, one on storage that cannot
 * snapshot, a VM reached through its guest agent and one without the agent. */
export const DEMO_GUESTS: SimGuestSpec[] = [
  { vmid: 101, kind: 'lxc', name: 'dns', status: 'running', storage: 'local-lvm', ostype: 'debian', snapshots: [{ name: 'before_upgrade', description: 'before apt full-upgrade' }] },
  { vmid: 102, kind: 'lxc', name: 'proxy', status: 'running', storage: 'local-lvm', ostype: 'debian' },
  { vmid: 103, kind: 'lxc', name: 'mqtt', status: 'running', storage: 'local-lvm', ostype: 'debian' },
  { vmid: 104, kind: 'lxc', name: 'media', status: 'stopped', storage: 'local-lvm', ostype: 'debian' },
  { vmid: 105, kind: 'lxc', name: 'files', status: 'running', storage: 'local', ostype: 'debian' },
  { vmid: 201, kind: 'qemu', name: 'homeassistant', status: 'running', storage: 'local-zfs', agent: true, ostype: 'l26' },
  { vmid: 202, kind: 'qemu', name: 'windows', status: 'running', storage: 'local-zfs', agent: false, ostype: 'win11' },
];

/** `pvesh get /storage` as the node prints it (the relay's recorded fixture). */
const STORAGE_JSON = readFileSync(join(import.meta.dirname, '..', 'relay', 'proxmox', 'fixtures', 'pvesh-storage.json'), 'utf8');

interface Snapshot {
  name: string;
  description: string;
  /** Unix seconds. */
  time: number;
  disk: MachineDisk | null;
}

interface Guest {
  spec: SimGuestSpec;
  status: 'running' | 'stopped';
  table: CommandTable & { machine: SimMachine };
  snapshots: Snapshot[];
}

/** `'…'` as relay/pkg/shell.ts shQuote writes it, back to the word; null when it is not one. */
export function shUnquote(text: string): string | null {
  if (!/^'(?:[^']|'\\'')*'$/.test(text)) return null;
  return text.slice(1, -1).replace(/'\\''/g, "'");
}

const utcStamp = (t: number) => new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19);

/** `pct listsnapshot` (GuestHelpers::print_snapshot_tree): a chain, oldest first, then `current`. */
export function snapshotTree(snaps: { name: string; time: number | null; description: string }[]): string {
  // printf "%s %-*s %-23s %s": the name padded to 30 minus the prefix, always a space after
  const line = (level: number, name: string, time: string, descr: string) => {
    const prefix = ' '.repeat(level) + '`->';
    return `${prefix} ${name.padEnd(30 - prefix.length)} ${time.padEnd(23)} ${descr}\n`;
  };
  return snaps.map((s, i) => line(i, s.name, s.time === null ? '' : utcStamp(s.time), s.description || 'no-description')).join('') + line(snaps.length, 'current', '', 'You are here!');
}

const ok = (stdout = ''): Reply => ({ stdout });
const fail = (stderr: string, code = 255): Reply => ({ stderr, code });

export class SimProxmoxNode implements CommandTable {
  readonly guests = new Map<number, Guest>();
  readonly #node: CommandTable;
  readonly #name: () => string;

  /** `node`: the node's own table (its package scans and upgrades); `machineFor`: a simulated
   * machine for each guest. */
  constructor(node: CommandTable, nodeName: () => string, specs: SimGuestSpec[], machineFor: (g: SimGuestSpec) => CommandTable & { machine: SimMachine }) {
    this.#node = node;
    this.#name = nodeName;
    const now = Math.floor(Date.now() / 1000);
    for (const spec of specs) {
      const table = machineFor(spec);
      const snapshots = (spec.snapshots ?? []).map((s, i) => ({ ...s, time: now - 86_400 * (30 - i), disk: table.machine.diskState() }));
      this.guests.set(spec.vmid, { spec, status: spec.status, table, snapshots });
    }
  }

  attach(host: SimHost): void {
    this.#node.attach?.(host);
  }

  readsStdin(command: string): boolean {
    const g = this.#unwrap(command);
    if (g) return g.guest.table.readsStdin(g.inner);
    return this.#node.readsStdin(command);
  }

  reply(exec: ExecInfo): { kind: string; reply: Reply } | undefined {
    if (exec.command === 'uname -n') return { kind: 'pve-nodename', reply: ok(`${this.#name()}\n`) };
    const wrapped = this.#unwrap(exec.command);
    if (wrapped) return this.#inGuest(wrapped.guest, wrapped.inner, wrapped.qemu, exec);
    if (exec.command.startsWith(`${PVE_ENV} `)) {
      const cmd = exec.command.slice(PVE_ENV.length + 1).replace(/^sudo -n /, '');
      const reply = this.#pve(cmd);
      if (reply) return { kind: `pve-${cmd.split(' ').slice(0, 2).join('-')}`, reply };
    }
    return this.#node.reply(exec);
  }

  /** `pct exec <vmid> -- /bin/sh -c '<inner>'`, `qm guest exec <vmid> --timeout <s> [--pass-stdin 1] -- /bin/sh -c '<inner>'`. */
  #unwrap(command: string): { guest: Guest; inner: string; qemu: boolean } | null {
    const m = /^(?:sudo -n )?(?:pct exec (\d+)|qm guest exec (\d+) --timeout \d+(?: --pass-stdin 1)?) -- \/bin\/sh -c ('.*')$/s.exec(command);
    if (!m) return null;
    const guest = this.guests.get(Number(m[1] ?? m[2]));
    const inner = shUnquote(m[3]);
    if (!guest || inner === null || (guest.spec.kind === 'qemu') !== (m[2] !== undefined)) return null;
    return { guest, inner, qemu: m[2] !== undefined };
  }

  #inGuest(g: Guest, inner: string, qemu: boolean, exec: ExecInfo): { kind: string; reply: Reply } | undefined {
    const label = `${qemu ? 'VM' : 'CT'} ${g.spec.vmid}`;
    if (g.status !== 'running') return { kind: 'pve-guest-exec', reply: fail(`${qemu ? 'VM' : 'CT'} ${g.spec.vmid} not running\n`) };
    if (qemu && !g.spec.agent) return { kind: 'pve-guest-exec', reply: fail('No QEMU guest agent configured\n') };
    // inside the guest everything runs as root
    const found = g.table.reply({ command: inner, stdin: exec.stdin, user: 'root' });
    if (!found) return { kind: 'pve-guest-exec', reply: fail(`sim ${label}: unknown command\n`, 127) };
    if (!qemu) return found;
    // qm guest exec answers once the command has ended, with JSON (qm.pm $print_agent_result)
    const r = found.reply;
    // qm prints the agent's bytes each as a character (to_json with utf8 => 1): non-ASCII
    // output arrives double-encoded (relay/proxmox/parse.ts agentOutputBytes)
    const chars = (b: string | Buffer | undefined) => (b === undefined ? '' : (typeof b === 'string' ? Buffer.from(b, 'utf8') : b).toString('latin1'));
    const json = JSON.stringify({ exitcode: r.code ?? 0, exited: 1, 'out-data': chars(r.stdout), 'err-data': chars(r.stderr) }, null, 3);
    return { kind: found.kind, reply: { stdout: json + '\n', delayMs: r.delayMs, after: r.after } };
  }

  /** The node's own pvesh / pct / qm commands (after `env LC_ALL=C LANG=C TZ=UTC`). */
  #pve(cmd: string): Reply | undefined {
    if (cmd === 'pvesh get /cluster/resources --type vm --output-format json') return ok(JSON.stringify(this.#resources()) + '\n');
    if (cmd === 'pvesh get /storage --output-format json') return ok(STORAGE_JSON);
    if (cmd === 'pct list') return ok(this.#pctList());
    if (cmd === 'qm list') return ok(this.#qmList());
    const ping = /^qm guest cmd (\d+) ping$/.exec(cmd);
    const m = ping ? ['', 'qm', 'guest', ping[1], 'ping'] : /^(pct|qm) (\S+) (\d+)(?: (.*))?$/s.exec(cmd);
    if (!m) return undefined;
    const [, cli, verb, id, rest = ''] = m;
    const g = this.guests.get(Number(id));
    const kind = cli === 'pct' ? 'lxc' : 'qemu';
    if (!g || g.spec.kind !== kind) return fail(`Configuration file 'nodes/${this.#name()}/${cli === 'pct' ? 'lxc' : 'qemu-server'}/${id}.conf' does not exist\n`, 2);
    switch (verb) {
      case 'config':
        return ok(this.#config(g));
      case 'status':
        return ok(`status: ${g.status}\n`);
      case 'listsnapshot':
        return ok(snapshotTree(g.snapshots));
      case 'guest':
        if (kind !== 'qemu' || rest !== 'ping') return undefined;
        if (!g.spec.agent) return fail('No QEMU guest agent configured\n');
        return g.status === 'running' ? ok() : fail(`VM ${id} not running\n`);
      case 'snapshot':
        return this.#snapshot(g, rest);
      case 'delsnapshot':
        return this.#delete(g, rest);
      case 'rollback':
        return this.#rollback(g, rest);
      default:
        return undefined;
    }
  }

  #resources() {
    return [...this.guests.values()].map(({ spec, status }) => ({
      id: `${spec.kind}/${spec.vmid}`,
      maxcpu: 2,
      maxdisk: 8_589_934_592,
      maxmem: 1_073_741_824,
      name: spec.name,
      node: this.#name(),
      status,
      template: 0,
      type: spec.kind,
      uptime: status === 'running' ? 86_400 : 0,
      vmid: spec.vmid,
    }));
  }

  #pctList(): string {
    const rows = [...this.guests.values()].filter((g) => g.spec.kind === 'lxc');
    return `${'VMID'.padEnd(10)} ${'Status'.padEnd(10)} ${'Lock'.padEnd(12)} ${'Name'.padEnd(20)}\n` + rows.map((g) => `${String(g.spec.vmid).padEnd(10)} ${g.status.padEnd(10)} ${''.padEnd(12)} ${g.spec.name.padEnd(20)}\n`).join('');
  }

  #qmList(): string {
    const rows = [...this.guests.values()].filter((g) => g.spec.kind === 'qemu');
    const head = `${'VMID'.padStart(10)} ${'NAME'.padEnd(20)} ${'STATUS'.padEnd(10)} ${'MEM(MB)'.padEnd(10)} ${'BOOTDISK(GB)'.padStart(12)} ${'PID'.padEnd(10)}\n`;
    return head + rows.map((g) => `${String(g.spec.vmid).padStart(10)} ${g.spec.name.padEnd(20)} ${g.status.padEnd(10)} ${'2048'.padEnd(10)} ${'32.00'.padStart(12)} ${(g.status === 'running' ? String(2000 + g.spec.vmid) : '0').padEnd(10)}\n`).join('');
  }

  /** `pct config` / `qm config`: sorted `key: value` lines (relay/proxmox/fixtures/pct-config-*.txt). */
  #config(g: Guest): string {
    const { spec } = g;
    const disk = spec.storage === 'local' ? `local:${spec.vmid}/vm-${spec.vmid}-disk-0.raw,size=8G` : `${spec.storage}:vm-${spec.vmid}-disk-0,size=8G`;
    const lines: [string, string][] =
      spec.kind === 'lxc'
        ? [['arch', 'amd64'], ['cores', '1'], ['hostname', spec.name], ['memory', '512'], ['net0', `name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:${String(spec.vmid % 100).padStart(2, '0')},ip=dhcp,type=veth`], ['ostype', spec.ostype], ['rootfs', disk], ['swap', '512'], ['unprivileged', '1']]
        : [['agent', spec.agent ? '1,fstrim_cloned_disks=1' : '0'], ['boot', 'order=scsi0;net0'], ['cores', '2'], ['memory', '2048'], ['name', spec.name], ['ostype', spec.ostype], ['scsi0', `${disk.replace(',size=8G', ',iothread=1,size=32G')}`]];
    const parent = g.snapshots.at(-1)?.name;
    if (parent) lines.push(['parent', parent]);
    return lines.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}: ${v}\n`).join('');
  }

  /** `<name> --description '<text>'`. */
  #snapshot(g: Guest, rest: string): Reply {
    const m = /^('[^']*') --description ('(?:[^']|'\\'')*')$/.exec(rest);
    const name = m ? shUnquote(m[1]) : null;
    if (!m || !name) return fail('400 Parameter verification failed.\n', 255);
    if (g.spec.storage === 'local') return fail('snapshot feature is not available\n');
    if (g.snapshots.some((s) => s.name === name)) return fail(`snapshot name '${name}' already used\n`);
    g.snapshots.push({ name, description: shUnquote(m[2]) ?? '', time: Math.floor(Date.now() / 1000), disk: g.table.machine.diskState() });
    return ok();
  }

  #delete(g: Guest, rest: string): Reply {
    const name = shUnquote(rest);
    const i = g.snapshots.findIndex((s) => s.name === name);
    if (i < 0) return fail(`snapshot '${name}' does not exist\n`);
    g.snapshots.splice(i, 1);
    return ok();
  }

  /** `<name> [--start 1]`: the disk as the snapshot kept it; stopped, then started if asked. */
  #rollback(g: Guest, rest: string): Reply {
    const m = /^('[^']*')( --start 1)?$/.exec(rest);
    const snap = m ? g.snapshots.find((s) => s.name === shUnquote(m[1])) : undefined;
    if (!m || !snap) return fail(`snapshot '${rest}' does not exist\n`);
    if (snap.disk) g.table.machine.restoreDisk(snap.disk);
    g.status = m[2] ? 'running' : 'stopped';
    return ok();
  }
}

