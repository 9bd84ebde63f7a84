// Which guests this node has, and whether one of them can be worked on now. A VMID from a
// request reaches a command only after it is found in the node's own `pct list` / `qm list`
// (which take no argument): an integer the node does not list is refused.
import type { GuestRef } from '../../protocol/proxmox.ts';
import { OpError } from '../errors.ts';
import { tail } from '../pkg/shell.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import { agentPingCommand, listCommand, type RootPrefix } from './commands.ts';
import { agentProblem, parseGuestList, type ListedGuest } from './parse.ts';

export const GUEST_LIST_TIMEOUT_MS = 60_000;
export const AGENT_PING_TIMEOUT_MS = 30_000;

/** How a guest is named in messages: "container 105" / "VM 105". */
export function guestLabel(g: GuestRef): string {
  return `${g.kind === 'lxc' ? 'container' : 'VM'} ${g.vmid}`;
}

/** The node's guests of one kind (`pct list` / `qm list`). */
export async function listGuests(node: SshSession, prefix: RootPrefix, kind: GuestRef['kind']): Promise<ListedGuest[]> {
  const r = await node.exec(listCommand(prefix, kind), { timeoutMs: GUEST_LIST_TIMEOUT_MS });
  if (r.code !== 0) {
    throw new OpError('command-failed', `${kind === 'lxc' ? 'pct' : 'qm'} list on ${describeTarget(node.target)} exited with status ${r.code}: ${tail(r.stderr || r.stdout, 300)}`, { exitCode: r.code ?? undefined });
  }
  return parseGuestList(r.stdout, kind);
}

/** The guest as the node lists it; refused when the node does not list it. */
export async function findGuest(node: SshSession, prefix: RootPrefix, guest: GuestRef): Promise<ListedGuest> {
  const found = (await listGuests(node, prefix, guest.kind)).find((g) => g.vmid === guest.vmid);
  if (!found) {
    throw new OpError('invalid-request', `${describeTarget(node.target)} has no ${guestLabel(guest)} (${guest.kind === 'lxc' ? 'pct' : 'qm'} list does not show it); it may have been moved to another node or removed.`);
  }
  return found;
}

/** Refuse a guest that is not running: PatchMan reports it, it never starts a guest. */
export function assertRunning(node: SshSession, guest: GuestRef, listed: ListedGuest): void {
  if (listed.status === 'running') return;
  throw new OpError('unreachable', `${guestLabel(guest)} on ${describeTarget(node.target)} is ${listed.status}; PatchMan does not start guests. Start it in Proxmox and try again.`);
}

/** Is the VM's guest agent answering (`qm guest cmd <vmid> ping`)? null when it is, else why not. */
export async function agentUnavailable(node: SshSession, prefix: RootPrefix, vmid: number): Promise<string | null> {
  const r = await node.exec(agentPingCommand(prefix, vmid), { timeoutMs: AGENT_PING_TIMEOUT_MS });
  if (r.code === 0) return null;
  return agentProblem(r.stderr) ?? `qm guest cmd ping exited with status ${r.code}: ${tail(r.stderr || r.stdout, 200)}`;
}
