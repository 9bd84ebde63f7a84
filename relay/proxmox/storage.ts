// Can a guest's storage take a snapshot? From its configuration (`pct config` / `qm config`)
// and the node's storage types (`pvesh get /storage`). The rules are pve-storage's
// `volume_has_feature(snapshot)`: lvmthin, zfspool, zfs (over iSCSI), rbd and btrfs snapshot
// any volume; every other storage (dir, nfs, cifs, glusterfs, cephfs, lvm …) only a qcow2
// image — so never a container's raw or subvol root. Bind mounts (`mp0: /host/path,…`) are
// not volumes and are not snapshotted (Proxmox skips them).
import type { GuestKind } from '../../protocol/proxmox.ts';

/** Storage types whose plugin snapshots raw volumes too. */
export const SNAPSHOT_STORAGE_TYPES = ['lvmthin', 'zfspool', 'zfs', 'rbd', 'btrfs'] as const;

/** Config keys that hold a guest's volumes. */
const LXC_VOLUME_KEY = /^(?:rootfs|mp\d+)$/;
const QEMU_VOLUME_KEY = /^(?:ide|sata|scsi|virtio|efidisk|tpmstate)\d+$/;

export interface SnapshotCapability {
  snapshots: boolean;
  reason: string | null;
}

/** The volumes (storage id, volume name) the guest's snapshot would have to cover. */
export function guestVolumes(kind: GuestKind, conf: Map<string, string>): { key: string; storage: string; volume: string }[] {
  const out: { key: string; storage: string; volume: string }[] = [];
  for (const [key, value] of conf) {
    if (!(kind === 'lxc' ? LXC_VOLUME_KEY : QEMU_VOLUME_KEY).test(key)) continue;
    const spec = value.split(',')[0] ?? '';
    if (/(?:^|,)media=cdrom(?:,|$)/.test(value) || spec === 'none') continue;
    const m = /^([A-Za-z][A-Za-z0-9_.-]*):(.+)$/.exec(spec);
    if (!m) continue; // a bind mount or device path: not a storage volume
    out.push({ key, storage: m[1], volume: m[2] });
  }
  return out;
}

export function snapshotCapability(kind: GuestKind, conf: Map<string, string>, storageTypes: Map<string, string>): SnapshotCapability {
  const volumes = guestVolumes(kind, conf);
  if (volumes.length === 0) return { snapshots: false, reason: 'no disk on a Proxmox storage was found in the guest\'s configuration' };
  for (const { key, storage, volume } of volumes) {
    const type = storageTypes.get(storage);
    if (!type) return { snapshots: false, reason: `${key} is on storage '${storage}', which the node does not list` };
    if ((SNAPSHOT_STORAGE_TYPES as readonly string[]).includes(type)) continue;
    if (volume.endsWith('.qcow2')) continue;
    const what = kind === 'lxc' ? 'a container' : 'a non-qcow2 disk';
    return { snapshots: false, reason: `${key} on storage '${storage}' (${type}) cannot snapshot ${what}` };
  }
  return { snapshots: true, reason: null };
}
