// Accounts and the rules around them, against the real Worker in workerd: first-run setup,
// sessions in a __Host- cookie, CSRF, login throttling, roles, API tokens, Cloudflare Access
// mode, the audit log, and no secret in any answer.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, testEnv } from '../test/helpers.ts';
import { jwksCache } from '../auth/access.ts';
import { lockAfter, MAX_LOCK_MS } from '../auth/throttle.ts';
import { hashPassword, verifyPassword, PBKDF2_ITERATIONS } from '../auth/password.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const PASSWORD = 'correct horse battery';

/** The session cookie from a Set-Cookie header, ready for a Cookie header. */
function cookieOf(res: Response): string {
  const set = res.headers.get('Set-Cookie') ?? '';
  const m = /^(__Host-patchman_session=[^;]+)/.exec(set);
  if (!m) throw new Error(`no session cookie in ${JSON.stringify(set)}`);
  return m[1];
}

/** Browser-like headers for a signed-in, same-origin JSON request. */
const browser = (cookie: string, extra: Record<string, string> = {}) => ({ Cookie: cookie, 'Sec-Fetch-Site': 'same-origin', ...extra });

async function setupAdmin(): Promise<string> {
  const res = await api('/api/setup', { method: 'POST', anonymous: true, json: { username: 'Admin', password: PASSWORD, setupSecret: 'test-setup-secret-42' } });
  expect(res.status).toBe(201);
  return cookieOf(res);
}

async function addUser(username: string, role: string): Promise<string> {
  expect((await api('/api/users', { method: 'POST', json: { username, role, password: PASSWORD } })).status).toBe(201);
  const res = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username, password: PASSWORD } });
  expect(res.status).toBe(200);
  return cookieOf(res);
}

describe('passwords', () => {
  it('PBKDF2-SHA256 at workerd\'s maximum, parameters in the hash string', async () => {
    const h = await hashPassword(PASSWORD);
    expect(h).toMatch(new RegExp(`^pbkdf2-sha256\\$${PBKDF2_ITERATIONS}\\$[A-Za-z0-9_-]{22}\\$[A-Za-z0-9_-]{43}$`));
    expect(PBKDF2_ITERATIONS).toBe(100_000);
    expect(await verifyPassword(PASSWORD, h)).toBe(true);
    expect(await verifyPassword(PASSWORD + 'x', h)).toBe(false);
    expect(await hashPassword(PASSWORD)).not.toBe(h); // salted
    // a hash made with fewer iterations still verifies (the count is read from the string)
    expect(await verifyPassword('x', await hashPassword('x', 1000))).toBe(true);
  });
});

describe('first run', () => {
  it('creates the admin once; away from localhost only with the setup secret', async () => {
    expect(await json(api('/api/setup', { anonymous: true }))).toEqual({ needed: true, secretRequired: true, secretConfigured: true });
    const noSecret = await api('/api/setup', { method: 'POST', anonymous: true, json: { username: 'admin', password: PASSWORD } });
    expect(noSecret.status).toBe(403);
    const wrong = await api('/api/setup', { method: 'POST', anonymous: true, json: { username: 'admin', password: PASSWORD, setupSecret: 'guess' } });
    expect(wrong.status).toBe(403);
    expect((await json(wrong)).error.field).toBe('setupSecret');
    const short = await api('/api/setup', { method: 'POST', anonymous: true, json: { username: 'admin', password: 'short', setupSecret: 'test-setup-secret-42' } });
    expect((await json(short)).error.field).toBe('password');

    const cookie = await setupAdmin();
    const me = await json(api('/api/auth/me', { headers: { Cookie: cookie } }));
    expect(me).toMatchObject({ user: { username: 'admin', role: 'admin' }, via: 'user' });
    expect((await api('/api/setup', { method: 'POST', anonymous: true, json: { username: 'x', password: PASSWORD, setupSecret: 'test-setup-secret-42' } })).status).toBe(409);
    expect((await json(api('/api/setup', { anonymous: true }))).needed).toBe(false);
  });

  it('on localhost no secret is needed', async () => {
    const state = await json(api('/api/setup', { anonymous: true, base: 'http://127.0.0.1:8787' }));
    expect(state).toMatchObject({ needed: true, secretRequired: false });
    const res = await api('/api/setup', { method: 'POST', anonymous: true, base: 'http://127.0.0.1:8787', json: { username: 'me', password: PASSWORD } });
    expect(res.status).toBe(201);
  });
});

describe('sessions and CSRF', () => {
  it('no credentials → 401; login sets a __Host- cookie that is HttpOnly, Secure, SameSite=Strict', async () => {
    expect((await api('/api/hosts', { anonymous: true })).status).toBe(401);
    expect((await api('/api/health', { anonymous: true })).status).toBe(200);
    await setupAdmin();
    const bad = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: 'admin', password: 'wrong password!' } });
    expect(bad.status).toBe(401);
    expect((await json(bad)).error.message).toBe('wrong user name or password');
    const unknown = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: 'nobody', password: PASSWORD } });
    expect((await json(unknown)).error.message).toBe('wrong user name or password');

    const res = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: 'admin', password: PASSWORD } });
    expect(res.status).toBe(200);
    const set = res.headers.get('Set-Cookie')!;
    expect(set).toMatch(/^__Host-patchman_session=pms_[A-Za-z0-9_-]{43};/);
    expect(set).toMatch(/; Path=\//);
    expect(set).toMatch(/; HttpOnly/);
    expect(set).toMatch(/; Secure/);
    expect(set).toMatch(/; SameSite=Strict/);
    expect(set).not.toMatch(/Domain=/);
    const cookie = cookieOf(res);
    expect((await api('/api/hosts', { headers: { Cookie: cookie } })).status).toBe(200);

    // logout ends the session for good
    expect((await api('/api/auth/logout', { method: 'POST', json: {}, headers: browser(cookie) })).status).toBe(204);
    expect((await api('/api/hosts', { headers: { Cookie: cookie } })).status).toBe(401);
  });

  it('refuses cross-site requests and non-JSON bodies from a browser session', async () => {
    const cookie = await setupAdmin();
    const host = { address: '192.0.2.9' };
    const { id: relayId } = await createRelay();
    expect((await api('/api/hosts', { method: 'POST', json: { ...host, relayId }, headers: browser(cookie, { 'Sec-Fetch-Site': 'cross-site' }) })).status).toBe(403);
    expect((await api('/api/hosts', { method: 'POST', json: { ...host, relayId }, headers: browser(cookie, { 'Sec-Fetch-Site': 'same-site' }) })).status).toBe(403);
    expect((await api('/api/hosts', { method: 'POST', json: { ...host, relayId }, headers: { Cookie: cookie, Origin: 'https://evil.example' } })).status).toBe(403);
    const form = await api('/api/hosts', { method: 'POST', body: `address=192.0.2.9`, headers: browser(cookie, { 'Content-Type': 'application/x-www-form-urlencoded' }) });
    expect(form.status).toBe(415);
    const text = await api('/api/hosts', { method: 'POST', body: JSON.stringify({ ...host, relayId }), headers: browser(cookie, { 'Content-Type': 'text/plain' }) });
    expect(text.status).toBe(415);
    expect(await json(api('/api/hosts'))).toEqual([]); // nothing was stored
    const ok = await api('/api/hosts', { method: 'POST', json: { ...host, relayId }, headers: browser(cookie, { Origin: 'http://patchman.test' }) });
    expect(ok.status).toBe(201);
    // login itself is protected the same way (login CSRF)
    expect((await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: 'admin', password: PASSWORD }, headers: { 'Sec-Fetch-Site': 'cross-site' } })).status).toBe(403);
  });

  it('refuses a session past its idle or absolute expiry', async () => {
    const cookie = await setupAdmin();
    // a read a moment before does not keep the session alive: every request asks D1
    expect((await api('/api/hosts', { headers: { Cookie: cookie } })).status).toBe(200);
    await testEnv.DB.prepare('UPDATE sessions SET last_seen_at = ?').bind(Date.now() - 13 * 3_600_000).run();
    expect((await api('/api/hosts', { headers: { Cookie: cookie } })).status).toBe(401);

    const res = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: 'admin', password: PASSWORD } });
    const fresh = cookieOf(res);
    await testEnv.DB.prepare('UPDATE sessions SET expires_at = ?').bind(Date.now() - 1000).run();
    expect((await api('/api/hosts', { headers: { Cookie: fresh } })).status).toBe(401);
    const { results } = await testEnv.DB.prepare('SELECT count(*) AS n FROM sessions').all<{ n: number }>();
    expect(results[0].n).toBe(0); // expired sessions are deleted when seen
  });
});

describe('login throttling', () => {
  it('after 5 failures: 429 with Retry-After, growing, capped; only for that account and address', async () => {
    await setupAdmin();
    const login = (password: string, ip = '198.51.100.1') =>
      api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: 'admin', password }, headers: { 'CF-Connecting-IP': ip } });
    for (let i = 0; i < 4; i++) expect((await login('wrong password ' + i)).status).toBe(401);
    const fifth = await login('wrong password 5');
    expect(fifth.status).toBe(401);
    expect(Number(fifth.headers.get('Retry-After'))).toBe(30);
    const locked = await login(PASSWORD); // even the right password waits
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect(Number(locked.headers.get('Retry-After'))).toBeLessThanOrEqual(30);
    expect((await json(locked)).error.code).toBe('throttled');
    // the real user, elsewhere, is not locked out
    expect((await login(PASSWORD, '203.0.113.7')).status).toBe(200);
    // the lockout doubles and stops at the cap
    expect([5, 6, 7, 20].map(lockAfter)).toEqual([30_000, 60_000, 120_000, MAX_LOCK_MS]);
    expect(lockAfter(4)).toBe(0);
    // after the lock, a right password resets the count
    await testEnv.DB.prepare('UPDATE login_throttle SET locked_until = ?').bind(Date.now() - 1).run();
    expect((await login(PASSWORD)).status).toBe(200);
    expect((await login('wrong again')).headers.get('Retry-After')).toBeNull();
  });
});

describe('roles and API tokens', () => {
  it('viewer reads only; operator scans and patches but does not administer; admin does everything', async () => {
    await setupAdmin();
    const { id: relayId } = await createRelay();
    const host = await json(api('/api/hosts', { method: 'POST', json: { address: '192.0.2.30', relayId } }));
    const viewer = await addUser('vera', 'viewer');
    const operator = await addUser('otto', 'operator');

    expect((await api('/api/hosts', { headers: { Cookie: viewer } })).status).toBe(200);
    for (const [path, body] of [
      [`/api/hosts/${host.id}/upgrade`, { confirm: true }],
      [`/api/hosts/${host.id}/reboot`, { confirm: true }],
      [`/api/hosts/${host.id}/scan`, {}],
      ['/api/scans', {}],
    ] as const) {
      const res = await api(path, { method: 'POST', json: body, headers: browser(viewer) });
      expect(res.status, path).toBe(403);
      expect((await json(res)).error.message).toMatch(/needs the operator role; vera is a viewer/);
    }
    expect((await api(`/api/hosts/${host.id}/scan`, { method: 'POST', json: {}, headers: browser(operator) })).status).toBe(202);
    expect((await api('/api/hosts', { method: 'POST', json: { address: '192.0.2.31', relayId }, headers: browser(operator) })).status).toBe(403);
    expect((await api('/api/relays', { method: 'POST', json: { name: 'x' }, headers: browser(operator) })).status).toBe(403);
    expect((await api('/api/settings', { method: 'PUT', json: { retentionDays: 5 }, headers: browser(operator) })).status).toBe(403);
    expect((await api('/api/users', { headers: { Cookie: operator } })).status).toBe(403);
    expect((await api('/api/audit', { headers: { Cookie: viewer } })).status).toBe(403);
  });

  it('a token is shown once, works with its role, and stops working when revoked', async () => {
    const made = await api('/api/tokens', { method: 'POST', json: { name: 'ci', role: 'viewer' } });
    expect(made.status).toBe(201);
    const { token, secret } = await json(made);
    expect(secret).toMatch(/^pmt_[A-Za-z0-9_-]{43}$/);
    const auth = { Authorization: `Bearer ${secret}` };
    expect((await api('/api/hosts', { headers: auth })).status).toBe(200);
    expect((await api('/api/scans', { method: 'POST', json: {}, headers: auth })).status).toBe(403);
    const list = await json(api('/api/tokens'));
    expect(list.find((t: any) => t.id === token.id)).toMatchObject({ name: 'ci', role: 'viewer', createdBy: 'token:tests' });
    expect(JSON.stringify(list)).not.toContain(secret);
    expect((await api(`/api/tokens/${token.id}`, { method: 'DELETE' })).status).toBe(204);
    const revoked = await api('/api/hosts', { headers: auth });
    expect(revoked.status).toBe(401);
    expect((await api('/api/hosts', { headers: { Authorization: 'Bearer pmt_never-issued' } })).status).toBe(401);
  });

  it('the last admin cannot be demoted, disabled or deleted; disabling a user ends their sessions', async () => {
    await setupAdmin();
    const [admin] = (await json(api('/api/users'))).filter((u: any) => u.username === 'admin');
    expect((await api(`/api/users/${admin.id}`, { method: 'PATCH', json: { role: 'viewer' } })).status).toBe(409);
    expect((await api(`/api/users/${admin.id}`, { method: 'DELETE' })).status).toBe(409);
    const vera = await addUser('vera', 'viewer');
    const [v] = (await json(api('/api/users'))).filter((u: any) => u.username === 'vera');
    expect((await api(`/api/users/${v.id}`, { method: 'PATCH', json: { disabled: true } })).status).toBe(200);
    expect((await api('/api/hosts', { headers: { Cookie: vera } })).status).toBe(401);
    const bad = await api('/api/users', { method: 'POST', json: { username: 'bad name;id', role: 'viewer' } });
    expect((await json(bad)).error.field).toBe('username');
    expect((await json(api('/api/users', { method: 'POST', json: { username: 'x', role: 'root' } }))).error.field).toBe('role');
  });

  it('a relay whose token was revoked cannot connect', async () => {
    const { id, token } = await createRelay();
    expect((await api(`/api/relays/${id}`, { method: 'DELETE' })).status).toBe(204);
    await expect(FakeRelay.connect(token)).rejects.toThrow(/401|no websocket/);
  });
});

describe('the audit log', () => {
  it('records every attempt to change something — who, what, target, status, from where — and never a password', async () => {
    const cookie = await setupAdmin();
    const { id: relayId } = await createRelay();
    const host = await json(api('/api/hosts', { method: 'POST', json: { address: '192.0.2.40', relayId }, headers: browser(cookie, { 'CF-Connecting-IP': '203.0.113.9' }) }));
    await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: 'admin', password: 'not it at all' } });
    const vera = await addUser('vera', 'viewer');
    await api(`/api/hosts/${host.id}/reboot`, { method: 'POST', json: { confirm: true }, headers: browser(vera) });
    const log = await json(api('/api/audit'));
    const actions = log.map((e: any) => `${e.actor} ${e.action} ${e.status}`);
    expect(actions).toContain('admin POST /api/hosts 201');
    expect(actions).toContain('admin login (failed) 401');
    expect(actions).toContain('vera POST /api/hosts/:id/reboot 403');
    expect(actions).toContain('token:tests POST /api/relays 201');
    expect(log.find((e: any) => e.action === 'POST /api/hosts')).toMatchObject({ ip: '203.0.113.9', actorType: 'user' });
    expect(log.find((e: any) => e.action === 'POST /api/hosts/:id/reboot').target).toBe(host.id);
    expect(JSON.stringify(log)).not.toContain(PASSWORD);
    expect(JSON.stringify(log)).not.toContain('not it at all');
  });
});

describe('no secret in any answer', () => {
  it('tokens, password hashes and token hashes never appear in API responses', async () => {
    const cookie = await setupAdmin();
    const { token: relayToken } = await createRelay();
    const { secret } = await json(api('/api/tokens', { method: 'POST', json: { name: 'script', role: 'operator' } }));
    await addUser('vera', 'viewer');
    const { results: hashes } = await testEnv.DB.prepare(
      "SELECT token_hash AS h FROM relays UNION ALL SELECT token_hash FROM api_tokens UNION ALL SELECT token_hash FROM sessions UNION ALL SELECT password_hash FROM users WHERE password_hash IS NOT NULL",
    ).all<{ h: string }>();
    expect(hashes.length).toBeGreaterThanOrEqual(6);
    const bodies: string[] = [];
    for (const path of ['/api/relays', '/api/tokens', '/api/users', '/api/audit', '/api/auth/me', '/api/settings', '/api/hosts', '/api/jobs', '/api/summary', '/api/setup']) {
      const res = await api(path, { headers: { Cookie: cookie } });
      expect(res.status, path).toBe(200);
      bodies.push(await res.text());
    }
    const all = bodies.join('\n');
    for (const s of [relayToken, secret, ...hashes.map((r) => r.h), 'pbkdf2', PASSWORD]) expect(all).not.toContain(s);
    expect(all).not.toMatch(/pm[rst]_[A-Za-z0-9_-]{20,}/);
  });
});

describe('Cloudflare Access mode', () => {
  it('trusts a verified assertion for a known user, refuses everything else, and turns password login off', async () => {
    const team = 'lab.cloudflareaccess.com';
    const aud = 'a'.repeat(64);
    const pair = (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const pub = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JsonWebKey;
    jwksCache.set(team, { keys: [{ kid: 'k1', kty: 'RSA', n: pub.n!, e: pub.e! }], at: Date.now() });
    const b64 = (x: string | Uint8Array) => btoa(typeof x === 'string' ? x : String.fromCharCode(...x)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
    const sign = async (claims: Record<string, unknown>, key: CryptoKey = pair.privateKey) => {
      const head = b64(JSON.stringify({ alg: 'RS256', kid: 'k1', typ: 'JWT' }));
      const body = b64(JSON.stringify(claims));
      const sig = new Uint8Array(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', key, new TextEncoder().encode(`${head}.${body}`)));
      return `${head}.${body}.${b64(sig)}`;
    };
    const now = Math.floor(Date.now() / 1000);
    const good = { aud: [aud], iss: `https://${team}`, exp: now + 600, email: 'Ops@Example.com' };

    expect((await api('/api/settings', { method: 'PUT', json: { accessEnabled: true } })).status).toBe(400); // domain and AUD first
    expect((await api('/api/users', { method: 'POST', json: { username: 'ops@example.com', role: 'operator' } })).status).toBe(201);
    expect((await api('/api/settings', { method: 'PUT', json: { accessEnabled: true, accessTeamDomain: team, accessAudience: aud } })).status).toBe(200);

    const as = async (jwt: string | null) => api('/api/auth/me', { anonymous: true, headers: jwt ? { 'Cf-Access-Jwt-Assertion': jwt } : {} });
    const me = await as(await sign(good));
    expect(me.status).toBe(200);
    expect(await json(me)).toMatchObject({ user: { username: 'ops@example.com', role: 'operator' }, via: 'access' });
    expect((await as(null)).status).toBe(401);
    expect((await as(await sign({ ...good, aud: ['b'.repeat(64)] }))).status).toBe(401);
    expect((await as(await sign({ ...good, exp: now - 5 }))).status).toBe(401);
    expect((await as(await sign({ ...good, iss: 'https://other.cloudflareaccess.com' }))).status).toBe(401);
    const forged = (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    expect((await as(await sign(good, forged.privateKey))).status).toBe(401);
    const stranger = await as(await sign({ ...good, email: 'eve@example.com' }));
    expect(stranger.status).toBe(403);
    expect((await json(stranger)).error.message).toMatch(/eve@example.com passed Cloudflare Access but has no PatchMan account/);
    expect((await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: 'x', password: PASSWORD } })).status).toBe(409);
    // scripts keep their API tokens
    expect((await api('/api/hosts')).status).toBe(200);
  });
});

describe('GET /api/auth/session', () => {
  it('answers 200 {me: null} to a stranger (the sign-in page logs no failed request), and who is signed in otherwise', async () => {
    const stranger = await api('/api/auth/session', { anonymous: true });
    expect(stranger.status).toBe(200);
    expect(await stranger.json()).toEqual({ me: null });
    // /api/auth/me keeps its 401 for scripts
    expect((await api('/api/auth/me', { anonymous: true })).status).toBe(401);
    const cookie = await addUser('sessionuser', 'viewer');
    const mine = await json(api('/api/auth/session', { headers: browser(cookie) }));
    expect(mine).toMatchObject({ me: { user: { username: 'sessionuser', role: 'viewer' }, via: 'user' } });
    const token = await json(api('/api/auth/session'));
    expect(token.me.via).toBe('token');
    // a bad token is still "nobody", not a 500
    expect(await json(api('/api/auth/session', { headers: { Authorization: 'Bearer pmt_nope' } }))).toEqual({ me: null });
  });
});
