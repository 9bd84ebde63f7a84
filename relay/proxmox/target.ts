// The one way an operation opens its session to a target: an ordinary host is a plain SSH
// session; a Proxmox guest is its node's session, checked (the node lists that VMID, the
// guest is running, a VM's guest agent answers) and wrapped so that every command runs
// inside the guest (guest-session.ts).
import { openSession, type SshContext, type SshSession, type SshTarget } from '../ssh.ts';
import { OpError } from '../errors.ts';
import { rootPrefixFor } from './commands.ts';
import { agentUnavailable, assertRunning, findGuest, guestLabel } from './guest-list.ts';
import { GuestSession, type GuestTarget } from './guest-session.ts';

/** The node's own SSH target (the guest field dropped). */
export function nodeTarget(t: SshTarget): SshTarget {
  return { address: t.address, port: t.port, user: t.user };
}

export function isGuestTarget(t: SshTarget): t is GuestTarget {
  return t.guest !== undefined;
}

export async function openTargetSession(target: SshTarget, ctx: SshContext): Promise<SshSession> {
  if (!isGuestTarget(target)) return openSession(target, ctx);
  const node = await openSession(nodeTarget(target), ctx);
  try {
    const prefix = rootPrefixFor(target.user);
    const listed = await findGuest(node, prefix, target.guest);
    assertRunning(node, target.guest, listed);
    if (target.guest.kind === 'qemu') {
      const why = await agentUnavailable(node, prefix, target.guest.vmid);
      if (why) throw new OpError('unreachable', `PatchMan reaches ${guestLabel(target.guest)} through its QEMU guest agent, but ${why}. Add it as an ordinary SSH host instead, or enable the agent.`);
    }
    return new GuestSession(node, target, prefix);
  } catch (err) {
    node.close();
    throw err;
  }
}

