import { describe, expect, it } from 'vitest';
import { api } from '../test/helpers.ts';

describe('GET /api/health', () => {
  it('answers ok with the version, without auth', async () => {
    const res = await api('/api/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, version: '0.1.0' });
  });

  it('unknown API paths are JSON 404s, not the SPA', async () => {
    const res = await api('/api/nope');
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe('not-found');
  });
});
