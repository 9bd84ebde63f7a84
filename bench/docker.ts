// `node bench/docker.ts`: how long the relay's registry client (relay/docker/registry.ts)
// takes to check N images for updates. A real registry (Debian's docker-registry 2.8, via
// relay/test/registry.ts) on 127.0.0.1 gets N distinct repositories pushed (one tag each);
// a quarter of the tags are then pushed again with new content, so the check finds
// N/4 updates and 3N/4 up-to-date images.
//
//   node bench/docker.ts [--images 100] [--rounds 3] [--concurrency 8] [--out bench/results-docker.json]
//
// Two setups, each checked `rounds` times with ONE client (round 1 is cold: new client, no
// tokens, no registry connections of its own; later rounds reuse its token cache):
//   anonymous — straight to the registry, no authentication (one HEAD per image);
//   token     — through a small proxy in front of the same registry that demands a Bearer
//               token (401 + WWW-Authenticate, token service on /token, one scope per
//               repository), as Docker Hub, ghcr.io and Quay do: round 1 pays for N token
//               requests, later rounds use the cached tokens.
// Per round: wall time for all N checks, wall time / N, the bench process's CPU time, the
// number of HEAD and token requests. Everything listens on 127.0.0.1 and every request has
// the client's timeout, so no loop can hang.
import { createServer, type Server } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RegistryClient } from '../relay/docker/registry.ts';
import { startRegistry, type TestRegistry } from '../relay/test/registry.ts';
import { freePort } from '../relay/test/sshd.ts';

const argv = process.argv.slice(2);
function opt(name: string, d: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
}
const N = Math.max(1, Number(opt('images', '100')));
const ROUNDS = Math.max(1, Number(opt('rounds', '3')));
const CONCURRENCY = Math.max(1, Number(opt('concurrency', '8')));
const OUT = resolve(opt('out', resolve(import.meta.dirname, 'results-docker.json')));

function log(line: string): void {
  console.log(`[bench] ${line}`);
}

/** A token-demanding proxy in front of the registry (HEAD on manifests only). */
async function startTokenProxy(upstream: string): Promise<{ host: string; tokensIssued: () => number; close: () => Promise<void> }> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const issued = new Set<string>();
  let n = 0;
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (url.pathname === '/token') {
      const token = `tok-${url.searchParams.get('scope')}-${++n}`;
      issued.add(token);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    const m = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(url.pathname);
    if (req.method !== 'HEAD' || !m) {
      res.writeHead(405);
      res.end();
      return;
    }
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!issued.has(token) || !token.startsWith(`tok-repository:${m[1]}:pull-`)) {
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${host}/token",service="bench",scope="repository:${m[1]}:pull"` });
      res.end();
      return;
    }
    try {
      const up = await fetch(`${upstream}${url.pathname}`, { method: 'HEAD', headers: { Accept: req.headers.accept ?? '' }, signal: AbortSignal.timeout(10_000) });
      const headers: Record<string, string> = {};
      for (const h of ['docker-content-digest', 'content-type', 'content-length']) {
        const value = up.headers.get(h);
        if (value) headers[h] = value;
      }
      res.writeHead(up.status, headers);
      res.end();
    } catch {
      res.writeHead(502);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    host,
    tokensIssued: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Round {
  setup: 'anonymous' | 'token';
  round: number;
  images: number;
  wallMs: number;
  msPerImage: number;
  cpuMs: number;
  heads: number;
  tokenRequests: number;
  upToDate: number;
  updates: number;
  other: number;
}

async function pushAll(reg: TestRegistry): Promise<{ repo: string; digest: string }[]> {
  const started = Date.now();
  const pushed: { repo: string; digest: string }[] = new Array(N);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < N) {
        const i = next++;
        const repo = `bench/app-${String(i).padStart(3, '0')}`;
        pushed[i] = { repo, digest: await reg.push(repo, 'v1', { content: `v1 ${i}`, flavour: i % 2 ? 'docker' : 'oci' }) };
      }
    }),
  );
  // A quarter of the tags move on.
  await Promise.all(pushed.filter((_, i) => i % 4 === 0).map((p) => reg.push(p.repo, 'v1', { content: `v2 ${p.repo}` })));
  log(`pushed ${N} repositories (${Math.ceil(N / 4)} re-pushed) in ${Date.now() - started} ms`);
  return pushed;
}

async function measure(setup: Round['setup'], host: string, pushed: { repo: string; digest: string }[]): Promise<Round[]> {
  const client = new RegistryClient({ concurrency: CONCURRENCY });
  const items = pushed.map((p) => ({ reference: `${host}/${p.repo}:v1`, repoDigests: [`${host}/${p.repo}@${p.digest}`] }));
  const rounds: Round[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const before = { ...client.stats };
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const results = await client.checkMany(items);
    const wallMs = performance.now() - t0;
    const used = process.cpuUsage(cpu);
    const r: Round = {
      setup,
      round,
      images: items.length,
      wallMs: Math.round(wallMs * 10) / 10,
      msPerImage: Math.round((wallMs / items.length) * 100) / 100,
      cpuMs: Math.round((used.user + used.system) / 100) / 10,
      heads: client.stats.heads - before.heads,
      tokenRequests: client.stats.tokenRequests - before.tokenRequests,
      upToDate: results.filter((x) => x.status === 'up-to-date').length,
      updates: results.filter((x) => x.status === 'update-available').length,
      other: results.filter((x) => x.status !== 'up-to-date' && x.status !== 'update-available').length,
    };
    if (r.other > 0) log(`unexpected results: ${JSON.stringify(results.find((x) => x.status !== 'up-to-date' && x.status !== 'update-available'))}`);
    log(`${setup} round ${round}: ${r.images} images in ${r.wallMs} ms (${r.msPerImage} ms/image), CPU ${r.cpuMs} ms, ${r.heads} HEAD, ${r.tokenRequests} token requests; ${r.updates} updates, ${r.upToDate} up to date, ${r.other} other`);
    rounds.push(r);
  }
  return rounds;
}

const reg = await startRegistry();
let proxy: Awaited<ReturnType<typeof startTokenProxy>> | undefined;
try {
  log(`${N} images, ${ROUNDS} rounds, concurrency ${CONCURRENCY}; Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB`);
  const pushed = await pushAll(reg);
  const results = await measure('anonymous', reg.host, pushed);
  proxy = await startTokenProxy(reg.url);
  results.push(...(await measure('token', proxy.host, pushed)));
  writeFileSync(
    OUT,
    JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model.trim(), images: N, concurrency: CONCURRENCY, results }, null, 2) + '\n',
  );
  log(`wrote ${OUT}`);
  console.log('\n| setup | round | images | wall ms | ms/image | CPU ms | HEAD | token req. | updates | up to date |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) console.log(`| ${r.setup} | ${r.round}${r.round === 1 ? ' (cold)' : ''} | ${r.images} | ${r.wallMs} | ${r.msPerImage} | ${r.cpuMs} | ${r.heads} | ${r.tokenRequests} | ${r.updates} | ${r.upToDate} |`);
  if (results.some((r) => r.other > 0)) process.exitCode = 1;
} finally {
  await proxy?.close();
  await reg.stop();
}
