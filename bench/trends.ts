// `npm run bench:trends`: the trend and exposure endpoints against a generated fleet of
// 1,000 hosts with 90 days of 6-hourly history (sim/history.ts), in local workerd + D1
// (`wrangler dev --persist-to`, as `npm start` runs it). Prints p50/p95/max per endpoint
// and the D1 size per table, and writes JSON.
//
//   node bench/trends.ts [--hosts 1000] [--days 90] [--requests 200] [--out bench/results-trends.json]
//
// Latency is measured end to end from this process over loopback HTTP: the Worker's token
// check, the D1 queries, JSON. Requests go one at a time, the endpoints interleaved (so a
// burst of load on this shared machine hits all of them alike), after a warm-up.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { freePort } from '../relay/test/sshd.ts';
import { applyMigrations, localD1File, tableBytes, writeFleet } from '../sim/history.ts';

const root = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
};
const HOSTS = Number(opt('hosts', '1000'));
const DAYS = Number(opt('days', '90'));
const REQUESTS = Number(opt('requests', '200'));
const WARMUP = 20;
/** Requests per endpoint for the CPU measurement (in a row, one endpoint at a time). */
const CPU_REQUESTS = 100;
const outFile = resolve(opt('out', join(root, 'bench', 'results-trends.json')));
/** The target (issue 14): p95 of the trend and exposure queries. */
const TARGET_P95_MS = 50;
/** D1's per-database size limit (Workers Paid). */
const D1_LIMIT_BYTES = 10 * 1024 ** 3;

const log = (line: string) => console.log(`[bench] ${line}`);

const ENDPOINTS: { name: string; path: string; target: boolean }[] = [
  { name: 'fleet trend 7 d', path: '/api/trends?days=7', target: true },
  { name: 'fleet trend 30 d', path: '/api/trends?days=30', target: true },
  { name: 'fleet trend 90 d', path: '/api/trends?days=90', target: true },
  { name: 'host trend 90 d', path: '/api/hosts/sim-h0500/trends?days=90', target: true },
  { name: 'exposure 30 d', path: '/api/exposure?days=30', target: true },
  { name: 'exposure 90 d', path: '/api/exposure?days=90', target: true },
  { name: 'homepage', path: '/api/homepage', target: false },
  // the floor: the same round trip and token check, one tiny D1 read
  { name: 'baseline (who am I)', path: '/api/auth/me', target: false },
  { name: 'metrics', path: '/metrics', target: false },
];

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86_64/arm64

/** CPU seconds (user+system) of the workerd processes in a process group. */
function workerdCpu(pgid: number): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // f[2] is the process group (field 5); utime, stime are fields 14, 15
      if (comm.startsWith('workerd') && Number(f[2]) === pgid) total += (Number(f[11]) + Number(f[12])) / CLK_TCK;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function main() {
  const state = mkdtempSync(join(tmpdir(), 'patchman-bench-trends-'));
  const persist = join(state, 'wrangler');
  let worker: ReturnType<typeof spawn> | null = null;
  try {
    if (!existsSync(join(root, 'web', 'build', 'index.html'))) {
      log('building the dashboard (wrangler dev serves it as assets)');
      spawnSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], { cwd: join(root, 'web'), stdio: 'inherit' });
    }
    log(`applying migrations to a fresh local D1 in ${persist}`);
    applyMigrations(persist);
    const file = localD1File(persist);
    const seedStart = performance.now();
    const { hosts: written, ...counts } = writeFleet(file, { hosts: HOSTS, days: DAYS });
    log(`wrote ${JSON.stringify(counts)} in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
    const token = `pmt_${randomBytes(24).toString('base64url')}`;
    const db = new DatabaseSync(file);
    db.prepare("INSERT INTO api_tokens (id, name, token_hash, role, created_at) VALUES ('bench', 'bench', ?, 'viewer', 0)").run(createHash('sha256').update(token).digest('hex'));
    db.close();
    const size = tableBytes(file);

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let out = '';
    worker = spawn(process.execPath, [join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), 'dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persist, '--show-interactive-dev-session=false', '--log-level', 'warn'], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_HIDE_BANNER: 'true', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    worker.stdout!.on('data', (c) => (out += c));
    worker.stderr!.on('data', (c) => (out += c));
    const end = Date.now() + 180_000;
    for (;;) {
      const ok = await fetch(`${url}/api/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > end || worker.exitCode !== null) throw new Error(`wrangler dev did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const headers = { Authorization: `Bearer ${token}` };
    const call = async (path: string) => {
      const t = performance.now();
      const res = await fetch(url + path, { headers });
      const body = await res.text();
      const ms = performance.now() - t;
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${body.slice(0, 300)}`);
      const server = /app;dur=(\d+)/.exec(res.headers.get('Server-Timing') ?? '');
      return { ms, bytes: body.length, body, server: server ? Number(server[1]) : null };
    };
    // a look at what the endpoints answer, for the record
    const sample = {
      trend90: JSON.parse((await call('/api/trends?days=90')).body),
      exposure90: JSON.parse((await call('/api/exposure?days=90')).body),
    };
    log(`fleet trend 90 d: ${sample.trend90.points.length} points, last ${JSON.stringify(sample.trend90.points.at(-1))}`);
    log(`exposure 90 d: time to patch ${JSON.stringify(sample.exposure90.timeToPatchDays)}; most exposed ${JSON.stringify(sample.exposure90.hosts[0])}`);

    for (let i = 0; i < WARMUP; i++) for (const e of ENDPOINTS) await call(e.path);
    const times = new Map(ENDPOINTS.map((e) => [e.name, [] as number[]]));
    const inWorker = new Map(ENDPOINTS.map((e) => [e.name, [] as number[]]));
    const bytes = new Map<string, number>();
    const load = [loadavg()[0]];
    for (let i = 0; i < REQUESTS; i++) {
      for (const e of ENDPOINTS) {
        const r = await call(e.path);
        times.get(e.name)!.push(r.ms);
        if (r.server !== null) inWorker.get(e.name)!.push(r.server);
        bytes.set(e.name, r.bytes);
      }
      if (i % 50 === 49) load.push(loadavg()[0]);
    }
    // CPU per request inside workerd: what the wall times above would be on an idle machine
    // (workerd runs one request at a time here); the run's load average says how far from idle
    const cpuMs = new Map<string, number>();
    for (const e of ENDPOINTS) {
      const before = workerdCpu(worker.pid!);
      for (let i = 0; i < CPU_REQUESTS; i++) await call(e.path);
      cpuMs.set(e.name, ((workerdCpu(worker.pid!) - before) * 1000) / CPU_REQUESTS);
    }
    const rows = ENDPOINTS.map((e) => {
      const s = times.get(e.name)!.sort((a, b) => a - b);
      const w = inWorker.get(e.name)!.sort((a, b) => a - b);
      const worker = w.length ? { p50: quantile(w, 0.5), p95: quantile(w, 0.95), max: w.at(-1)! } : null;
      return { name: e.name, path: e.path, target: e.target, n: s.length, p50: quantile(s, 0.5), p95: quantile(s, 0.95), max: s.at(-1)!, worker, workerdCpuMs: cpuMs.get(e.name)!, bytes: bytes.get(e.name)! };
    });
    // the criterion: the queries, i.e. the time inside the Worker (the round trip adds this
    // process, the loopback hop and wrangler dev's proxy, see the baseline row)
    const ok = rows.filter((r) => r.target).every((r) => r.worker !== null && r.worker.p95 <= TARGET_P95_MS);

    const f = (n: number | undefined) => (n === undefined ? '–' : n.toFixed(1));
    console.log(`\n| endpoint | path | round trip p50 / p95 / max ms | in the Worker p50 / p95 / max ms | workerd CPU ms per request | answer bytes |\n|---|---|---:|---:|---:|---:|`);
    for (const r of rows) {
      console.log(`| ${r.name}${r.target ? '' : ' (no target)'} | \`${r.path}\` | ${f(r.p50)} / ${f(r.p95)} / ${f(r.max)} | ${f(r.worker?.p50)} / ${f(r.worker?.p95)} / ${f(r.worker?.max)} | ${f(r.workerdCpuMs)} | ${r.bytes} |`);
    }
    console.log(`\n| table | rows | MB |\n|---|---:|---:|`);
    const rowsOf: Record<string, number> = { hosts: written.length, host_days: counts.hostDays, update_sightings: counts.sightings, jobs: counts.jobs, host_updates: counts.hostUpdates };
    for (const [t, n] of Object.entries(rowsOf)) console.log(`| ${t} | ${n} | ${(size.tables[t] / 1e6).toFixed(1)} |`);
    console.log(`| whole database file | | ${(size.total / 1e6).toFixed(1)} (${((size.total / D1_LIMIT_BYTES) * 100).toFixed(2)} % of 10 GB) |`);
    log(`load average during the run: ${load.map((l) => l.toFixed(2)).join(' → ')}`);
    log(ok ? `every target endpoint: p95 in the Worker ≤ ${TARGET_P95_MS} ms` : `TARGET MISSED: some p95 in the Worker > ${TARGET_P95_MS} ms`);

    writeFileSync(
      outFile,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadavg: load },
          fleet: { hosts: HOSTS, days: DAYS, scansPerDay: 4, rows: counts },
          requestsPerEndpoint: REQUESTS,
          targetP95Ms: TARGET_P95_MS,
          results: rows,
          d1: { fileBytes: size.total, tables: size.tables, limitBytes: D1_LIMIT_BYTES },
          sample: { trend90Last: sample.trend90.points.at(-1), timeToPatch90: sample.exposure90.timeToPatchDays },
          ok,
        },
        null,
        2,
      ) + '\n',
    );
    log(`wrote ${outFile}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    if (worker?.pid) {
      try {
        process.kill(-worker.pid, 'SIGTERM');
      } catch {
        // gone
      }
      await new Promise((r) => setTimeout(r, 1000));
      try {
        process.kill(-worker.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(state, { recursive: true, force: true });
  }
}

await main();
