import { describe, expect, it } from 'vitest';
import { OpError } from '../errors.ts';
import {
  agentPingCommand,
  configCommand,
  deleteSnapshotCommand,
  guestExecCommand,
  listCommand,
  listSnapshotsCommand,
  resourcesCommand,
  rollbackCommand,
  rootPrefixFor,
  snapshotCommand,
  statusCommand,
  storageCommand,
} from './commands.ts';

describe('the command lines run on a Proxmox node', () => {
  it('have these exact shapes (the simulated fleet answers them)', () => {
    expect(listCommand('', 'lxc')).toBe('env LC_ALL=C LANG=C TZ=UTC pct list');
    expect(listCommand('sudo -n ', 'qemu')).toBe('env LC_ALL=C LANG=C TZ=UTC sudo -n qm list');
    expect(statusCommand('', 'lxc', 105)).toBe('env LC_ALL=C LANG=C TZ=UTC pct status 105');
    expect(configCommand('', 'qemu', 101)).toBe('env LC_ALL=C LANG=C TZ=UTC qm config 101');
    expect(agentPingCommand('', 101)).toBe('env LC_ALL=C LANG=C TZ=UTC qm guest cmd 101 ping');
    expect(resourcesCommand('')).toBe('env LC_ALL=C LANG=C TZ=UTC pvesh get /cluster/resources --type vm --output-format json');
    expect(storageCommand('')).toBe('env LC_ALL=C LANG=C TZ=UTC pvesh get /storage --output-format json');
    expect(listSnapshotsCommand('', 'lxc', 105)).toBe('env LC_ALL=C LANG=C TZ=UTC pct listsnapshot 105');
    expect(snapshotCommand('', 'lxc', 105, 'patchman-01hx', 'PatchMan before job 01HX (upgrade)')).toBe(
      "env LC_ALL=C LANG=C TZ=UTC pct snapshot 105 'patchman-01hx' --description 'PatchMan before job 01HX (upgrade)'",
    );
    expect(deleteSnapshotCommand('', 'qemu', 101, 'patchman-old')).toBe("env LC_ALL=C LANG=C TZ=UTC qm delsnapshot 101 'patchman-old'");
    expect(rollbackCommand('', 'lxc', 105, 'patchman-01hx', true)).toBe("env LC_ALL=C LANG=C TZ=UTC pct rollback 105 'patchman-01hx' --start 1");
    expect(rollbackCommand('', 'qemu', 101, 'patchman-01hx', false)).toBe("env LC_ALL=C LANG=C TZ=UTC qm rollback 101 'patchman-01hx'");
    expect(guestExecCommand('', 'lxc', 105, 'env LC_ALL=C LANG=C /bin/sh -s', { stdin: true })).toBe("pct exec 105 -- /bin/sh -c 'env LC_ALL=C LANG=C /bin/sh -s'");
    expect(guestExecCommand('', 'qemu', 101, 'uname -r', { stdin: false, timeoutS: 29.2 })).toBe("qm guest exec 101 --timeout 30 -- /bin/sh -c 'uname -r'");
    expect(rootPrefixFor('root')).toBe('');
    expect(rootPrefixFor('patchman')).toBe('sudo -n ');
  });

  it('refuse a VMID, snapshot name or description that did not validate', () => {
    for (const bad of [99, 105.5, -1, 1e10, Number.NaN, '105; reboot' as unknown as number]) {
      expect(() => statusCommand('', 'lxc', bad)).toThrow(OpError);
      expect(() => guestExecCommand('', 'lxc', bad, 'true', { stdin: false })).toThrow(OpError);
    }
    expect(() => rollbackCommand('', 'lxc', 105, 'before_upgrade', false)).toThrow(/invalid snapshot name/);
    expect(() => deleteSnapshotCommand('', 'lxc', 105, "patchman-x' ; reboot")).toThrow(OpError);
    expect(() => snapshotCommand('', 'lxc', 105, 'patchman-x', "it's $(reboot)")).toThrow(/invalid snapshot description/);
  });
});
