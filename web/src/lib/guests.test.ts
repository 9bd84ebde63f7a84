import { describe, expect, it } from 'vitest';
import type { Host, Job } from '$protocol/api.ts';
import type { Guest } from '$protocol/guests-api.ts';
import { adoptBlock, guestLabel, rollbackLoss, rollbackSnapshot, snapshotPlan, snapshotTime } from './guests.ts';

const guest = (over: Partial<Guest> = {}): Guest => ({
  vmid: 101, type: 'lxc', name: 'dns', status: 'running', node: 'pve1', snapshots: true, snapshotReason: null,
  reachable: true, reachReason: null, ostype: 'debian', hostId: null, seenAt: '2026-12-03T12:00:00.000Z', ...over,
});
const guestHost = { guest: { nodeId: 'n1', type: 'lxc' as const, vmid: 101 }, snapshots: null };
const job = (over: Partial<Job> = {}) =>
  ({ id: 'j1', kind: 'upgrade', status: 'succeeded', changes: null, snapshot: { name: 'patchman-j1', taken: true, pruned: [] }, startedAt: '2026-12-03T12:00:00.000Z', createdAt: '2026-12-03T11:59:00.000Z', ...over }) as Job;

describe('guests in words', () => {
  it('names guests and says why a VM cannot be adopted', () => {
    expect(guestLabel({ type: 'qemu', vmid: 201 })).toBe('VM 201');
    expect(adoptBlock(guest({ status: 'stopped', reachable: false, reachReason: 'stopped' }))).toBeNull();
    expect(adoptBlock(guest({ type: 'qemu', reachable: false, reachReason: 'The QEMU guest agent is not enabled' }))).toMatch(/^The QEMU guest agent is not enabled\. .*ordinary SSH host/);
  });

  it('plans a snapshot for guests only, and says why where the storage cannot', () => {
    expect(snapshotPlan({ guest: null }, guest())).toEqual({ kind: 'none' });
    expect(snapshotPlan(guestHost, guest())).toEqual({ kind: 'snapshot' });
    expect(snapshotPlan(guestHost, undefined)).toEqual({ kind: 'snapshot' });
    expect(snapshotPlan(guestHost, guest({ snapshots: false, snapshotReason: "storage 'local' (dir)" }))).toEqual({ kind: 'impossible', reason: "storage 'local' (dir)" });
  });

  it('offers a rollback only for an upgrade of a guest whose snapshot is still there', () => {
    expect(rollbackSnapshot(job(), guestHost)).toBe('patchman-j1');
    expect(rollbackSnapshot(job(), { guest: null, snapshots: null })).toBeNull();
    expect(rollbackSnapshot(job({ kind: 'reboot' }), guestHost)).toBeNull();
    expect(rollbackSnapshot(job({ snapshot: null }), guestHost)).toBeNull();
    expect(rollbackSnapshot(job(), { ...guestHost, snapshots: [] })).toBeNull();
    const listed = { ...guestHost, snapshots: [{ name: 'patchman-j1', description: '', time: 1764763200, patchman: true }] };
    expect(rollbackSnapshot(job({ snapshot: { name: 'patchman-j1', taken: false, pruned: [] } }), listed)).toBe('patchman-j1');
    expect(snapshotTime(job(), listed)).toBe('2025-12-03T12:00:00.000Z');
    expect(snapshotTime(job(), guestHost)).toBe('2026-12-03T12:00:00.000Z');
  });

  it('says what a rollback loses', () => {
    expect(rollbackLoss(job({ changes: [{ name: 'a', from: '1', to: '2' }, { name: 'b', from: '1', to: '2' }] }))).toMatch(/since the snapshot was taken is lost, including this upgrade's changes to 2 packages/);
  });
});

describe('the host list facet', () => {
  it('keeps only the guests, and finds them by kind and VMID', async () => {
    const { matchesFilter, matchesQuery } = await import('./hostlist.ts');
    const base = { name: 'dns', address: '192.0.2.9', user: 'root', os: null, proxmox: null, kernel: null, status: 'online', tags: [] } as unknown as Host;
    const ct = { ...base, guest: { nodeId: 'n1', type: 'lxc' as const, vmid: 101 } } as Host;
    const direct = { ...base, guest: null } as Host;
    expect(matchesFilter(ct, 'guests')).toBe(true);
    expect(matchesFilter(direct, 'guests')).toBe(false);
    expect(matchesQuery(ct, 'container 101')).toBe(true);
    expect(matchesQuery(direct, 'container')).toBe(false);
  });
});
