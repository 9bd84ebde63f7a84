// A simulated fleet WITH a past: N hosts and D days of 6-hourly scans written straight into
// a local D1 (the SQLite file `wrangler d1 migrations apply --local --persist-to DIR` made),
// for the trends benchmark (bench/trends.ts), the dashboard's browser test and a demo with
// history. Deterministic (a seeded PRNG): the same options give the same fleet.
//
// What one host does, per scan: now and then new updates appear (a quarter of them security
// fixes); every `cadence` days an upgrade installs everything pending (1 in 20 fails and
// installs nothing); after half the upgrades the host needs a reboot until it is rebooted a
// day or so later. One host in ten is neglected (patched every 30–60 days). The rows written
// are what the Worker itself would have written: hosts (as of the last scan), host_updates
// (pending now), host_days (the last scan of each UTC day) and fleet_days (their sums),
// update_sightings (first seen, resolved) and jobs (scans, upgrades, reboots).
//
//   node sim/history.ts --persist DIR [--hosts 1000] [--days 90] [--no-scan-jobs]
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';

export const DAY_MS = 86_400_000;
export const SCAN_EVERY_MS = 6 * 3_600_000;

export interface HistoryOptions {
  hosts: number;
  days: number;
  /** The last scan is at this time; default now. */
  now?: number;
  seed?: number;
  /** Write a job row for every scan too (what 90 days of job history holds). Default true. */
  scanJobs?: boolean;
  /** Relay the hosts belong to (must exist), or null. */
  relayId?: string | null;
}

export interface HistoryCounts {
  hosts: number;
  hostDays: number;
  sightings: number;
  jobs: number;
  hostUpdates: number;
}

const root = resolve(import.meta.dirname, '..');
const PACKAGES = ['openssl', 'libssl3', 'curl', 'libcurl4', 'tzdata', 'bash', 'sudo', 'openssh-server', 'openssh-client', 'systemd', 'libc6', 'linux-image-amd64', 'git', 'vim', 'python3', 'perl', 'gnupg', 'apt', 'dpkg', 'ca-certificates', 'libxml2', 'zlib1g', 'nginx', 'postgresql-15', 'rsync', 'less', 'wget', 'libgnutls30', 'libexpat1', 'xz-utils'];

/** mulberry32: small, fast, good enough for a simulation. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The D1 SQLite file wrangler keeps under `--persist-to DIR` (after migrations were applied). */
export function localD1File(persist: string): string {
  const dir = join(persist, 'v3', 'd1', 'miniflare-D1DatabaseObject');
  const files = readdirSync(dir).filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
  if (files.length !== 1) throw new Error(`expected one D1 database in ${dir}, found ${files.join(', ') || 'none'}`);
  return join(dir, files[0]);
}

/** `wrangler d1 migrations apply DB --local --persist-to DIR`. */
export function applyMigrations(persist: string): void {
  // wrangler's own entry under this Node (the `node` on PATH may be older than wrangler needs)
  execFileSync(process.execPath, [join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), 'd1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persist], {
    cwd: root,
    stdio: 'pipe',
    env: { ...process.env, CI: '1', WRANGLER_SEND_METRICS: 'false' },
  });
}

interface Open {
  name: string;
  version: string;
  security: boolean;
  firstSeenAt: number;
}

/** Write the fleet and its history into the D1 file. Returns the rows written. */
export function writeHistory(file: string, o: HistoryOptions): HistoryCounts {
  const rnd = prng(o.seed ?? 42);
  const now = o.now ?? Date.now();
  const scansPerHost = Math.round((o.days * DAY_MS) / SCAN_EVERY_MS);
  const start = now - (scansPerHost - 1) * SCAN_EVERY_MS;
  const db = new DatabaseSync(file);
  // a host's row is written after its history (it holds the last scan): check references at the end
  db.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF;');
  const ins = {
    host: db.prepare(`INSERT INTO hosts (id, name, address, port, user, relay_id, tags, status, os_id, os_name, os_version, os_pretty_name, kernel, arch,
      package_manager, package_managers, privilege, updates_count, security_count, reboot_required, reboot_reason, last_scan_at, created_at, updated_at)
      VALUES (?, ?, ?, 22, 'root', ?, ?, ?, 'debian', 'Debian GNU/Linux', '12', 'Debian GNU/Linux 12 (bookworm)', '6.1.0-41-amd64', 'x86_64',
      'apt', '["apt"]', 'root', ?, ?, ?, ?, ?, ?, ?)`),
    day: db.prepare('INSERT INTO host_days (host_id, day, pending, security, need_reboot, error, scans) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    sighting: db.prepare('INSERT INTO update_sightings (host_id, name, new_version, security, first_seen_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?)'),
    job: db.prepare("INSERT INTO jobs (id, kind, host_id, relay_id, status, summary, requested_by, created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, 'schedule', ?, ?, ?)"),
    update: db.prepare('INSERT INTO host_updates (host_id, name, arch, current_version, new_version, repository, security) VALUES (?, ?, ?, ?, ?, ?, ?)'),
  };
  const counts: HistoryCounts = { hosts: 0, hostDays: 0, sightings: 0, jobs: 0, hostUpdates: 0 };
  const relayId = o.relayId ?? null;
  let jobSeq = 0;
  const job = (kind: string, hostId: string, status: string, at: number, summary: string) => {
    ins.job.run(`sim-${(++jobSeq).toString(36).padStart(8, '0')}`, kind, hostId, relayId, status, summary, at, at, at + 20_000);
    counts.jobs++;
  };

  db.exec('BEGIN');
  for (let h = 0; h < o.hosts; h++) {
    const id = `sim-h${String(h + 1).padStart(4, '0')}`;
    const name = `host-${String(h + 1).padStart(4, '0')}`;
    const neglected = rnd() < 0.1;
    const cadenceMs = (neglected ? 30 + rnd() * 30 : 3 + rnd() * 18) * DAY_MS;
    let nextPatch = Math.round(start + rnd() * cadenceMs);
    let open: Open[] = [];
    let needReboot = false;
    let rebootAt = 0;
    let versionSeq = 0;
    let day = { n: -1, pending: 0, security: 0, reboot: 0, error: 0, scans: 0 };
    const flushDay = () => {
      if (day.n < 0) return;
      ins.day.run(id, day.n, day.pending, day.security, day.reboot, day.error, day.scans);
      counts.hostDays++;
    };
    for (let s = 0; s < scansPerHost; s++) {
      const at = start + s * SCAN_EVERY_MS - Math.floor(rnd() * 600_000); // never in the future
      // changes since the last scan
      if (at >= nextPatch) {
        const failed = rnd() < 0.05;
        job('upgrade', id, failed ? 'failed' : 'succeeded', nextPatch, failed ? 'dpkg was interrupted' : `${open.length} packages upgraded`);
        if (!failed && open.length) {
          for (const u of open) ins.sighting.run(id, u.name, u.version, u.security ? 1 : 0, u.firstSeenAt, nextPatch), counts.sightings++;
          open = [];
          if (rnd() < 0.5) (needReboot = true), (rebootAt = nextPatch + Math.round((0.3 + rnd() * 2) * DAY_MS));
        }
        nextPatch += Math.round(cadenceMs * (0.7 + rnd() * 0.6));
      }
      if (needReboot && at >= rebootAt) {
        job('reboot', id, 'succeeded', rebootAt, 'rebooted');
        needReboot = false;
      }
      if (rnd() < 0.15) {
        const n = 1 + Math.floor(rnd() * 4);
        for (let k = 0; k < n; k++) {
          const pkg = PACKAGES[Math.floor(rnd() * PACKAGES.length)];
          if (open.some((u) => u.name === pkg)) continue;
          open.push({ name: pkg, version: `${pkg.length}.${++versionSeq}-1+deb12u${1 + (versionSeq % 9)}`, security: rnd() < 0.25, firstSeenAt: at });
        }
      }
      const error = rnd() < 0.01 ? 1 : 0;
      if (o.scanJobs !== false) job('scan', id, 'succeeded', at, `${open.length} updates`);
      const d = Math.floor(at / DAY_MS);
      if (d !== day.n) flushDay(), (day = { n: d, pending: 0, security: 0, reboot: 0, error: 0, scans: 0 });
      day.pending = open.length;
      day.security = open.filter((u) => u.security).length;
      day.reboot = needReboot ? 1 : 0;
      day.error = error;
      day.scans++;
      if (s === scansPerHost - 1) {
        flushDay();
        const security = open.filter((u) => u.security).length;
        ins.host.run(id, name, `10.${20 + (h >> 16)}.${(h >> 8) & 255}.${h & 255}`, relayId, JSON.stringify(h % 3 === 0 ? ['web'] : h % 3 === 1 ? ['db', 'prod'] : []), 'online', open.length, security, needReboot ? 1 : 0, needReboot ? '/run/reboot-required' : null, at, start, at);
        counts.hosts++;
        for (const u of open) {
          ins.sighting.run(id, u.name, u.version, u.security ? 1 : 0, u.firstSeenAt, null);
          ins.update.run(id, u.name, 'amd64', `${u.name.length}.0-1`, u.version, u.security ? 'Debian-Security:12/stable-security' : 'Debian:12.12/stable', u.security ? 1 : 0);
          counts.sightings++;
          counts.hostUpdates++;
        }
      }
    }
  }
  // the fleet's days, as the Worker keeps them alongside host_days
  db.exec('INSERT INTO fleet_days (day, hosts, pending, security, need_reboot, errors) SELECT day, count(*), sum(pending), sum(security), sum(need_reboot), sum(error) FROM host_days GROUP BY day');
  db.exec('COMMIT');
  db.close();
  return counts;
}

/** Bytes per table (and its indexes) in the SQLite file, from the dbstat virtual table. */
export function tableBytes(file: string): { total: number; tables: Record<string, number> } {
  const db = new DatabaseSync(file, { readOnly: true });
  const rows = db.prepare(`select coalesce(m.tbl_name, s.name) as t, sum(s.pgsize) as bytes from dbstat s left join sqlite_master m on m.name = s.name group by t`).all() as { t: string; bytes: number }[];
  db.close();
  return { total: statSync(file).size, tables: Object.fromEntries(rows.map((r) => [r.t, Number(r.bytes)])) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const opt = (name: string, d: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
  };
  const persist = opt('persist', '');
  if (!persist || argv.includes('--help')) {
    console.log('usage: node sim/history.ts --persist DIR [--hosts 1000] [--days 90] [--no-scan-jobs]  (DIR: wrangler --persist-to, migrations applied)');
    process.exit(persist ? 0 : 2);
  }
  const file = localD1File(persist);
  const counts = writeHistory(file, { hosts: Number(opt('hosts', '1000')), days: Number(opt('days', '90')), scanJobs: !argv.includes('--no-scan-jobs') });
  console.log(JSON.stringify({ file, counts, ...tableBytes(file) }, null, 2));
}
