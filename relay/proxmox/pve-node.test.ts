// The relay's real operations against a "Proxmox node": a real sshd whose pct/qm/pvesh are
// test doubles of Proxmox's CLI (relay/test/pve-node.ts), with guests that are real Debian
// roots with real pending security updates — apt and dpkg inside them are real.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotNameForJob } from '../../protocol/proxmox.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import type { OpContext } from '../ops/context.ts';
import { runGuestRollback } from '../ops/guest-rollback.ts';
import { runReboot } from '../ops/reboot.ts';
import { runScan } from '../ops/scan.ts';
import { runUpgrade } from '../ops/upgrade.ts';
import { aptOn } from '../test/apt-local.ts';
import { startPveNode, type PveNode } from '../test/pve-node.ts';
import { rejectedOpError } from '../test/op-error.ts';

let tmp: string;
let node: PveNode;
let ctx: OpContext;
const HOUR = 3600;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-pve-'));
  const key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  node = await startPveNode({
    authorizedKeys: [key.publicKey],
    guests: [
      { vmid: 105, kind: 'lxc', name: 'pihole', status: 'running', storage: 'local-lvm' },
      { vmid: 106, kind: 'lxc', name: 'old-ct', status: 'stopped', storage: 'local' },
      { vmid: 107, kind: 'qemu', name: 'web', status: 'running', storage: 'local-zfs', agent: true },
      { vmid: 108, kind: 'qemu', name: 'noagent', status: 'running', storage: 'local-zfs' },
      { vmid: 109, kind: 'lxc', name: 'on-dir', status: 'running', storage: 'local' },
    ],
  });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), runs: new Map(), pollIntervalMs: 300, requestTimeoutMs: 600_000 };
}, 600_000);

afterAll(async () => {
  await node?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const nodeTarget = () => ({ address: '127.0.0.1', port: node.sshd.port, user: 'root' });
const ct = (vmid: number) => ({ ...nodeTarget(), guest: { kind: 'lxc' as const, vmid } });
const vm = (vmid: number) => ({ ...nodeTarget(), guest: { kind: 'qemu' as const, vmid } });

const opError = rejectedOpError;

describe('scan of a Proxmox VE node', () => {
  it('lists the node\'s guests with snapshot capability and reachability', async () => {
    const r = await runScan({ target: nodeTarget(), refresh: false }, ctx);
    expect(r.probe.proxmox).toEqual({ product: 'pve', version: '8.2.4' });
    const byId = new Map(r.guests?.map((g) => [g.vmid, g]));
    expect([...byId.keys()]).toEqual([105, 106, 107, 108, 109]);
    expect(byId.get(105)).toMatchObject({ kind: 'lxc', name: 'pihole', status: 'running', snapshots: true, snapshotReason: null, reachable: true, reachReason: null, ostype: 'debian' });
    expect(byId.get(106)).toMatchObject({ status: 'stopped', snapshots: false, snapshotReason: "rootfs on storage 'local' (dir) cannot snapshot a container", reachable: false });
    expect(byId.get(106)?.reachReason).toMatch(/stopped; PatchMan does not start guests/);
    expect(byId.get(107)).toMatchObject({ kind: 'qemu', snapshots: true, reachable: true, ostype: 'l26' });
    expect(byId.get(108)).toMatchObject({ reachable: false, reachReason: expect.stringMatching(/agent is not enabled/) });
    expect(r.snapshots).toBeUndefined();
  });
});

describe('a container reached through its node', () => {
  it('a scan through pct exec finds the real pending updates of its Debian root, and its snapshots', async () => {
    await node.addSnapshot(105, 'before_upgrade', 'someone else\'s', Math.floor(Date.now() / 1000) - 48 * HOUR);
    const r = await runScan({ target: ct(105), refresh: false }, ctx);
    expect(r.packageManager).toBe('apt');
    expect(r.probe.os.id).toBe('debian');
    const planned = aptOn(node.rootOf(105)).aptSimulation();
    expect(planned.size).toBeGreaterThan(0);
    expect(r.updates.map((u) => u.name).sort()).toEqual([...planned.keys()].map((n) => n.replace(/:\w+$/, '')).sort());
    expect(r.guests).toBeUndefined();
    expect(r.snapshots).toEqual([{ name: 'before_upgrade', description: "someone else's", time: expect.any(Number), patchman: false }]);
    expect(await node.calls()).toContain('pct list');
  });

  it('a stopped container is reported, not started; a VMID the node does not list is refused', async () => {
    const stopped = await opError(runScan({ target: ct(106), refresh: false }, ctx));
    expect(stopped.code).toBe('unreachable');
    expect(stopped.message).toMatch(/container 106 on .* is stopped; PatchMan does not start guests/);
    const unknown = await opError(runScan({ target: ct(199), refresh: false }, ctx));
    expect(unknown.code).toBe('invalid-request');
    expect(unknown.message).toMatch(/has no container 199/);
    const calls = await node.calls();
    expect(calls.some((c) => /^pct (exec|start)/.test(c) && /\b(106|199)\b/.test(c))).toBe(false);
  });

  it('a reboot of a guest is refused with the reason', async () => {
    const e = await opError(runReboot({ target: ct(105), runId: 'rb0', waitSeconds: 60, resume: false }, ctx));
    expect(e.code).toBe('invalid-request');
    expect(e.message).toMatch(/does not reboot Proxmox guests/);
  });

  it('an upgrade with a snapshot takes it first, prunes old PatchMan ones to keep, upgrades for real; a rollback restores', { timeout: 600_000 }, async () => {
    const now = Math.floor(Date.now() / 1000);
    await node.addSnapshot(105, 'patchman-old1', 'PatchMan before job old1', now - 30 * HOUR);
    await node.addSnapshot(105, 'patchman-old2', 'PatchMan before job old2', now - 20 * HOUR);
    const apt = aptOn(node.rootOf(105));
    const [pkg] = apt.leafUpdates([...apt.aptSimulation().keys()]);
    expect(pkg).toBeTruthy();
    const before = apt.dpkgVersion(pkg);
    const runId = `pve${process.pid}a`;
    const name = snapshotNameForJob(runId);
    const params = { target: ct(105), runId, packages: [pkg], resume: false, offset: 0, snapshot: { name, description: `PatchMan before job ${runId}`, keep: 2 } };
    const r = await runUpgrade(params, ctx);
    expect(r).toMatchObject({ packageManager: 'apt', mode: 'selective', exitCode: 0 });
    expect(r.snapshot).toEqual({ name, taken: true, pruned: ['patchman-old1'] });
    const after = apt.dpkgVersion(pkg);
    expect(after).not.toBe(before);
    expect(r.changes).toContainEqual({ name: expect.stringMatching(new RegExp(`^${pkg}(:\\w+)?$`)), from: before, to: after });

    const calls = await node.calls();
    expect(calls).toContain(`pct snapshot 105 ${name} --description PatchMan before job ${runId}`);
    // taken before the run began: the run's files are in the guest, not in the snapshot
    const runLog = join('root', '.cache', 'patchman', 'runs', `${runId}.log`);
    expect(existsSync(join(node.rootOf(105), runLog))).toBe(true);
    expect(existsSync(join(node.state, 'snap', '105', name, 'upper', runLog))).toBe(false);
    expect(calls).toContain('pct delsnapshot 105 patchman-old1');
    expect(calls.some((c) => c.startsWith('pct delsnapshot 105 before_upgrade'))).toBe(false);

    // the same request again (another relay process; resumed or sent anew): no second snapshot
    for (const resume of [true, false]) {
      const again = await runUpgrade({ ...params, resume }, { ...ctx, runs: new Map() });
      expect(again.snapshot).toEqual({ name, taken: true, pruned: [] });
    }
    expect((await node.calls()).filter((c) => c.startsWith(`pct snapshot 105 ${name}`))).toHaveLength(1);

    const scan = await runScan({ target: ct(105), refresh: false }, ctx);
    expect(scan.snapshots?.map((s) => s.name)).toEqual([name, 'patchman-old2', 'before_upgrade']);

    const rb = await runGuestRollback({ target: ct(105), runId: `${runId}rb`, snapshot: name }, ctx);
    expect(rb).toMatchObject({ snapshot: name, status: 'running' });
    expect(apt.dpkgVersion(pkg)).toBe(before);
    expect(await node.calls()).toContain(`pct rollback 105 ${name} --start 1`);
  });

  it('a snapshot the storage cannot take fails before anything changes', async () => {
    const runId = `pve${process.pid}dir`;
    const e = await opError(runUpgrade({ target: ct(109), runId, resume: false, offset: 0, snapshot: { name: snapshotNameForJob(runId), description: 'x', keep: 3 } }, ctx));
    expect(e.code).toBe('invalid-request');
    expect(e.message).toMatch(/Cannot snapshot container 109 before the upgrade: rootfs on storage 'local' \(dir\) cannot snapshot a container/);
    const calls = await node.calls();
    expect(calls.some((c) => c.startsWith('pct snapshot 109'))).toBe(false);
    expect(aptOn(node.rootOf(109)).aptSimulation().size).toBeGreaterThan(0);
  });

  it('a snapshot is refused for a target that is not a guest, and a rollback only goes to an existing PatchMan snapshot', async () => {
    const e = await opError(runUpgrade({ target: nodeTarget(), runId: 'x1', resume: false, offset: 0, snapshot: { name: 'patchman-x1', description: 'x', keep: 3 } }, ctx));
    expect(e.code).toBe('invalid-request');
    const missing = await opError(runGuestRollback({ target: ct(105), runId: 'rb2', snapshot: 'patchman-nosuch' }, ctx));
    expect(missing.code).toBe('invalid-request');
    expect(missing.message).toMatch(/has no PatchMan snapshot patchman-nosuch/);
    const mon = await opError(runGuestRollback({ target: ct(105), runId: 'rb3', snapshot: 'patchman-old2' }, { ...ctx, monitorOnly: () => 'PATCHMAN_MONITOR_ONLY' }));
    expect(mon.code).toBe('monitor-only');
  });
});

describe('a VM reached through its QEMU guest agent', () => {
  it('a scan through qm guest exec finds the real pending updates', async () => {
    const r = await runScan({ target: vm(107), refresh: false }, ctx);
    expect(r.packageManager).toBe('apt');
    expect(r.updates.length).toBe(aptOn(node.rootOf(107)).aptSimulation().size);
    expect((await node.calls()).some((c) => c.startsWith('qm guest exec 107 --timeout ') && c.includes('--pass-stdin 1 -- /bin/sh -c'))).toBe(true);
  });

  it('a VM without the agent is refused with the reason', async () => {
    const e = await opError(runScan({ target: vm(108), refresh: false }, ctx));
    expect(e.code).toBe('unreachable');
    expect(e.message).toMatch(/QEMU guest agent.*not enabled/);
  });

  it('an upgrade with a snapshot runs detached inside the VM and is followed by polling', { timeout: 600_000 }, async () => {
    const apt = aptOn(node.rootOf(107));
    const [pkg] = apt.leafUpdates([...apt.aptSimulation().keys()]);
    const before = apt.dpkgVersion(pkg);
    const runId = `pve${process.pid}vm`;
    const r = await runUpgrade({ target: vm(107), runId, packages: [pkg], resume: false, offset: 0, snapshot: { name: snapshotNameForJob(runId), description: 'PatchMan before job', keep: 3 } }, ctx);
    expect(r).toMatchObject({ exitCode: 0, snapshot: { name: snapshotNameForJob(runId), taken: true, pruned: [] } });
    expect(apt.dpkgVersion(pkg)).not.toBe(before);
    expect(r.logTail).toMatch(/Unpacking|Setting up/);
    expect(await node.calls()).toContain(`qm snapshot 107 ${snapshotNameForJob(runId)} --description PatchMan before job`);

    const rb = await runGuestRollback({ target: vm(107), runId: `${runId}rb`, snapshot: snapshotNameForJob(runId) }, ctx);
    expect(rb.status).toBe('running');
    expect(apt.dpkgVersion(pkg)).toBe(before);
    expect(await node.calls()).toContain(`qm rollback 107 ${snapshotNameForJob(runId)} --start 1`);
  });
});

describe('rollback of a stopped guest', () => {
  it('leaves it stopped', async () => {
    await node.addSnapshot(106, 'patchman-stopped1', 'PatchMan before job stopped1', Math.floor(Date.now() / 1000) - HOUR);
    const rb = await runGuestRollback({ target: ct(106), runId: 'rbstopped', snapshot: 'patchman-stopped1' }, ctx);
    expect(rb).toMatchObject({ snapshot: 'patchman-stopped1', status: 'stopped' });
    expect(await node.calls()).toContain('pct rollback 106 patchman-stopped1');
  });
});
