// Every answer of the Worker carries the security headers; HSTS only over HTTPS away from
// this machine. (The dashboard's static files: e2e/security-headers.test.ts.)
import { describe, expect, it } from 'vitest';
import { api, testEnv } from './test/helpers.ts';
import { app } from './app.ts';

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
import { API_CSP, COMMON_HEADERS, HSTS } from '../protocol/security-headers.ts';

describe('security headers on API answers', () => {
  it.each([
    ['a public answer', '/api/health', {}],
    ['a signed-in answer', '/api/hosts', {}],
    ['a refusal', '/api/hosts', { anonymous: true }],
    ['an unknown path', '/api/nope', {}],
  ])('%s has nosniff, no framing, a closed CSP, a referrer and a permissions policy', async (_what, path, init) => {
    const res = await api(path, init);
    expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(res.headers.get('Content-Security-Policy')).toBe(API_CSP);
    expect(res.headers.get('Content-Security-Policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('X-Frame-Options')).toBe('DENY');
    expect(res.headers.get('Referrer-Policy')).toBe(COMMON_HEADERS['Referrer-Policy']);
    expect(res.headers.get('Permissions-Policy')).toMatch(/camera=\(\)/);
  });

  it('HSTS over HTTPS when deployed, never over HTTP or on this machine', async () => {
    expect((await api('/api/health', { base: 'https://patchman.example.com' })).headers.get('Strict-Transport-Security')).toBe(HSTS);
    expect((await api('/api/health', { base: 'http://patchman.test' })).headers.get('Strict-Transport-Security')).toBeNull();
    expect((await api('/api/health', { base: 'https://localhost' })).headers.get('Strict-Transport-Security')).toBeNull();
  });
});

describe('answers over loopback are not compressed', () => {
  it('under npm start (PATCHMAN_LOCAL=1) an answer names its encoding, identity, so the local runtime does not gzip it; deployed, it names none and the edge compresses', async () => {
    const get = (env: Record<string, string>) => app.fetch(new Request('http://patchman.test/api/health'), { ...testEnv, ...env }, ctx);
    expect((await get({ PATCHMAN_LOCAL: '1' })).headers.get('Content-Encoding')).toBe('identity');
    expect((await get({})).headers.get('Content-Encoding')).toBeNull();
  });
});
