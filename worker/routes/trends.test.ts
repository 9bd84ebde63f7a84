// Trends, exposure, exports, /metrics and the Homepage widget against the real Worker in
// workerd (local D1): scans applied through a fake relay on a real WebSocket write the
// host's day; earlier days and update sightings are inserted as rows (the sightings are
// filled at scan time by worker/sightings.ts, not here).
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, scanHost, testEnv, until } from '../test/helpers.ts';
import { scanResult, scanWith } from '../test/fixtures.ts';
import { runScheduled } from '../scheduled.ts';

// generous: this machine is shared, and each test applies several scans over a WebSocket
const SLOW = { timeout: 30_000 };

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const DAY = 86_400_000;
const today = Math.floor(Date.now() / DAY);
const dayIso = (d: number) => new Date(d * DAY).toISOString();

async function addHost(relayId: string, body: Record<string, unknown>) {
  const res = await api('/api/hosts', { method: 'POST', json: { relayId, ...body } });
  expect(res.status).toBe(201);
  return json(res);
}

const dayRow = (hostId: string, day: number, pending: number, security: number, needReboot: number) =>
  testEnv.DB.prepare('INSERT INTO host_days (host_id, day, pending, security, need_reboot, error, scans) VALUES (?, ?, ?, ?, ?, 0, 4)').bind(hostId, day, pending, security, needReboot);

const sighting = (hostId: string, name: string, firstSeenAt: number, resolvedAt: number | null, security = true) =>
  testEnv.DB.prepare('INSERT OR REPLACE INTO update_sightings (host_id, name, new_version, security, first_seen_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?)').bind(hostId, name, '1.0', security ? 1 : 0, firstSeenAt, resolvedAt);

const job = (id: string, hostId: string, kind: string, status: string, createdAt: number) =>
  testEnv.DB.prepare('INSERT INTO jobs (id, kind, host_id, status, created_at) VALUES (?, ?, ?, ?, ?)').bind(id, kind, hostId, status, createdAt);

/** Two scanned hosts (a: 3 pending, 2 security, reboot; b: 1 pending) plus three earlier days. */
async function fleet() {
  const { id: relayId, token } = await createRelay();
  const relay = await FakeRelay.connect(token);
  const a = await addHost(relayId, { name: 'alpha', address: '192.0.2.1' });
  const b = await addHost(relayId, { name: 'beta, "the second"', address: '192.0.2.2' });
  await scanHost(relay, a.id, scanWith({ updates: [scanResult.updates[0]] }));
  await scanHost(relay, a.id, scanResult); // the last scan of the day wins
  await scanHost(relay, b.id, scanWith({ updates: [scanResult.updates[0]], reboot: { required: false, reason: null } }));
  await testEnv.DB.batch([
    dayRow(a.id, today - 1, 5, 3, 1),
    dayRow(b.id, today - 1, 2, 0, 0),
    dayRow(a.id, today - 10, 9, 4, 0),
    dayRow(a.id, today - 40, 20, 10, 1),
    // the fleet's past days, summed as the Worker keeps them (today's come from the scans above)
    testEnv.DB.prepare(
      'INSERT INTO fleet_days (day, hosts, pending, security, need_reboot, errors) SELECT day, count(*), sum(pending), sum(security), sum(need_reboot), sum(error) FROM host_days WHERE day < ? GROUP BY day',
    ).bind(today),
  ]);
  return { a, b, relay };
}

describe('trends', SLOW, () => {
  it('fleet and host points agree with the scans, per UTC day, within the period', async () => {
    const { a, b } = await fleet();
    const week = await json(api('/api/trends?days=7'));
    expect(week.days).toBe(7);
    expect(week.points).toEqual([
      { at: dayIso(today - 1), hosts: 2, pending: 7, security: 3, needReboot: 1, errors: 0 },
      { at: dayIso(today), hosts: 2, pending: 4, security: 2, needReboot: 1, errors: 0 },
    ]);
    const month = await json(api('/api/trends?days=30'));
    expect(month.points.map((p: any) => p.at)).toEqual([dayIso(today - 10), dayIso(today - 1), dayIso(today)]);
    expect((await json(api('/api/trends?days=90'))).points).toHaveLength(4);

    const host = await json(api(`/api/hosts/${a.id}/trends?days=30`));
    expect(host.points).toEqual([
      { at: dayIso(today - 10), hosts: 1, pending: 9, security: 4, needReboot: 0, errors: 0 },
      { at: dayIso(today - 1), hosts: 1, pending: 5, security: 3, needReboot: 1, errors: 0 },
      { at: dayIso(today), hosts: 1, pending: 3, security: 2, needReboot: 1, errors: 0 },
    ]);
    const { results } = await testEnv.DB.prepare('SELECT scans FROM host_days WHERE host_id = ? AND day = ?').bind(a.id, today).all();
    expect(results).toEqual([{ scans: 2 }]);
    expect((await json(api(`/api/hosts/${b.id}/trends?days=7`))).points.map((p: any) => p.pending)).toEqual([2, 1]);
  });

  it("keeps the fleet's day equal to the sum of its hosts' days, scan after scan", async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const hosts = [];
    for (let i = 0; i < 3; i++) hosts.push(await addHost(relayId, { name: `h${i}`, address: `192.0.2.${10 + i}` }));
    const noReboot = { reboot: { required: false, reason: null } };
    const scans = [
      [0, scanResult],
      [1, scanWith({ updates: [scanResult.updates[0]], ...noReboot })],
      [0, scanWith({ updates: [], ...noReboot })], // patched: down to nothing
      [2, scanWith({ updates: scanResult.updates.slice(1) })],
      [1, scanResult], // more than before
      [2, scanWith({ packageManager: null, updates: [], ...noReboot })],
    ] as const;
    for (const [i, result] of scans) {
      await scanHost(relay, hosts[i].id, result);
      const { results: sum } = await testEnv.DB.prepare(
        'SELECT count(*) AS hosts, sum(pending) AS pending, sum(security) AS security, sum(need_reboot) AS needReboot, sum(error) AS errors FROM host_days WHERE day = ?',
      ).bind(today).all();
      const [point] = (await json(api('/api/trends?days=1'))).points;
      expect(point).toEqual({ at: dayIso(today), ...sum[0] });
    }
    expect((await json(api('/api/trends?days=1'))).points).toEqual([{ at: dayIso(today), hosts: 3, pending: 3, security: 2, needReboot: 1, errors: 1 }]); // no package manager: an error
  });

  it('counts patch activity per day: changes only, failures apart', async () => {
    const { a, b } = await fleet();
    const t = today * DAY + 3_600_000;
    await testEnv.DB.batch([
      job('u1', a.id, 'upgrade', 'succeeded', t - 2 * DAY),
      job('u2', b.id, 'upgrade', 'failed', t - 2 * DAY + 60_000),
      job('r1', a.id, 'reboot', 'lost', t - 2 * DAY + 120_000),
      job('u3', b.id, 'upgrade', 'succeeded', t - 20 * DAY),
    ]);
    const week = await json(api('/api/trends?days=7'));
    expect(week.activity).toEqual([{ at: dayIso(today - 2), jobs: 3, failed: 2 }]); // the scans are not patch activity
    expect((await json(api('/api/trends?days=30'))).activity).toHaveLength(2);
    expect((await json(api(`/api/hosts/${b.id}/trends?days=7`))).activity).toEqual([{ at: dayIso(today - 2), jobs: 1, failed: 1 }]);
  });

  it('refuses a bad period naming the field, and an unknown host', async () => {
    for (const q of ['days=0', 'days=abc', 'days=400', 'days=1.5']) {
      const res = await api(`/api/trends?${q}`);
      expect(res.status, q).toBe(400);
      expect((await json(res)).error.field).toBe('days');
    }
    expect((await api('/api/hosts/nope/trends')).status).toBe(404);
    expect((await json(api('/api/trends'))).days).toBe(30);
  });

  it('retention: the cron deletes days older than the history setting', async () => {
    await fleet();
    const r = await runScheduled(testEnv, Date.now());
    expect(r.daysDeleted).toBe(1); // the day 40 days ago; retention is 30 days
    expect((await json(api('/api/trends?days=90'))).points).toHaveLength(3);
  });
});

describe('exposure', SLOW, () => {
  it('oldest pending security update per host; median and p90 time to patch over the period', async () => {
    const { a, b } = await fleet();
    // (the fleet's scans saw their updates just now: this test sets every sighting itself)
    await testEnv.DB.prepare('DELETE FROM update_sightings').run();
    const now = Date.now();
    const resolvedIn = (i: number, days: number) => sighting(a.id, `fixed${i}`, now - DAY - days * DAY, now - DAY);
    await testEnv.DB.batch([
      sighting(a.id, 'openssl', now - 12 * DAY, null),
      sighting(a.id, 'libssl3', now - 3 * DAY, null),
      sighting(a.id, 'tzdata', now - 50 * DAY, null, false), // not security: no exposure
      sighting(b.id, 'old-fixed', now - 9 * DAY, now - 8 * DAY),
      // installed in the last 30 days after 1…10 days: median 5.5, p90 (9th of 10) 9
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((d, i) => resolvedIn(i, d)),
      // installed 60 days ago: only in the 90-day period
      sighting(b.id, 'long-ago', now - 100 * DAY, now - 60 * DAY),
      // a plain update's time to patch does not count
      sighting(b.id, 'plain', now - 30 * DAY, now - 2 * DAY, false),
    ]);
    const e = await json(api('/api/exposure?days=30'));
    expect(e.hosts).toEqual([
      { hostId: a.id, name: 'alpha', oldestSecurityAgeDays: 12, oldestSecurityFirstSeenAt: new Date(now - 12 * DAY).toISOString(), openSecurity: 2 },
      { hostId: b.id, name: 'beta, "the second"', oldestSecurityAgeDays: null, oldestSecurityFirstSeenAt: null, openSecurity: 0 },
    ]);
    // 11 in the period: 1 (old-fixed), 1…10 → sorted 1,1,2,…,10: median the 6th = 5, p90 the 10th = 9
    expect(e.timeToPatchDays).toEqual({ median: 5, p90: 9, count: 11 });
    expect((await json(api('/api/exposure?days=7'))).timeToPatchDays).toEqual({ median: 5.5, p90: 9, count: 10 });
    expect((await json(api('/api/exposure?days=90'))).timeToPatchDays).toEqual({ median: 5.5, p90: 10, count: 12 });
    const host = await json(api(`/api/hosts/${a.id}/trends?days=7`));
    expect(host.exposure).toEqual({ oldestSecurityAgeDays: 12, openSecurity: 2 });
  });

  it('nothing installed: nulls, not zeros', async () => {
    await fleet();
    expect((await json(api('/api/exposure'))).timeToPatchDays).toEqual({ median: null, p90: null, count: 0 });
  });
});

describe('exports, /metrics and Homepage carry the same numbers', SLOW, () => {
  async function seeded() {
    const f = await fleet();
    const now = Date.now();
    await testEnv.DB.batch([
      sighting(f.a.id, 'openssl', now - 12 * DAY, null),
      sighting(f.a.id, 'libssl3', now - 3 * DAY, null),
      sighting(f.b.id, 'fixed', now - 5 * DAY, now - 2 * DAY),
    ]);
    return f;
  }

  it('hosts.csv and hosts.json: the host list, quoted, as an attachment', async () => {
    const { a, b } = await seeded();
    const res = await api('/api/export/hosts.csv');
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('Content-Disposition')).toMatch(/^attachment; filename="patchman-hosts-\d{4}-\d\d-\d\d\.csv"$/);
    const text = await res.text();
    const lines = text.split('\r\n');
    expect(lines[0]).toBe('id,name,address,port,user,relay,tags,status,statusReason,os,kernel,arch,packageManager,monitorOnly,pending,security,rebootRequired,oldestSecurityAgeDays,lastScanAt');
    expect(lines[1]).toMatch(new RegExp(`^${a.id},alpha,192\\.0\\.2\\.1,22,root,lab,,online,,Debian GNU/Linux 12 \\(bookworm\\),[^,]+,[^,]+,apt,false,3,2,true,12,\\d{4}-`));
    expect(lines[2]).toMatch(new RegExp(`^${b.id},"beta, ""the second""",192\\.0\\.2\\.2,.*,1,0,false,,\\d{4}-`));
    expect(lines).toHaveLength(4); // header, two hosts, the empty string after the last CRLF

    const rows = await json(api('/api/export/hosts.json'));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ id: a.id, name: 'alpha', pending: 3, security: 2, rebootRequired: true, oldestSecurityAgeDays: 12 });
    expect(rows[1]).toMatchObject({ name: 'beta, "the second"', pending: 1, security: 0, rebootRequired: false, oldestSecurityAgeDays: null });
  });

  it('updates.csv and updates.json: every pending update of the fleet, with when it was first seen', async () => {
    const { a, b } = await seeded();
    // the openssl sighting is for version 1.0, the pending one is 3.0.17: not the same update
    await testEnv.DB.prepare('INSERT OR REPLACE INTO update_sightings (host_id, name, new_version, security, first_seen_at) VALUES (?, ?, ?, 1, ?)').bind(a.id, 'libssl3', '3.0.17-1~deb12u2', 1_700_000_000_000).run();
    const rows = await json(api('/api/export/updates.json'));
    expect(rows.map((r: any) => [r.host, r.package, r.security])).toEqual([
      ['alpha', 'libssl3', true],
      ['alpha', 'openssl', true],
      ['alpha', 'tzdata', false],
      ['beta, "the second"', 'tzdata', false],
    ]);
    expect(rows[0]).toEqual({ hostId: a.id, host: 'alpha', package: 'libssl3', arch: 'amd64', currentVersion: '3.0.15-1~deb12u1', newVersion: '3.0.17-1~deb12u2', repository: 'Debian:12.12/stable, Debian-Security:12/stable-security', security: true, firstSeenAt: new Date(1_700_000_000_000).toISOString() });
    // the others were first seen by the fleet's scans, just now
    expect(Date.now() - Date.parse(rows[1].firstSeenAt)).toBeLessThan(5 * 60_000);
    const res = await api('/api/export/updates.csv');
    expect(res.headers.get('Content-Disposition')).toMatch(/filename="patchman-updates-.*\.csv"/);
    const lines = (await res.text()).split('\r\n');
    expect(lines[0]).toBe('hostId,host,package,arch,currentVersion,newVersion,repository,security,firstSeenAt');
    expect(lines[1]).toBe(`${a.id},alpha,libssl3,amd64,3.0.15-1~deb12u1,3.0.17-1~deb12u2,"Debian:12.12/stable, Debian-Security:12/stable-security",true,2023-11-14T22:13:20.000Z`);
    expect(lines[4]).toMatch(new RegExp(`^${b.id},"beta, ""the second""",tzdata,all,2024a-0\\+deb12u1,2025b-0\\+deb12u1,Debian:12\\.12/stable,false,\\d{4}-\\d\\d-\\d\\dT`));
  });

  it('/metrics: Prometheus text with fleet and per-host gauges matching the summary and exports', async () => {
    const { a, b } = await seeded();
    const res = await api('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      expect(line, series).toBeDefined();
      return Number(line!.slice(series.length + 1));
    };
    const summary = await json(api('/api/summary'));
    expect(value('patchman_pending_updates')).toBe(summary.pendingPackages);
    expect(value('patchman_security_updates')).toBe(summary.securityPackages);
    expect(value('patchman_hosts_need_reboot')).toBe(summary.needReboot);
    expect(value('patchman_hosts{status="online"}')).toBe(2);
    expect(value('patchman_hosts{status="offline"}')).toBe(0);
    expect(value(`patchman_host_pending_updates{host_id="${a.id}",host="alpha"}`)).toBe(3);
    expect(value(`patchman_host_security_updates{host_id="${b.id}",host="beta, \\"the second\\""}`)).toBe(0);
    expect(value(`patchman_host_reboot_required{host_id="${a.id}",host="alpha"}`)).toBe(1);
    expect(value(`patchman_host_up{host_id="${a.id}",host="alpha"}`)).toBe(1);
    const age = value(`patchman_host_oldest_security_update_age_seconds{host_id="${a.id}",host="alpha"}`);
    expect(Math.abs(age - 12 * 86_400)).toBeLessThan(60);
    expect(value(`patchman_host_oldest_security_update_age_seconds{host_id="${b.id}",host="beta, \\"the second\\""}`)).toBe(0);
    expect(value('patchman_time_to_patch_seconds{quantile="0.5"}')).toBe(3 * 86_400);
    expect(value('patchman_security_updates_installed')).toBe(1);
    expect(text).toContain('# TYPE patchman_host_pending_updates gauge');
    // the export says the same
    const hosts = await json(api('/api/export/hosts.json'));
    expect(hosts.map((h: any) => h.pending)).toEqual([3, 1]);
  });

  it('/api/homepage: flat numbers for a customapi widget', async () => {
    await seeded();
    expect(await json(api('/api/homepage'))).toEqual({
      hosts: 2,
      online: 2,
      offline: 0,
      pending: 4,
      security: 2,
      securityHosts: 1,
      needReboot: 1,
      oldestSecurityAgeDays: 12,
      timeToPatchMedianDays: 3,
    });
  });

  it('auth: everything needs a sign-in or token; /metrics a token; a viewer may read all of it', async () => {
    await seeded();
    const paths = ['/api/trends', '/api/hosts/x/trends', '/api/exposure', '/api/homepage', '/api/export/hosts.csv', '/api/export/hosts.json', '/api/export/updates.csv', '/api/export/updates.json', '/metrics'];
    for (const p of paths) expect((await api(p, { anonymous: true })).status, p).toBe(401);
    const bad = await api('/metrics', { headers: { Authorization: 'Bearer pmt_not-a-real-token' } });
    expect(bad.status).toBe(401);
    expect((await api('/metrics', { anonymous: true })).headers.get('WWW-Authenticate')).toMatch(/^Bearer/);

    const { secret } = await json(api('/api/tokens', { method: 'POST', json: { name: 'grafana', role: 'viewer' } }));
    const viewer = { Authorization: `Bearer ${secret}` };
    for (const p of paths.filter((p) => !p.includes('/x/'))) expect((await api(p, { headers: viewer })).status, p).toBe(200);
  });
});
