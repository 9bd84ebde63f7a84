// A fleet of N hosts with 30 days of history, written straight into the local D1 of a
// running `npm start` (its SQLite file under PATCHMAN_STATE): hosts with OS, tags and
// pending updates, their host_updates rows, a scan every 6 hours and a weekly upgrade (with
// its log) per host. For the API and dashboard benchmarks and the 1,000-host browser test;
// nothing here is used by the app itself.
//
// The rows are made up but shaped like what scans store (see worker/db/schema.ts); the
// addresses can be those of a simulated fleet (sim/fleet.ts), so the hosts really scan.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export interface SeedOptions {
  count: number;
  /** The relay the hosts go through (`npm start` pairs one called `local`). */
  relayId?: string;
  /** Days of job history (scans every `scanEveryHours`, an upgrade a week). */
  days?: number;
  scanEveryHours?: number;
  /** Where each host is: a simulated fleet's addresses (default 127.99.x.y:22, unreachable). */
  targets?: { name?: string; address: string; port: number }[];
  /** Deterministic data for the same seed. */
  seed?: number;
}

const OSES = [
  { id: 'debian', name: 'Debian GNU/Linux', version: '12', pretty: 'Debian GNU/Linux 12 (bookworm)', pm: 'apt', kernel: '6.1.0-28-amd64' },
  { id: 'ubuntu', name: 'Ubuntu', version: '24.04', pretty: 'Ubuntu 24.04.1 LTS', pm: 'apt', kernel: '6.8.0-49-generic' },
  { id: 'rocky', name: 'Rocky Linux', version: '9.4', pretty: 'Rocky Linux 9.4 (Blue Onyx)', pm: 'dnf', kernel: '5.14.0-427.42.1.el9_4.x86_64' },
  { id: 'arch', name: 'Arch Linux', version: '', pretty: 'Arch Linux', pm: 'pacman', kernel: '6.11.9-arch1-1' },
  { id: 'opensuse-leap', name: 'openSUSE Leap', version: '15.6', pretty: 'openSUSE Leap 15.6', pm: 'zypper', kernel: '6.4.0-150600.23.25-default' },
  { id: 'alpine', name: 'Alpine Linux', version: '3.20.3', pretty: 'Alpine Linux v3.20', pm: 'apk', kernel: '6.6.58-0-lts' },
] as const;
const ROLES = ['web', 'db', 'cache', 'app', 'mail', 'ci', 'k8s', 'proxy', 'backup', 'monitor'];
const ENVS = ['prod', 'staging', 'dev'];
const SITES = ['ams', 'fra', 'nyc', 'sfo'];
const PACKAGES = ['openssl', 'libc6', 'curl', 'openssh-server', 'systemd', 'linux-image', 'tzdata', 'python3', 'sudo', 'bash', 'vim', 'git', 'nginx', 'postgresql', 'zlib', 'krb5', 'libxml2', 'perl', 'gnupg', 'ca-certificates'];

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The D1 database file of a local `wrangler dev --persist-to <state>/wrangler`. */
export function localD1File(state: string): string {
  const dir = join(state, 'wrangler', 'v3', 'd1', 'miniflare-D1DatabaseObject');
  const file = readdirSync(dir).find((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
  if (!file) throw new Error(`no D1 database in ${dir}`);
  return join(dir, file);
}

export interface Seeded {
  hosts: { id: string; name: string }[];
  jobs: number;
  updates: number;
}

/** Write the fleet into the D1 file (one transaction). Returns the hosts made. */
export function seedD1(file: string, opts: SeedOptions): Seeded {
  const { count, relayId = 'local', days = 30, scanEveryHours = 6 } = opts;
  const rand = rng(opts.seed ?? 42);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const now = Date.now();
  const db = new DatabaseSync(file);
  db.exec('PRAGMA busy_timeout = 10000');
  const insHost = db.prepare(
    `insert into hosts (id, name, address, port, user, relay_id, tags, monitor_only, status, status_reason, os_id, os_name, os_version, os_pretty_name,
      kernel, arch, package_manager, package_managers, docker, privilege, updates_count, security_count, reboot_required, reboot_reason, last_scan_at,
      host_key, created_at, updated_at)
     values (?, ?, ?, ?, 'root', ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, 'x86_64', ?, ?, 0, 'root', ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insUpdate = db.prepare(
    'insert into host_updates (host_id, name, arch, current_version, new_version, repository, security) values (?, ?, ?, ?, ?, ?, ?)',
  );
  const insJob = db.prepare(
    `insert into jobs (id, kind, host_id, relay_id, status, exit_code, summary, requested_by, created_at, dispatched_at, started_at, finished_at, log_bytes)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insOutput = db.prepare('insert into job_output (job_id, seq, data) values (?, 0, ?)');
  const hosts: Seeded['hosts'] = [];
  let jobs = 0;
  let updates = 0;
  const log = Array.from({ length: 20 }, (_, i) => `Unpacking ${PACKAGES[i % PACKAGES.length]} (1.${i}.0-1) over (1.${i - 1}.9-2) ...\n`).join('');
  db.exec('BEGIN');
  try {
    for (let i = 0; i < count; i++) {
      const n = String(i + 1).padStart(4, '0');
      const role = ROLES[i % ROLES.length];
      const id = `seed-${n}`;
      const target = opts.targets?.[i];
      const name = target?.name ?? `${role}-${n}`;
      const os = pick(OSES);
      const r = rand();
      const status = r < 0.03 ? 'offline' : r < 0.04 ? 'error' : 'online';
      const upd = rand() < 0.3 ? 0 : Math.floor(rand() * 40);
      const sec = upd ? Math.min(upd, Math.floor(rand() * 6)) : 0;
      const reboot = rand() < 0.1;
      const tags = [role, pick(ENVS), pick(SITES)];
      insHost.run(
        id,
        name,
        target?.address ?? `127.99.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        target?.port ?? 22,
        relayId,
        JSON.stringify(tags),
        status,
        status === 'offline' ? 'connect ECONNREFUSED' : status === 'error' ? 'apt-get update failed: could not resolve deb.debian.org' : null,
        os.id,
        os.name,
        os.version,
        os.pretty,
        os.kernel,
        os.pm,
        JSON.stringify([os.pm]),
        upd,
        sec,
        reboot ? 1 : 0,
        reboot ? 'kernel updated' : null,
        now - Math.floor(rand() * scanEveryHours * 3_600_000),
        // a simulated host's key is pinned by the relay on first contact
        target ? null : `SHA256:${Buffer.from(id).toString('base64').replace(/=+$/, '')}`,
        now - days * 86_400_000,
        now,
      );
      hosts.push({ id, name });
      for (let k = 0; k < upd; k++) {
        insUpdate.run(id, `${PACKAGES[k % PACKAGES.length]}${k >= PACKAGES.length ? `-${k}` : ''}`, 'amd64', `1.${k}.0-1`, `1.${k}.1-1`, `${os.id}-security`, k < sec ? 1 : 0);
        updates++;
      }
      // history: a scan every few hours, an upgrade (with its log) once a week
      for (let t = now - days * 86_400_000; t < now - 3_600_000; t += scanEveryHours * 3_600_000) {
        const at = t + Math.floor(rand() * 600_000);
        const ok = rand() > 0.02;
        insJob.run(`${id}-s${at}`, 'scan', id, relayId, ok ? 'succeeded' : 'failed', ok ? 0 : 255, ok ? `${upd} updates` : 'connection refused', 'scheduler', at, at + 50, at + 100, at + 1500, 0);
        jobs++;
      }
      for (let t = now - days * 86_400_000 + 3 * 86_400_000; t < now; t += 7 * 86_400_000) {
        const jid = `${id}-u${t}`;
        insJob.run(jid, 'upgrade', id, relayId, 'succeeded', 0, '20 packages upgraded', 'admin', t, t + 50, t + 100, t + 90_000, log.length);
        insOutput.run(jid, log);
        jobs++;
      }
    }
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  } finally {
    db.close();
  }
  return { hosts, jobs, updates };
}
