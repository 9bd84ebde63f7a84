import { describe, expect, it } from 'vitest';
import { evictDurableObject } from 'cloudflare:test';
import { api, createRelay, FakeRelay, testEnv, until } from '../test/helpers.ts';
import { relayHub } from '../relay-hub.ts';

import { probeResult, scanResult } from '../test/fixtures.ts';

async function addHost(body: Record<string, unknown>) {
  const res = await api('/api/hosts', { method: 'POST', json: body });
  return { status: res.status, body: (await res.json()) as any };
}

describe('hosts', () => {
  it('adds a host with defaults and lists it', async () => {
    const { id: relayId } = await createRelay();
    const { status, body } = await addHost({ address: '192.0.2.10' });
    expect(status).toBe(201);
    expect(body).toMatchObject({ name: '192.0.2.10', address: '192.0.2.10', port: 22, user: 'root', relayId, status: 'unknown', os: null });
    const list = (await (await api('/api/hosts')).json()) as any[];
    expect(list.map((h) => h.id)).toContain(body.id);
  });

  it.each([
    [{ address: '-oProxyCommand=sh' }, 'address'],
    [{ address: 'host name' }, 'address'],
    [{ address: 'a'.repeat(64) + '.example' }, 'address'],
    [{ address: '300.1.1.1' }, 'address'],
    [{ address: 'db1', port: 0 }, 'port'],
    [{ address: 'db1', port: 70000 }, 'port'],
    [{ address: 'db1', port: '22' }, 'port'],
    [{ address: 'db1', user: 'root;id' }, 'user'],
    [{ address: 'db1', user: '$(id)' }, 'user'],
    [{ address: 'db1', tags: ['ok', 'not ok'] }, 'tags.1'],
    [{ address: 'db1', sneaky: true }, 'sneaky'],
  ])('refuses %j with a 400 naming %s, storing nothing', async (body, field) => {
    await createRelay();
    const before = (await (await api('/api/hosts')).json()) as any[];
    const res = await addHost(body);
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe(field);
    expect(res.body.error.message).toContain(field);
    const after = (await (await api('/api/hosts')).json()) as any[];
    expect(after.length).toBe(before.length);
  });

  it('needs a relay to be chosen when there are several', async () => {
    await createRelay('a');
    await createRelay('b');
    const res = await addHost({ address: 'db1' });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe('relayId');
  });

  it('refuses the same target twice', async () => {
    await createRelay();
    expect((await addHost({ address: 'db1.lan' })).status).toBe(201);
    expect((await addHost({ address: 'db1.lan' })).status).toBe(409);
  });

  it('scan: the job waits for an offline relay and is dispatched when it connects; the probe result lands on the host', async () => {
    const { token } = await createRelay();
    const { body: host } = await addHost({ address: '127.0.0.1', port: 2222 });
    const scan = await api(`/api/hosts/${host.id}/scan`, { method: 'POST' });
    expect(scan.status).toBe(202);
    const { jobId } = (await scan.json()) as any;
    expect(((await (await api(`/api/jobs/${jobId}`)).json()) as any).status).toBe('queued');

    const relay = await FakeRelay.connect(token);
    const req = await relay.next();
    expect(req).toMatchObject({ type: 'request', id: jobId, op: 'scan', params: { target: { address: '127.0.0.1', port: 2222, user: 'root' }, refresh: true } });
    relay.send({ type: 'response', id: jobId, ok: true, result: scanResult });

    const job = await until(async () => {
      const j = (await (await api(`/api/jobs/${jobId}`)).json()) as any;
      return j.status === 'succeeded' && j;
    });
    expect(job.summary).toBe('3 updates (2 security), 1 held back, reboot required');
    const h = (await (await api(`/api/hosts/${host.id}`)).json()) as any;
    expect(h).toMatchObject({
      status: 'online',
      os: { id: 'debian', version: '12 (bookworm)', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
      kernel: '6.1.0-40-amd64',
      packageManager: 'apt',
      bootId: probeResult.bootId,
      privilege: 'root',
      updatesCount: 3,
      securityCount: 2,
      rebootRequired: true,
      rebootReason: scanResult.reboot.reason,
      held: [{ name: 'linux-image-amd64', reason: 'kept-back' }],
    });
    expect(h.lastScanAt).not.toBeNull();
    const updates = (await (await api(`/api/hosts/${host.id}/updates`)).json()) as any[];
    // security first, then by name
    expect(updates.map((u) => u.name)).toEqual(['libssl3', 'openssl', 'tzdata']);
    expect(updates[0]).toEqual(scanResult.updates.find((u) => u.name === 'libssl3'));
  });

  it('a second scan request while one is pending returns the same job', async () => {
    await createRelay();
    const { body: host } = await addHost({ address: 'db2' });
    const a = (await (await api(`/api/hosts/${host.id}/scan`, { method: 'POST' })).json()) as any;
    const b = (await (await api(`/api/hosts/${host.id}/scan`, { method: 'POST' })).json()) as any;
    expect(b.jobId).toBe(a.jobId);
  });

  it('a failed probe marks the host offline with the reason and fails the job', async () => {
    const { token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const { body: host } = await addHost({ address: 'gone.lan' });
    const { jobId } = (await (await api(`/api/hosts/${host.id}/scan`, { method: 'POST' })).json()) as any;
    const req = await relay.next();
    relay.send({ type: 'response', id: req.id, ok: false, error: { code: 'unreachable', message: 'connection refused by gone.lan:22' } });
    const job = await until(async () => {
      const j = (await (await api(`/api/jobs/${jobId}`)).json()) as any;
      return j.status === 'failed' && j;
    });
    expect(job.error).toEqual({ code: 'unreachable', message: 'connection refused by gone.lan:22' });
    const h = (await (await api(`/api/hosts/${host.id}`)).json()) as any;
    expect(h).toMatchObject({ status: 'offline', statusReason: 'connection refused by gone.lan:22' });
  });

  it('a result that does not validate fails the job instead of storing garbage', async () => {
    const { token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const { body: host } = await addHost({ address: 'odd.lan' });
    const { jobId } = (await (await api(`/api/hosts/${host.id}/scan`, { method: 'POST' })).json()) as any;
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: true, result: { os: 'windows' } });
    const job = await until(async () => {
      const j = (await (await api(`/api/jobs/${jobId}`)).json()) as any;
      return j.status === 'failed' && j;
    });
    expect(job.error.code).toBe('internal');
    expect(((await (await api(`/api/hosts/${host.id}`)).json()) as any).os).toBeNull();
  });

  it('the result still lands after the Durable Object hibernated mid-job', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const { body: host } = await addHost({ address: 'sleepy.lan' });
    const { jobId } = (await (await api(`/api/hosts/${host.id}/scan`, { method: 'POST' })).json()) as any;
    await relay.next();
    await evictDurableObject(relayHub(testEnv, relayId));
    relay.send({ type: 'response', id: jobId, ok: true, result: scanResult });
    await until(async () => ((await (await api(`/api/jobs/${jobId}`)).json()) as any).status === 'succeeded');
  });

  it('a scan sent on a connection that died silently (redeploy) is sent again when the relay comes back', async () => {
    const { id: relayId, token } = await createRelay();
    const first = await FakeRelay.connect(token);
    const { body: host } = await addHost({ address: 'redeploy.lan' });
    const { jobId } = (await (await api(`/api/hosts/${host.id}/scan`, { method: 'POST' })).json()) as any;
    await first.next();
    // the object is torn down with its sockets and no close handler runs
    await evictDurableObject(relayHub(testEnv, relayId), { webSockets: 'close' });
    const second = await FakeRelay.connect(token);
    const again = await second.next();
    expect(again).toMatchObject({ type: 'request', id: jobId, op: 'scan' });
    second.send({ type: 'response', id: jobId, ok: true, result: scanResult });
    await until(async () => ((await (await api(`/api/jobs/${jobId}`)).json()) as any).status === 'succeeded');
  });

  it('a job in flight when the relay disconnects is marked lost, never succeeded', async () => {
    const { token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const { body: host } = await addHost({ address: 'flaky.lan' });
    const { jobId } = (await (await api(`/api/hosts/${host.id}/scan`, { method: 'POST' })).json()) as any;
    await relay.next();
    relay.ws.close(1001, 'going away');
    const job = await until(async () => {
      const j = (await (await api(`/api/jobs/${jobId}`)).json()) as any;
      return j.status === 'lost' && j;
    });
    expect(job.error.code).toBe('relay-disconnected');
  });

  it('deletes a host', async () => {
    await createRelay();
    const { body: host } = await addHost({ address: 'old.lan' });
    expect((await api(`/api/hosts/${host.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/api/hosts/${host.id}`)).status).toBe(404);
  });
});

describe('adding a host (what a new user trips over)', () => {
  it('scans the host at once when asked (the dashboard does), and not otherwise', async () => {
    await createRelay();
    const asked = await addHost({ address: 'new1.lan', scan: true });
    expect(asked.status).toBe(201);
    expect(asked.body.scanJobId).toEqual(expect.any(String));
    const job = (await (await api(`/api/jobs/${asked.body.scanJobId}`)).json()) as any;
    expect(job).toMatchObject({ kind: 'scan', hostId: asked.body.id, status: 'queued' });

    const quiet = await addHost({ address: 'new2.lan' });
    expect(quiet.body.scanJobId).toBeNull();
    const jobs = (await (await api(`/api/jobs?hostId=${quiet.body.id}`)).json()) as any[];
    expect(jobs).toEqual([]);
  });

  it('a host named after its address takes the host name its first scan finds; a chosen name stays', async () => {
    const { token } = await createRelay();
    const { body: byAddress } = await addHost({ address: '192.0.2.77', scan: true });
    const { body: named } = await addHost({ address: '192.0.2.78', name: 'my-db', scan: true });
    const relay = await FakeRelay.connect(token);
    for (let i = 0; i < 2; i++) {
      const req = await relay.next();
      const hostname = req.params.target.address === '192.0.2.77' ? 'web-77' : 'db-78';
      relay.send({ type: 'response', id: req.id, ok: true, result: { ...scanResult, probe: { ...probeResult, hostname } } });
    }
    const h1 = await until(async () => {
      const h = (await (await api(`/api/hosts/${byAddress.id}`)).json()) as any;
      return h.lastScanAt && h;
    });
    expect(h1.name).toBe('web-77');
    const h2 = await until(async () => {
      const h = (await (await api(`/api/hosts/${named.id}`)).json()) as any;
      return h.lastScanAt && h;
    });
    expect(h2.name).toBe('my-db');
    // renamed back to its address by hand: a later scan leaves it so
    await api(`/api/hosts/${byAddress.id}`, { method: 'PATCH', json: { name: '192.0.2.77' } });
    await api(`/api/hosts/${byAddress.id}/scan`, { method: 'POST' });
    const again = await relay.next();
    relay.send({ type: 'response', id: again.id, ok: true, result: { ...scanResult, probe: { ...probeResult, hostname: 'web-77' } } });
    await until(async () => ((await (await api(`/api/jobs/${again.id}`)).json()) as any).status === 'succeeded');
    expect(((await (await api(`/api/hosts/${byAddress.id}`)).json()) as any).name).toBe('192.0.2.77');
    relay.ws.close();
  });

  it('names the hosts in the audit log: added, deleted, and the hosts of a bulk upgrade or scan', async () => {
    await createRelay();
    const { body: a } = await addHost({ address: 'audit-a.lan', name: 'alpha' });
    const { body: b } = await addHost({ address: 'audit-b.lan', name: 'bravo' });
    await api('/api/upgrades', { method: 'POST', json: { confirm: true, hostIds: [a.id, b.id] } });
    await api('/api/scans', { method: 'POST', json: { hostIds: [a.id, b.id] } });
    await api(`/api/hosts/${b.id}`, { method: 'DELETE' });
    const log = (await (await api('/api/audit')).json()) as any[];
    const find = (action: string, target?: string) => log.find((e) => e.action === action && (target === undefined || e.target === target));
    expect(find('POST /api/hosts', a.id)?.detail).toBe('alpha (root@audit-a.lan:22)');
    expect(find('POST /api/upgrades')?.detail).toBe('alpha, bravo');
    expect(find('POST /api/scans')?.detail).toBe('alpha, bravo');
    expect(find('DELETE /api/hosts/:id', b.id)?.detail).toBe('bravo');
  });
});
