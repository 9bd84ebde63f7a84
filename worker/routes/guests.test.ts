// Proxmox guests against the real Worker in workerd (local D1) with a fake relay on a real
// WebSocket: a node's scan lists its guests; adopting one makes a host reached through the
// node (what reaches the relay, exactly); its upgrades take a snapshot first (or are refused
// where the storage cannot, until the operator goes on without); a rollback restores it.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, testEnv, until } from '../test/helpers.ts';
import { probeResult, scanWith } from '../test/fixtures.ts';
import { isActiveStatus } from '../../protocol/api.ts';
import { snapshotNameForJob } from '../../protocol/proxmox.ts';
import { eq } from 'drizzle-orm';
import { openDb, schema } from '../db/index.ts';
import { advanceRollout, startRollout } from '../rollouts.ts';
import { createPolicy } from '../test/policy-fleet.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

const NODE = { address: '192.0.2.50', port: 22, user: 'root' };
const pveProbe = { ...probeResult, hostname: 'pve1', proxmox: { product: 'pve', version: '8.4.1' } };

const guest = (vmid: number, kind: 'lxc' | 'qemu', name: string, extra: Record<string, unknown> = {}) => ({
  vmid,
  kind,
  name,
  status: 'running',
  node: 'pve1',
  snapshots: true,
  snapshotReason: null,
  reachable: true,
  reachReason: null,
  ostype: kind === 'lxc' ? 'debian' : 'l26',
  ...extra,
});
const GUESTS = [
  guest(101, 'lxc', 'dns'),
  guest(102, 'lxc', 'media', { status: 'stopped', reachable: false, reachReason: 'the container is stopped' }),
  guest(103, 'lxc', 'files', { snapshots: false, snapshotReason: "rootfs on storage 'local' (dir) cannot snapshot a container" }),
  guest(201, 'qemu', 'ha'),
  guest(202, 'qemu', 'win', { reachable: false, reachReason: 'the QEMU guest agent is not enabled (agent: 0)' }),
];
const snap = (name: string, time: number | null = 1764700000) => ({ name, description: 'x', time, patchman: name.startsWith('patchman-') });

async function finished(jobId: string) {
  return until(async () => {
    const j = await json(api(`/api/jobs/${jobId}`));
    return !isActiveStatus(j.status) && j;
  });
}

/** A relay, a PVE node host, and its first scan answered with `guests`. */
async function setupNode(guests: unknown[] = GUESTS) {
  const { id: relayId, token } = await createRelay();
  const relay = await FakeRelay.connect(token);
  const res = await api('/api/hosts', { method: 'POST', json: { relayId, name: 'pve1', ...NODE } });
  expect(res.status).toBe(201);
  const node = await json(res);
  const { jobId } = await json(api(`/api/hosts/${node.id}/scan`, { method: 'POST' }));
  const req = await relay.next();
  expect(req).toMatchObject({ id: jobId, op: 'scan', params: { target: NODE } });
  relay.send({ type: 'response', id: jobId, ok: true, result: scanWith({ probe: pveProbe, guests }) });
  await finished(jobId);
  return { relayId, relay, node };
}

/** Adopt a guest and answer its first scan (with `snapshots`). */
async function adopt(relay: FakeRelay, nodeId: string, vmid: number, snapshots: unknown[] = [], body: Record<string, unknown> = {}) {
  const res = await api(`/api/hosts/${nodeId}/guests/${vmid}/adopt`, { method: 'POST', json: body });
  expect(res.status, await res.clone().text()).toBe(201);
  const host = await json(res);
  const req = await relay.next();
  expect(req.id).toBe(host.scanJobId);
  relay.send({ type: 'response', id: req.id, ok: true, result: scanWith({ probe: { ...probeResult, hostname: 'ct' }, snapshots }) });
  await finished(req.id);
  return { host, scanRequest: req };
}

async function audits(action: string) {
  return (await json(api('/api/audit'))).filter((a: any) => a.action === action);
}

describe('guests of a Proxmox VE node', () => {
  it("lists the guests a node's scan found, each with whether it can snapshot and be reached", async () => {
    const { node, relay } = await setupNode();
    const list = await json(api(`/api/hosts/${node.id}/guests`));
    expect(list.map((g: any) => [g.vmid, g.type, g.name, g.status])).toEqual([
      [101, 'lxc', 'dns', 'running'],
      [102, 'lxc', 'media', 'stopped'],
      [103, 'lxc', 'files', 'running'],
      [201, 'qemu', 'ha', 'running'],
      [202, 'qemu', 'win', 'running'],
    ]);
    expect(list[2]).toMatchObject({ snapshots: false, snapshotReason: "rootfs on storage 'local' (dir) cannot snapshot a container", hostId: null });
    expect(list[4]).toMatchObject({ reachable: false, reachReason: 'the QEMU guest agent is not enabled (agent: 0)' });

    // the next scan's list replaces the old one as a whole
    const { jobId } = await json(api(`/api/hosts/${node.id}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: true, result: scanWith({ probe: pveProbe, guests: [GUESTS[0]] }) });
    await finished(jobId);
    expect((await json(api(`/api/hosts/${node.id}/guests`))).map((g: any) => g.vmid)).toEqual([101]);
  });

  it('accepts a guest list only from a scan of a PVE node, and snapshots only from a guest', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const plain = await json(api('/api/hosts', { method: 'POST', json: { relayId, name: 'web1', address: '192.0.2.51' } }));
    const { jobId } = await json(api(`/api/hosts/${plain.id}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: true, result: scanWith({ guests: GUESTS, snapshots: [snap('patchman-x')] }) });
    const job = await finished(jobId);
    expect(job.status).toBe('succeeded');
    expect(job.log).toContain("ignored the relay's guest list: web1 is not a Proxmox VE node");
    expect(job.log).toContain("ignored the relay's snapshot list: web1 is not a Proxmox guest");
    expect(await json(api(`/api/hosts/${plain.id}/guests`))).toEqual([]);
    expect((await json(api(`/api/hosts/${plain.id}`))).snapshots).toBeNull();
    expect((await testEnv.DB.prepare('select count(*) as n from proxmox_guests').first<{ n: number }>())!.n).toBe(0);
  });

  it('adopts a container as a host reached through its node, named after it, and scans it at once', async () => {
    const { node, relay } = await setupNode();
    const { host, scanRequest } = await adopt(relay, node.id, 101, [snap('patchman-old'), snap('before-upgrade')]);
    expect(host).toMatchObject({ name: 'dns', address: NODE.address, port: 22, user: 'root', relayId: node.relayId, guest: { nodeId: node.id, type: 'lxc', vmid: 101 } });
    // the node's SSH target, naming the guest: no SSH inside the container
    expect(scanRequest.params).toEqual({ target: { ...NODE, guest: { kind: 'lxc', vmid: 101 } }, refresh: true });
    const after = await json(api(`/api/hosts/${host.id}`));
    expect(after.snapshots.map((s: any) => s.name)).toEqual(['patchman-old', 'before-upgrade']);
    expect(after.name).toBe('dns');
    // the node's list links to it; a stopped container can be adopted too
    expect((await json(api(`/api/hosts/${node.id}/guests`)))[0].hostId).toBe(host.id);
    await adopt(relay, node.id, 102);

    const again = await api(`/api/hosts/${node.id}/guests/101/adopt`, { method: 'POST', json: {} });
    expect(again.status).toBe(409);
    expect((await json(again)).error.message).toMatch(/container 101 of pve1 is already a host \(dns\)/);

    // the host list tells guests apart and filters them
    const guests = await json(api(`/api/hosts?reach=guest&limit=50`));
    expect(guests.hosts.map((h: any) => h.name).sort()).toEqual(['dns', 'media']);
    expect(guests.hosts[0].guest).toMatchObject({ nodeId: node.id });
    expect((await json(api(`/api/hosts?reach=direct`))).map((h: any) => h.name)).toEqual(['pve1']);
    expect((await json(api(`/api/hosts?guestOf=${node.id}`))).length).toBe(2);
    expect((await api('/api/hosts?reach=vm')).status).toBe(400);

    const entries = await audits('POST /api/hosts/:id/guests/101/adopt');
    expect(entries.map((e: any) => e.status).sort()).toEqual([201, 409]);
    expect(entries.find((e: any) => e.status === 201)).toMatchObject({ target: host.id, detail: 'dns (container 101 on pve1)' });
  });

  it('refuses a VM without the guest agent, with the reason and the way out; bad or unknown VMIDs', async () => {
    const { node, relay } = await setupNode();
    const res = await api(`/api/hosts/${node.id}/guests/202/adopt`, { method: 'POST', json: {} });
    expect(res.status).toBe(409);
    const { error } = await json(res);
    expect(error.code).toBe('not-reachable');
    expect(error.message).toContain('the QEMU guest agent is not enabled (agent: 0)');
    expect(error.message).toContain('add the VM as an ordinary SSH host');
    // with the agent it is adopted
    const vm = await adopt(relay, node.id, 201);
    expect(vm.scanRequest.params.target.guest).toEqual({ kind: 'qemu', vmid: 201 });

    expect((await api(`/api/hosts/${node.id}/guests/999/adopt`, { method: 'POST', json: {} })).status).toBe(404);
    const bad = await api(`/api/hosts/${node.id}/guests/12x/adopt`, { method: 'POST', json: {} });
    expect(bad.status).toBe(400);
    expect((await json(bad)).error.field).toBe('vmid');
    const badBody = await api(`/api/hosts/${node.id}/guests/101/adopt`, { method: 'POST', json: { tags: 'x' } });
    expect((await json(badBody)).error.field).toBe('tags');
    // a guest cannot itself be a node
    expect((await api(`/api/hosts/${vm.host.id}/guests/101/adopt`, { method: 'POST', json: {} })).status).toBe(409);
  });

  it('keeps guests on their node: its new address reaches them, deleting it deletes them', async () => {
    const { node, relay } = await setupNode();
    const { host } = await adopt(relay, node.id, 101);
    const own = await api(`/api/hosts/${host.id}`, { method: 'PATCH', json: { address: '192.0.2.99' } });
    expect(own.status).toBe(400);
    expect((await json(own)).error.field).toBe('address');
    expect((await api(`/api/hosts/${host.id}`, { method: 'PATCH', json: { name: 'dns-ct' } })).status).toBe(200);
    const reboot = await api(`/api/hosts/${host.id}/reboot`, { method: 'POST', json: { confirm: true } });
    expect(reboot.status).toBe(409);
    expect((await json(reboot)).error.code).toBe('guest');
    expect((await api(`/api/hosts/${node.id}`, { method: 'PATCH', json: { address: '192.0.2.77' } })).status).toBe(200);
    expect((await json(api(`/api/hosts/${host.id}`))).address).toBe('192.0.2.77');
    expect((await api(`/api/hosts/${node.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/api/hosts/${host.id}`)).status).toBe(404);
  });
});

describe('snapshot before change', () => {
  it("an upgrade of a guest takes a snapshot named after its job first, keeping the setting's number", async () => {
    const { node, relay } = await setupNode();
    const { host } = await adopt(relay, node.id, 101);
    expect((await api('/api/settings', { method: 'PUT', json: { snapshotKeep: 5 } })).status).toBe(200);
    expect((await api('/api/settings', { method: 'PUT', json: { snapshotKeep: 0 } })).status).toBe(400);

    const { jobId } = await json(api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true } }));
    const req = await relay.next();
    expect(req).toMatchObject({ id: jobId, op: 'upgrade' });
    expect(req.params).toEqual({
      target: { ...NODE, guest: { kind: 'lxc', vmid: 101 } },
      runId: jobId,
      offset: 0,
      snapshot: { name: snapshotNameForJob(jobId), description: `PatchMan job ${jobId} upgrade`, keep: 5 },
    });
    const snapshot = { name: snapshotNameForJob(jobId), taken: true, pruned: ['patchman-old1'] };
    relay.send({
      type: 'response',
      id: jobId,
      ok: true,
      result: { packageManager: 'apt', mode: 'full', logTail: '', exitCode: 0, changes: [{ name: 'openssl', from: '3.0.15-1~deb12u1', to: '3.0.17-1~deb12u2' }], logBytes: 10, durationMs: 1000, reboot: { required: false, reason: null }, warnings: [], snapshot },
    });
    const job = await finished(jobId);
    expect(job).toMatchObject({ status: 'succeeded', snapshot, withoutSnapshot: false });
    expect(job.summary).toBe(`snapshot ${snapshot.name} taken first; 1 package upgraded`);
    // a rescan follows, as after any upgrade
    expect((await relay.next()).op).toBe('scan');

    // an ordinary host's upgrade asks for no snapshot
    const plain = await json(api('/api/hosts', { method: 'POST', json: { relayId: node.relayId, name: 'web', address: '192.0.2.60' } }));
    const up2 = await json(api(`/api/hosts/${plain.id}/upgrade`, { method: 'POST', json: { confirm: true } }));
    const req2 = await relay.next();
    expect(req2.id).toBe(up2.jobId);
    expect(req2.params.snapshot).toBeUndefined();
    expect(req2.params.target.guest).toBeUndefined();
  });

  it('refuses where the storage cannot snapshot, naming why, until the operator goes on without one', async () => {
    const { node, relay } = await setupNode();
    const { host } = await adopt(relay, node.id, 103);
    const res = await api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true } });
    expect(res.status).toBe(409);
    const { error } = await json(res);
    expect(error).toMatchObject({ code: 'no-snapshot', field: 'snapshot' });
    expect(error.message).toContain("rootfs on storage 'local' (dir) cannot snapshot a container");
    expect((await api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true, snapshot: true } })).status).toBe(400);

    // bulk: the same refusal per host
    const bulk = await json(api('/api/upgrades', { method: 'POST', json: { confirm: true, hostIds: [host.id] } }));
    expect(bulk.results[0].error.code).toBe('no-snapshot');

    const ok = await api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true, snapshot: false } });
    expect(ok.status).toBe(202);
    const { jobId } = await json(ok);
    const req = await relay.next();
    expect(req.params.snapshot).toBeUndefined();
    expect((await json(api(`/api/jobs/${jobId}`))).withoutSnapshot).toBe(true);
  });

  it("a policy rollout's upgrade of a guest takes the snapshot too; a guest that cannot snapshot is skipped, saying why", async () => {
    const { node, relay } = await setupNode();
    const ok = (await adopt(relay, node.id, 101, [], { tags: ['lab'] })).host;
    const noSnap = (await adopt(relay, node.id, 103, [], { tags: ['lab'] })).host;
    const p = await createPolicy({ name: 'lab', selector: { tags: ['lab'] }, scope: 'all', rollout: { canary: 2, concurrency: 2, haltAfterFailures: 2 } });
    const db = openDb(testEnv.DB);
    const row = await db.query.policies.findFirst({ where: eq(schema.policies.id, p.id) });
    // the preview says so before anything runs
    const preview = await json(api(`/api/policies/${p.id}/preview`, { method: 'POST', json: {} }));
    expect(preview.hosts.find((h: any) => h.hostId === noSnap.id)).toMatchObject({ action: 'skip', reason: expect.stringContaining('cannot be snapshotted first') });
    expect(preview.hosts.find((h: any) => h.hostId === ok.id)).toMatchObject({ action: 'upgrade' });
    const r = await startRollout(testEnv, db, row!, { trigger: 'manual', requestedBy: 'test', now: Date.now(), windowEndsAt: null, runner: false });
    await advanceRollout(testEnv, db, r.id, Date.now());
    const req = await relay.next();
    expect(req).toMatchObject({ op: 'upgrade', params: { target: { guest: { vmid: 101 } } } });
    expect(req.params.snapshot).toEqual({ name: snapshotNameForJob(req.id), description: `PatchMan job ${req.id} upgrade`, keep: 3 });
    const hosts = await db.select().from(schema.rolloutHosts).where(eq(schema.rolloutHosts.rolloutId, r.id));
    expect(hosts.find((h) => h.hostId === ok.id)).toMatchObject({ status: 'running', jobId: req.id });
    expect(hosts.find((h) => h.hostId === noSnap.id)).toMatchObject({ status: 'skipped', reason: expect.stringContaining("rootfs on storage 'local' (dir) cannot snapshot a container") });
  });

  it('drops a snapshot report the upgrade did not ask for', async () => {
    const { node, relay } = await setupNode();
    const plain = await json(api('/api/hosts', { method: 'POST', json: { relayId: node.relayId, name: 'web', address: '192.0.2.61' } }));
    const { jobId } = await json(api(`/api/hosts/${plain.id}/upgrade`, { method: 'POST', json: { confirm: true } }));
    await relay.next();
    relay.send({
      type: 'response',
      id: jobId,
      ok: true,
      result: { packageManager: 'apt', mode: 'full', logTail: '', exitCode: 0, changes: [], logBytes: 0, durationMs: 5, reboot: { required: false, reason: null }, warnings: [], snapshot: { name: 'patchman-abc', taken: true, pruned: [] } },
    });
    const job = await finished(jobId);
    expect(job.snapshot).toBeNull();
    expect(job.log).toContain("ignored the relay's snapshot report: this upgrade asked for no snapshot");
    expect((await api(`/api/jobs/${jobId}/rollback`, { method: 'POST', json: { confirm: true } })).status).toBe(409);
  });
});

describe('rollback', () => {
  async function upgraded() {
    const { node, relay } = await setupNode();
    const { host } = await adopt(relay, node.id, 101);
    const { jobId } = await json(api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true } }));
    await relay.next();
    const name = snapshotNameForJob(jobId);
    relay.send({
      type: 'response',
      id: jobId,
      ok: true,
      result: { packageManager: 'apt', mode: 'full', logTail: '', exitCode: 0, changes: [], logBytes: 0, durationMs: 5, reboot: { required: false, reason: null }, warnings: [], snapshot: { name, taken: true, pruned: [] } },
    });
    await finished(jobId);
    const rescan = await relay.next();
    relay.send({ type: 'response', id: rescan.id, ok: true, result: scanWith({ snapshots: [snap(name)] }) });
    await finished(rescan.id);
    return { node, relay, host, jobId, name };
  }

  it('restores the snapshot an upgrade took, audited, and scans the guest again', async () => {
    const { relay, host, jobId, name } = await upgraded();
    expect((await api(`/api/jobs/${jobId}/rollback`, { method: 'POST', json: {} })).status).toBe(400);
    const res = await api(`/api/jobs/${jobId}/rollback`, { method: 'POST', json: { confirm: true }, headers: { 'Idempotency-Key': 'rollback-key-1' } });
    expect(res.status).toBe(202);
    // a retried request (same key) gets the same job
    const again = await api(`/api/jobs/${jobId}/rollback`, { method: 'POST', json: { confirm: true }, headers: { 'Idempotency-Key': 'rollback-key-1' } });
    expect(again.status).toBe(200);
    const { jobId: rb, snapshot } = await json(res);
    expect((await json(again)).jobId).toBe(rb);
    expect(snapshot).toBe(name);
    const req = await relay.next();
    expect(req).toMatchObject({ id: rb, op: 'guest.rollback' });
    expect(req.params).toEqual({ target: { ...NODE, guest: { kind: 'lxc', vmid: 101 } }, runId: rb, snapshot: name });
    // one change at a time: a second rollback waits its turn
    expect((await api(`/api/hosts/${host.id}/rollback`, { method: 'POST', json: { confirm: true } })).status).toBe(409);
    relay.send({ type: 'response', id: rb, ok: true, result: { snapshot: name, status: 'running', durationMs: 4200 } });
    const job = await finished(rb);
    expect(job).toMatchObject({ kind: 'rollback', status: 'succeeded', summary: `rolled back to ${name}; the guest is running`, rollback: { snapshot: name, jobId } });
    expect((await relay.next()).op).toBe('scan');
    const entry = (await audits('POST /api/jobs/:id/rollback')).find((a: any) => a.status === 202);
    expect(entry).toMatchObject({ status: 202, target: host.id, detail: `dns: roll back to ${name} (taken by job ${jobId})` });
  });

  it("from the host page: the newest upgrade's snapshot; refused for a snapshot gone, a viewer, and a host that is no guest", async () => {
    const { node, relay, host, jobId, name } = await upgraded();
    const res = await api(`/api/hosts/${host.id}/rollback`, { method: 'POST', json: { confirm: true } });
    expect(res.status).toBe(202);
    const req = await relay.next();
    expect(req.params.snapshot).toBe(name);
    relay.send({ type: 'response', id: req.id, ok: true, result: { snapshot: name, status: 'running', durationMs: 10 } });
    await finished(req.id);
    // the rescan finds the snapshot pruned since
    const rescan = await relay.next();
    relay.send({ type: 'response', id: rescan.id, ok: true, result: scanWith({ snapshots: [] }) });
    await finished(rescan.id);
    const gone = await api(`/api/jobs/${jobId}/rollback`, { method: 'POST', json: { confirm: true } });
    expect(gone.status).toBe(409);
    expect((await json(gone)).error.message).toContain('no longer on dns');

    const { secret } = await json(api('/api/tokens', { method: 'POST', json: { name: 'v', role: 'viewer' } }));
    expect((await api(`/api/jobs/${jobId}/rollback`, { method: 'POST', json: { confirm: true }, headers: { Authorization: `Bearer ${secret}` } })).status).toBe(403);
    expect((await api(`/api/hosts/${node.id}/rollback`, { method: 'POST', json: { confirm: true } })).status).toBe(409);
    expect((await api(`/api/hosts/${host.id}/rollback`, { method: 'POST', json: { confirm: true, jobId: 'nope' } })).status).toBe(400);
  });
});
