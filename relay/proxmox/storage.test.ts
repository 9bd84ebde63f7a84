import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseConfig, parseStorage } from './parse.ts';
import { guestVolumes, snapshotCapability } from './storage.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const storage = parseStorage(fixture('pvesh-storage.json'));

describe('snapshotCapability', () => {
  it('a container on lvmthin can snapshot (its bind mount is not a volume)', () => {
    const conf = parseConfig(fixture('pct-config-lvmthin.txt'));
    expect(guestVolumes('lxc', conf)).toEqual([{ key: 'rootfs', storage: 'local-lvm', volume: 'vm-105-disk-0' }]);
    expect(snapshotCapability('lxc', conf, storage)).toEqual({ snapshots: true, reason: null });
  });
  it('a container on a dir storage cannot, and says why', () => {
    expect(snapshotCapability('lxc', parseConfig(fixture('pct-config-dir.txt')), storage)).toEqual({
      snapshots: false,
      reason: "rootfs on storage 'local' (dir) cannot snapshot a container",
    });
  });
  it('a VM with qcow2 on dir and raw on lvmthin can; CD-ROMs and unused disks do not count', () => {
    const conf = parseConfig(fixture('qm-config-mixed.txt'));
    expect(guestVolumes('qemu', conf).map((x) => x.key)).toEqual(['ide0', 'scsi0', 'scsi1', 'virtio0']);
    expect(snapshotCapability('qemu', conf, storage)).toEqual({ snapshots: true, reason: null });
  });
  it('a VM with a raw disk on dir cannot', () => {
    const conf = parseConfig('scsi0: dir:120/vm-120-disk-0.raw,size=8G\n');
    expect(snapshotCapability('qemu', conf, storage).reason).toBe("scsi0 on storage 'dir' (dir) cannot snapshot a non-qcow2 disk");
  });
  it('an unknown storage is not assumed to snapshot', () => {
    expect(snapshotCapability('lxc', parseConfig('rootfs: gone:vm-1-disk-0,size=1G\n'), storage).snapshots).toBe(false);
  });
});
