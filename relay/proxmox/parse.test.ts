import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { OpError } from '../errors.ts';
import { agentProblem, parseConfig, parseGuestExec, parseGuestList, parseResources, parseSnapshotTree, parseStatus, parseStorage } from './parse.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('parseResources (pvesh get /cluster/resources --type vm)', () => {
  it('lists containers and VMs with their node, status and template flag', () => {
    expect(parseResources(fixture('pvesh-cluster-resources.json'))).toEqual([
      { vmid: 100, kind: 'lxc', name: 'dns', status: 'stopped', node: 'pve1', template: false },
      { vmid: 101, kind: 'qemu', name: 'win-srv', status: 'running', node: 'pve1', template: false },
      { vmid: 9000, kind: 'qemu', name: 'debian-tpl', status: 'stopped', node: 'pve2', template: true },
    ]);
  });
  it('tolerates entries without node, string VMIDs, and skips what is not a guest', () => {
    const g = parseResources(fixture('pvesh-cluster-resources-homelab.json'));
    expect(g.map((x) => [x.vmid, x.kind, x.node])).toEqual([[100, 'qemu', null], [106, 'lxc', null], [119, 'lxc', null]]);
    const odd = parseResources('[{"type":"lxc","vmid":"105","status":"running","name":"a"},{"type":"storage","id":"storage/pve/local"},{"type":"lxc","vmid":"1; rm -rf /"},{"type":"qemu","id":"qemu/5"}]');
    expect(odd.map((x) => x.vmid)).toEqual([105]);
  });
  it('refuses output that is not JSON', () => {
    expect(() => parseResources('ipcc_send_rec[1] failed: Connection refused')).toThrow(OpError);
  });
});

describe('parseGuestList (pct list / qm list)', () => {
  it('reads pct list with and without a lock', () => {
    expect(parseGuestList(fixture('pct-list.txt'), 'lxc')).toEqual([
      { vmid: 100, kind: 'lxc', name: 'dns', status: 'stopped', node: null, template: false },
      { vmid: 105, kind: 'lxc', name: 'pihole', status: 'running', node: null, template: false },
      { vmid: 106, kind: 'lxc', name: 'nextcloud', status: 'running', node: null, template: false },
    ]);
  });
  it('reads qm list', () => {
    expect(parseGuestList(fixture('qm-list.txt'), 'qemu').map((g) => [g.vmid, g.name, g.status])).toEqual([
      [101, 'win-srv', 'running'],
      [111, 'win-machine-ver', 'stopped'],
    ]);
  });
  it('an empty list (the CLI prints nothing) is no guests', () => {
    expect(parseGuestList('', 'lxc')).toEqual([]);
  });
});

describe('parseStatus, parseConfig, parseStorage', () => {
  it('reads pct status', () => {
    expect(parseStatus(fixture('pct-status-running.txt'))).toBe('running');
    expect(parseStatus(fixture('pct-status-stopped.txt'))).toBe('stopped');
    expect(parseStatus('Configuration file does not exist')).toBeNull();
  });
  it('reads a config up to the first snapshot section', () => {
    const c = parseConfig(fixture('pct-config-lvmthin.txt'));
    expect(c.get('rootfs')).toBe('local-lvm:vm-105-disk-0,size=8G');
    expect(c.get('ostype')).toBe('debian');
    expect(parseConfig('ostype: l26\n\n[snap1]\nostype: win10\n').get('ostype')).toBe('l26');
  });
  it('maps storage ids to types', () => {
    const s = parseStorage(fixture('pvesh-storage.json'));
    expect(s.get('local')).toBe('dir');
    expect(s.get('local-lvm')).toBe('lvmthin');
    expect(s.get('local-zfs')).toBe('zfspool');
    expect(s.get('rbd')).toBe('rbd');
  });
});

describe('parseSnapshotTree (pct/qm listsnapshot)', () => {
  it('lists snapshots newest first with UTC times, marks PatchMan ones, leaves out current', () => {
    expect(parseSnapshotTree(fixture('pct-listsnapshot.txt'))).toEqual([
      { name: 'patchman-01hg7q9', description: 'PatchMan before job 01HG7Q9 (upgrade)', time: Date.UTC(2024, 11, 1, 3, 0, 9) / 1000, patchman: true },
      { name: 'patchman-01hf3k2', description: 'PatchMan before job 01HF3K2 (upgrade)', time: Date.UTC(2024, 10, 20, 3, 0, 12) / 1000, patchman: true },
      { name: 'before_upgrade', description: 'before apt full-upgrade', time: Date.UTC(2024, 10, 2, 9, 14, 55) / 1000, patchman: false },
    ]);
  });
  it('a guest without snapshots has only current', () => {
    expect(parseSnapshotTree(fixture('pct-listsnapshot-none.txt'))).toEqual([]);
  });
  it('reads branches and no-description', () => {
    const s = parseSnapshotTree(fixture('qm-listsnapshot-branches.txt'));
    expect(s.map((x) => [x.name, x.description])).toEqual([
      ['machine_version_5_1', 'machine 5.1'],
      ['win19_5_2_plus_stuff', ''],
    ]);
  });
});

describe('parseGuestExec (qm guest exec)', () => {
  it('reads compact JSON (older PVE)', () => {
    const r = parseGuestExec(fixture('qm-guest-exec-compact.json'));
    expect(r).toMatchObject({ exited: true, exitCode: 0, stderr: '' });
    expect(r.exited && r.stdout).toContain('EXPLORERSWEEP:{"ids":[3692,4980,6160]');
  });
  it('reads pretty JSON with err-data and a failing exit code', () => {
    expect(parseGuestExec(fixture('qm-guest-exec-pretty.json'))).toEqual({
      exited: true,
      exitCode: 100,
      signal: null,
      stdout: 'Reading package lists...\n',
      stderr: 'E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n',
      truncated: false,
    });
  });
  it('a bare pid means the timeout passed first', () => {
    expect(parseGuestExec(fixture('qm-guest-exec-timeout.json'))).toEqual({ exited: false, pid: 4821 });
  });
});

describe('agentProblem', () => {
  it('names why the agent does not answer', () => {
    expect(agentProblem(fixture('qm-agent-not-running.txt'))).toMatch(/not running inside the VM/);
    expect(agentProblem(fixture('qm-agent-not-configured.txt'))).toMatch(/not enabled/);
    expect(agentProblem('something else')).toBeNull();
  });
});
