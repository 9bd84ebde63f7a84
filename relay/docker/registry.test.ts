// The registry client: the anonymous token flow against a FAKE token service and registry
// (node:http on 127.0.0.1), then update detection against a REAL registry (Debian's
// docker-registry, relay/test/registry.ts) with images pushed by our own code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from '../test/sshd.ts';
import { startRegistry, type TestRegistry } from '../test/registry.ts';
import { MANIFEST_MEDIA_TYPES, parseBearerChallenge, RegistryClient, Semaphore } from './registry.ts';

const digest = (c: string): string => 'sha256:' + c.repeat(64).slice(0, 64);

// ---- the fake ------------------------------------------------------------------------------

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  accept: string | undefined;
  query: URLSearchParams;
}

interface Fake {
  host: string;
  seen: Seen[];
  tokens(): Seen[];
  heads(): Seen[];
  /** Current manifest digests by `repo:tag`. */
  tags: Map<string, string>;
  inFlight: { now: number; max: number };
  close(): Promise<void>;
}

/**
 * A registry that wants Bearer tokens (like Docker Hub): anonymous HEAD → 401 with a
 * challenge naming /token; the token service hands out `tok-<scope>-<n>`, valid for the
 * scope it was issued for. Special repositories misbehave on purpose.
 */
async function startFake(): Promise<Fake> {
  const seen: Seen[] = [];
  const issued = new Set<string>();
  const tags = new Map<string, string>();
  const inFlight = { now: 0, max: 0 };
  let n = 0;
  let host = '';
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    seen.push({ method: req.method ?? '', path: url.pathname, authorization: req.headers.authorization, accept: req.headers.accept, query: url.searchParams });
    const challenge = (repo: string, realm = '/token'): void => {
      res.writeHead(401, {
        'WWW-Authenticate': `Bearer realm="http://${host}${realm}",service="fake-registry",scope="repository:${repo}:pull"`,
        'Content-Type': 'application/json',
      });
      res.end();
    };
    if (url.pathname === '/token') {
      const scope = url.searchParams.get('scope') ?? '';
      const token = `tok-${scope}-${++n}`;
      issued.add(token);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 60, issued_at: new Date().toISOString() }));
      return;
    }
    if (url.pathname === '/token-broken') {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('boom');
      return;
    }
    if (url.pathname === '/token-denied') {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end('{"details":"incorrect username or password"}');
      return;
    }
    const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (!m || req.method !== 'HEAD') {
      res.writeHead(405);
      res.end();
      return;
    }
    const [, repo, tag] = m;
    inFlight.now++;
    inFlight.max = Math.max(inFlight.max, inFlight.now);
    try {
      if (repo === 'slow/app') return; // never answers (the client times out; close() ends it)
      if (repo.startsWith('delay/')) await new Promise((r) => setTimeout(r, 40));
      if (repo === 'basic/app') {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="Registry Realm"' });
        res.end();
        return;
      }
      if (repo === 'nochallenge/app') {
        res.writeHead(401);
        res.end();
        return;
      }
      if (repo === 'broken/app') return challenge(repo, '/token-broken');
      if (repo === 'denied/app') return challenge(repo, '/token-denied');
      if (repo === 'limited/app') {
        res.writeHead(429, { 'Retry-After': '60' });
        res.end();
        return;
      }
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      // A token is good only for its own scope; `private/app` takes none.
      if (!issued.has(token) || !token.startsWith(`tok-repository:${repo}:pull-`) || repo === 'private/app') return challenge(repo);
      if (repo === 'nodigest/app') {
        res.writeHead(200, { 'Content-Type': MANIFEST_MEDIA_TYPES[3] });
        res.end();
        return;
      }
      const d = tags.get(`${repo}:${tag}`);
      if (!d) {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end();
        return;
      }
      res.writeHead(200, { 'Docker-Content-Digest': d, 'Content-Type': MANIFEST_MEDIA_TYPES[2] });
      res.end();
    } finally {
      inFlight.now--;
    }
  };
  const server: Server = createServer((req, res) => void handle(req, res));
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  host = `127.0.0.1:${port}`;
  return {
    host,
    seen,
    tokens: () => seen.filter((s) => s.path.startsWith('/token')),
    heads: () => seen.filter((s) => s.method === 'HEAD'),
    tags,
    inFlight,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let fake: Fake;
beforeAll(async () => {
  fake = await startFake();
});
afterAll(async () => {
  await fake?.close();
});

const ref = (repo: string, tag = 'latest'): string => `${fake.host}/${repo}:${tag}`;
const repoDigest = (repo: string, d: string): string => `${fake.host}/${repo}@${d}`;

describe('the anonymous token flow (fake token service + fake registry)', () => {
  it('answers the challenge with an anonymous token, once per scope, and caches it until it expires', async () => {
    let clock = 1_000_000;
    const client = new RegistryClient({ now: () => clock });
    fake.seen.length = 0;
    fake.tags.set('a/app:1', digest('1'));
    fake.tags.set('a/app:2', digest('2'));
    fake.tags.set('b/app:1', digest('3'));
    const items = [
      { reference: ref('a/app', '1'), repoDigests: [repoDigest('a/app', digest('1'))] },
      { reference: ref('a/app', '2'), repoDigests: [repoDigest('a/app', digest('0'))] },
      { reference: ref('b/app', '1'), repoDigests: [repoDigest('b/app', digest('3'))] },
      { reference: ref('a/app', '1'), repoDigests: [repoDigest('a/app', digest('1'))] }, // same tag again: asked once
    ];
    const first = await client.checkMany(items);
    expect(first.map((c) => c.status)).toEqual(['up-to-date', 'update-available', 'up-to-date', 'up-to-date']);
    expect(first[1]).toEqual({ status: 'update-available', reason: null, localDigest: digest('0'), remoteDigest: digest('2') });

    // One token request per scope, with no credentials of any kind.
    const tokens = fake.tokens();
    expect(tokens.map((t) => t.query.get('scope')).sort()).toEqual(['repository:a/app:pull', 'repository:b/app:pull']);
    for (const t of tokens) {
      expect(t.authorization).toBeUndefined();
      expect(t.query.get('service')).toBe('fake-registry');
      expect(t.method).toBe('GET');
    }
    expect(client.stats.tokenRequests).toBe(2);
    // HEAD only, with every manifest type accepted.
    expect(fake.seen.filter((s) => s.path.startsWith('/v2/')).every((s) => s.method === 'HEAD')).toBe(true);
    for (const h of fake.heads()) for (const type of MANIFEST_MEDIA_TYPES) expect(h.accept).toContain(type);

    // Again, within the token's lifetime: no token requests, and no 401 round trips.
    fake.seen.length = 0;
    const second = await client.checkMany(items.slice(0, 3));
    expect(second.map((c) => c.status)).toEqual(['up-to-date', 'update-available', 'up-to-date']);
    expect(fake.tokens()).toHaveLength(0);
    expect(fake.heads()).toHaveLength(3);
    expect(fake.heads().every((h) => h.authorization?.startsWith('Bearer tok-'))).toBe(true);

    // A new repository on a registry that challenged before: token first, then one HEAD.
    fake.seen.length = 0;
    fake.tags.set('c/app:1', digest('4'));
    expect((await client.check(ref('c/app', '1'), [repoDigest('c/app', digest('4'))])).status).toBe('up-to-date');
    expect(fake.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /token', 'HEAD /v2/c/app/manifests/1']);

    // After expiry (60 s, minus the margin) the token is fetched again.
    clock += 61_000;
    fake.seen.length = 0;
    expect((await client.check(ref('a/app', '1'), [repoDigest('a/app', digest('1'))])).status).toBe('up-to-date');
    expect(fake.tokens().map((t) => t.query.get('scope'))).toEqual(['repository:a/app:pull']);
  });

  it('reports a registry that wants credentials as not checkable, with the reason', async () => {
    const client = new RegistryClient();
    const check = (repo: string) => client.check(ref(repo), [repoDigest(repo, digest('9'))]);
    const priv = await check('private/app');
    expect(priv.status).toBe('not-checkable');
    expect(priv.reason).toMatch(/refused anonymous access .*private \(needs credentials only the host has\) or does not exist/);
    const basic = await check('basic/app');
    expect(basic.status).toBe('not-checkable');
    expect(basic.reason).toMatch(/Basic authentication/);
    const denied = await check('denied/app');
    expect(denied.status).toBe('not-checkable');
    expect(denied.reason).toMatch(/refused an anonymous token for repository:denied\/app:pull \(401\)/);
    expect((await check('nochallenge/app')).reason).toMatch(/401 without a WWW-Authenticate challenge/);
    for (const c of [priv, basic, denied]) expect(c.localDigest).toBe(digest('9'));
  });

  it('reports registry and network failures as errors with a plain reason', async () => {
    const client = new RegistryClient({ timeoutMs: 400 });
    const check = (reference: string, repo: string) => client.check(reference, [repoDigest(repo, digest('9'))]);
    const broken = await check(ref('broken/app'), 'broken/app');
    expect(broken).toMatchObject({ status: 'error', remoteDigest: null });
    expect(broken.reason).toMatch(/token service 127\.0\.0\.1:\d+ answered 500/);
    expect((await check(ref('limited/app'), 'limited/app')).reason).toMatch(/429 Too Many Requests/);
    fake.tags.delete('a/app:gone');
    expect((await check(ref('a/app', 'gone'), 'a/app')).reason).toMatch(/has no tag "gone" for 127\.0\.0\.1:\d+\/a\/app \(404 Not Found\)/);
    expect((await check(ref('nodigest/app'), 'nodigest/app')).reason).toMatch(/without a Docker-Content-Digest header/);

    const started = Date.now();
    const slow = await check(ref('slow/app'), 'slow/app');
    expect(slow.status).toBe('error');
    expect(slow.reason).toMatch(/no answer within 0\.4 s/);
    expect(Date.now() - started).toBeLessThan(3000);

    const closed = await freePort();
    const refused = await client.check(`127.0.0.1:${closed}/x/app:1`, [`127.0.0.1:${closed}/x/app@${digest('1')}`]);
    expect(refused.status).toBe('error');
    expect(refused.reason).toMatch(/connection refused/);
  });

  it('decides without the network what cannot be checked', async () => {
    const client = new RegistryClient();
    fake.seen.length = 0;
    const pinned = await client.check(`${fake.host}/a/app:1@${digest('5')}`, [repoDigest('a/app', digest('5'))]);
    expect(pinned).toMatchObject({ status: 'not-checkable', localDigest: digest('5'), remoteDigest: null });
    expect(pinned.reason).toMatch(/pinned by digest/);
    expect((await client.check(`app@${digest('6')}`, null)).localDigest).toBe(digest('6'));
    const none = await client.check(ref('a/app', '1'), null);
    expect(none.status).toBe('not-checkable');
    expect(none.reason).toMatch(/no registry digest \(built locally/);
    expect((await client.check(ref('a/app', '1'), [])).reason).toMatch(/no registry digest/);
    const foreign = await client.check(ref('a/app', '1'), [`nginx@${digest('7')}`]);
    expect(foreign.reason).toMatch(/no digest from 127\.0\.0\.1:\d+\/a\/app \(it was tagged locally/);
    const invalid = await client.check('Not/Valid', [`nginx@${digest('7')}`]);
    expect(invalid.status).toBe('not-checkable');
    expect(invalid.reason).toMatch(/is not valid: repository name "valid" must be lowercase|not valid/);
    expect(fake.seen).toHaveLength(0);
  });

  it('runs at most `concurrency` checks at once', async () => {
    const client = new RegistryClient({ concurrency: 3 });
    fake.inFlight.max = 0;
    const items = Array.from({ length: 12 }, (_, i) => {
      fake.tags.set(`delay/r${i}:1`, digest(String(i % 10)));
      return { reference: ref(`delay/r${i}`, '1'), repoDigests: [repoDigest(`delay/r${i}`, digest(String(i % 10)))] };
    });
    const results = await client.checkMany(items);
    expect(results.every((r) => r.status === 'up-to-date')).toBe(true);
    expect(fake.inFlight.max).toBeGreaterThan(1);
    expect(fake.inFlight.max).toBeLessThanOrEqual(3);
  });
});

describe('parseBearerChallenge', () => {
  it('reads realm, service and scope, quoted or not', () => {
    expect(parseBearerChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"')).toEqual({
      ok: true,
      realm: 'https://auth.docker.io/token',
      service: 'registry.docker.io',
      scope: 'repository:library/nginx:pull',
    });
    expect(parseBearerChallenge('bearer realm=https://ghcr.io/token, service=ghcr.io')).toEqual({ ok: true, realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: null });
    expect(parseBearerChallenge('Bearer realm="https://x/t?a=\\"b\\"",error="insufficient_scope"')).toMatchObject({ ok: true, realm: 'https://x/t?a="b"' });
    expect(parseBearerChallenge('Bearer service="x"')).toEqual({ ok: false, reason: 'a Bearer challenge without a realm' });
    expect(parseBearerChallenge('Basic realm="r"')).toMatchObject({ ok: false });
    expect(parseBearerChallenge(null)).toMatchObject({ ok: false });
  });

  it('Semaphore never runs more than n at once', async () => {
    const s = new Semaphore(2);
    let now = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        s.run(async () => {
          max = Math.max(max, ++now);
          await new Promise((r) => setTimeout(r, 5));
          now--;
        }),
      ),
    );
    expect(max).toBe(2);
  });
});

// ---- a real registry ---------------------------------------------------------------------

describe('against a real registry (docker-registry 2.8, images pushed by our code)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('detects a re-pushed tag as an update and an unchanged tag as up to date', async () => {
    const client = new RegistryClient();
    const old = await reg.push('web/nginx', '1.27', { content: 'first' });
    const same = await reg.push('web/redis', '7', { content: 'only', flavour: 'docker' });
    // The host pulled both then; since then web/nginx:1.27 was pushed again with new content.
    const now = await reg.push('web/nginx', '1.27', { content: 'second' });
    expect(now).not.toBe(old);

    const [nginx, redis] = await client.checkMany([
      { reference: `${reg.host}/web/nginx:1.27`, repoDigests: [`${reg.host}/web/nginx@${old}`] },
      { reference: `${reg.host}/web/redis:7`, repoDigests: [`${reg.host}/web/redis@${same}`] },
    ]);
    expect(nginx).toEqual({ status: 'update-available', reason: null, localDigest: old, remoteDigest: now });
    expect(redis).toEqual({ status: 'up-to-date', reason: null, localDigest: same, remoteDigest: same });
  });

  it("gets the index digest for a multi-platform tag (the one docker pull records)", async () => {
    const client = new RegistryClient();
    const index = await reg.pushIndex('web/multi', 'latest');
    expect(await client.check(`${reg.host}/web/multi`, [`${reg.host}/web/multi@${index}`])).toMatchObject({ status: 'up-to-date', remoteDigest: index });
  });

  it('never checks a digest-pinned reference, and reports a missing tag as an error with a reason', async () => {
    const client = new RegistryClient();
    const d = await reg.push('web/pinned', '1', { content: 'pinned' });
    const pinned = await client.check(`${reg.host}/web/pinned@${d}`, [`${reg.host}/web/pinned@${d}`]);
    expect(pinned).toMatchObject({ status: 'not-checkable', localDigest: d, remoteDigest: null });
    expect(client.stats.heads).toBe(0);

    const missing = await client.check(`${reg.host}/web/pinned:2`, [`${reg.host}/web/pinned@${d}`]);
    expect(missing.status).toBe('error');
    expect(missing.reason).toBe(`${reg.host} has no tag "2" for ${reg.host}/web/pinned (404 Not Found)`);
    const gone = await client.check(`${reg.host}/web/never:1`, [`${reg.host}/web/never@${d}`]);
    expect(gone.status).toBe('error');
    expect(gone.reason).toMatch(/404 Not Found/);
  });
});
