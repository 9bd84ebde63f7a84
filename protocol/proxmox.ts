// Proxmox VE guests (LXC containers and QEMU VMs) reached through the node PatchMan already
// manages over SSH: no SSH server, key or agent inside the guest. The relay and the Worker
// both import these schemas; protocol/relay.ts uses them in its operations.
import * as v from 'valibot';

export const GUEST_KINDS = ['lxc', 'qemu'] as const;
export type GuestKind = (typeof GUEST_KINDS)[number];

/** Proxmox's own range for a VMID (`pvesh get /cluster/nextid` hands out 100 and up). */
export const VMID_MIN = 100;
export const VMID_MAX = 999_999_999;
export const Vmid = v.pipe(
  v.number('must be a number'),
  v.integer('must be a whole number'),
  v.minValue(VMID_MIN, `must be at least ${VMID_MIN}`),
  v.maxValue(VMID_MAX, `must be at most ${VMID_MAX}`),
);

/** Which guest of the node a target means. The relay runs every command of the operation
 * through the node (`pct exec <vmid> -- …` or `qm guest exec <vmid> -- …`), and only for a
 * VMID the node itself lists. */
export const GuestRef = v.strictObject({ kind: v.picklist(GUEST_KINDS), vmid: Vmid });
export type GuestRef = v.InferOutput<typeof GuestRef>;

/** Snapshots PatchMan takes are named `patchman-…`; it never deletes or rolls back to any
 * other. Proxmox snapshot names: a letter first, then letters, digits, `_` and `-`, at most
 * 40 characters (PVE's `pve-configid` format, `maxLength 40`). */
export const PATCHMAN_SNAPSHOT_PREFIX = 'patchman-';
export const SNAPSHOT_NAME_MAX = 40;
export const SnapshotName = v.pipe(
  v.string('must be a string'),
  v.regex(/^patchman-[A-Za-z0-9_-]{1,31}$/, 'must be a PatchMan snapshot name (patchman- and up to 31 letters, digits, _ or -)'),
);
/** The snapshot an upgrade job takes: its id without dashes, cut to fit the 40 characters
 * (the whole job id goes in the snapshot's description). */
export function snapshotNameForJob(jobId: string): string {
  return PATCHMAN_SNAPSHOT_PREFIX + jobId.replace(/[^A-Za-z0-9]/g, '').slice(0, SNAPSHOT_NAME_MAX - PATCHMAN_SNAPSHOT_PREFIX.length);
}
/** A snapshot's description, as PatchMan writes it: plain words only (it is quoted too). */
export const SnapshotDescription = v.pipe(v.string(), v.maxLength(200), v.regex(/^[A-Za-z0-9 _.,:()/-]*$/, 'must be letters, digits, spaces and _ . , : ( ) / -'));

/** How many PatchMan snapshots to keep per guest: older ones are deleted after a new one. */
export const SNAPSHOT_KEEP_DEFAULT = 3;
export const SnapshotKeep = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(20));

/** One guest of a Proxmox VE node, as a scan of the node lists it. */
export const ProxmoxGuest = v.object({
  vmid: Vmid,
  kind: v.picklist(GUEST_KINDS),
  name: v.pipe(v.string(), v.maxLength(128)),
  /** Proxmox's own word: `running`, `stopped`, `paused`, … */
  status: v.pipe(v.string(), v.maxLength(32)),
  /** The cluster node the guest runs on. */
  node: v.pipe(v.string(), v.maxLength(128)),
  /** Can the guest's storage take a snapshot? When not, `snapshotReason` says why (e.g.
   * "rootfs on storage 'local' (dir) cannot snapshot a container"). */
  snapshots: v.boolean(),
  snapshotReason: v.nullable(v.pipe(v.string(), v.maxLength(300))),
  /** Can PatchMan reach inside it through the node? LXC: when running. QEMU: when the guest
   * agent is enabled and answering; otherwise `reachReason` says why. */
  reachable: v.boolean(),
  reachReason: v.nullable(v.pipe(v.string(), v.maxLength(300))),
  /** `ostype` from the guest's config (`debian`, `ubuntu`, `l26`, …), when set. */
  ostype: v.nullable(v.pipe(v.string(), v.maxLength(32))),
});
export type ProxmoxGuest = v.InferOutput<typeof ProxmoxGuest>;

/** One snapshot of a guest. */
export const GuestSnapshot = v.object({
  name: v.pipe(v.string(), v.maxLength(64)),
  description: v.pipe(v.string(), v.maxLength(500)),
  /** Unix seconds, when Proxmox records it. */
  time: v.nullable(v.number()),
  /** Taken by PatchMan (`patchman-…`): the only ones it prunes or rolls back to. */
  patchman: v.boolean(),
});
export type GuestSnapshot = v.InferOutput<typeof GuestSnapshot>;

/** What an upgrade of a guest asks for before it changes anything. */
export const SnapshotRequest = v.strictObject({
  name: SnapshotName,
  description: SnapshotDescription,
  /** Keep this many PatchMan snapshots of the guest (the new one included). */
  keep: SnapshotKeep,
});

/** What the relay did about the snapshot: taken (or found already taken by this run), and
 * which older PatchMan snapshots it deleted. */
export const SnapshotOutcome = v.object({
  name: SnapshotName,
  taken: v.boolean(),
  pruned: v.array(v.string()),
});

export const GuestRollbackResult = v.object({
  snapshot: SnapshotName,
  /** The guest's status after the rollback (Proxmox leaves a rolled-back container stopped
   * unless it is started again; the relay starts it when it was running before). */
  status: v.pipe(v.string(), v.maxLength(32)),
  durationMs: v.number(),
});
