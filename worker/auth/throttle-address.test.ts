// The login throttle keys on the client's address only where that address can be trusted:
// behind Cloudflare (which sets CF-Connecting-IP itself). On this machine (`npm start`,
// wrangler dev) a client could pick any CF-Connecting-IP to escape the lockout.
import { describe, expect, it } from 'vitest';
import { api } from '../test/helpers.ts';
import { clientAddress, LOCAL_CLIENT } from '../lib/local.ts';

const PASSWORD = 'correct horse battery';

describe('login throttle address', () => {
  it('locally, a made-up CF-Connecting-IP does not escape the lockout', async () => {
    const base = 'http://127.0.0.1:8787';
    expect((await api('/api/setup', { method: 'POST', anonymous: true, base, json: { username: 'admin', password: PASSWORD } })).status).toBe(201);
    const login = (password: string, ip: string) =>
      api('/api/auth/login', { method: 'POST', anonymous: true, base, json: { username: 'admin', password }, headers: { 'CF-Connecting-IP': ip } });
    for (let i = 0; i < 5; i++) expect((await login(`wrong ${i}`, `198.51.100.${i}`)).status).toBe(401);
    expect((await login(PASSWORD, '203.0.113.77')).status).toBe(429);
  });

  it('trusts CF-Connecting-IP only away from this machine', () => {
    const req = (url: string) => new Request(url, { headers: { 'CF-Connecting-IP': '198.51.100.9' } });
    expect(clientAddress({}, req('https://patchman.example.com/api/auth/login'))).toBe('198.51.100.9');
    expect(clientAddress({}, req('http://127.0.0.1:8787/api/auth/login'))).toBe(LOCAL_CLIENT);
    expect(clientAddress({}, req('http://localhost:8787/api/auth/login'))).toBe(LOCAL_CLIENT);
    expect(clientAddress({ PATCHMAN_LOCAL: '1' }, req('http://patchman.lan:8787/api/auth/login'))).toBe(LOCAL_CLIENT);
  });
});
