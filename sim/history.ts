// A simulated fleet WITH a past, written straight into a local D1 (the SQLite file of
// `wrangler dev --persist-to DIR`, before or while it runs): the one writer of made-up D1
// rows, for the benchmarks (bench/trends.ts, bench/api.ts, bench/dashboard.ts), the browser
// tests with many hosts, and `npm run demo`, whose real hosts get 90 days of history that
// ends in what their scans found. Deterministic (a seeded PRNG): the same options give the
// same fleet.
//
// What one host does, per 6-hourly scan: now and then new updates appear (a quarter of them
// security fixes, where the package manager has any); every `cadence` days an upgrade
// installs everything pending (1 in 20 fails and installs nothing); after half the upgrades
// the host needs a reboot until it is rebooted a day or so later. One host in ten is
// neglected (patched every 30–60 days). A host whose present is given (the demo) was last
// patched a while ago, and what it has pending now appeared since. The rows are what the
// Worker itself writes: hosts (as of the last scan), host_updates (pending now), host_days
// (the last scan of each UTC day) and fleet_days (their sums), update_sightings (first seen,
// resolved) and jobs (scans, upgrades with their log, reboots).
//
//   node sim/history.ts --persist DIR [--hosts 1000] [--days 90] [--no-scan-jobs]
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { DAY_MS } from '../protocol/days.ts';

export { DAY_MS };
export const SCAN_EVERY_MS = 6 * 3_600_000;

export interface FleetOptions {
  hosts: number;
  /** Days of history (default 90). */
  days?: number;
  /** The last scan is at this time; default now. */
  now?: number;
  seed?: number;
  /** Write a job row for every scan too (what the job history holds). Default true. */
  scanJobs?: boolean;
  /** Store each upgrade's log (job_output). Default false. */
  logs?: boolean;
  /** Relay the hosts belong to (must exist), or null. */
  relayId?: string | null;
  /** Where each host is: a simulated fleet's addresses (default 127.99.x.y:22, unreachable). */
  targets?: { name?: string; address: string; port: number }[];
}

export interface FleetCounts {
  hosts: { id: string; name: string }[];
  hostDays: number;
  sightings: number;
  jobs: number;
  hostUpdates: number;
}

const root = resolve(import.meta.dirname, '..');
const PACKAGES = ['openssl', 'libssl3', 'curl', 'libcurl4', 'tzdata', 'bash', 'sudo', 'openssh-server', 'openssh-client', 'systemd', 'libc6', 'linux-image-amd64', 'git', 'vim', 'python3', 'perl', 'gnupg', 'apt', 'dpkg', 'ca-certificates', 'libxml2', 'zlib1g', 'nginx', 'postgresql-15', 'rsync', 'less', 'wget', 'libgnutls30', 'libexpat1', 'xz-utils'];
const OSES = [
  { id: 'debian', name: 'Debian GNU/Linux', version: '12', pretty: 'Debian GNU/Linux 12 (bookworm)', pm: 'apt', kernel: '6.1.0-28-amd64', security: true },
  { id: 'ubuntu', name: 'Ubuntu', version: '24.04', pretty: 'Ubuntu 24.04.1 LTS', pm: 'apt', kernel: '6.8.0-49-generic', security: true },
  { id: 'rocky', name: 'Rocky Linux', version: '9.4', pretty: 'Rocky Linux 9.4 (Blue Onyx)', pm: 'dnf', kernel: '5.14.0-427.42.1.el9_4.x86_64', security: true },
  { id: 'arch', name: 'Arch Linux', version: '', pretty: 'Arch Linux', pm: 'pacman', kernel: '6.11.9-arch1-1', security: false },
  { id: 'opensuse-leap', name: 'openSUSE Leap', version: '15.6', pretty: 'openSUSE Leap 15.6', pm: 'zypper', kernel: '6.4.0-150600.23.25-default', security: true },
  { id: 'alpine', name: 'Alpine Linux', version: '3.20.3', pretty: 'Alpine Linux v3.20', pm: 'apk', kernel: '6.6.58-0-lts', security: false },
] as const;
const ROLES = ['web', 'db', 'cache', 'app', 'mail', 'ci', 'k8s', 'proxy', 'backup', 'monitor'];
const ENVS = ['prod', 'staging', 'dev'];
const SITES = ['ams', 'fra', 'nyc', 'sfo'];
const UPGRADE_LOG = Array.from({ length: 20 }, (_, i) => `Unpacking ${PACKAGES[i % PACKAGES.length]} (1.${i}.0-1) over (1.${i - 1}.9-2) ...\n`).join('');

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
type Rnd = () => number;

/** The D1 SQLite file wrangler keeps under `--persist-to DIR` (after migrations were applied);
 * `npm start` persists to `$PATCHMAN_STATE/wrangler`. */
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

// ---- one host's past -----------------------------------------------------------------------

export interface Pending {
  name: string;
  version: string;
  security: boolean;
}
interface Open extends Pending {
  firstSeenAt: number;
}
/** A host's present: what its history must lead to. */
export interface HostNow {
  pending: Pending[];
  needReboot: boolean;
}
export interface DayRow {
  day: number;
  pending: number;
  security: number;
  needReboot: number;
  error: number;
  scans: number;
}
export interface HostPast {
  /** One row per UTC day with a scan: the last scan of the day. */
  days: DayRow[];
  /** Updates installed (or superseded) in the period, and those still pending (resolvedAt null). */
  sightings: (Open & { resolvedAt: number | null })[];
  jobs: { kind: 'scan' | 'upgrade' | 'reboot'; status: 'succeeded' | 'failed'; at: number; summary: string }[];
  /** The last scan's time and what it found. */
  last: { at: number; pending: Open[]; needReboot: boolean };
}

/**
 * Scans every 6 hours over the last `days` UTC days up to `now` (never in the future). Without `present` the
 * host is simulated freely and ends wherever it ends. With it, the host was last patched
 * some days ago (everything installed), and each update pending now first appeared at a scan
 * since: the last scan finds exactly `present`.
 */
export function simulateHost(rnd: Rnd, o: { days: number; now: number; securityFixes?: boolean; scanJobs?: boolean }, present?: HostNow): HostPast {
  // within the last `days` UTC days, today included (what `?days=` asks for)
  const start = o.now - Math.floor((o.now - (Math.floor(o.now / DAY_MS) - o.days + 1) * DAY_MS) / SCAN_EVERY_MS) * SCAN_EVERY_MS;
  const scans = (o.now - start) / SCAN_EVERY_MS + 1;
  // up to 10 minutes early, but never into the day before: the last scan is the host's
  // present, and today's figures must hold every host (in the first minutes after midnight
  // UTC they lost those whose last scan slipped back to yesterday)
  const scanAt = (s: number) => {
    const slot = start + s * SCAN_EVERY_MS;
    return Math.max(start, Math.floor(slot / DAY_MS) * DAY_MS, slot - Math.floor(rnd() * 600_000));
  };
  const neglected = rnd() < 0.1;
  const cadenceMs = (neglected ? 30 + rnd() * 30 : 3 + rnd() * 18) * DAY_MS;
  let nextPatch = Math.round(start + rnd() * cadenceMs);
  // with a present: the last patch, and when each pending update appeared (a scan since)
  const lastPatch = present ? Math.max(start, o.now - Math.round((0.5 + rnd()) * Math.min(cadenceMs, 20 * DAY_MS))) : Infinity;
  const firstScanAfter = Math.min(scans - 1, Math.ceil((lastPatch - start) / SCAN_EVERY_MS));
  const appears = present?.pending.map((p) => ({ ...p, scan: firstScanAfter + Math.floor(rnd() * (scans - firstScanAfter)) })) ?? [];

  const past: HostPast = { days: [], sightings: [], jobs: [], last: { at: 0, pending: [], needReboot: false } };
  let open: Open[] = [];
  let needReboot = false;
  let rebootAt = 0;
  let versionSeq = 0;
  let day: DayRow | null = null;
  let patched = false;
  const install = (at: number) => {
    for (const u of open) past.sightings.push({ ...u, resolvedAt: at });
    const n = open.length;
    open = [];
    return n;
  };
  for (let s = 0; s < scans; s++) {
    const at = scanAt(s);
    if (at >= lastPatch && nextPatch !== Infinity) {
      // the last patch before the present: everything installed
      past.jobs.push({ kind: 'upgrade', status: 'succeeded', at: lastPatch, summary: `${install(lastPatch)} packages upgraded` });
      nextPatch = Infinity;
      patched = true;
      if (needReboot && !present!.needReboot) past.jobs.push({ kind: 'reboot', status: 'succeeded', at: lastPatch + 600_000, summary: 'rebooted' });
      needReboot = present!.needReboot;
      rebootAt = Infinity;
    }
    if (at >= nextPatch) {
      const failed = rnd() < 0.05;
      past.jobs.push({ kind: 'upgrade', status: failed ? 'failed' : 'succeeded', at: nextPatch, summary: failed ? 'dpkg was interrupted' : `${open.length} packages upgraded` });
      if (!failed && open.length) {
        install(nextPatch);
        if (rnd() < 0.5) (needReboot = true), (rebootAt = nextPatch + Math.round((0.3 + rnd() * 2) * DAY_MS));
      }
      nextPatch += Math.round(cadenceMs * (0.7 + rnd() * 0.6));
    }
    if (needReboot && at >= rebootAt) {
      past.jobs.push({ kind: 'reboot', status: 'succeeded', at: rebootAt, summary: 'rebooted' });
      needReboot = false;
    }
    if (patched) {
      for (const p of appears) if (p.scan <= s && !open.some((u) => u.name === p.name && u.version === p.version)) open.push({ name: p.name, version: p.version, security: p.security, firstSeenAt: at });
    } else if (rnd() < 0.15) {
      const n = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < n; k++) {
        const pkg = PACKAGES[Math.floor(rnd() * PACKAGES.length)];
        if (open.some((u) => u.name === pkg)) continue;
        open.push({ name: pkg, version: `${pkg.length}.${++versionSeq}-1+deb12u${1 + (versionSeq % 9)}`, security: o.securityFixes !== false && rnd() < 0.25, firstSeenAt: at });
      }
    }
    const error = rnd() < 0.01 ? 1 : 0;
    if (o.scanJobs !== false) past.jobs.push({ kind: 'scan', status: 'succeeded', at, summary: `${open.length} updates` });
    const d = Math.floor(at / DAY_MS);
    if (!day || d !== day.day) past.days.push((day = { day: d, pending: 0, security: 0, needReboot: 0, error: 0, scans: 0 }));
    day.pending = open.length;
    day.security = open.filter((u) => u.security).length;
    day.needReboot = needReboot ? 1 : 0;
    day.error = error;
    day.scans++;
    past.last = { at, pending: open, needReboot };
  }
  for (const u of open) past.sightings.push({ ...u, resolvedAt: null });
  return past;
}

// ---- writing it --------------------------------------------------------------------------

function statements(db: DatabaseSync) {
  return {
    day: db.prepare('INSERT OR REPLACE INTO host_days (host_id, day, pending, security, need_reboot, error, scans) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    sighting: db.prepare('INSERT OR IGNORE INTO update_sightings (host_id, name, new_version, security, first_seen_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?)'),
    job: db.prepare("INSERT INTO jobs (id, kind, host_id, relay_id, status, exit_code, summary, requested_by, created_at, dispatched_at, started_at, finished_at, log_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, 'schedule', ?, ?, ?, ?, ?)"),
    output: db.prepare('INSERT INTO job_output (job_id, seq, data) VALUES (?, 0, ?)'),
    update: db.prepare('INSERT INTO host_updates (host_id, name, arch, current_version, new_version, repository, security) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    // what worker/sightings.ts sets with every scan
    oldest: db.prepare('UPDATE hosts SET oldest_security_at = (SELECT min(first_seen_at) FROM update_sightings WHERE host_id = hosts.id AND resolved_at IS NULL AND security = 1) WHERE id = ?'),
  };
}

/** A host's past as rows: days (those before `beforeDay` only, if given), resolved sightings, jobs. */
function writePast(st: ReturnType<typeof statements>, hostId: string, relayId: string | null, past: HostPast, counts: FleetCounts, o: { logs?: boolean; beforeDay?: number }) {
  for (const d of past.days) {
    if (o.beforeDay !== undefined && d.day >= o.beforeDay) continue;
    st.day.run(hostId, d.day, d.pending, d.security, d.needReboot, d.error, d.scans);
    counts.hostDays++;
  }
  for (const u of past.sightings) {
    if (u.resolvedAt === null) continue;
    st.sighting.run(hostId, u.name, u.version, u.security ? 1 : 0, u.firstSeenAt, u.resolvedAt);
    counts.sightings++;
  }
  for (const j of past.jobs) {
    const id = `${hostId}-${j.kind[0]}${j.at.toString(36)}`;
    const log = o.logs && j.kind === 'upgrade' && j.status === 'succeeded';
    st.job.run(id, j.kind, hostId, relayId, j.status, j.status === 'failed' ? 100 : 0, j.summary, j.at, j.at + 50, j.at + 100, j.at + (j.kind === 'scan' ? 1_500 : 90_000), log ? UPGRADE_LOG.length : 0);
    if (log) st.output.run(id, UPGRADE_LOG);
    counts.jobs++;
  }
}

/** fleet_days: host_days summed, as the Worker keeps them (days before `beforeDay`, if given). */
function sumFleetDays(db: DatabaseSync, beforeDay?: number) {
  db.prepare(
    `INSERT OR REPLACE INTO fleet_days (day, hosts, pending, security, need_reboot, errors)
     SELECT day, count(*), sum(pending), sum(security), sum(need_reboot), sum(error) FROM host_days ${beforeDay === undefined ? '' : 'WHERE day < ?'} GROUP BY day`,
  ).run(...(beforeDay === undefined ? [] : [beforeDay]));
}

function open(file: string) {
  const db = new DatabaseSync(file);
  // the app may be running on it; a host's row is written after its past: references are checked by the app's own writes
  db.exec('PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = OFF;');
  return db;
}

function inTransaction<T>(db: DatabaseSync, fn: () => T): T {
  // the write lock first (a running app writes too): a read lock upgraded later would fail at once
  db.exec('BEGIN IMMEDIATE');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  } finally {
    db.close();
  }
}

/** Write a made-up fleet and its past into the D1 file (one transaction). */
export function writeFleet(file: string, o: FleetOptions): FleetCounts {
  const rnd = prng(o.seed ?? 42);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
  const now = o.now ?? Date.now();
  const days = o.days ?? 90;
  const relayId = o.relayId ?? null;
  const db = open(file);
  const st = statements(db);
  const host = db.prepare(
    `INSERT INTO hosts (id, name, address, port, user, relay_id, tags, status, status_reason, os_id, os_name, os_version, os_pretty_name, kernel, arch,
      package_manager, package_managers, privilege, updates_count, security_count, reboot_required, reboot_reason, last_scan_at, host_key, created_at, updated_at)
      VALUES (?, ?, ?, ?, 'root', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'x86_64', ?, ?, 'root', ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const counts: FleetCounts = { hosts: [], hostDays: 0, sightings: 0, jobs: 0, hostUpdates: 0 };
  return inTransaction(db, () => {
    for (let h = 0; h < o.hosts; h++) {
      const n = String(h + 1).padStart(4, '0');
      const id = `sim-h${n}`;
      const target = o.targets?.[h];
      const name = target?.name ?? `${ROLES[h % ROLES.length]}-${n}`;
      const os = pick(OSES);
      const r = rnd();
      const status = r < 0.03 ? 'offline' : r < 0.04 ? 'error' : 'online';
      const past = simulateHost(rnd, { days, now, securityFixes: os.security, scanJobs: o.scanJobs });
      writePast(st, id, relayId, past, counts, o);
      const { pending, needReboot, at } = past.last;
      const security = pending.filter((u) => u.security).length;
      host.run(
        id,
        name,
        target?.address ?? `127.99.${(h >> 8) & 255}.${(h & 255) + 1}`,
        target?.port ?? 22,
        relayId,
        JSON.stringify([ROLES[h % ROLES.length], pick(ENVS), pick(SITES)]),
        status,
        status === 'offline' ? 'connect ECONNREFUSED' : status === 'error' ? 'apt-get update failed: could not resolve deb.debian.org' : null,
        os.id,
        os.name,
        os.version,
        os.pretty,
        os.kernel,
        os.pm,
        JSON.stringify([os.pm]),
        pending.length,
        security,
        needReboot ? 1 : 0,
        needReboot ? '/run/reboot-required' : null,
        at,
        // a simulated host's key is pinned by the relay on first contact
        target ? null : `SHA256:${Buffer.from(id).toString('base64').replace(/=+$/, '')}`,
        now - days * DAY_MS,
        at,
      );
      counts.hosts.push({ id, name });
      for (const u of pending) {
        st.sighting.run(id, u.name, u.version, u.security ? 1 : 0, u.firstSeenAt, null);
        st.update.run(id, u.name, 'amd64', `${u.name.length}.0-1`, u.version, u.security ? `${os.id}-security` : os.id, u.security ? 1 : 0);
        counts.sightings++;
        counts.hostUpdates++;
      }
      st.oldest.run(id);
    }
    sumFleetDays(db);
    return counts;
  });
}

/**
 * Give the hosts already in the D1 file (added and scanned by the app: the demo's) a past of
 * `days` days that ends in what their last scan found. Today's rows are the app's own and stay;
 * the days before, the installed updates and the jobs are made up, and the pending updates'
 * first sightings move back to when the past says they appeared. Does nothing if the fleet
 * has any day before today already (a second run on the same state). Returns what it wrote.
 */
export function writeHistoryOf(file: string, o: { days?: number; now?: number; seed?: number; logs?: boolean } = {}): FleetCounts {
  const rnd = prng(o.seed ?? 42);
  const now = o.now ?? Date.now();
  const today = Math.floor(now / DAY_MS);
  const db = open(file);
  const st = statements(db);
  const counts: FleetCounts = { hosts: [], hostDays: 0, sightings: 0, jobs: 0, hostUpdates: 0 };
  const firstSeen = db.prepare('UPDATE update_sightings SET first_seen_at = ? WHERE host_id = ? AND name = ? AND new_version = ? AND resolved_at IS NULL');
  return inTransaction(db, () => {
    if ((db.prepare('SELECT count(*) AS n FROM fleet_days WHERE day < ?').get(today) as { n: number }).n > 0) return counts;
    const hosts = db.prepare('SELECT id, name, relay_id AS relayId, reboot_required AS needReboot, last_scan_at AS lastScanAt FROM hosts WHERE last_scan_at IS NOT NULL ORDER BY id').all() as {
      id: string;
      name: string;
      relayId: string | null;
      needReboot: number | null;
      lastScanAt: number;
    }[];
    const pendingOf = db.prepare('SELECT name, new_version AS version, max(security) AS security FROM host_updates WHERE host_id = ? GROUP BY name, new_version ORDER BY name, new_version');
    for (const h of hosts) {
      const pending = (pendingOf.all(h.id) as { name: string; version: string; security: number }[]).map((p) => ({ ...p, security: p.security === 1 }));
      const past = simulateHost(rnd, { days: o.days ?? 90, now: h.lastScanAt, scanJobs: false }, { pending, needReboot: h.needReboot === 1 });
      writePast(st, h.id, h.relayId, past, counts, { logs: o.logs, beforeDay: today });
      for (const u of past.last.pending) firstSeen.run(u.firstSeenAt, h.id, u.name, u.version);
      st.oldest.run(h.id);
      counts.hosts.push({ id: h.id, name: h.name });
    }
    sumFleetDays(db, today);
    return counts;
  });
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
  const { hosts, ...counts } = writeFleet(file, { hosts: Number(opt('hosts', '1000')), days: Number(opt('days', '90')), scanJobs: !argv.includes('--no-scan-jobs') });
  console.log(JSON.stringify({ file, counts: { hosts: hosts.length, ...counts }, ...tableBytes(file) }, null, 2));
}
