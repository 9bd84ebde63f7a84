// Reads reuse the caller's identity for a few seconds (identity-cache.ts); revoking a token,
// signing out, disabling or demoting a user still takes effect at once, and nothing that
// changes something is ever allowed on a remembered identity.
import { describe, expect, it } from 'vitest';
import { api, testEnv } from '../test/helpers.ts';

const PASSWORD = 'correct horse battery';
const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

async function tokenFor(role: string): Promise<{ id: string; secret: string }> {
  const res = await api('/api/tokens', { method: 'POST', json: { name: `t-${role}`, role } });
  expect(res.status).toBe(201);
  const body = await json(res);
  return { id: body.token?.id ?? body.id, secret: body.secret };
}

async function signIn(username: string, role: string): Promise<{ id: string; cookie: string }> {
  const made = await api('/api/users', { method: 'POST', json: { username, role, password: PASSWORD } });
  expect(made.status).toBe(201);
  const res = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username, password: PASSWORD } });
  expect(res.status).toBe(200);
  return { id: (await json(made)).id, cookie: /^(__Host-patchman_session=[^;]+)/.exec(res.headers.get('Set-Cookie') ?? '')![1] };
}

const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });
const browser = (cookie: string) => ({ Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' });

describe('the identity cache', () => {
  it('a token revoked through the API stops working at once, even right after reads that were answered', async () => {
    const t = await tokenFor('viewer');
    for (let i = 0; i < 3; i++) expect((await api('/api/summary', { headers: bearer(t.secret) })).status).toBe(200);
    const list = await json(api('/api/tokens'));
    const id = (list.tokens ?? list).find((x: any) => x.name === 't-viewer').id;
    expect((await api(`/api/tokens/${id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    expect((await api('/api/summary', { headers: bearer(t.secret) })).status).toBe(401);
  });

  it('a session ends at once on sign-out and when its user is disabled', async () => {
    const a = await signIn('reader', 'viewer');
    expect((await api('/api/hosts', { headers: browser(a.cookie) })).status).toBe(200);
    expect((await api('/api/auth/logout', { method: 'POST', json: {}, headers: browser(a.cookie) })).status).toBe(204);
    expect((await api('/api/hosts', { headers: browser(a.cookie) })).status).toBe(401);

    const b = await signIn('writer', 'operator');
    expect((await api('/api/hosts', { headers: browser(b.cookie) })).status).toBe(200);
    expect((await api(`/api/users/${b.id}`, { method: 'PATCH', json: { disabled: true } })).status).toBe(200);
    expect((await api('/api/hosts', { headers: browser(b.cookie) })).status).toBe(401);
  });

  it('a demoted user loses what the old role allowed at once', async () => {
    // another admin, so that this one may be demoted
    expect((await api('/api/users', { method: 'POST', json: { username: 'keeper', role: 'admin', password: PASSWORD } })).status).toBe(201);
    const a = await signIn('boss', 'admin');
    expect((await api('/api/audit', { headers: browser(a.cookie) })).status).toBe(200);
    expect((await api(`/api/users/${a.id}`, { method: 'PATCH', json: { role: 'viewer' } })).status).toBe(200);
    expect((await api('/api/audit', { headers: browser(a.cookie) })).status).toBe(403);
  });

  it('reads reuse the identity for a moment; a change is always checked against D1', async () => {
    const t = await tokenFor('admin');
    expect((await api('/api/summary', { headers: bearer(t.secret) })).status).toBe(200);
    // revoked behind the Worker's back (as by another isolate): reads may still be answered
    // from the cache for at most IDENTITY_CACHE_MS, but nothing may be changed
    await testEnv.DB.prepare('update api_tokens set revoked_at = ? where name = ?').bind(Date.now(), 't-admin').run();
    expect((await api('/api/summary', { headers: bearer(t.secret) })).status).toBe(200);
    expect((await api('/api/relays', { method: 'POST', json: { name: 'r' }, headers: bearer(t.secret) })).status).toBe(401);
    // and that refused change started every credential afresh
    expect((await api('/api/summary', { headers: bearer(t.secret) })).status).toBe(401);
  });
});
