// Every command the relay runs on a Proxmox VE node, in one place: the exact shapes (the
// simulated fleet answers these too, sim/). Each is built from string literals and values
// already validated — a VMID that is an integer AND one the node itself listed
// (guest-list.ts), a snapshot name that matched SnapshotName, a description that matched
// SnapshotDescription — and every such value is quoted again here.
//
// All run in the C locale with TZ=UTC, so `pct listsnapshot`'s local times are UTC (sudo
// keeps a plain TZ through env_reset: it is on sudo's env_check list). As root they run as
// is; a non-root node user needs `sudo -n` rules for pct, qm and pvesh.
import * as v from 'valibot';
import { SnapshotDescription, SnapshotName, Vmid, type GuestKind } from '../../protocol/proxmox.ts';
import { OpError } from '../errors.ts';
import { shQuote } from '../pkg/shell.ts';

/** Prefix of every node command. */
export const PVE_ENV = 'env LC_ALL=C LANG=C TZ=UTC';

/** '' when the node's SSH user is root, else 'sudo -n ' (never prompt). */
export type RootPrefix = '' | 'sudo -n ';
export function rootPrefixFor(user: string): RootPrefix {
  return user === 'root' ? '' : 'sudo -n ';
}

function node(prefix: RootPrefix, cmd: string): string {
  return `${PVE_ENV} ${prefix}${cmd}`;
}

/** A VMID as a command word: only an integer in Proxmox's range ever passes. */
export function vmidWord(vmid: number): string {
  if (!v.is(Vmid, vmid)) throw new OpError('invalid-request', `invalid VMID ${JSON.stringify(vmid)}`);
  return String(vmid);
}

function snapWord(name: string): string {
  if (!v.is(SnapshotName, name)) throw new OpError('invalid-request', 'invalid snapshot name');
  return shQuote(name);
}

/** The CLI of each guest kind: `pct` for containers, `qm` for VMs. */
export const GUEST_CLI: Record<GuestKind, 'pct' | 'qm'> = { lxc: 'pct', qemu: 'qm' };

/** The node's guests of one kind: `pct list` / `qm list` (only this node's; fixtures/pct-list.txt). */
export function listCommand(prefix: RootPrefix, kind: GuestKind): string {
  return node(prefix, `${GUEST_CLI[kind]} list`);
}

/** `pct status <vmid>` / `qm status <vmid>`: `status: running`. */
export function statusCommand(prefix: RootPrefix, kind: GuestKind, vmid: number): string {
  return node(prefix, `${GUEST_CLI[kind]} status ${vmidWord(vmid)}`);
}

/** Is the QEMU guest agent answering? Exit 0 and no output when it is; otherwise stderr
 * says why ("QEMU guest agent is not running", "No QEMU guest agent configured"). */
export function agentPingCommand(prefix: RootPrefix, vmid: number): string {
  return node(prefix, `qm guest cmd ${vmidWord(vmid)} ping`);
}

/** Longest a single `qm guest exec` waits (its `--timeout`, seconds), when the caller set none. */
export const QM_EXEC_DEFAULT_TIMEOUT_S = 3600;

/**
 * Run `inner` (a command line the relay built itself: a package module's constant, a run
 * script's `sh -s`) inside the guest, through the node:
 *   LXC:  pct exec <vmid> -- /bin/sh -c '<inner>'                       (stdin passed through)
 *   QEMU: qm guest exec <vmid> --timeout <s> [--pass-stdin 1] -- /bin/sh -c '<inner>'
 * `qm guest exec` prints JSON ({"exitcode":…,"exited":1,"out-data":…,"err-data":…}, see
 * parse.ts parseGuestExec) once the command ends, or {"pid":…} when --timeout passed first.
 */
export function guestExecCommand(prefix: RootPrefix, kind: GuestKind, vmid: number, inner: string, o: { stdin: boolean; timeoutS?: number }): string {
  const id = vmidWord(vmid);
  const sh = `/bin/sh -c ${shQuote(inner)}`;
  if (kind === 'lxc') return `${prefix}pct exec ${id} -- ${sh}`;
  const timeout = Math.max(1, Math.ceil(o.timeoutS ?? QM_EXEC_DEFAULT_TIMEOUT_S));
  return `${prefix}qm guest exec ${id} --timeout ${timeout}${o.stdin ? ' --pass-stdin 1' : ''} -- ${sh}`;
}

/** The guest's snapshot tree (fixtures/pct-listsnapshot.txt). */
export function listSnapshotsCommand(prefix: RootPrefix, kind: GuestKind, vmid: number): string {
  return node(prefix, `${GUEST_CLI[kind]} listsnapshot ${vmidWord(vmid)}`);
}

/** `pct snapshot <vmid> <name> --description '<desc>'` (qm alike). Blocks until taken. */
export function snapshotCommand(prefix: RootPrefix, kind: GuestKind, vmid: number, name: string, description: string): string {
  if (!v.is(SnapshotDescription, description)) throw new OpError('invalid-request', 'invalid snapshot description');
  return node(prefix, `${GUEST_CLI[kind]} snapshot ${vmidWord(vmid)} ${snapWord(name)} --description ${shQuote(description)}`);
}

/** `pct delsnapshot <vmid> <name>` (qm alike): only ever for a `patchman-…` name. */
export function deleteSnapshotCommand(prefix: RootPrefix, kind: GuestKind, vmid: number, name: string): string {
  return node(prefix, `${GUEST_CLI[kind]} delsnapshot ${vmidWord(vmid)} ${snapWord(name)}`);
}

/** `pct rollback <vmid> <name> [--start 1]` (qm alike). A running container is stopped by
 * the rollback itself (PVE::LXC::Config::__snapshot_rollback_vm_stop); `--start 1` starts it
 * again afterwards. */
export function rollbackCommand(prefix: RootPrefix, kind: GuestKind, vmid: number, name: string, start: boolean): string {
  return node(prefix, `${GUEST_CLI[kind]} rollback ${vmidWord(vmid)} ${snapWord(name)}${start ? ' --start 1' : ''}`);
}

/** `pct config <vmid>` / `qm config <vmid>`: `key: value` lines (fixtures/pct-config-*.txt). */
export function configCommand(prefix: RootPrefix, kind: GuestKind, vmid: number): string {
  return node(prefix, `${GUEST_CLI[kind]} config ${vmidWord(vmid)}`);
}

/** The node's storage definitions (fixtures/pvesh-storage.json). */
export function storageCommand(prefix: RootPrefix): string {
  return node(prefix, 'pvesh get /storage --output-format json');
}

/** The cluster's guests (fixtures/pvesh-cluster-resources.json). */
export function resourcesCommand(prefix: RootPrefix): string {
  return node(prefix, 'pvesh get /cluster/resources --type vm --output-format json');
}

/** This node's name as Proxmox knows it: `uname -n` up to the first dot
 * (PVE::INotify::nodename). */
export const NODE_NAME_COMMAND = 'uname -n';
