// `npm run bench:log-size`: the projected D1 size for a year at 1,000 hosts (weekly upgrades,
// 6-hourly scans), with upgrade logs stored as text (before) and gzip-compressed (now).
//
// Measured, not guessed: a real SQLite database (sqlite3, the engine under D1) with the
// project's migrations, filled with one year of 10 hosts' jobs — scan rows with real
// summaries, upgrade rows with logs rendered from a real apt run (sim/fixtures/debian12-local:
// run-install-zip.log's lines, for packages from the same machine's real pending list,
// apt-list.stdout), the current package list per host — then scaled ×100. Logs are gzip'd
// with zlib's default level, which is what CompressionStream('gzip') uses in workerd.
//
//   node bench/log-size.ts [--packages 20] [--out bench/results-log-size.json]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';

const root = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
};
const perUpgrade = Number(opt('packages', '20'));
const outFile = resolve(opt('out', join(root, 'bench', 'results-log-size.json')));
const HOSTS = 10;
const SCALE = 1000 / HOSTS;
const WEEKS = 52;
const SCANS_PER_YEAR = 365 * 4;

const fx = join(root, 'sim', 'fixtures', 'debian12-local');
const inst = readFileSync(join(fx, 'apt-list.stdout'), 'utf8')
  .split('\n')
  .map((l) => /^Inst (\S+) \[([^\]]+)\] \((\S+) ([^)]*)\)/.exec(l))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({ name: m[1], from: m[2], to: m[3], origin: m[4] }));
const template = readFileSync(join(fx, 'run-install-zip.log'), 'utf8').split('\n');
const head = template.slice(0, 4).join('\n'); // the command and apt's first lines
const readingDb = template.find((l) => l.startsWith('(Reading database'))!;

/** An apt upgrade log of `n` packages, line for line what apt printed for zip. */
function upgradeLog(n: number, offset: number): string {
  const pk = Array.from({ length: n }, (_, i) => inst[(offset + i) % inst.length]);
  return [
    head.replace('install --only-upgrade zip', 'dist-upgrade'),
    'Calculating upgrade...',
    'The following packages will be upgraded:',
    ...pk.map((p) => `   ${p.name} (${p.from} => ${p.to})`),
    `${n} upgraded, 0 newly installed, 0 to remove and 0 not upgraded.`,
    'Need to get 0 B/230 kB of archives.',
    'After this operation, 0 B of additional disk space will be used.',
    ...pk.map((p, i) => `Get:${i + 1} http://deb.debian.org/debian bookworm/main amd64 ${p.name} amd64 ${p.to} [230 kB]`),
    readingDb,
    ...pk.flatMap((p) => [`Preparing to unpack .../${p.name}_${p.to}_amd64.deb ...`, `Unpacking ${p.name} (${p.to}) over (${p.from}) ...`]),
    ...pk.map((p) => `Setting up ${p.name} (${p.to}) ...`),
    'Processing triggers for man-db (2.11.2-2) ...',
    '',
  ].join('\n');
}

const q = (s: string | null) => (s === null ? 'NULL' : `'${s.replace(/'/g, "''")}'`);

function build(compressed: boolean): { bytes: number; logBytes: number; gzBytes: number } {
  const dir = mkdtempSync(join(tmpdir(), 'patchman-logsize-'));
  const db = join(dir, 'd1.sqlite');
  const sql: string[] = [];
  for (const f of readdirSync(join(root, 'migrations')).filter((f) => f.endsWith('.sql')).sort()) {
    sql.push(readFileSync(join(root, 'migrations', f), 'utf8').replace(/--> statement-breakpoint/g, ''));
  }
  sql.push('BEGIN;');
  sql.push(`INSERT INTO relays (id, name, token_hash, created_at) VALUES ('r', 'relay', 'h', 0);`);
  let logBytes = 0;
  let gzBytes = 0;
  const t0 = Date.UTC(2026, 0, 1);
  for (let h = 0; h < HOSTS; h++) {
    const host = `host-${h}`;
    sql.push(
      `INSERT INTO hosts (id, name, address, port, user, relay_id, tags, monitor_only, status, created_at, updated_at) VALUES ('${host}', 'web-${h}', '10.0.0.${h}', 22, 'root', 'r', '["web"]', 0, 'online', 0, 0);`,
    );
    for (const p of inst.slice(0, perUpgrade)) {
      sql.push(`INSERT INTO host_updates VALUES ('${host}', ${q(p.name)}, 'amd64', ${q(p.from)}, ${q(p.to)}, ${q(p.origin)}, 0);`);
    }
    for (let s = 0; s < SCANS_PER_YEAR; s++) {
      const at = t0 + s * 6 * 3_600_000;
      sql.push(
        `INSERT INTO jobs (id, kind, host_id, relay_id, status, exit_code, summary, requested_by, created_at, dispatched_at, started_at, finished_at, deadline_at) VALUES ('${randomUUID()}', 'scan', '${host}', 'r', 'succeeded', 0, '${perUpgrade} updates (3 security), reboot required', 'schedule', ${at}, ${at + 5}, ${at + 5}, ${at + 900}, ${at + 615_000});`,
      );
    }
    for (let w = 0; w < WEEKS; w++) {
      const at = t0 + w * 7 * 86_400_000;
      const id = randomUUID();
      const text = upgradeLog(perUpgrade, w * perUpgrade + h);
      logBytes += Buffer.byteLength(text);
      const changes = JSON.stringify(inst.slice(0, perUpgrade).map((p) => ({ name: p.name, from: p.from, to: p.to })));
      sql.push(
        `INSERT INTO jobs (id, kind, host_id, relay_id, status, exit_code, summary, requested_by, created_at, dispatched_at, started_at, finished_at, deadline_at, changes, log_offset, log_bytes) VALUES ('${id}', 'upgrade', '${host}', 'r', 'succeeded', 0, '${perUpgrade} packages upgraded', 'admin', ${at}, ${at}, ${at}, ${at + 60_000}, ${at + 3_615_000}, ${q(changes)}, ${text.length}, ${text.length});`,
      );
      if (compressed) {
        const gz = gzipSync(text);
        gzBytes += gz.length;
        sql.push(`INSERT INTO job_output (job_id, seq, data, gz) VALUES ('${id}', 1, '', X'${gz.toString('hex')}');`);
      } else {
        // as received: about one chunk per line batch (a follow delivers a few lines at a time)
        const chunks = text.match(/(?:[^\n]*\n){1,4}|[^\n]+$/g) ?? [text];
        chunks.forEach((c, i) => sql.push(`INSERT INTO job_output (job_id, seq, data) VALUES ('${id}', ${i + 1}, ${q(c)});`));
      }
    }
  }
  sql.push('COMMIT;', 'VACUUM;');
  const r = spawnSync('sqlite3', [db], { input: sql.join('\n'), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
  const bytes = statSync(db).size;
  rmSync(dir, { recursive: true, force: true });
  return { bytes, logBytes, gzBytes };
}

const MB = 1024 * 1024;
const plain = build(false);
const packed = build(true);
const year = (b: number) => (b * SCALE) / MB;
const month = (b: number) => (b * SCALE * 30) / 365 / MB;
const result = {
  date: new Date().toISOString(),
  command: `node bench/log-size.ts ${argv.join(' ')}`.trim(),
  assumptions: { hosts: 1000, upgradesPerHostPerYear: WEEKS, scansPerHostPerYear: SCANS_PER_YEAR, packagesPerUpgrade: perUpgrade, measuredHosts: HOSTS, scale: SCALE },
  upgradeLogBytes: plain.logBytes / (HOSTS * WEEKS),
  upgradeLogGzipBytes: packed.gzBytes / (HOSTS * WEEKS),
  compressionRatio: plain.logBytes / packed.gzBytes,
  d1MBYearPlain: year(plain.bytes),
  d1MBYearCompressed: year(packed.bytes),
  d1MB30DaysPlain: month(plain.bytes),
  d1MB30DaysCompressed: month(packed.bytes),
};
writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
