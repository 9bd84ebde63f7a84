// The dashboard with a big fleet in headless Chromium (Debian's, through playwright-core):
// time to the first host row, DOM nodes and JS heap once it has settled; with `--scan`, a
// simulated fleet (sim/fleet.ts) really scanned with "Scan all" while the page records
// every frame (requestAnimationFrame) and the requests it makes.
//
//   npm run build && node bench/dashboard.ts [--count 1000] [--scan] [--runs 3]
//                                            [--screenshots DIR] [--profile FILE] [--trace FILE] [--out bench/results-dashboard.json]
//
// `npm start` in a temp state dir (e2e/app.ts), the hosts and 30 days of history written
// into its local D1 (sim/history.ts), viewport 1280×900.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { startApp, until } from '../e2e/app.ts';
import { launchBrowser } from '../e2e/browser.ts';
import { localD1File, writeFleet } from '../sim/history.ts';

const root = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
};
const count = Number(opt('count', '1000'));
const runs = Number(opt('runs', '3'));
const withScan = argv.includes('--scan');
const profileFile = argv.includes('--profile') ? resolve(opt('profile', join(root, 'bench', 'dashboard-scan.cpuprofile'))) : null;

/** The functions with the most self time in a CPU profile, for the log line. */
function topSelf(profile: { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; samples?: number[]; timeDeltas?: number[] }, n = 12): string {
  const byId = new Map(profile.nodes.map((nd) => [nd.id, nd.callFrame]));
  const self = new Map<string, number>();
  (profile.samples ?? []).forEach((id, i) => {
    const f = byId.get(id)!;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas?.[i] ?? 0));
  });
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${k} ${(us / 1000).toFixed(0)} ms`).join('; ');
}
/** --trace FILE: a Chrome trace (DevTools' timeline categories) of the scan; the log line
 * sums the renderer main thread's work by kind (style, layout, paint, script…). */
const traceFile = argv.includes('--trace') ? resolve(opt('trace', join(root, 'bench', 'dashboard-scan.trace.json'))) : null;

/** Total duration per event name on the renderer's main thread, largest first. */
function traceTotals(trace: { traceEvents: { name: string; ph: string; dur?: number; pid: number; tid: number; args?: { name?: string } }[] }, n = 12): string {
  const main = trace.traceEvents.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  const totals = new Map<string, number>();
  for (const e of trace.traceEvents) {
    if (!main || e.pid !== main.pid || e.tid !== main.tid || e.ph !== 'X' || !e.dur) continue;
    totals.set(e.name, (totals.get(e.name) ?? 0) + e.dur);
  }
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${k} ${(us / 1000).toFixed(0)} ms`).join('; ');
}
const shots = argv.includes('--screenshots') ? resolve(opt('screenshots', join(root, 'bench', 'shots'))) : null;
const outFile = resolve(opt('out', join(root, 'bench', 'results-dashboard.json')));
const SCAN_DEADLINE_MS = 15 * 60_000;

const log = (line: string) => console.log(`[dashboard] ${line}`);

/** Recorded in the page from its first script on: when the first host row appeared, and every frame. */
const PROBE = `
  window.__bench = { firstRow: null, frames: [], recording: false };
  new MutationObserver((_, obs) => {
    if (document.querySelector('[data-testid="host-row"]')) {
      window.__bench.firstRow = performance.now();
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
  const tick = (t) => { if (window.__bench.recording) window.__bench.frames.push(t); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
`;

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}
const round = (n: number) => Math.round(n * 10) / 10;

async function pageLoad(page: Page, url: string) {
  await page.goto(url);
  await page.locator('[data-testid="host-row"]').first().waitFor({ timeout: 60_000 });
  const firstRowMs = (await page.evaluate('window.__bench.firstRow')) as number;
  // settled: the list rendered and the first live events applied
  await page.waitForTimeout(2000);
  const dom = (await page.evaluate('document.getElementsByTagName("*").length')) as number;
  const heapMb = ((await page.evaluate('performance.memory?.usedJSHeapSize ?? 0')) as number) / 1048576;
  const rows = await page.locator('[data-testid="host-row"]').count();
  return { firstRowMs: round(firstRowMs), dom, heapMb: round(heapMb), rowsRendered: rows };
}

async function simFleet(n: number, pubKey: string, work: string) {
  const out = join(work, 'sim.json');
  const child = spawn(
    process.execPath,
    [join(root, 'sim', 'fleet.ts'), '--count', String(n), '--base', '127.91.0.1', '--authorized-key', pubKey, '--state', join(work, 'sim-state'), '--out', out],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await until(async () => existsSync(out), 180_000, 'the simulated fleet');
  await new Promise((r) => setTimeout(r, 300));
  const hosts = JSON.parse(readFileSync(out, 'utf8')) as { name: string; address: string; port: number }[];
  return {
    hosts,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'patchman-bench-dash-'));
  // (the browser first: if it cannot start, no app is left running behind the error)
  const browser = await launchBrowser();
  const app = await startApp({ PATCHMAN_SKIP_BUILD: '1' });
  let fleet: Awaited<ReturnType<typeof simFleet>> | null = null;
  try {
    const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
    if (withScan) fleet = await simFleet(count, relay.publicKey, work);
    const seeded = writeFleet(localD1File(join(app.state, 'wrangler')), { hosts: count, days: 30, relayId: relay.id, targets: fleet?.hosts, logs: true });
    log(`seeded ${seeded.hosts.length} hosts, ${seeded.jobs} jobs, ${seeded.hostUpdates} pending updates`);

    const loads = [];
    for (let i = 0; i < runs; i++) {
      const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
      await page.addInitScript(PROBE);
      const r = await pageLoad(page, app.url);
      log(`load ${i + 1}: first row ${r.firstRowMs} ms, ${r.dom} DOM nodes, ${r.heapMb} MB heap, ${r.rowsRendered} rows rendered`);
      loads.push(r);
      if (shots && i === 0) {
        mkdirSync(shots, { recursive: true });
        await page.screenshot({ path: join(shots, 'dashboard-1000.png') });
        await page.locator('[data-testid="group-select"]').selectOption('tag');
        await page.waitForTimeout(500);
        await page.screenshot({ path: join(shots, 'dashboard-1000-by-tag.png') });
        await page.mouse.wheel(0, 20_000);
        await page.waitForTimeout(500);
        await page.screenshot({ path: join(shots, 'dashboard-1000-scrolled.png') });
      }
      await page.context().close();
    }

    let scan = null;
    if (withScan) {
      const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
      await page.addInitScript(PROBE);
      await pageLoad(page, app.url);
      const requests: Record<string, number> = {};
      page.on('request', (req) => {
        const u = new URL(req.url());
        if (!u.pathname.startsWith('/api/')) return;
        const key = `${u.pathname}${u.searchParams.has('kind') ? `?kind=${u.searchParams.get('kind')}` : ''}`;
        requests[key] = (requests[key] ?? 0) + 1;
      });
      // --profile FILE: the page's JS CPU profile during the scan (Chrome DevTools' format)
      const cdp = profileFile ? await page.context().newCDPSession(page) : null;
      if (cdp) (await cdp.send('Profiler.enable'), await cdp.send('Profiler.start'));
      if (traceFile) await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'disabled-by-default-devtools.timeline.invalidationTracking'] });
      await page.evaluate('window.__bench.recording = true');
      const t0 = Date.now();
      await page.locator('[data-testid="scan-all"]').click();
      const progress = page.locator('[data-testid="scan-progress"]');
      await until(async () => (await progress.getAttribute('data-total')) === String(count), 120_000, 'every scan queued');
      await until(async () => (await progress.getAttribute('data-done')) === String(count), SCAN_DEADLINE_MS, 'every scan finished');
      const wallS = (Date.now() - t0) / 1000;
      if (cdp) {
        const { profile } = await cdp.send('Profiler.stop');
        writeFileSync(profileFile!, JSON.stringify(profile));
        log(`JS profile of the scan written to ${profileFile} (self time, top: ${topSelf(profile)})`);
      }
      if (traceFile) {
        const buf = await browser.stopTracing();
        writeFileSync(traceFile, buf);
        log(`trace of the scan written to ${traceFile} (renderer main thread, top: ${traceTotals(JSON.parse(buf.toString()))})`);
      }
      const frames = (await page.evaluate('window.__bench.recording = false, window.__bench.frames')) as number[];
      const gaps = frames.slice(1).map((t, i) => t - frames[i]);
      const failed = await progress.getAttribute('data-failed');
      // why scans failed, by error code (the newest 500 scans)
      const causes: Record<string, number> = {};
      const since = encodeURIComponent(new Date(t0 - 1000).toISOString());
      for (const j of (await app.api(`/api/jobs?kind=scan&status=failed&since=${since}&limit=500`)).body as any[]) {
        const k = `${j.error?.code ?? 'unknown'}: ${(j.error?.message ?? '').slice(0, 80)}`;
        causes[k] = (causes[k] ?? 0) + 1;
      }
      if (shots) await page.screenshot({ path: join(shots, 'dashboard-1000-after-scan.png') });
      scan = {
        wallS: round(wallS),
        failed: Number(failed ?? 0),
        failureCauses: causes,
        frames: frames.length,
        gapMs: { p50: round(percentile(gaps, 50)), p95: round(percentile(gaps, 95)), p99: round(percentile(gaps, 99)), max: round(Math.max(0, ...gaps)) },
        gapsOver100ms: gaps.filter((g) => g > 100).length,
        requests,
      };
      log(`scan all: ${JSON.stringify(scan)}`);
      await page.context().close();
    }

    const result = {
      date: new Date().toISOString(),
      count,
      seeded: { jobs: seeded.jobs, updates: seeded.hostUpdates },
      loads,
      firstRowMs: { median: percentile(loads.map((l) => l.firstRowMs), 50), max: Math.max(...loads.map((l) => l.firstRowMs)) },
      domMax: Math.max(...loads.map((l) => l.dom)),
      scan,
    };
    writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await browser.close();
    await fleet?.stop();
    await app.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
