// `npm run bench:live`: how long a line written on the host takes to reach the browser.
// `npm start` (Worker in workerd + local relay), a real OpenSSH sshd on loopback whose PATH
// starts with a stub `apt-get` (scans see no updates; the "upgrade" prints numbered lines,
// each with the time it was written, `date +%s%3N`, every 100 ms), an upgrade job on it,
// and headless Chromium on the dashboard with a socket on /api/live: each job.output line's
// latency is the page's Date.now() at arrival minus the time in the line (one machine, one
// clock).
//
//   node bench/live-output.ts [--lines 100] [--rounds 2] [--skip-build] [--out bench/results-live-output.json]
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startApp } from '../e2e/app.ts';
import { launchBrowser } from '../e2e/browser.ts';
import { startSshd } from '../relay/test/sshd.ts';
import { idleShare, loadAverage } from './fake-worker.ts';

const root = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
};
const lines = Number(opt('lines', '100'));
const rounds = Number(opt('rounds', '2'));
const outFile = resolve(opt('out', join(root, 'bench', 'results-live-output.json')));
const log = (l: string) => console.log(`[live] ${l}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; ) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'patchman-live-'));
  const stub = join(work, 'bin');
  mkdirSync(stub);
  writeFileSync(
    join(stub, 'apt-get'),
    [
      '#!/bin/sh',
      '# bench stub: scans simulate with the real apt-get (no list refresh); an upgrade prints timestamped lines',
      'case " $* " in *" -s "*) exec /usr/bin/apt-get "$@";; *" update "*) exit 0;; esac',
      'i=1',
      `while [ $i -le ${lines} ]; do printf 'patchman-bench-line %d %s\\n' $i "$(date +%s%3N)"; i=$((i+1)); sleep 0.1; done`,
      'exit 0',
      '',
    ].join('\n'),
  );
  chmodSync(join(stub, 'apt-get'), 0o755);
  // (the host is this machine, which the relay refuses to change unless told otherwise; the
  // "upgrade" is the stub above)
  // (the browser first: if it cannot start, no app is left running behind the error)
  const browser = await launchBrowser();
  const app = await startApp({ PATCHMAN_MONITOR_ONLY: 'none', ...(argv.includes('--skip-build') ? { PATCHMAN_SKIP_BUILD: '1' } : {}) });
  let sshd: Awaited<ReturnType<typeof startSshd>> | undefined;
  const results: { round: number; idleBefore: number; loadBefore: string; n: number; p50: number; p95: number; max: number; latenciesMs: number[] }[] = [];
  try {
    const relay = await until(async () => (await app.api('/api/relays')).body?.find((r: any) => r.connected && r.publicKey), 120_000, 'relay');
    sshd = await startSshd({ authorizedKeys: [relay.publicKey], env: { PATH: `${stub}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` } });
    const host = await app.api('/api/hosts', { method: 'POST', json: { name: 'bench-host', address: '127.0.0.1', port: sshd.port, user: 'root', relayId: relay.id, monitorOnly: false } });
    if (host.status !== 201) throw new Error(`add host: ${host.status} ${JSON.stringify(host.body)}`);
    const hostId = host.body.id;
    const scan = await app.api(`/api/hosts/${hostId}/scan`, { method: 'POST' });
    const scanned = await until(async () => {
      const j = (await app.api(`/api/jobs/${scan.body.jobId}`)).body;
      return !['queued', 'dispatched', 'running'].includes(j.status) && j;
    }, 300_000, 'first scan');
    if (scanned.status !== 'succeeded') throw new Error(`first scan ${scanned.status}: ${JSON.stringify(scanned.error)}`);
    const page = await app.page(browser);
    await page.goto(app.url);
    await page.waitForLoadState('load');
    await page.evaluate(() => {
      const w = globalThis as any;
      w.__lat = [];
      const ws = new WebSocket(w.location.origin.replace(/^http/, 'ws') + '/api/live');
      ws.onmessage = (e: { data: string }) => {
        const ev = JSON.parse(e.data);
        if (ev.type !== 'job.output') return;
        const now = Date.now();
        for (const m of String(ev.data).matchAll(/patchman-bench-line (\d+) (\d+)/g)) w.__lat.push(now - Number(m[2]));
      };
      return new Promise((r) => (ws.onopen = r));
    });
    for (let round = 1; round <= rounds; round++) {
      // (each upgrade is followed by a rescan: wait for the host to be idle)
      await until(async () => (await app.api(`/api/jobs?hostId=${hostId}&status=queued&limit=1`)).body.length === 0 && (await app.api(`/api/jobs?hostId=${hostId}&status=running&limit=1`)).body.length === 0 && (await app.api(`/api/jobs?hostId=${hostId}&status=dispatched&limit=1`)).body.length === 0, 120_000, 'idle host');
      await page.evaluate(() => ((globalThis as any).__lat = []));
      const loadBefore = loadAverage();
      const idleBefore = await idleShare();
      const up = await app.api(`/api/hosts/${hostId}/upgrade`, { method: 'POST', json: { confirm: true } });
      if (up.status !== 202) throw new Error(`upgrade: ${up.status} ${JSON.stringify(up.body)}`);
      const job = await until(async () => {
        const j = (await app.api(`/api/jobs/${up.body.jobId}`)).body;
        return !['queued', 'dispatched', 'running'].includes(j.status) && j;
      }, 180_000, 'upgrade');
      if (job.status !== 'succeeded') throw new Error(`upgrade ${job.status}: ${JSON.stringify(job.error)}`);
      await sleep(500);
      const lat: number[] = await page.evaluate(() => (globalThis as any).__lat);
      const r = { round, idleBefore, loadBefore, n: lat.length, p50: pct(lat, 50), p95: pct(lat, 95), max: Math.max(...lat), latenciesMs: lat };
      results.push(r);
      log(`round ${round}: ${r.n}/${lines} lines, p50 ${r.p50} ms, p95 ${r.p95} ms, max ${r.max} ms, idle before ${(idleBefore * 100).toFixed(0)} % (load ${loadBefore})`);
    }
  } finally {
    await browser.close().catch(() => {});
    await sshd?.stop();
    await app.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const all = results.flatMap((r) => r.latenciesMs);
  const pooled = { n: all.length, p50: pct(all, 50), p95: pct(all, 95), max: Math.max(...all) };
  writeFileSync(outFile, JSON.stringify({ date: new Date().toISOString(), machine: `${cpus().length} × ${cpus()[0]?.model}`, command: `node bench/live-output.ts ${argv.join(' ')}`.trim(), lines, pooled, results }, null, 2) + '\n');
  log(`all rounds: ${pooled.n} lines, p50 ${pooled.p50} ms, p95 ${pooled.p95} ms, max ${pooled.max} ms; written to ${outFile}`);
}

main().catch((err) => {
  console.error(`[live] ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
