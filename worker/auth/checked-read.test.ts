// The hot reads check their credential in their own D1 batch (checked-read.ts): one D1 round
// trip per request, and still no answer without a credential verified in that same request.
import { beforeEach, describe, expect, it } from 'vitest';
import { desc, sql } from 'drizzle-orm';
import { Hono } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../env.ts';
import { ApiError, errorResponse } from '../lib/http.ts';
import { authenticate } from './middleware.ts';
import { jwksCache } from './access.ts';
import { readChecked } from './checked-read.ts';
import { app } from '../app.ts';
import { api, countingD1, createRelay, testEnv, ADMIN_TOKEN } from '../test/helpers.ts';
import { openDb, schema } from '../db/index.ts';
import { hostGroupsFrom, hostGroupsQuery, hostListQuery, hostPage, hostPageQueries } from '../host-query.ts';
import { HostListQuery } from '../../protocol/host-query.ts';
import { hostJson, jobJson } from '../lib/serialize.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const PASSWORD = 'correct horse battery';
const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });

/** Every path of the allowlist, with the query strings the dashboard sends. */
const ROUTES = [
  '/api/summary',
  '/api/hosts',
  '/api/hosts?limit=50',
  '/api/hosts?limit=2&offset=1&sort=updates&q=web',
  '/api/hosts/groups?by=tag',
  '/api/hosts/groups?by=os',
  '/api/hosts/groups?by=packageManager',
  '/api/hosts/groups?by=relay',
  '/api/hosts/h1/updates',
  '/api/jobs',
  '/api/jobs?limit=100&hostId=h1',
];

/** Requests a route refuses with 400 once the caller is known. */
const BAD_QUERIES = ['/api/hosts?limit=abc', '/api/hosts?sort=nope', '/api/hosts/groups?by=nope', '/api/jobs?limit=-5'];

async function seed() {
  const relay = await createRelay('alpha');
  const db = openDb(testEnv.DB);
  const now = Date.now();
  const base = { port: 22, user: 'root', relayId: relay.id, createdAt: now, updatedAt: now };
  await db.insert(schema.hosts).values([
    { ...base, id: 'h1', name: 'web1', address: '10.0.0.1', tags: ['web', 'prod'], status: 'online', osId: 'debian', osName: 'Debian GNU/Linux', packageManager: 'apt', updatesCount: 3, securityCount: 2, rebootRequired: true },
    { ...base, id: 'h2', name: 'db1', address: '10.0.0.2', tags: [], status: 'offline', osId: 'rocky', osName: 'Rocky Linux', packageManager: 'dnf', updatesCount: 0, securityCount: 0 },
  ]);
  await db.insert(schema.hostUpdates).values([
    { hostId: 'h1', name: 'tzdata', arch: 'all', currentVersion: '2024a', newVersion: '2025b', repository: 'stable', security: false },
    { hostId: 'h1', name: 'openssl', arch: 'amd64', currentVersion: '3.0.15', newVersion: '3.0.17', repository: 'stable-security', security: true },
    { hostId: 'h1', name: 'libssl3', arch: 'amd64', currentVersion: '3.0.15', newVersion: '3.0.17', repository: 'stable-security', security: true },
  ]);
  await db.insert(schema.jobs).values([
    { id: 'j1', kind: 'scan', hostId: 'h1', status: 'succeeded', createdAt: now - 3000, requestedBy: 'tests' },
    { id: 'j2', kind: 'upgrade', hostId: 'h1', status: 'failed', createdAt: now - 2000, errorCode: 'x', errorMessage: 'broke' },
    { id: 'j3', kind: 'scan', hostId: 'h2', status: 'queued', createdAt: now - 1000 },
  ]);
}

/** A user with a browser session (and another admin, so this one may be demoted or disabled). */
async function userWithSession(username: string, role: string): Promise<{ id: string; cookie: string }> {
  const made = await api('/api/users', { method: 'POST', json: { username, role, password: PASSWORD } });
  expect(made.status).toBe(201);
  const res = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username, password: PASSWORD } });
  expect(res.status).toBe(200);
  return { id: (await json(made)).id, cookie: /^(__Host-patchman_session=[^;]+)/.exec(res.headers.get('Set-Cookie') ?? '')![1] };
}

async function tokenMadeBy(cookie: string, role: string): Promise<string> {
  const res = await api('/api/tokens', { method: 'POST', json: { name: `t-${role}`, role }, headers: { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' } });
  expect(res.status).toBe(201);
  return (await json(res)).secret;
}

/** The status of every allowlisted route for these headers. */
async function statuses(headers: Record<string, string>, paths = ROUTES): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of paths) out[p] = (await api(p, { anonymous: true, headers })).status;
  return out;
}
const all = (status: number, paths = ROUTES) => Object.fromEntries(paths.map((p) => [p, status]));

describe('hot reads: the credential is checked in the same request', () => {
  beforeEach(seed);

  it('no credential, or one that cannot be: 401 everywhere; a bad query without a credential is 401, not 400', async () => {
    expect(await statuses({})).toEqual(all(401));
    expect(await statuses(bearer('pmt_never-issued'))).toEqual(all(401));
    expect(await statuses(bearer('not-a-token'))).toEqual(all(401));
    expect(await statuses({ Cookie: '__Host-patchman_session=pms_never-issued' })).toEqual(all(401));
    expect(await statuses({}, BAD_QUERIES)).toEqual(all(401, BAD_QUERIES));
    expect(await statuses(bearer('pmt_never-issued'), BAD_QUERIES)).toEqual(all(401, BAD_QUERIES));
    expect(await statuses({}, ['/api/hosts/nope/updates'])).toEqual({ '/api/hosts/nope/updates': 401 });
    // the caller known, the route's own answers are as ever
    expect(await statuses(bearer(ADMIN_TOKEN), BAD_QUERIES)).toEqual(all(400, BAD_QUERIES));
    expect((await json(api('/api/jobs?limit=-5'))).error.field).toBe('limit');
    expect(await statuses(bearer(ADMIN_TOKEN), ['/api/hosts/nope/updates'])).toEqual({ '/api/hosts/nope/updates': 404 });
  });

  it('a revoked token stops working at once; so does a token whose owner is disabled', async () => {
    await api('/api/users', { method: 'POST', json: { username: 'keeper', role: 'admin', password: PASSWORD } });
    const alice = await userWithSession('alice', 'admin');
    const viewer = await tokenMadeBy(alice.cookie, 'viewer');
    const other = await tokenMadeBy(alice.cookie, 'admin');
    expect(await statuses(bearer(viewer))).toEqual(all(200));
    const id = (await json(api('/api/tokens'))).find((t: any) => t.name === 't-viewer').id;
    expect((await api(`/api/tokens/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await statuses(bearer(viewer))).toEqual(all(401));
    // the owner disabled behind the API's back (no revocation): the owner rule alone refuses
    expect(await statuses(bearer(other))).toEqual(all(200));
    await testEnv.DB.prepare('UPDATE users SET disabled_at = ? WHERE id = ?').bind(Date.now(), alice.id).run();
    expect(await statuses(bearer(other))).toEqual(all(401));
    expect(await statuses({ Cookie: alice.cookie })).toEqual(all(401));
  });

  it('a session signed out, idle or past its expiry is refused at once', async () => {
    const vera = await userWithSession('vera', 'viewer');
    expect(await statuses({ Cookie: vera.cookie })).toEqual(all(200));
    expect((await api('/api/auth/logout', { method: 'POST', json: {}, headers: { Cookie: vera.cookie, 'Sec-Fetch-Site': 'same-origin' } })).status).toBe(204);
    expect(await statuses({ Cookie: vera.cookie })).toEqual(all(401));

    const idle = await userWithSession('ida', 'viewer');
    await testEnv.DB.prepare('UPDATE sessions SET last_seen_at = ?').bind(Date.now() - 13 * 3_600_000).run();
    expect(await statuses({ Cookie: idle.cookie })).toEqual(all(401));

    const old = await userWithSession('otto', 'viewer');
    expect(await statuses({ Cookie: old.cookie }, ['/api/summary'])).toEqual({ '/api/summary': 200 });
    await testEnv.DB.prepare('UPDATE sessions SET expires_at = ?').bind(Date.now() - 1000).run();
    expect(await statuses({ Cookie: old.cookie })).toEqual(all(401));
    const { results } = await testEnv.DB.prepare('SELECT count(*) AS n FROM sessions').all<{ n: number }>();
    expect(results[0].n).toBe(0); // expired sessions are deleted when seen
  });

  it('answers what the queries answer on their own, the same for a token and a session', async () => {
    const db = openDb(testEnv.DB);
    const q = v.parse(HostListQuery, {});
    const [countRows, pageRows] = hostPageQueries(db, { ...q, limit: 50 });
    const expected: Record<string, unknown> = {
      '/api/summary': { hosts: 2, online: 1, offline: 1, needUpdates: 1, pendingPackages: 3, securityPackages: 2, securityHosts: 1, needReboot: 1, stacksWithUpdates: 0 },
      '/api/hosts': (await hostListQuery(db, q)).map(hostJson),
      '/api/hosts?limit=50': hostPage([await countRows, await pageRows]),
      '/api/hosts/h1/updates': [
        { name: 'libssl3', arch: 'amd64', currentVersion: '3.0.15', newVersion: '3.0.17', repository: 'stable-security', security: true },
        { name: 'openssl', arch: 'amd64', currentVersion: '3.0.15', newVersion: '3.0.17', repository: 'stable-security', security: true },
        { name: 'tzdata', arch: 'all', currentVersion: '2024a', newVersion: '2025b', repository: 'stable', security: false },
      ],
      '/api/jobs': (await db.select().from(schema.jobs).orderBy(desc(schema.jobs.createdAt))).map(jobJson),
    };
    for (const by of ['tag', 'os', 'packageManager', 'relay'] as const) {
      expected[`/api/hosts/groups?by=${by}`] = { by, groups: hostGroupsFrom(by, await hostGroupsQuery(db, by, {})) };
    }
    expect((expected['/api/hosts/groups?by=packageManager'] as any).groups.map((g: any) => g.label)).toEqual(['apt', 'dnf']);
    expect((expected['/api/hosts/groups?by=relay'] as any).groups).toMatchObject([{ label: 'alpha', hosts: 2 }]);
    const vera = await userWithSession('vera', 'viewer');
    for (const [path, answer] of Object.entries(expected)) {
      const byToken = await api(path);
      expect(byToken.status, path).toBe(200);
      const text = await byToken.text();
      expect(JSON.parse(text), path).toEqual(answer);
      expect(await (await api(path, { headers: { Cookie: vera.cookie } })).text(), path).toBe(text);
    }
  });
});

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;

describe('hot reads: one D1 round trip each', () => {
  beforeEach(seed);

  it('token or session: the credential check and the route’s reads travel in ONE batch', async () => {
    const vera = await userWithSession('vera', 'viewer');
    // once through, so that the token's lastUsedAt (written at most every minute) is fresh
    expect((await api('/api/summary')).status).toBe(200);
    for (const headers of [bearer(ADMIN_TOKEN), { Cookie: vera.cookie }]) {
      for (const path of ['/api/summary', '/api/hosts?limit=50', '/api/hosts', '/api/hosts/groups?by=tag', '/api/hosts/h1/updates', '/api/jobs?limit=100']) {
        const { d1, calls } = countingD1(testEnv.DB);
        const res = await app.fetch(new Request(`http://patchman.test${path}`, { headers }), { ...testEnv, DB: d1 }, ctx);
        expect(res.status, path).toBe(200);
        expect(calls, `${path} with ${Object.keys(headers)[0]}`).toEqual(['batch']);
      }
    }
    // the count is real: a route outside the allowlist pays for the check on its own
    const { d1, calls } = countingD1(testEnv.DB);
    expect((await app.fetch(new Request('http://patchman.test/api/hosts/h1', { headers: bearer(ADMIN_TOKEN) }), { ...testEnv, DB: d1 }, ctx)).status).toBe(200);
    expect(calls.length).toBe(2);
  });

  it('no token and no session: refused after the settings alone, the route’s reads are not run', async () => {
    for (const path of ['/api/hosts', '/api/jobs?limit=100']) {
      const { d1, calls, batchSizes } = countingD1(testEnv.DB);
      const res = await app.fetch(new Request(`http://patchman.test${path}`), { ...testEnv, DB: d1 }, ctx);
      expect(res.status, path).toBe(401);
      expect(calls.every((c) => c === 'batch'), path).toBe(true);
      expect(batchSizes.length > 0 && batchSizes.every((n) => n === 1), `${path}: ${batchSizes}`).toBe(true);
    }
  });
});

/** Allowlisted paths served by handlers that misbehave: the middleware must still hold every
 * answer back until the caller's credential has been verified in this request. */
const tiny = new Hono<AppEnv>()
  .use('/api/*', authenticate)
  // answers without ever calling readChecked
  .get('/api/summary', (c) => c.json({ leaked: true }))
  // an early error before readChecked
  .get('/api/jobs', () => {
    throw new ApiError(400, 'invalid', 'limit: too small', 'limit');
  })
  // a route that does call readChecked, telling who it was told the caller is
  .get('/api/hosts', async (c) => {
    const [[counted]] = await readChecked(c, [openDb(c.env.DB).select({ n: sql<number>`count(*)` }).from(schema.hosts)]);
    return c.json({ identity: c.get('identity'), hosts: counted.n });
  })
  .onError((err, c) => errorResponse(c, err));

const tinyGet = (path: string, headers: Record<string, string> = {}) => tiny.fetch(new Request(`http://patchman.test${path}`, { headers }), testEnv, ctx);

describe('the middleware behind the hot reads', () => {
  beforeEach(seed);

  it('an allowlisted handler that skips readChecked cannot answer without a verified credential', async () => {
    await api('/api/users', { method: 'POST', json: { username: 'keeper', role: 'admin', password: PASSWORD } });
    const alice = await userWithSession('alice', 'admin');
    const token = await tokenMadeBy(alice.cookie, 'viewer');
    for (const headers of [{}, bearer('pmt_never-issued'), { Cookie: '__Host-patchman_session=pms_nope' }] as Record<string, string>[]) {
      const res = await tinyGet('/api/summary', headers);
      expect(res.status).toBe(401);
      expect(await res.text()).not.toContain('leaked');
      expect((await tinyGet('/api/jobs', headers)).status).toBe(401);
    }
    expect(await json(tinyGet('/api/summary', bearer(token)))).toEqual({ leaked: true });
    expect(await json(tinyGet('/api/summary', { Cookie: alice.cookie }))).toEqual({ leaked: true });
    expect((await tinyGet('/api/jobs', bearer(token))).status).toBe(400);
    // revoked: refused at once, even by the handler that never asked
    const id = (await json(api('/api/tokens'))).find((t: any) => t.name === 't-viewer').id;
    expect((await api(`/api/tokens/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await tinyGet('/api/summary', bearer(token))).status).toBe(401);
    expect((await tinyGet('/api/hosts', bearer(token))).status).toBe(401);
  });

  it('readChecked tells the route who is calling, a token capped by its owner\'s current role', async () => {
    await api('/api/users', { method: 'POST', json: { username: 'keeper', role: 'admin', password: PASSWORD } });
    const alice = await userWithSession('alice', 'admin');
    const token = await tokenMadeBy(alice.cookie, 'admin');
    expect(await json(tinyGet('/api/hosts', bearer(token)))).toMatchObject({ identity: { kind: 'token', name: 'token:t-admin', role: 'admin' }, hosts: 2 });
    expect((await api(`/api/users/${alice.id}`, { method: 'PATCH', json: { role: 'viewer' } })).status).toBe(200);
    expect(await json(tinyGet('/api/hosts', bearer(token)))).toMatchObject({ identity: { kind: 'token', role: 'viewer' } });
    // the same session, demoted: its reads carry its role now
    expect(await json(tinyGet('/api/hosts', { Cookie: alice.cookie }))).toMatchObject({ identity: { kind: 'user', name: 'alice', role: 'viewer' } });
    // and the hot reads still answer a demoted caller
    expect(await statuses(bearer(token))).toEqual(all(200));
  });
});

describe('hot reads in Cloudflare Access mode', () => {
  beforeEach(seed);

  it('the batch shows Access mode is on: the assertion counts (verified, then its user looked up), a session cookie does not', async () => {
    const team = 'hot.cloudflareaccess.com';
    const aud = 'c'.repeat(64);
    const pair = (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const pub = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JsonWebKey;
    jwksCache.set(team, { keys: [{ kid: 'k1', kty: 'RSA', n: pub.n!, e: pub.e! }], at: Date.now() });
    const b64 = (x: string | Uint8Array) => btoa(typeof x === 'string' ? x : String.fromCharCode(...x)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
    const sign = async (claims: Record<string, unknown>) => {
      const head = b64(JSON.stringify({ alg: 'RS256', kid: 'k1', typ: 'JWT' }));
      const body = b64(JSON.stringify(claims));
      const sig = new Uint8Array(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', pair.privateKey, new TextEncoder().encode(`${head}.${body}`)));
      return `${head}.${body}.${b64(sig)}`;
    };
    const now = Math.floor(Date.now() / 1000);
    const good = { aud: [aud], iss: `https://${team}`, exp: now + 600, email: 'ops@example.com' };
    const vera = await userWithSession('vera', 'viewer');
    expect((await api('/api/users', { method: 'POST', json: { username: 'ops@example.com', role: 'viewer' } })).status).toBe(201);
    expect((await api('/api/settings', { method: 'PUT', json: { accessEnabled: true, accessTeamDomain: team, accessAudience: aud } })).status).toBe(200);

    expect(await statuses({ 'Cf-Access-Jwt-Assertion': await sign(good) })).toEqual(all(200));
    expect(await json(api('/api/summary', { anonymous: true, headers: { 'Cf-Access-Jwt-Assertion': await sign(good) } }))).toMatchObject({ hosts: 2 });
    expect(await statuses({ 'Cf-Access-Jwt-Assertion': await sign({ ...good, exp: now - 5 }) })).toEqual(all(401));
    expect(await statuses({ 'Cf-Access-Jwt-Assertion': await sign({ ...good, email: 'eve@example.com' }) })).toEqual(all(403));
    expect(await statuses({ Cookie: vera.cookie })).toEqual(all(401));
    expect(await statuses({})).toEqual(all(401));
    // scripts keep their tokens
    expect(await statuses(bearer(ADMIN_TOKEN))).toEqual(all(200));
  });
});
