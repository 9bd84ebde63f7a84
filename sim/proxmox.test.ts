// The simulated Proxmox VE node through the relay's real executeRequest: a scan of the node
// lists its guests (snapshot capability and reachability as the relay reads them); a
// container is scanned, upgraded with a snapshot first and rolled back through the node —
// the rollback brings its pending updates back; a VM with its guest agent answers too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKeyPair } from '../relay/keys.ts';
import { KnownHosts } from '../relay/known-hosts.ts';
import { executeRequest } from '../relay/ops/index.ts';
import type { OpContext } from '../relay/ops/context.ts';
import { startFleet, PROFILES, type Fleet } from './fleet.ts';
import { shUnquote, snapshotTree } from './proxmox.ts';
import { parseSnapshotTree } from '../relay/proxmox/parse.ts';
import { relayFixture } from './profiles.ts';

let tmp: string;
let fleet: Fleet;
let ctx: OpContext;
let seq = 0;

const target = (guest?: { kind: 'lxc' | 'qemu'; vmid: number }) => ({ address: fleet.hosts[0].address, port: fleet.hosts[0].port, user: 'root', ...(guest ? { guest } : {}) });
const run = (op: string, params: Record<string, unknown>) => executeRequest({ type: 'request', id: `t-${++seq}`, op, params, timeoutMs: 120_000 } as never, ctx) as Promise<any>;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-sim-pve-'));
  const key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  fleet = await startFleet({ hosts: [{ name: 'pvelab-1', profile: 'pve8-guests' }], authorizedKeys: [key.publicKey], stateDir: join(tmp, 'sim'), baseAddress: '127.92.0.1' });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), connectTimeoutMs: 5000 };
});

afterAll(async () => {
  await fleet?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('the simulated node speaks the CLI formats of the relay fixtures', () => {
  it('renders snapshot trees as print_snapshot_tree does', () => {
    const tree = snapshotTree([
      { name: 'before_upgrade', time: Date.parse('2024-11-02T09:14:55Z') / 1000, description: 'before apt full-upgrade' },
      { name: 'patchman-01hf3k2', time: Date.parse('2024-11-20T03:00:12Z') / 1000, description: 'PatchMan before job 01HF3K2 (upgrade)' },
      { name: 'patchman-01hg7q9', time: Date.parse('2024-12-01T03:00:09Z') / 1000, description: 'PatchMan before job 01HG7Q9 (upgrade)' },
    ]);
    expect(tree).toBe(relayFixture('proxmox/fixtures/pct-listsnapshot.txt'));
    expect(parseSnapshotTree(tree).map((s) => s.name)).toEqual(['patchman-01hg7q9', 'patchman-01hf3k2', 'before_upgrade']);
    // a PatchMan name of the full 40 characters still leaves a space before the time
    const long = snapshotTree([{ name: 'patchman-3152d09e77a949559995016485fc5e5', time: 1764763200, description: 'PatchMan job x upgrade' }]);
    expect(parseSnapshotTree(long)).toEqual([{ name: 'patchman-3152d09e77a949559995016485fc5e5', time: 1764763200, description: 'PatchMan job x upgrade', patchman: true }]);
    expect(shUnquote(`'it'\\''s'`)).toBe("it's");
    expect(shUnquote(`'a' b`)).toBeNull();
  });
});

describe('a Proxmox VE node with guests, through the relay', () => {
  it('lists its guests with what PatchMan can do with each', async () => {
    const res = await run('scan', { target: target(), refresh: false });
    expect(res.ok, JSON.stringify(res).slice(0, 400)).toBe(true);
    expect(res.result.warnings).toEqual([]);
    const byId = Object.fromEntries(res.result.guests.map((g: any) => [g.vmid, g]));
    expect(Object.keys(byId).map(Number)).toEqual([101, 102, 103, 104, 105, 201, 202]);
    expect(byId[101]).toMatchObject({ kind: 'lxc', name: 'dns', status: 'running', node: 'pvelab-1', snapshots: true, reachable: true, ostype: 'debian' });
    expect(byId[104]).toMatchObject({ status: 'stopped', reachable: false, reachReason: expect.stringMatching(/stopped/) });
    expect(byId[105]).toMatchObject({ snapshots: false, snapshotReason: expect.stringMatching(/storage 'local' \(dir\)/) });
    expect(byId[201]).toMatchObject({ kind: 'qemu', reachable: true, snapshots: true });
    expect(byId[202]).toMatchObject({ reachable: false, reachReason: expect.stringMatching(/guest agent is not enabled/) });
  });

  it('scans, upgrades with a snapshot first and rolls back a container: its updates come back', async () => {
    const guest = { kind: 'lxc' as const, vmid: 101 };
    const want = PROFILES['debian12-security'].expected;
    const before = await run('scan', { target: target(guest), refresh: false });
    expect(before.ok, JSON.stringify(before).slice(0, 400)).toBe(true);
    expect(before.result.probe.hostname).toBe('dns');
    expect(before.result.updates.length).toBe(want.updates);
    expect(before.result.snapshots.map((s: any) => s.name)).toEqual(['before_upgrade']);

    const name = 'patchman-job1';
    const up = await run('upgrade', { target: target(guest), runId: 'job1', snapshot: { name, description: 'PatchMan job job1 upgrade', keep: 3 } });
    expect(up.ok, JSON.stringify(up).slice(0, 600)).toBe(true);
    expect(up.result.snapshot).toEqual({ name, taken: true, pruned: [] });
    expect(up.result.changes.length).toBe(want.updates);
    const after = await run('scan', { target: target(guest), refresh: false });
    expect(after.result.updates.length).toBe(0);
    expect(after.result.snapshots.map((s: any) => s.name)).toEqual([name, 'before_upgrade']);

    const rb = await run('guest.rollback', { target: target(guest), runId: 'rb1', snapshot: name });
    expect(rb.ok, JSON.stringify(rb).slice(0, 400)).toBe(true);
    expect(rb.result).toMatchObject({ snapshot: name, status: 'running' });
    const back = await run('scan', { target: target(guest), refresh: false });
    expect(back.result.updates.length).toBe(want.updates);
  });

  it('refuses a snapshot where the storage cannot take one, before changing anything', async () => {
    const up = await run('upgrade', { target: target({ kind: 'lxc', vmid: 105 }), runId: 'job2', snapshot: { name: 'patchman-job2', description: 'PatchMan job job2 upgrade', keep: 3 } });
    expect(up.ok).toBe(false);
    expect(up.error.message).toMatch(/Cannot snapshot container 105/);
  });

  it('reaches a VM through its guest agent', async () => {
    const res = await run('scan', { target: target({ kind: 'qemu', vmid: 201 }), refresh: false });
    expect(res.ok, JSON.stringify(res).slice(0, 400)).toBe(true);
    expect(res.result.probe.hostname).toBe('homeassistant');
    // its upgrade runs detached inside the VM and is polled through the agent
    const up = await run('upgrade', { target: target({ kind: 'qemu', vmid: 201 }), runId: 'vmjob', snapshot: { name: 'patchman-vmjob', description: 'PatchMan job vmjob upgrade', keep: 3 } });
    expect(up.ok, JSON.stringify(up).slice(0, 600)).toBe(true);
    expect(up.result.snapshot).toMatchObject({ name: 'patchman-vmjob', taken: true });
    expect(up.result.changes.length).toBe(PROFILES['debian12-security'].expected.updates);
  });

  it('sent no command the simulator does not know', () => {
    expect(fleet.unknownCommands).toEqual([]);
  });
});
