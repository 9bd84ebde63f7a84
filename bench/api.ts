// API latency with a big fleet: `npm start` (local workerd + D1) in a temp state dir, 1,000
// hosts and 30 days of history written into its D1 (bench/seed-d1.ts), then each endpoint
// the dashboard leans on called by 8 clients at once, as the admin (API token).
//
//   npm run build && node bench/api.ts [--count 1000] [--concurrency 8] [--requests 400]
//                                      [--out bench/results-api.json]
//
// Per endpoint: p50/p95/max of the wall time from request sent to body read, answers/s,
// and the answer's size. One warm-up pass per endpoint is not counted.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startApp, until, type RunningApp } from '../e2e/app.ts';
import { localD1File, seedD1 } from './seed-d1.ts';

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
const TARGET_P95_MS = 50;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}
const round = (n: number) => Math.round(n * 10) / 10;

async function load(app: RunningApp, token: string, path: string, n: number) {
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
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await one();
    }),
  );
  const wall = performance.now() - t0;
  return { p50: round(percentile(times, 50)), p95: round(percentile(times, 95)), max: round(Math.max(...times)), perS: round((n / wall) * 1000), kb: round(bytes / 1024), failed };
}

async function main() {
  const app = await startApp({ PATCHMAN_SKIP_BUILD: '1' });
  try {
    const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected), 60_000, 'relay');
    const seeded = seedD1(localD1File(app.state), { count, relayId: relay.id });
    console.log(`[api] seeded ${seeded.hosts.length} hosts, ${seeded.jobs} jobs, ${seeded.updates} pending updates`);
    const made = await app.api('/api/tokens', { method: 'POST', json: { name: 'bench', role: 'viewer' } });
    const token = made.body.secret as string;
    const busiest = seeded.hosts[7].id;
    const endpoints: [string, string][] = [
      ['host list page (50, default order)', '/api/hosts?limit=50'],
      ['host list page (50, needs updates, most first)', '/api/hosts?limit=50&filter=needs-updates&sort=updates'],
      ['host list page (50, search "web prod")', '/api/hosts?limit=50&q=web%20prod'],
      ['host groups by tag', '/api/hosts/groups?by=tag'],
      ['summary', '/api/summary'],
      ["one host's updates", `/api/hosts/${busiest}/updates`],
      ['jobs list (100)', '/api/jobs?limit=100'],
      ['jobs list (scan, 500)', '/api/jobs?kind=scan&limit=500'],
      ['whole host list (no paging)', '/api/hosts'],
    ];
    const results: Record<string, unknown> = {};
    for (const [name, path] of endpoints) {
      await load(app, token, path, concurrency * 2);
      const r = await load(app, token, path, requests);
      results[name] = { path, ...r };
      console.log(`[api] ${name.padEnd(48)} p50 ${String(r.p50).padStart(6)} ms  p95 ${String(r.p95).padStart(6)} ms  max ${String(r.max).padStart(6)} ms  ${r.perS}/s  ${r.kb} kB${r.failed ? `  ${r.failed} FAILED` : ''}`);
    }
    const out = { date: new Date().toISOString(), count, jobs: seeded.jobs, updates: seeded.updates, concurrency, requests, targetP95Ms: TARGET_P95_MS, results };
    writeFileSync(outFile, JSON.stringify(out, null, 2) + '\n');
  } finally {
    await app.stop();
  }
}

await main();
