// API latency with a big fleet: `npm start` (local workerd + D1) in a temp state dir, 1,000
// hosts and 30 days of history written into its D1 (bench/seed-d1.ts), then each endpoint
// the dashboard leans on called by 8 clients at once, as the admin (API token).
//
//   npm run build && node bench/api.ts [--count 1000] [--concurrency 8] [--requests 400]
//                                      [--out bench/results-api.json]
//
// Per endpoint: p50/p95/max of the wall time from request sent to body read, answers/s,
// the answer's size, and the CPU the server (wrangler dev and the workerd under it, which
// runs the Worker and D1) spent per request (utime + stime from /proc: a figure that a busy
// machine inflates far less than wall times). The endpoints take turns in rounds, so a change in the machine's load falls on
// all of them alike; the machine's load average is recorded beside them. One warm-up pass
// per endpoint is not counted.
//
// `--baseline DIR`: an A/B comparison in one run. DIR is another checkout of PatchMan (say
// `git archive <commit> | tar -x -C /tmp/base` plus a node_modules link, with node_modules and `npm run build` done there);
// its `npm start` (A) and this tree's (B) run side by side on the same seeded fleet, and
// their rounds alternate ABBA (A first in odd rounds), each round after a 1-second check of
// the machine's idle CPU, so the load of a shared machine falls on both alike.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { startApp as startHere, until, type RunningApp } from '../e2e/app.ts';
import { localD1File, writeFleet } from '../sim/history.ts';
import { idleShare } from './fake-worker.ts';

const root = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
};
const count = Number(opt('count', '1000'));
const concurrency = Number(opt('concurrency', '8'));
const requests = Number(opt('requests', '400'));
const outFile = resolve(opt('out', join(root, 'bench', 'results-api.json')));
const rounds = Number(opt('rounds', '4'));
const baseline = argv.includes('--baseline') ? resolve(opt('baseline', '')) : null;
const TARGET_P95_MS = 50;
const CLK_TCK = 100;

/** The processes serving the app: `wrangler dev` persisting into its state dir, and every
 * process under it (workerd with the Worker and D1). */
function serverPids(state: string): number[] {
  const procs = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return [{ pid: Number(pid), ppid, cmd: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ') }];
      } catch {
        return [];
      }
    });
  const wrangler = procs.find((p) => p.cmd.includes(' dev ') && p.cmd.includes(`${state}/wrangler`));
  // workerd is a child (or grandchild) of wrangler
  const below = new Set(wrangler ? [wrangler.pid] : []);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) if (below.has(p.ppid) && !below.has(p.pid)) (below.add(p.pid), (grew = true));
  }
  if (!procs.some((p) => below.has(p.pid) && p.cmd.includes('workerd'))) throw new Error('cannot find the workerd process');
  return [...below];
}

function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return (ticks / CLK_TCK) * 1000;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}
const round1 = (n: number) => Math.round(n * 10) / 10;

async function load(app: RunningApp, token: string, path: string, n: number, pid: number[]) {
  const times: number[] = [];
  let bytes = 0;
  let next = 0;
  let failed = 0;
  const one = async () => {
    const t = performance.now();
    const res = await fetch(app.url + path, { headers: { Authorization: `Bearer ${token}` } });
    const body = await res.arrayBuffer();
    times.push(performance.now() - t);
    bytes = body.byteLength;
    if (res.status !== 200) failed++;
  };
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await one();
    }),
  );
  return { times, wall: performance.now() - t0, cpu: cpuMs(pid) - cpu0, bytes, failed };
}

const ENDPOINTS = (busiest: string): [string, string][] => [
  ['host list page (50, default order)', '/api/hosts?limit=50'],
  ['host list page (50, needs updates, most first)', '/api/hosts?limit=50&filter=needs-updates&sort=updates'],
  ['host list page (50, search "web prod")', '/api/hosts?limit=50&q=web%20prod'],
  ['host groups by tag', '/api/hosts/groups?by=tag'],
  ['summary', '/api/summary'],
  ["one host's updates", `/api/hosts/${busiest}/updates`],
  ['jobs list (100)', '/api/jobs?limit=100'],
  ['jobs list (scan, 500)', '/api/jobs?kind=scan&limit=500'],
  ['whole host list (no paging)', '/api/hosts'],
  // the floor: no sign-in check, no D1 (what the machine and wrangler dev cost per request)
  ['health (the floor: no auth, no D1)', '/api/health'],
];

type Acc = { times: number[]; wall: number; cpu: number; bytes: number; failed: number };

/** One app under test: started, seeded, a viewer token made, its server processes found. */
async function prepare(label: string, start: typeof startHere) {
  const app = await start({ PATCHMAN_SKIP_BUILD: '1' });
  const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected), 60_000, 'relay');
  const seeded = writeFleet(localD1File(join(app.state, 'wrangler')), { hosts: count, days: 30, relayId: relay.id, logs: true });
  console.log(`[api] ${label}: seeded ${seeded.hosts.length} hosts, ${seeded.jobs} jobs, ${seeded.hostUpdates} pending updates`);
  const made = await app.api('/api/tokens', { method: 'POST', json: { name: 'bench', role: 'viewer' } });
  const token = made.body.secret as string;
  const endpoints = ENDPOINTS(seeded.hosts[7].id);
  const pid = serverPids(app.state);
  for (const [, path] of endpoints) await load(app, token, path, concurrency * 2, pid);
  return { label, app, token, endpoints, pid, seeded, acc: new Map<string, Acc>(), rounds: [] as { round: number; idleBefore: number; load: number }[] };
}
type Side = Awaited<ReturnType<typeof prepare>>;

async function round(side: Side, r: number) {
  const idleBefore = await idleShare();
  const load1 = loadavg()[0];
  side.rounds.push({ round: r + 1, idleBefore: Math.round(idleBefore * 100) / 100, load: Math.round(load1 * 100) / 100 });
  console.log(`[api] round ${r + 1} ${side.label}: idle before ${(idleBefore * 100).toFixed(0)} %, load ${load1.toFixed(2)}`);
  for (const [name, path] of side.endpoints) {
    const x = await load(side.app, side.token, path, Math.ceil(requests / rounds), side.pid);
    const a = side.acc.get(name) ?? { times: [], wall: 0, cpu: 0, bytes: 0, failed: 0 };
    side.acc.set(name, { times: [...a.times, ...x.times], wall: a.wall + x.wall, cpu: a.cpu + x.cpu, bytes: x.bytes, failed: a.failed + x.failed });
  }
}

function summarise(side: Side) {
  const results: Record<string, unknown> = {};
  for (const [name, path] of side.endpoints) {
    const a = side.acc.get(name)!;
    const n = a.times.length;
    const r = {
      path,
      p50: round1(percentile(a.times, 50)),
      p95: round1(percentile(a.times, 95)),
      max: round1(Math.max(...a.times)),
      perS: round1((n / a.wall) * 1000),
      cpuMsPerRequest: round1(a.cpu / n),
      kb: round1(a.bytes / 1024),
      failed: a.failed,
    };
    results[name] = r;
    console.log(
      `[api] ${side.label.padEnd(9)} ${name.padEnd(48)} p50 ${String(r.p50).padStart(6)} ms  p95 ${String(r.p95).padStart(6)} ms  max ${String(r.max).padStart(6)} ms  ${String(r.perS).padStart(6)}/s  server CPU ${String(r.cpuMsPerRequest).padStart(5)} ms/req  ${r.kb} kB${r.failed ? `  ${r.failed} FAILED` : ''}`,
    );
  }
  return { rounds: side.rounds, results };
}

async function main() {
  const sides: Side[] = [];
  try {
    if (baseline) {
      const { startApp: startBase } = (await import(join(baseline, 'e2e', 'app.ts'))) as { startApp: typeof startHere };
      sides.push(await prepare('baseline', startBase));
    }
    sides.push(await prepare(baseline ? 'this tree' : 'app', startHere));
    for (let r = 0; r < rounds; r++) {
      // ABBA: the side that goes first alternates
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) await round(side, r);
    }
    const out: Record<string, unknown> = { date: new Date().toISOString(), count, jobs: sides[0].seeded.jobs, updates: sides[0].seeded.hostUpdates, concurrency, requests, rounds, cpus: cpus().length, targetP95Ms: TARGET_P95_MS };
    if (baseline) {
      out.baseline = { dir: baseline, ...summarise(sides[0]) };
      out.thisTree = summarise(sides[1]);
    } else {
      const s = summarise(sides[0]);
      Object.assign(out, { loadAverage: s.rounds.map((x) => x.load), roundDetail: s.rounds, results: s.results });
    }
    writeFileSync(outFile, JSON.stringify(out, null, 2) + '\n');
  } finally {
    for (const side of sides) await side.app.stop();
  }
}

await main();
