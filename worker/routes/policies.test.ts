// /api/policies against the real Worker in workerd (local D1): validation (400s naming the
// field), roles, the preview host by host (skips with reasons, scope, globs, held packages,
// cooldown from update_sightings), and the first-seen memory kept by scans.
import { describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { api, testEnv, until } from '../test/helpers.ts';
import { scanResult, scanWith } from '../test/fixtures.ts';
import { answerScans, createPolicy, fleet, json } from '../test/policy-fleet.ts';
import { openDb, schema } from '../db/index.ts';

const db = () => openDb(testEnv.DB);
const base = { name: 'web security', selector: { tags: ['web'] } };

async function tokenFor(role: 'viewer' | 'operator') {
  const { secret } = await json(api('/api/tokens', { method: 'POST', json: { name: role, role } }));
  return { Authorization: `Bearer ${secret}` };
}

describe('policy validation', () => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['bad cron', { schedule: { cron: '61 2 * * 0', timeZone: 'Europe/Berlin', windowMinutes: 60 } }, 'schedule.cron', /minute/],
    ['cron with six fields', { schedule: { cron: '0 30 2 * * 0', timeZone: 'Europe/Berlin', windowMinutes: 60 } }, 'schedule.cron', /five fields/],
    ['unknown time zone', { schedule: { cron: '30 2 * * 0', timeZone: 'Mars/Olympus', windowMinutes: 60 } }, 'schedule.timeZone', /IANA/],
    ['empty selector', { selector: {} }, 'selector', /at least one of tags/],
    ['selector with empty lists', { selector: { tags: [], hostIds: [] } }, 'selector', /at least one/],
    ['invalid tag', { selector: { tags: ['web;rm'] } }, 'selector.tags.0', /tags are/],
    ['unknown package manager', { selector: { packageManagers: ['brew'] } }, 'selector.packageManagers.0', /apt/],
    ['batch percent 0', { rollout: { batchPercent: 0 } }, 'rollout.batchPercent', /1–100/],
    ['batch percent 101', { rollout: { batchPercent: 101 } }, 'rollout.batchPercent', /1–100/],
    ['batch size and percent', { rollout: { batchSize: 2, batchPercent: 10 } }, 'rollout', /not both/],
    ['concurrency 0', { rollout: { concurrency: 0 } }, 'rollout.concurrency', /1–100/],
    ['glob with a shell character', { include: ['openssl;reboot'] }, 'include.0', /no spaces or shell characters/],
    ['glob with a space', { exclude: ['linux image*'] }, 'exclude.0', /package glob/],
    ['glob with $()', { exclude: ['$(id)'] }, 'exclude.0', /package glob/],
    ['window too long', { schedule: { cron: '30 2 * * 0', timeZone: 'UTC', windowMinutes: 5000 } }, 'schedule.windowMinutes', /at most/],
  ];
  for (const [what, body, field, message] of cases) {
    it(`${what}: 400 naming ${field}`, async () => {
      const res = await api('/api/policies', { method: 'POST', json: { ...base, ...body } });
      expect(res.status).toBe(400);
      const { error } = await json(res);
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
    });
  }

  it('stores a valid policy with its defaults and shows the next three runs in its time zone', async () => {
    const p = await createPolicy({ schedule: { cron: '30 2 * * 0', timeZone: 'Europe/Berlin', windowMinutes: 120 }, rollout: { canary: 1, batchPercent: 25, haltAfterFailures: 2 } });
    expect(p).toMatchObject({
      name: 'web security',
      enabled: true,
      scope: 'security',
      aptMode: 'dist-upgrade',
      cooldownDays: 0,
      reboot: 'never',
      rollout: { canary: 1, batchPercent: 25, concurrency: 5, haltAfterFailures: 2, rescanBetweenBatches: true },
    });
    expect(p.nextRuns).toHaveLength(3);
    for (const t of p.nextRuns) {
      const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(t));
      // 02:30 on Sundays, except on the spring-forward Sunday (no 02:30: it runs at 03:00)
      expect(['Sun 02:30', 'Sun 03:00']).toContain(local);
    }
    const got = await json(api(`/api/policies/${p.id}`));
    expect(got).toEqual(p);
    const put = await api(`/api/policies/${p.id}`, { method: 'PUT', json: { ...base, enabled: false, schedule: p.schedule } });
    expect(put.status).toBe(200);
    expect((await json(put)).nextRuns).toEqual([]);
    expect((await api(`/api/policies/${p.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/api/policies/${p.id}`)).status).toBe(404);
  });

  it('roles: admins edit, operators run, viewers read and preview; edits and reboots are audited', async () => {
    const viewer = await tokenFor('viewer');
    const operator = await tokenFor('operator');
    const p = await createPolicy({ reboot: 'if-required' });
    expect((await api('/api/policies', { method: 'POST', json: base, headers: operator })).status).toBe(403);
    expect((await api(`/api/policies/${p.id}`, { method: 'PUT', json: base, headers: operator })).status).toBe(403);
    expect((await api(`/api/policies/${p.id}`, { method: 'DELETE', headers: viewer })).status).toBe(403);
    expect((await api('/api/policies', { headers: viewer })).status).toBe(200);
    expect((await api(`/api/policies/${p.id}/preview`, { method: 'POST', json: {}, headers: viewer })).status).toBe(200);
    expect((await api(`/api/policies/${p.id}/run`, { method: 'POST', json: {}, headers: viewer })).status).toBe(403);
    const run = await api(`/api/policies/${p.id}/run`, { method: 'POST', json: {}, headers: operator });
    expect(run.status).toBe(202);
    const { rolloutId } = await json(run);
    expect((await api(`/api/rollouts/${rolloutId}/cancel`, { method: 'POST', json: {}, headers: viewer })).status).toBe(403);
    expect((await api(`/api/rollouts/${rolloutId}`, { headers: viewer })).status).toBe(200);
    const audit = await json(api('/api/audit'));
    const actions = audit.map((a: any) => a.action ?? a);
    expect(JSON.stringify(audit)).toMatch(/may reboot: Hosts that need a reboot after their upgrade are rebooted, one at a time, within the window/);
    expect(JSON.stringify(audit)).toMatch(/rollout of web security started; reboots: if-required/);
    expect(actions.length).toBeGreaterThanOrEqual(4);
  });
});

describe('preview', { timeout: 30_000 }, () => {
  it('per host: exactly what would be installed, and every skipped host with its reason', async () => {
    const { hosts, relay, relayId } = await fleet(7);
    const [ok, monitor, keyChanged, failed, stale, pacman, proxmox] = hosts;
    const d = db();
    const { hosts: h } = schema;
    await d.update(h).set({ monitorOnly: true }).where(eq(h.id, monitor.id));
    await d.update(h).set({ hostKeyOffered: 'SHA256:' + 'B'.repeat(43) }).where(eq(h.id, keyChanged.id));
    await d.update(h).set({ status: 'offline', statusReason: 'connection timed out' }).where(eq(h.id, failed.id));
    await d.update(h).set({ lastScanAt: Date.now() - 72 * 3_600_000 }).where(eq(h.id, stale.id));
    await d.update(h).set({ packageManager: 'pacman' }).where(eq(h.id, pacman.id));
    await d.update(h).set({ proxmox: { product: 'pve', version: '8.4.1' } }).where(eq(h.id, proxmox.id));
    // a host outside the selector is not in the preview at all
    await api('/api/hosts', { method: 'POST', json: { relayId, name: 'db1', address: '192.0.2.99', tags: ['db'] } });
    void relay;

    const p = await createPolicy({ exclude: ['libssl*'] });
    const res = await api(`/api/policies/${p.id}/preview`, { method: 'POST', json: {} });
    expect(res.status).toBe(200);
    const preview = await json(res);
    const by = new Map(preview.hosts.map((x: any) => [x.hostId, x]));
    expect(preview.hosts).toHaveLength(7);
    expect(by.get(ok.id)).toEqual({
      hostId: ok.id,
      name: 'web01',
      action: 'upgrade',
      full: false,
      // security scope: openssl (libssl3 excluded by the glob, tzdata not security)
      packages: [{ name: 'openssl', currentVersion: '3.0.15-1~deb12u1', newVersion: '3.0.17-1~deb12u2', security: true }],
      rebootExpected: true, // the fixture scan says /run/reboot-required
    });
    expect(by.get(monitor.id)).toMatchObject({ action: 'skip', reason: expect.stringMatching(/monitor-only/), packages: [] });
    expect(by.get(keyChanged.id)).toMatchObject({ action: 'skip', reason: expect.stringMatching(/SSH host key changed/) });
    expect(by.get(failed.id)).toMatchObject({ action: 'skip', reason: 'its last scan failed: connection timed out' });
    expect(by.get(stale.id)).toMatchObject({ action: 'skip', reason: 'its last scan is older than 48 h' });
    expect(by.get(pacman.id)).toMatchObject({ action: 'skip', reason: expect.stringMatching(/can only be upgraded as a whole: pacman upgrades the whole system/) });
    expect(by.get(proxmox.id)).toMatchObject({ action: 'skip', reason: expect.stringMatching(/Proxmox/) });
    expect(preview.reboot).toMatch(/Nothing is rebooted/);
  });

  it('scope all without filters is a full upgrade (pacman included); include globs pick packages; held packages are never chosen', async () => {
    const { hosts } = await fleet(1);
    const all = await createPolicy({ name: 'all', scope: 'all' });
    const full = (await json(api(`/api/policies/${all.id}/preview`, { method: 'POST', json: {} }))).hosts[0];
    expect(full).toMatchObject({ action: 'upgrade', full: true });
    expect(full.packages.map((x: any) => x.name)).toEqual(['libssl3', 'openssl', 'tzdata']);

    await db().update(schema.hosts).set({ held: [{ name: 'tzdata', reason: 'held' }] }).where(eq(schema.hosts.id, hosts[0].id));
    const some = await createPolicy({ name: 'tz', scope: 'all', include: ['tz*', 'openssl'] });
    const picked = (await json(api(`/api/policies/${some.id}/preview`, { method: 'POST', json: {} }))).hosts[0];
    expect(picked.packages.map((x: any) => x.name)).toEqual(['openssl']);

    const none = await createPolicy({ name: 'none', selector: { tags: ['nothing-has-this'] } });
    expect(await json(api(`/api/policies/${none.id}/preview`, { method: 'POST', json: {} }))).toMatchObject({ hosts: [] });
  });
});

describe('update sightings and cooldown', { timeout: 30_000 }, () => {
  it('a scan records first sightings, keeps them across scans and resolves what is no longer pending; cooldown reads them', async () => {
    const { hosts, relay } = await fleet(1);
    const hostId = hosts[0].id;
    const rows = async () =>
      (await db().select().from(schema.updateSightings).where(eq(schema.updateSightings.hostId, hostId))).sort((a, b) => a.name.localeCompare(b.name) || a.newVersion.localeCompare(b.newVersion));
    const first = await rows();
    expect(first.map((r) => [r.name, r.newVersion, r.security, r.resolvedAt])).toEqual([
      ['libssl3', '3.0.17-1~deb12u2', true, null],
      ['openssl', '3.0.17-1~deb12u2', true, null],
      ['tzdata', '2025b-0+deb12u1', false, null],
    ]);

    // pretend openssl was first seen 10 days ago; cooldown 7 lets only it through
    await db()
      .update(schema.updateSightings)
      .set({ firstSeenAt: Date.now() - 10 * 86_400_000 })
      .where(eq(schema.updateSightings.name, 'openssl'));
    const p = await createPolicy({ cooldownDays: 7 });
    const preview = await json(api(`/api/policies/${p.id}/preview`, { method: 'POST', json: {} }));
    expect(preview.hosts[0].packages.map((x: any) => x.name)).toEqual(['openssl']);

    // next scan: tzdata installed, openssl superseded by a newer version, libssl3 unchanged
    const next = scanWith({
      updates: [
        { ...scanResult.updates[1], newVersion: '3.0.18-1~deb12u1' },
        scanResult.updates[2],
      ],
    });
    await api(`/api/hosts/${hostId}/scan`, { method: 'POST', json: {} });
    await answerScans(relay, 1, () => next);
    const after = await until(async () => {
      const r = await rows();
      return r.length === 4 && r;
    });
    const byKey = new Map(after.map((r) => [`${r.name} ${r.newVersion}`, r]));
    expect(after).toHaveLength(4);
    expect(byKey.get('libssl3 3.0.17-1~deb12u2')).toMatchObject({ firstSeenAt: first[0].firstSeenAt, resolvedAt: null });
    expect(byKey.get('tzdata 2025b-0+deb12u1')!.resolvedAt).toBeGreaterThan(0);
    expect(byKey.get('openssl 3.0.17-1~deb12u2')!.resolvedAt).toBeGreaterThan(0);
    expect(byKey.get('openssl 3.0.18-1~deb12u1')).toMatchObject({ resolvedAt: null });
    // the new openssl version is fresh: the 7-day cooldown holds everything back now
    const later = await json(api(`/api/policies/${p.id}/preview`, { method: 'POST', json: {} }));
    expect(later.hosts[0]).toMatchObject({ action: 'skip', reason: expect.stringMatching(/cooldown/) });
  });
});
