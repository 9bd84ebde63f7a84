// `npm run bench:scan-all`: "Scan all" of N simulated hosts through `npm start` (the Worker
// in workerd with its local D1, the local relay, a dashboard open in headless Chromium),
// against the relay alone (driven by a fake Worker, bench/fake-worker.ts) on the SAME
// simulated fleet doing the SAME work: each host's scan (refresh on, as the Worker asks; the
// same concurrency, 32) and, for a Docker host, the docker scan of its Compose stacks that
// follows it (job-kinds.ts: the Worker queues one after every successful scan of a Docker
// host). Rounds are interleaved ABBA (app first in odd rounds, relay alone first in even
// ones); each round starts once the app has no active job and the machine is ≥ 80 % idle
// (waited for up to 30 s; the idle share is recorded). Round 0 comes first and apart (`warmUp`
// in the output: the relay alone, then the app's first scan of the fleet; see main()).
//
//   node bench/scan-all.ts [--hosts 1000] [--rounds 4] [--out bench/results-scan-all.json] [--skip-build] [--no-dashboard] [--perf DIR] [--trace DIR]
//
// App round: from just before POST /api/scans (which creates the jobs) until the live feed
// (/api/live, what the dashboard listens to) has announced the last of them finished, and the
// last of the docker scans that followed them; one API call then confirms that no job is left
// queued, dispatched or running. Relay round: first request sent → last response. (Until
// 2026-12-03 evening the docker scans were left out of both ends, but the app's ran inside
// its round, beside its last host scans: work the relay alone did not do.) CPU: the relay
// process and the simulated fleet; for the app also workerd, the whole npm start tree and the
// open dashboard (Chromium); and how busy the whole machine was. `--no-dashboard` leaves the
// page closed (about:blank): the app's own cost without a browser on the same cores.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import WebSocket from 'ws';
import { loadOrCreateKeyPair } from '../relay/keys.ts';
import { startApp, type RunningApp } from '../e2e/app.ts';
import { launchBrowser } from '../e2e/browser.ts';
import { FakeWorker, cpuSeconds, cpuTicks, idleShare, loadAverage, type Outcome } from './fake-worker.ts';

const root = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
function opt(name: string, d: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
}
const hostCount = Number(opt('hosts', '1000'));
const rounds = Math.max(1, Number(opt('rounds', '4')));
const outFile = resolve(opt('out', join(root, 'bench', 'results-scan-all.json')));
/** --perf DIR: `perf record` of workerd during each app round (run with
 * MINIFLARE_WORKERD_V8_FLAGS=--perf-basic-prof for the Worker's JS function names). */
const perfDir = argv.includes('--perf') ? resolve(opt('perf', '.')) : null;
/** --trace DIR: a Chrome trace (DevTools' timeline) of the open dashboard in each app round. */
const traceDir = argv.includes('--trace') ? resolve(opt('trace', '.')) : null;
let tracing: { browser: Awaited<ReturnType<typeof launchBrowser>>; page: Awaited<ReturnType<RunningApp['page']>> } | null = null;
const CONCURRENCY = 32; // the scan-concurrency setting's default, given to both relays
const ROUND_DEADLINE_MS = 15 * 60_000;

const log = (line: string) => console.log(`[scan-all] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every pid in the process tree under `pid` (from /proc/<pid>/task/<tid>/children). */
function treePids(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const t of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      /* gone */
    }
  }
  return out;
}
const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
};
/** Share of the machine's CPU busy between two cpuTicks() readings. */
const busyShare = (a: { idle: number; total: number }, b: { idle: number; total: number }) => (b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0);
/** The machine's busy share per 250 ms from now until stop(), as digits 0–9. */
function busyTimeline(): { stop: () => string } {
  const marks: string[] = [];
  let last = cpuTicks();
  const timer = setInterval(() => {
    const now = cpuTicks();
    marks.push(String(Math.round(busyShare(last, now) * 9)));
    last = now;
  }, 250);
  return { stop: () => (clearInterval(timer), marks.join('')) };
}
/** The least, each tenth and the greatest of xs (rounded to 10 ms). */
const deciles = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? Array.from({ length: 11 }, (_, i) => Math.round(s[Math.round((i / 10) * (s.length - 1))] * 100) / 100) : [];
};
const cpuOf = (pids: number[]) => pids.reduce((n, p) => n + (() => { try { return cpuSeconds(p); } catch { return 0; } })(), 0);

interface Round {
  kind: 'app' | 'relay-alone';
  round: number;
  idleBefore: number;
  loadBefore: string;
  wallSeconds: number;
  ok: number;
  failed: number;
  /** Seconds from the start until the last host scan finished (the rest is docker scans). */
  scansDoneSeconds: number;
  /** When the host scans finished, seconds from the start: the first, each tenth, the last
   * (where the time goes: a later start, a slower stream, or a longer tail). */
  scanFinishes: number[];
  /** App rounds: when POST /api/scans answered, and when the live feed first announced one
   * of its jobs dispatched or running. */
  postSeconds?: number;
  firstStartSeconds?: number;
  /** App rounds: what the live feed (the dashboard's) carried during the round. */
  liveFeed?: { frames: number; kB: number; events: Record<string, number> };
  /** Commands the simulated fleet ran in the round, by kind (the same work on both sides). */
  simCommands?: Record<string, number>;
  /** The docker scans that followed (Docker hosts), and how many of them failed. */
  dockerScans: number;
  dockerFailed: number;
  relayCpuSeconds: number;
  workerdCpuSeconds?: number;
  treeCpuSeconds?: number;
  /** The simulated fleet's process (both sides scan the same one). */
  simCpuSeconds: number;
  /** This process: the fake Worker of the relay-alone rounds, the live-feed observer of the
   * app's (it shares the cores with what it measures). */
  benchCpuSeconds: number;
  /** The open dashboard (app rounds), and by Chromium process (browser, renderer, gpu-process…). */
  chromiumCpuSeconds?: number;
  chromiumByProcess?: Record<string, number>;
  /** Share of the machine's CPU (all cores) busy during the round. */
  machineBusy: number;
  /** How busy the machine was in each 250 ms of the round, 0–9 (9: both cores full). */
  busyTimeline: string;
}

/** The commands the simulated fleet has run so far, by kind (sim/fleet.ts writes them on SIGUSR2). */
async function simCounts(pid: number, work: string): Promise<Record<string, number>> {
  const file = join(work, 'sim-state', 'counts.json');
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (const end = Date.now() + 5000; Date.now() < end; await sleep(20)) {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      // not written (or not whole) yet
    }
  }
  throw new Error('the simulated fleet did not write its command counts');
}
const countsSince = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.keys(b).filter((k) => b[k] !== (a[k] ?? 0)).sort().map((k) => [k, b[k] - (a[k] ?? 0)]));

async function simFleet(keys: string[], work: string) {
  const out = join(work, 'sim.json');
  const child: ChildProcess = spawn(
    process.execPath,
    [join(root, 'sim', 'fleet.ts'), '--count', String(hostCount), '--base', '127.91.0.1', ...keys.flatMap((k) => ['--authorized-key', k]), '--state', join(work, 'sim-state'), '--out', out],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const deadline = Date.now() + 180_000;
  while (!existsSync(out)) {
    if (child.exitCode !== null) throw new Error('the simulated fleet exited');
    if (Date.now() > deadline) throw new Error('the simulated fleet did not start');
    await sleep(100);
  }
  await sleep(300);
  return {
    hosts: JSON.parse(readFileSync(out, 'utf8')) as { name: string; address: string; port: number }[],
    pid: child.pid!,
    stop: () => new Promise<void>((r) => (child.exitCode !== null ? r() : (child.once('exit', () => r()), child.kill('SIGTERM')))),
  };
}

async function waitNoActive(app: RunningApp, kind?: string): Promise<number> {
  const q = kind ? `kind=${kind}&` : '';
  for (const deadline = Date.now() + ROUND_DEADLINE_MS; ; ) {
    const busy = await Promise.all(['queued', 'dispatched', 'running'].map(async (s) => (await app.api(`/api/jobs?${q}status=${s}&limit=1`)).body.length));
    if (busy.every((n: number) => n === 0)) return performance.now();
    if (Date.now() > deadline) throw new Error('jobs still active at the round deadline');
    await sleep(100);
  }
}

const TERMINAL = new Set(['succeeded', 'failed', 'lost', 'cancelled']);

/** The app's live feed (as the dashboard gets it, with a viewer token): when each job was
 * first announced (and its kind and status), and when its finish was. */
async function liveFinishes(app: RunningApp) {
  const made = await app.api('/api/tokens', { method: 'POST', json: { name: 'bench-live', role: 'viewer' } });
  // The observer shares the machine with what it measures, so it costs as little as it can:
  // a broadcast a frame (as the dashboard asks), and no permessage-deflate (which the `ws`
  // client offers by default: the Worker would compress, and this process inflate, every frame).
  const ws = new WebSocket(app.url.replace(/^http/, 'ws') + '/api/live?batch=1', { headers: { Authorization: `Bearer ${made.body.secret}` }, perMessageDeflate: false });
  const finishedAt = new Map<string, number>();
  const startedAt = new Map<string, number>();
  const seen = new Map<string, { kind: string; status: string; at: number }>();
  /** What the feed carried (reset by each round): frames, characters, events by type. */
  const carried = { frames: 0, chars: 0, events: {} as Record<string, number> };
  ws.on('message', (data) => {
    const now = performance.now();
    const text = String(data);
    carried.frames++;
    carried.chars += text.length;
    for (const e of JSON.parse(text) as { type: string; job?: { id: string; kind: string; status: string } }[]) {
      carried.events[e.type] = (carried.events[e.type] ?? 0) + 1;
      if (e.type !== 'job' || !e.job) continue;
      seen.set(e.job.id, { kind: e.job.kind, status: e.job.status, at: seen.get(e.job.id)?.at ?? now });
      if (TERMINAL.has(e.job.status) && !finishedAt.has(e.job.id)) finishedAt.set(e.job.id, now);
      if (e.job.status !== 'queued' && !startedAt.has(e.job.id)) startedAt.set(e.job.id, now);
    }
  });
  await once(ws, 'open');
  return { finishedAt, startedAt, seen, carried, close: () => ws.close() };
}

/** Each round starts on a settled machine: no job of the app active (the docker scans that
 * follow a round's host scans included) and at least SETTLED_IDLE of the CPU idle (measured
 * for 1 s; given up after SETTLE_MAX_MS, the figure is recorded either way). Without this, a
 * relay-alone round right after an app round ran beside the app's tail. */
const SETTLED_IDLE = 0.8;
const SETTLE_MAX_MS = 30_000;
async function settle(app: RunningApp): Promise<number> {
  await waitNoActive(app);
  let idle = await idleShare();
  for (const end = Date.now() + SETTLE_MAX_MS; idle < SETTLED_IDLE && Date.now() < end; ) idle = await idleShare();
  return idle;
}

async function appRound(app: RunningApp, live: Awaited<ReturnType<typeof liveFinishes>>, simPid: number, round: number): Promise<Round> {
  const idleBefore = await settle(app);
  const loadBefore = loadAverage();
  const pids = treePids(app.pid);
  const relayPids = pids.filter((p) => cmdline(p).includes('patchman-relay.cjs'));
  const workerdPids = pids.filter((p) => /workerd/.test(cmdline(p)));
  const chromium = treePids(process.pid).filter((p) => cmdline(p).includes('chromium'));
  const chromium0 = new Map(chromium.map((p) => [p, cpuOf([p])]));
  const cpu0 = { tree: cpuOf(pids), relay: cpuOf(relayPids), workerd: cpuOf(workerdPids), sim: cpuOf([simPid]), chromium: cpuOf(chromium), machine: cpuTicks() };
  const bench0 = process.cpuUsage();
  const perf = perfDir ? spawn('perf', ['record', '-F', '999', '-g', '-o', join(perfDir, `workerd-round${round}.data`), '-p', workerdPids.join(',')], { stdio: 'ignore' }) : null;
  if (perf) await sleep(500);
  if (traceDir && tracing) await tracing.browser.startTracing(tracing.page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'disabled-by-default-v8.cpu_profiler'] });
  const timeline = busyTimeline();
  Object.assign(live.carried, { frames: 0, chars: 0, events: {} });
  const t0 = performance.now();
  const res = await app.api('/api/scans', { method: 'POST', json: {} });
  if (res.status !== 202) throw new Error(`POST /api/scans: ${res.status} ${JSON.stringify(res.body)}`);
  const ids = res.body.jobIds as string[];
  const postSeconds = (performance.now() - t0) / 1000;
  // the docker scans that followed: announced (queued, then dispatched) in the batch that
  // finished their host's scan, so all of them are known once the last scan's finish is
  const dockerIds = () => [...live.seen].filter(([, j]) => j.kind === 'docker-scan' && j.at >= t0).map(([id]) => id);
  const deadline = Date.now() + ROUND_DEADLINE_MS;
  for (;;) {
    if (ids.every((id) => live.finishedAt.has(id)) && dockerIds().every((id) => live.finishedAt.has(id))) {
      await waitNoActive(app); // (not timed) the jobs list agrees that nothing is left
      if (dockerIds().every((id) => live.finishedAt.has(id))) break;
    }
    if (Date.now() > deadline) throw new Error('jobs still active at the round deadline');
    await sleep(20);
  }
  const busy = timeline.stop();
  if (perf) (perf.kill('SIGINT'), await once(perf, 'exit'));
  if (traceDir && tracing) writeFileSync(join(traceDir, `dashboard-round${round}.trace.json`), await tracing.browser.stopTracing());
  const docker = dockerIds();
  const t1 = Math.max(...[...ids, ...docker].map((id) => live.finishedAt.get(id)!));
  const wall = (t1 - t0) / 1000;
  const scansDone = (Math.max(...ids.map((id) => live.finishedAt.get(id)!)) - t0) / 1000;
  const idSet = new Set(ids);
  const started = [...live.startedAt].filter(([id]) => idSet.has(id)).map(([, at]) => at);
  const chromiumByProcess: Record<string, number> = {};
  for (const p of chromium) {
    const type = /--type=([\w-]+)/.exec(cmdline(p))?.[1] ?? 'browser';
    chromiumByProcess[type] = (chromiumByProcess[type] ?? 0) + cpuOf([p]) - (chromium0.get(p) ?? 0);
  }
  const cpu1 = { tree: cpuOf(pids), relay: cpuOf(relayPids), workerd: cpuOf(workerdPids), sim: cpuOf([simPid]), chromium: cpuOf(chromium), machine: cpuTicks() };
  const failedJobs = (await app.api(`/api/jobs?kind=scan&status=failed&limit=500`)).body.filter((j: any) => Date.parse(j.createdAt) >= Date.now() - wall * 1000 - 5000);
  const r: Round = {
    kind: 'app',
    round,
    idleBefore,
    loadBefore,
    wallSeconds: wall,
    scansDoneSeconds: scansDone,
    scanFinishes: deciles(ids.map((id) => (live.finishedAt.get(id)! - t0) / 1000)),
    postSeconds,
    liveFeed: { frames: live.carried.frames, kB: Math.round(live.carried.chars / 1000), events: { ...live.carried.events } },
    firstStartSeconds: started.length ? (Math.min(...started) - t0) / 1000 : undefined,
    ok: res.body.jobIds.length - failedJobs.length,
    failed: failedJobs.length,
    dockerScans: docker.length,
    dockerFailed: docker.filter((id) => live.seen.get(id)?.status !== 'succeeded').length,
    relayCpuSeconds: cpu1.relay - cpu0.relay,
    workerdCpuSeconds: cpu1.workerd - cpu0.workerd,
    treeCpuSeconds: cpu1.tree - cpu0.tree,
    simCpuSeconds: cpu1.sim - cpu0.sim,
    benchCpuSeconds: benchSeconds(bench0),
    chromiumCpuSeconds: cpu1.chromium - cpu0.chromium,
    chromiumByProcess,
    machineBusy: busyShare(cpu0.machine, cpu1.machine),
    busyTimeline: busy,
  };
  log(`app         round ${round}: ${wall.toFixed(2)} s (scans done at ${scansDone.toFixed(2)}; POST answered at ${postSeconds.toFixed(2)}, first started at ${r.firstStartSeconds?.toFixed(2)}; live feed ${r.liveFeed!.frames} frames, ${r.liveFeed!.kB} kB, ${JSON.stringify(r.liveFeed!.events)}; scans finished by tenths ${r.scanFinishes.join(' ')}), ${r.ok} ok, ${r.dockerScans} docker scans, relay CPU ${r.relayCpuSeconds.toFixed(1)} s, workerd CPU ${r.workerdCpuSeconds!.toFixed(1)} s, chromium ${r.chromiumCpuSeconds!.toFixed(1)} s, sim ${r.simCpuSeconds.toFixed(1)} s, bench ${r.benchCpuSeconds.toFixed(1)} s, machine ${(r.machineBusy * 100).toFixed(0)} % busy, idle before ${(idleBefore * 100).toFixed(0)} % (load ${loadBefore})`);
  return r;
}

const benchSeconds = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
};

async function relayAloneRound(app: RunningApp, worker: FakeWorker, relayPid: number, simPid: number, targets: { address: string; port: number }[], round: number): Promise<Round> {
  const idleBefore = await settle(app);
  const loadBefore = loadAverage();
  const cpu0 = cpuSeconds(relayPid);
  const sim0 = cpuOf([simPid]);
  const m0 = cpuTicks();
  const bench0 = process.cpuUsage();
  const t0 = performance.now();
  const timeline = busyTimeline();
  let scansDone = 0;
  const finishes: number[] = [];
  const outcomes = await Promise.all(
    targets.map(async (t, i): Promise<{ scan: Outcome; docker: Outcome | null }> => {
      const target = { address: t.address, port: t.port, user: 'root' };
      const scan = await worker.request(`a${round}-${i}`, 'scan', { target, refresh: true });
      scansDone = Math.max(scansDone, (performance.now() - t0) / 1000);
      finishes.push(scansDone);
      // what the Worker queues after a successful scan of a Docker host (job-kinds.ts)
      const docker = scan.ok && scan.result?.probe?.docker ? await worker.request(`d${round}-${i}`, 'docker.scan', { target }) : null;
      return { scan, docker };
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const busy = timeline.stop();
  const ok = outcomes.filter((o) => o.scan.ok).length;
  const dockers = outcomes.flatMap((o) => (o.docker ? [o.docker] : []));
  const r: Round = {
    kind: 'relay-alone',
    round,
    idleBefore,
    loadBefore,
    wallSeconds: wall,
    scansDoneSeconds: scansDone,
    scanFinishes: deciles(finishes),
    ok,
    failed: outcomes.length - ok,
    dockerScans: dockers.length,
    dockerFailed: dockers.filter((o) => !o.ok).length,
    relayCpuSeconds: cpuSeconds(relayPid) - cpu0,
    simCpuSeconds: cpuOf([simPid]) - sim0,
    benchCpuSeconds: benchSeconds(bench0),
    machineBusy: busyShare(m0, cpuTicks()),
    busyTimeline: busy,
  };
  log(`relay alone round ${round}: ${wall.toFixed(2)} s (scans done at ${scansDone.toFixed(2)}; scans finished by tenths ${r.scanFinishes.join(' ')}), ${ok} ok, ${r.dockerScans} docker scans, relay CPU ${r.relayCpuSeconds.toFixed(1)} s, sim ${r.simCpuSeconds.toFixed(1)} s, bench ${r.benchCpuSeconds.toFixed(1)} s, machine ${(r.machineBusy * 100).toFixed(0)} % busy, idle before ${(idleBefore * 100).toFixed(0)} % (load ${loadBefore})`);
  return r;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'patchman-scan-all-'));
  const started = new Date();
  log(`npm start${argv.includes('--skip-build') ? ' (PATCHMAN_SKIP_BUILD=1)' : ''}`);
  // (the browser first: if it cannot start, no app is left running behind the error)
  const browser = await launchBrowser();
  const app = await startApp(argv.includes('--skip-build') ? { PATCHMAN_SKIP_BUILD: '1' } : {});
  let fleet: Awaited<ReturnType<typeof simFleet>> | undefined;
  let relay: ChildProcess | undefined;
  const worker = new FakeWorker(CONCURRENCY);
  const results: Round[] = [];
  let warmUp: { relayAlone: Round; app: Round } | undefined;
  try {
    const appRelay = await until(async () => (await app.api('/api/relays')).body?.find((r: any) => r.connected && r.publicKey), 120_000);
    const benchKey = await loadOrCreateKeyPair(join(work, 'relay'));
    fleet = await simFleet([appRelay.publicKey, benchKey.publicKey], work);
    log(`${fleet.hosts.length} simulated hosts up`);
    await app.api('/api/settings', { method: 'PATCH', json: { scanConcurrency: CONCURRENCY } });
    // add them (8 at a time)
    const queue = [...fleet.hosts];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let h = queue.shift(); h; h = queue.shift()) {
          const r = await app.api('/api/hosts', { method: 'POST', json: { name: h.name, address: h.address, port: h.port, user: 'root', relayId: appRelay.id } });
          if (r.status !== 201) throw new Error(`adding ${h.name}: ${r.status} ${JSON.stringify(r.body)}`);
        }
      }),
    );
    log(`${fleet.hosts.length} hosts added`);
    // the bench's own relay, on its fake Worker
    await worker.listening();
    relay = spawn(process.execPath, [join(root, 'relay', 'dist', 'patchman-relay.cjs')], {
      env: {
        ...process.env,
        PATCHMAN_URL: `http://127.0.0.1:${worker.port}`,
        PATCHMAN_RELAY_TOKEN: 'pmr_bench_token_0123456789',
        PATCHMAN_DATA_DIR: join(work, 'relay'),
        PATCHMAN_CONCURRENCY: String(CONCURRENCY),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await worker.hello(30_000);
    // the dashboard, open through every round
    const page = await app.page(browser);
    tracing = { browser, page };
    if (argv.includes('--no-dashboard')) {
      await page.goto('about:blank');
      log('no dashboard open (--no-dashboard)');
    } else {
      await page.goto(app.url);
      await page.waitForLoadState('load');
      log('dashboard open in chromium');
    }
    const live = await liveFinishes(app);
    /** A round, with the commands the fleet ran in it. */
    const counted = async (run: () => Promise<Round>) => {
      const before = await simCounts(fleet!.pid, work);
      const r = await run();
      r.simCommands = countsSince(before, await simCounts(fleet!.pid, work));
      return r;
    };
    // Round 0, apart: the first scan of the fleet. Three processes do their first work in it
    // — the simulated fleet (about 1.4 CPU-s more than in its later rounds, whoever scans it)
    // and each relay (up to 2 CPU-s more: Node's JIT) — on top of the app's own first writes
    // (every host's package list, sightings, notification states). The relay alone goes
    // first (it pays the fleet's warm-up), then the app's first "Scan all". The timed rounds
    // that follow compare the two doing the same work warm: a fleet's scans after its first.
    warmUp = {
      relayAlone: await counted(() => relayAloneRound(app, worker, relay!.pid!, fleet!.pid, fleet!.hosts, 0)),
      app: await counted(() => appRound(app, live, fleet!.pid, 0)),
    };
    for (let round = 1; round <= rounds; round++) {
      const steps = [() => counted(() => appRound(app, live, fleet!.pid, round)), () => counted(() => relayAloneRound(app, worker, relay!.pid!, fleet!.pid, fleet!.hosts, round))];
      if (round % 2 === 0) steps.reverse();
      for (const step of steps) results.push(await step());
    }
  } finally {
    await browser.close().catch(() => {});
    relay?.kill('SIGTERM');
    worker.close();
    await fleet?.stop();
    await app.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const pairs = Array.from({ length: rounds }, (_, i) => {
    const a = results.find((r) => r.kind === 'app' && r.round === i + 1)!;
    const b = results.find((r) => r.kind === 'relay-alone' && r.round === i + 1)!;
    return { round: i + 1, app: a.wallSeconds, relayAlone: b.wallSeconds, ratio: a.wallSeconds / b.wallSeconds };
  });
  const median = (xs: number[]) => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`;
  writeFileSync(outFile, JSON.stringify({ date: started.toISOString(), machine, hosts: hostCount, concurrency: CONCURRENCY, rounds, command: `node bench/scan-all.ts ${argv.join(' ')}`.trim(), end: 'live feed, docker scans included', dashboard: !argv.includes('--no-dashboard'), warmUp, results, pairs }, null, 2) + '\n');
  console.log('\n| round | run | idle before | wall s | ok | docker scans | relay CPU s | workerd CPU s | chromium CPU s | sim fleet CPU s | bench CPU s | machine busy |');
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of [...(warmUp ? [warmUp.relayAlone, warmUp.app] : []), ...results]) {
    console.log(
      `| ${r.round} | ${r.kind} | ${(r.idleBefore * 100).toFixed(0)} % (load ${r.loadBefore}) | ${r.wallSeconds.toFixed(2)} | ${r.ok}/${r.ok + r.failed} | ${r.dockerScans - r.dockerFailed}/${r.dockerScans} | ${r.relayCpuSeconds.toFixed(1)} | ${r.workerdCpuSeconds?.toFixed(1) ?? ''} | ${r.chromiumCpuSeconds?.toFixed(1) ?? ''} | ${r.simCpuSeconds.toFixed(1)} | ${r.benchCpuSeconds.toFixed(1)} | ${(r.machineBusy * 100).toFixed(0)} % |`,
    );
  }
  console.log(`\nratio app / relay alone per round (1–${rounds}): ${pairs.map((p) => p.ratio.toFixed(2)).join(', ')}; median ${median(pairs.map((p) => p.ratio)).toFixed(2)}`);
  const same = (a: Round, b: Round) => JSON.stringify(a.simCommands) === JSON.stringify(b.simCommands);
  const paired = results.filter((r) => r.kind === 'app').map((a) => [a, results.find((b) => b.kind === 'relay-alone' && b.round === a.round)!] as const);
  const commands = Object.values(results[0]?.simCommands ?? {}).reduce((n, c) => n + c, 0);
  console.log(`the simulated fleet ran the same ${commands} commands on both sides of every round: ${paired.every(([a, b]) => same(a, b)) ? 'yes' : 'NO (see simCommands)'}`);
  // round 0: each side's first work (see main()), the relay alone having gone first
  if (warmUp) console.log(`first scan of the fleet (round 0, apart): app ${warmUp.app.wallSeconds.toFixed(2)} s, relay alone ${warmUp.relayAlone.wallSeconds.toFixed(2)} s (${(warmUp.app.wallSeconds / warmUp.relayAlone.wallSeconds).toFixed(2)}×)`);
  console.log(`machine: ${machine}\nwritten to ${outFile}`);
}

async function until<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; ) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error('not in time');
    await sleep(300);
  }
}

main().catch((err) => {
  console.error(`[scan-all] ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
