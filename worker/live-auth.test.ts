// The browser's live socket (/api/live) lives no longer than the right to read it: same
// origin only at the upgrade, closed at logout, at expiry, and when its user is disabled,
// deleted or changes role (or its API token is revoked).
import { beforeEach, describe, expect, it } from 'vitest';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { api, testEnv, until } from './test/helpers.ts';
import { liveFeed } from './live-feed.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const PASSWORD = 'correct horse battery';
const ORIGIN = 'http://patchman.test';

async function signIn(username: string, role: string): Promise<{ id: string; cookie: string }> {
  const made = await api('/api/users', { method: 'POST', json: { username, role, password: PASSWORD } });
  expect(made.status).toBe(201);
  const res = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username, password: PASSWORD } });
  expect(res.status).toBe(200);
  return { id: (await json(made)).id, cookie: /^(__Host-patchman_session=[^;]+)/.exec(res.headers.get('Set-Cookie') ?? '')![1] };
}

/** Open /api/live like a browser (or, with `auth`, like a script). */
async function openLive(headers: Record<string, string>) {
  const res = await api('/api/live', { headers: { Upgrade: 'websocket', ...headers } });
  if (!res.webSocket) return { status: res.status, closed: null as null | { code: number } };
  const ws = res.webSocket;
  ws.accept();
  const state = { status: res.status, closed: null as null | { code: number } };
  ws.addEventListener('close', (e) => (state.closed = { code: e.code }));
  return state;
}
const closed = (s: { closed: null | { code: number } }) => until(async () => s.closed, 5000);

describe('/api/live', { timeout: 30_000 }, () => {
  beforeEach(async () => {
    expect((await api('/api/users', { method: 'POST', json: { username: 'keeper', role: 'admin', password: PASSWORD } })).status).toBe(201);
  });

  it('accepts the same origin only', async () => {
    const { cookie } = await signIn('vera', 'viewer');
    expect((await openLive({ Cookie: cookie, Origin: 'https://evil.example' })).status).toBe(403);
    expect((await openLive({ Cookie: cookie })).status).toBe(403); // a browser always says where it comes from
    expect((await openLive({ Cookie: cookie, Origin: ORIGIN })).status).toBe(101);
    // a script with an API token may omit Origin, but not lie about it
    expect((await openLive({})).status).toBe(101);
    expect((await openLive({ Origin: 'https://evil.example' })).status).toBe(403);
  });

  it('is closed at logout', async () => {
    const { cookie } = await signIn('vera', 'viewer');
    const other = await openLive({ Cookie: (await signIn('otto', 'viewer')).cookie, Origin: ORIGIN });
    const live = await openLive({ Cookie: cookie, Origin: ORIGIN });
    expect((await api('/api/auth/logout', { method: 'POST', json: {}, headers: { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' } })).status).toBe(204);
    await closed(live);
    expect(other.closed).toBeNull();
  });

  it.each([
    ['disabled', (id: string) => api(`/api/users/${id}`, { method: 'PATCH', json: { disabled: true } })],
    ['deleted', (id: string) => api(`/api/users/${id}`, { method: 'DELETE' })],
    ['given another role', (id: string) => api(`/api/users/${id}`, { method: 'PATCH', json: { role: 'viewer' } })],
  ])('is closed when its user is %s', async (_what, change) => {
    const user = await signIn('otto', 'operator');
    const live = await openLive({ Cookie: user.cookie, Origin: ORIGIN });
    expect((await change(user.id)).status).toBeLessThan(300);
    await closed(live);
  });

  it('is closed when its session expires (checked by the feed\'s alarm)', async () => {
    const user = await signIn('vera', 'viewer');
    const live = await openLive({ Cookie: user.cookie, Origin: ORIGIN });
    const keep = await openLive({ Cookie: (await signIn('otto', 'viewer')).cookie, Origin: ORIGIN });
    await testEnv.DB.prepare('UPDATE sessions SET expires_at = ? WHERE user_id = ?').bind(Date.now() - 1, user.id).run();
    expect(await runDurableObjectAlarm(liveFeed(testEnv) as any)).toBe(true);
    await closed(live);
    expect(keep.closed).toBeNull();
  });

  it('is closed when its API token is revoked', async () => {
    const { token, secret } = await json(api('/api/tokens', { method: 'POST', json: { name: 'watcher', role: 'viewer' } }));
    const live = await openLive({ Authorization: `Bearer ${secret}` });
    expect(live.status).toBe(101);
    expect((await api(`/api/tokens/${token.id}`, { method: 'DELETE' })).status).toBe(204);
    await closed(live);
  });
});
