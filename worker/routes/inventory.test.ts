// Inventory, summary, filters, settings, connection tests and the scheduled run, against
// the real Worker in workerd with a fake relay on a real WebSocket.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, scanHost, testEnv, until } from '../test/helpers.ts';
import { probeResult, scanResult, scanWith } from '../test/fixtures.ts';
import { runScheduled } from '../scheduled.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

async function addHost(relayId: string, body: Record<string, unknown>) {
  const res = await api('/api/hosts', { method: 'POST', json: { relayId, ...body } });
  expect(res.status).toBe(201);
  return json(res);
}

describe('summary and filters', () => {
  it('counts what the scans found and filters the host list the same way', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const a = await addHost(relayId, { name: 'a', address: '192.0.2.1' }); // security + reboot
    const b = await addHost(relayId, { name: 'b', address: '192.0.2.2' }); // 1 plain update
    const c = await addHost(relayId, { name: 'c', address: '192.0.2.3' }); // up to date
    const d = await addHost(relayId, { name: 'd', address: '192.0.2.4' }); // offline
    await scanHost(relay, a.id, scanResult);
    await scanHost(relay, b.id, scanWith({ updates: [scanResult.updates[0]], held: [], reboot: { required: false, reason: null } }));
    await scanHost(relay, c.id, scanWith({ updates: [], held: [], reboot: { required: false, reason: null } }));
    const { jobId } = await json(api(`/api/hosts/${d.id}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: false, error: { code: 'timeout', message: 'no answer from 192.0.2.4:22 within 10 s' } });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).status === 'failed');

    expect(await json(api('/api/summary'))).toEqual({
      hosts: 4,
      online: 3,
      offline: 1,
      needUpdates: 2,
      pendingPackages: 4,
      securityPackages: 2,
      securityHosts: 1,
      needReboot: 1,
      stacksWithUpdates: 0,
    });
    const names = async (filter: string) => (await json(api(`/api/hosts?filter=${filter}`))).map((h: any) => h.name);
    expect(await names('needs-updates')).toEqual(['a', 'b']);
    expect(await names('security')).toEqual(['a']);
    expect(await names('needs-reboot')).toEqual(['a']);
    expect(await names('offline')).toEqual(['d']);
    const bad = await api('/api/hosts?filter=everything');
    expect(bad.status).toBe(400);
    expect((await bad.json() as any).error.field).toBe('filter');
  });

  it('a rescan replaces the package list; thousands of packages are stored whole', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const h = await addHost(relayId, { address: 'big.lan' });
    const many = Array.from({ length: 1500 }, (_, i) => ({
      name: `pkg${String(i).padStart(4, '0')}`,
      currentVersion: i % 10 ? '1:2.3-4' : null,
      newVersion: '1:2.3-5',
      repository: i % 3 ? 'Debian:12.12/stable' : 'Debian-Security:12/stable-security',
      security: i % 3 === 0,
      arch: 'amd64',
    }));
    await scanHost(relay, h.id, scanWith({ updates: many }));
    const host = await json(api(`/api/hosts/${h.id}`));
    expect(host).toMatchObject({ updatesCount: 1500, securityCount: 500 });
    expect((await json(api(`/api/hosts/${h.id}/updates`))).length).toBe(1500);
    await scanHost(relay, h.id, scanWith({ updates: [scanResult.updates[0]] }));
    expect(await json(api(`/api/hosts/${h.id}/updates`))).toEqual([scanResult.updates[0]]);
  });

  it('an unsupported OS is an error with the reason, not "up to date"', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const h = await addHost(relayId, { address: 'router.lan' });
    await scanHost(relay, h.id, scanWith({ packageManager: null, updates: [], held: [], probe: { ...probeResult, packageManagers: [], os: { ...probeResult.os, id: 'openwrt', prettyName: 'OpenWrt 23.05' } } }));
    const host = await json(api(`/api/hosts/${h.id}`));
    expect(host).toMatchObject({ status: 'error', updatesCount: null });
    expect(host.statusReason).toContain('OpenWrt 23.05');
  });
});

describe('inventory', () => {
  it("the relay's own box is monitor-only by default, other hosts are not, and either can be changed", async () => {
    const { id: relayId, token } = await createRelay();
    await FakeRelay.connect(token); // hello says hostname "relaybox"
    expect((await addHost(relayId, { address: '127.0.0.1', port: 2201 })).monitorOnly).toBe(true);
    expect((await addHost(relayId, { address: 'relaybox' })).monitorOnly).toBe(true);
    expect((await addHost(relayId, { address: 'relaybox.lan' })).monitorOnly).toBe(true);
    expect((await addHost(relayId, { address: '127.0.0.1', port: 2202, monitorOnly: false })).monitorOnly).toBe(false);
    const other = await addHost(relayId, { address: 'web1.lan' });
    expect(other.monitorOnly).toBe(false);
    const patched = await json(api(`/api/hosts/${other.id}`, { method: 'PATCH', json: { monitorOnly: true, tags: ['prod'], name: 'web one' } }));
    expect(patched).toMatchObject({ monitorOnly: true, tags: ['prod'], name: 'web one', address: 'web1.lan' });
  });

  it('PATCH validates every field and names the bad one; nothing changes', async () => {
    const { id: relayId } = await createRelay();
    const h = await addHost(relayId, { address: 'db.lan', name: 'db' });
    for (const [body, field] of [
      [{ address: 'db.lan;reboot' }, 'address'],
      [{ port: 0 }, 'port'],
      [{ user: 'Root Admin' }, 'user'],
      [{ relayId: 'nope' }, 'relayId'],
      [{ os: 'hacked' }, 'os'],
    ] as const) {
      const res = await api(`/api/hosts/${h.id}`, { method: 'PATCH', json: body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as any).error.field).toBe(field);
    }
    expect(await json(api(`/api/hosts/${h.id}`))).toMatchObject({ address: 'db.lan', name: 'db', port: 22, user: 'root' });
  });

  it('changing the address forgets the old status', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const h = await addHost(relayId, { address: 'old.lan' });
    await scanHost(relay, h.id, scanResult);
    const patched = await json(api(`/api/hosts/${h.id}`, { method: 'PATCH', json: { address: 'new.lan' } }));
    expect(patched.status).toBe('unknown');
  });
});

describe('test connection', () => {
  it('probes through the relay and reports the OS and privilege', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const pending = json(api('/api/hosts/test', { method: 'POST', json: { address: '192.0.2.9', port: 2222, user: 'patchman', relayId } }));
    const req = await relay.next();
    expect(req).toMatchObject({ op: 'probe', params: { target: { address: '192.0.2.9', port: 2222, user: 'patchman' } } });
    relay.send({ type: 'response', id: req.id, ok: true, result: { ...probeResult, privilege: 'sudo' } });
    const result = await pending;
    expect(result.ok).toBe(true);
    expect(result.probe.os.prettyName).toBe('Debian GNU/Linux 12 (bookworm)');
    // nothing was stored: it was only a test
    expect(await json(api('/api/hosts'))).toEqual([]);
  });

  it.each([
    [{ ok: false, error: { code: 'auth-refused', message: 'SSH key not accepted for root@192.0.2.9:22' } }, 'auth-refused', /key not accepted/],
    [{ ok: true, result: { ...probeResult, privilege: 'sudo-password' } }, 'sudo-password', /sudo asks for a password/],
    [{ ok: true, result: { ...probeResult, privilege: 'no-sudo' } }, 'sudo-password', /there is no sudo/],
    [{ ok: true, result: { ...probeResult, packageManagers: [], os: { ...probeResult.os, prettyName: 'OpenWrt 23.05' } } }, 'unsupported-os', /OpenWrt 23.05/],
  ])('reports the real cause: %#', async (answer, code, message) => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const pending = json(api('/api/hosts/test', { method: 'POST', json: { address: '192.0.2.9', relayId } }));
    const req = await relay.next();
    relay.send({ type: 'response', id: req.id, ...answer });
    const result = await pending;
    expect(result.ok).toBe(false);
    expect(result.error.code).toBe(code);
    expect(result.error.message).toMatch(message);
  });

  it('says so when the relay is not connected', async () => {
    const { id: relayId } = await createRelay();
    const result = await json(api('/api/hosts/test', { method: 'POST', json: { address: '192.0.2.9', relayId } }));
    expect(result).toEqual({ ok: false, error: { code: 'relay-disconnected', message: 'the relay is not connected' } });
  });
});

describe('scan all', () => {
  it('queues one scan per host, reuses running ones, and dispatches them to the relay', async () => {
    const { id: relayId, token } = await createRelay();
    const hosts = [];
    for (let i = 0; i < 5; i++) hosts.push(await addHost(relayId, { address: `10.0.0.${i + 1}` }));
    const first = await json(api(`/api/hosts/${hosts[0].id}/scan`, { method: 'POST' }));
    const res = await api('/api/scans', { method: 'POST', json: {} });
    expect(res.status).toBe(202);
    const { jobIds } = (await res.json()) as any;
    expect(jobIds).toHaveLength(5);
    expect(jobIds).toContain(first.jobId);
    const relay = await FakeRelay.connect(token);
    const got = new Set<string>();
    for (let i = 0; i < 5; i++) got.add((await relay.next()).id);
    expect([...got].sort()).toEqual([...jobIds].sort());
    const some = await json(api('/api/scans', { method: 'POST', json: { hostIds: [hosts[1].id] } }));
    expect(some.jobIds).toEqual([jobIds[1]]);
  });
});

describe('settings', () => {
  it('has defaults, validates changes by field, and pushes concurrency to connected relays', async () => {
    expect(await json(api('/api/settings'))).toEqual({ scanIntervalHours: 6, retentionDays: 30, scanConcurrency: 32, snapshotKeep: 3, accessEnabled: false, accessTeamDomain: '', accessAudience: '' });
    const bad = await api('/api/settings', { method: 'PUT', json: { retentionDays: 0 } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.field).toBe('retentionDays');
    expect((await api('/api/settings', { method: 'PUT', json: { colour: 'red' } })).status).toBe(400);

    const { token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const after = await json(api('/api/settings', { method: 'PUT', json: { scanConcurrency: 8, scanIntervalHours: 12 } }));
    expect(after).toMatchObject({ scanIntervalHours: 12, retentionDays: 30, scanConcurrency: 8, accessEnabled: false });
    expect(await relay.next()).toEqual({ type: 'config', concurrency: 8 });
    const again = await FakeRelay.connect(token, null);
    again.send({ type: 'hello', v: 1, version: 'x', publicKey: 'ssh-ed25519 AAAA', hostname: 'h' });
    expect((await again.next()).concurrency).toBe(8);
  });
});

describe('scheduled run', () => {
  it('scans hosts that are due, not those scanned recently, and deletes old history', async () => {
    const { id: relayId } = await createRelay();
    const fresh = await addHost(relayId, { name: 'fresh', address: '10.1.0.1' });
    const stale = await addHost(relayId, { name: 'stale', address: '10.1.0.2' });
    const now = Date.now();
    // fresh was scanned an hour ago; stale 7 hours ago (interval 6 h)
    await testEnv.DB.batch([
      testEnv.DB.prepare(`INSERT INTO jobs (id, kind, host_id, relay_id, status, created_at, finished_at) VALUES ('j-fresh', 'scan', ?, ?, 'succeeded', ?, ?)`).bind(fresh.id, relayId, now - 3_600_000, now - 3_600_000),
      testEnv.DB.prepare(`INSERT INTO jobs (id, kind, host_id, relay_id, status, created_at, finished_at) VALUES ('j-stale', 'scan', ?, ?, 'succeeded', ?, ?)`).bind(stale.id, relayId, now - 7 * 3_600_000, now - 7 * 3_600_000),
      testEnv.DB.prepare(`INSERT INTO jobs (id, kind, host_id, relay_id, status, created_at, finished_at) VALUES ('j-ancient', 'scan', ?, ?, 'failed', ?, ?)`).bind(stale.id, relayId, now - 31 * 86_400_000, now - 31 * 86_400_000),
    ]);
    const r = await runScheduled(testEnv, now);
    expect(r).toMatchObject({ scansQueued: 1, jobsDeleted: 1 });
    const queued = await json(api('/api/jobs?status=queued'));
    expect(queued.map((j: any) => j.hostId)).toEqual([stale.id]);
    expect((await api('/api/jobs/j-ancient')).status).toBe(404);
    // running again right away queues nothing more
    expect((await runScheduled(testEnv, now)).scansQueued).toBe(0);
  });

  it('scheduled scans can be turned off', async () => {
    const { id: relayId } = await createRelay();
    await addHost(relayId, { address: '10.2.0.1' });
    await api('/api/settings', { method: 'PUT', json: { scanIntervalHours: 0 } });
    expect((await runScheduled(testEnv)).scansQueued).toBe(0);
  });

  it('fails jobs whose relay never answered', async () => {
    const { id: relayId } = await createRelay();
    const h = await addHost(relayId, { address: '10.3.0.1' });
    const now = Date.now();
    await testEnv.DB.prepare(`INSERT INTO jobs (id, kind, host_id, relay_id, status, created_at, dispatched_at, deadline_at) VALUES ('j-overdue', 'scan', ?, ?, 'dispatched', ?, ?, ?)`)
      .bind(h.id, relayId, now - 3_600_000, now - 3_600_000, now - 60_000)
      .run();
    await runScheduled(testEnv, now);
    expect(await json(api('/api/jobs/j-overdue'))).toMatchObject({ status: 'failed', error: { code: 'timeout' } });
  });
});
