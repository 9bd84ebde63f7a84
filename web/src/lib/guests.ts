// Plain words for Proxmox guests: what a guest is, whether an upgrade of it takes a snapshot
// first, and what a rollback would lose.
import type { Host, Job } from '$protocol/api.ts';
import type { Guest } from '$protocol/guests-api.ts';

/** Why a guest's Reboot button is off (the Worker refuses it too). */
export const GUEST_REBOOT_REASON = 'A Proxmox guest is restarted in Proxmox: PatchMan does not reboot guests.';

export const GUEST_KIND_LABELS: Record<Guest['type'], string> = { lxc: 'container', qemu: 'VM' };

/** "container 101", "VM 201". */
export const guestLabel = (g: { type: Guest['type']; vmid: number }) => `${GUEST_KIND_LABELS[g.type]} ${g.vmid}`;

/** Why a guest of the node cannot be adopted, or null. A container is reached through the
 * node whether it runs or not; a VM only through its guest agent. */
export function adoptBlock(g: Guest): string | null {
  if (g.hostId) return null;
  if (g.type === 'qemu' && !g.reachable) return `${g.reachReason ?? 'The QEMU guest agent is not answering'}. Enable the guest agent, or add the VM as an ordinary SSH host.`;
  return null;
}

/** What an upgrade of this host does about a snapshot: 'none' for hosts that are not guests,
 * 'snapshot' when one is taken first, 'impossible' (with why) when its storage cannot. */
export type SnapshotPlan = { kind: 'none' } | { kind: 'snapshot' } | { kind: 'impossible'; reason: string };

export function snapshotPlan(host: Pick<Host, 'guest'>, guest: Pick<Guest, 'snapshots' | 'snapshotReason'> | null | undefined): SnapshotPlan {
  if (!host.guest) return { kind: 'none' };
  if (guest && !guest.snapshots) return { kind: 'impossible', reason: guest.snapshotReason ?? 'its storage cannot take snapshots' };
  return { kind: 'snapshot' };
}

/** The snapshot an upgrade job left that "Roll back" can restore, or null. */
export function rollbackSnapshot(job: Job, host: Pick<Host, 'guest' | 'snapshots'> | null | undefined): string | null {
  if (job.kind !== 'upgrade' || !host?.guest || !job.snapshot) return null;
  if (host.snapshots && !host.snapshots.some((s) => s.name === job.snapshot!.name)) return null;
  return job.snapshot.taken || host.snapshots?.some((s) => s.name === job.snapshot!.name) ? job.snapshot.name : null;
}

/** When the snapshot was taken: Proxmox's own time when the guest's scan listed it, else the
 * upgrade job's start. */
export function snapshotTime(job: Job, host: Pick<Host, 'snapshots'>): string | null {
  const listed = host.snapshots?.find((s) => s.name === job.snapshot?.name);
  if (listed?.time) return new Date(listed.time * 1000).toISOString();
  return job.startedAt ?? job.createdAt;
}

/** What a rollback loses, in a sentence. */
export function rollbackLoss(job: Job): string {
  const changed = job.changes?.length ? `, including this upgrade's changes to ${job.changes.length === 1 ? '1 package' : `${job.changes.length} packages`}` : ', including this upgrade’s package changes';
  return `Everything written inside the guest since the snapshot was taken is lost${changed}: files, databases, logs and settings alike.`;
}
