// The made-up past (sim/history.ts) agrees with the present it ends in: the last day of a
// generated fleet is its hosts' rows, and the demo's hosts get days before today that lead
// to what their scans found, without touching the rows the app wrote today. On a SQLite
// file with the project's own migrations applied (the schema D1 has).
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DAY_MS, simulateHost, writeFleet, writeHistoryOf } from './history.ts';

const migrations = resolve(import.meta.dirname, '..', 'migrations');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function d1(): string {
  const dir = mkdtempSync(join(tmpdir(), 'patchman-history-'));
  dirs.push(dir);
  const file = join(dir, 'd1.sqlite');
  const db = new DatabaseSync(file);
  for (const f of readdirSync(migrations).filter((f) => f.endsWith('.sql')).sort()) db.exec(readFileSync(join(migrations, f), 'utf8'));
  db.close();
  return file;
}
const rows = <T>(file: string, sql: string, ...args: (string | number)[]) => {
  const db = new DatabaseSync(file, { readOnly: true });
  const out = db.prepare(sql).all(...args) as T[];
  db.close();
  return out;
};

const NOW = Date.parse('2026-12-03T12:00:00.000Z');
const TODAY = Math.floor(NOW / DAY_MS);
let seq = 0;
const rnd = () => ((seq = (seq * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

describe('simulateHost', () => {
  it('ends in the present it is given, whatever the host did before', () => {
    const present = { pending: [{ name: 'openssl', version: '3.0.17-1', security: true }, { name: 'tzdata', version: '2025b-0', security: false }], needReboot: true };
    for (let i = 0; i < 20; i++) {
      const past = simulateHost(rnd, { days: 90, now: NOW }, present);
      const last = past.last.pending.map(({ name, version, security }) => ({ name, version, security }));
      expect(last.sort((x, y) => x.name.localeCompare(y.name))).toEqual(present.pending);
      expect(past.last.needReboot).toBe(true);
      expect(past.days.at(-1)).toMatchObject({ day: TODAY, pending: 2, security: 1, needReboot: 1 });
      expect(past.days).toHaveLength(90);
      for (const u of past.last.pending) expect(u.firstSeenAt).toBeLessThanOrEqual(past.last.at);
      // what was installed before: resolved sightings and an upgrade
      expect(past.jobs.some((j) => j.kind === 'upgrade' && j.status === 'succeeded')).toBe(true);
    }
    const calm = simulateHost(rnd, { days: 30, now: NOW }, { pending: [], needReboot: false });
    expect(calm.days.at(-1)).toMatchObject({ pending: 0, security: 0, needReboot: 0 });
  });
});

describe('writeFleet', () => {
  it('writes a fleet whose last day is each host as its row says, and the fleet day their sums', () => {
    const file = d1();
    const counts = writeFleet(file, { hosts: 30, days: 90, now: NOW, scanJobs: false, logs: true });
    expect(counts.hosts).toHaveLength(30);
    const hosts = rows<any>(file, 'SELECT id, updates_count, security_count, reboot_required, oldest_security_at FROM hosts');
    const last = rows<any>(file, 'SELECT * FROM host_days WHERE day = ?', TODAY);
    expect(last).toHaveLength(30);
    for (const h of hosts) {
      expect(last.find((d) => d.host_id === h.id)).toMatchObject({ pending: h.updates_count, security: h.security_count, need_reboot: h.reboot_required });
      const [open] = rows<any>(file, 'SELECT count(*) AS n, min(CASE WHEN security = 1 THEN first_seen_at END) AS oldest FROM update_sightings WHERE host_id = ? AND resolved_at IS NULL', h.id);
      expect(open.n).toBe(h.updates_count);
      expect(h.oldest_security_at).toBe(open.oldest);
    }
    const [fleet] = rows<any>(file, 'SELECT * FROM fleet_days WHERE day = ?', TODAY);
    const sum = (k: string) => hosts.reduce((a, h) => a + h[k], 0);
    expect(fleet).toMatchObject({ hosts: 30, pending: sum('updates_count'), security: sum('security_count'), need_reboot: sum('reboot_required') });
    expect(rows<any>(file, 'SELECT count(*) AS n FROM fleet_days')[0].n).toBe(90);
    expect(rows<any>(file, 'SELECT count(*) AS n FROM job_output')[0].n).toBeGreaterThan(0);
  });

  it('minutes after midnight UTC, today still holds every host (no last scan slips back to yesterday)', () => {
    const file = d1();
    const justAfter = Date.parse('2026-12-04T00:03:00.000Z');
    writeFleet(file, { hosts: 40, days: 90, now: justAfter, scanJobs: false });
    const today = Math.floor(justAfter / DAY_MS);
    expect(rows<any>(file, 'SELECT count(*) AS n FROM host_days WHERE day = ?', today)[0].n).toBe(40);
    expect(rows<any>(file, 'SELECT hosts FROM fleet_days WHERE day = ?', today)[0].hosts).toBe(40);
  });
});

describe('writeHistoryOf (the demo)', () => {
  it('gives scanned hosts 90 days that lead to what their scan found; today stays the app’s', () => {
    const file = d1();
    const db = new DatabaseSync(file);
    const scanAt = NOW - 60_000;
    // what the app wrote when it scanned two hosts today (a third was never reached)
    db.exec(`INSERT INTO relays (id, name, token_hash, created_at) VALUES ('r1', 'local', 'x', 0);
      INSERT INTO hosts (id, name, address, relay_id, updates_count, security_count, reboot_required, last_scan_at, created_at, updated_at) VALUES
        ('a', 'web-1', '127.77.0.1', 'r1', 2, 1, 1, ${scanAt}, ${scanAt}, ${scanAt}),
        ('b', 'db-1', '127.77.0.2', 'r1', 0, 0, 0, ${scanAt}, ${scanAt}, ${scanAt}),
        ('c', 'old-nas', '127.77.0.3', 'r1', NULL, NULL, NULL, NULL, ${scanAt}, ${scanAt});
      INSERT INTO host_updates (host_id, name, arch, current_version, new_version, repository, security) VALUES
        ('a', 'openssl', 'amd64', '3.0.15-1', '3.0.17-1', 'Debian-Security', 1), ('a', 'tzdata', 'all', '2024a', '2025b', 'Debian', 0);
      INSERT INTO update_sightings (host_id, name, new_version, security, first_seen_at) VALUES ('a', 'openssl', '3.0.17-1', 1, ${scanAt}), ('a', 'tzdata', '2025b', 0, ${scanAt});
      UPDATE hosts SET oldest_security_at = ${scanAt} WHERE id = 'a';
      INSERT INTO host_days (host_id, day, pending, security, need_reboot, error, scans) VALUES ('a', ${TODAY}, 2, 1, 1, 0, 1), ('b', ${TODAY}, 0, 0, 0, 0, 1);
      INSERT INTO fleet_days (day, hosts, pending, security, need_reboot, errors) VALUES (${TODAY}, 2, 2, 1, 1, 0);`);
    db.close();

    const counts = writeHistoryOf(file, { days: 90, now: NOW, logs: true });
    expect(counts.hosts.map((h) => h.id)).toEqual(['a', 'b']);
    const fleet = rows<any>(file, 'SELECT * FROM fleet_days ORDER BY day');
    expect(fleet).toHaveLength(90);
    // the last day is the present: the app's own row, as the scans found it
    expect(fleet.at(-1)).toEqual({ day: TODAY, hosts: 2, pending: 2, security: 1, need_reboot: 1, errors: 0 });
    expect(rows<any>(file, 'SELECT host_id, pending, security, need_reboot, scans FROM host_days WHERE day = ? ORDER BY host_id', TODAY)).toEqual([
      { host_id: 'a', pending: 2, security: 1, need_reboot: 1, scans: 1 },
      { host_id: 'b', pending: 0, security: 0, need_reboot: 0, scans: 1 },
    ]);
    // the day before leads to it: never more pending than now on the way since the last patch
    const yesterday = rows<any>(file, 'SELECT * FROM host_days WHERE host_id = ? AND day = ?', 'a', TODAY - 1)[0];
    expect(yesterday.pending).toBeLessThanOrEqual(2);
    // the pending updates were first seen when the past says, and the host row follows them
    const open = rows<any>(file, 'SELECT name, first_seen_at FROM update_sightings WHERE host_id = ? AND resolved_at IS NULL ORDER BY name', 'a');
    expect(open.map((o) => o.name)).toEqual(['openssl', 'tzdata']);
    for (const o of open) expect(o.first_seen_at).toBeLessThanOrEqual(scanAt);
    const [a] = rows<any>(file, 'SELECT oldest_security_at FROM hosts WHERE id = ?', 'a');
    expect(a.oldest_security_at).toBe(open[0].first_seen_at);
    expect(rows<any>(file, 'SELECT count(*) AS n FROM update_sightings WHERE resolved_at IS NOT NULL')[0].n).toBeGreaterThan(0);
    expect(rows<any>(file, "SELECT count(*) AS n FROM jobs WHERE kind = 'upgrade'")[0].n).toBeGreaterThan(0);
    expect(rows<any>(file, "SELECT count(*) AS n FROM host_days WHERE host_id = 'c'")[0].n).toBe(0);

    // a second run on the same state adds nothing
    expect(writeHistoryOf(file, { days: 90, now: NOW }).hostDays).toBe(0);
    expect(rows<any>(file, 'SELECT count(*) AS n FROM fleet_days')[0].n).toBe(90);
  });
});
