// Bad bodies get messages that say what is wrong: a missing field is "required" (not "not a
// known field"), an array or a bare value is not an object.
import { describe, expect, it } from 'vitest';
import { api, createRelay } from '../test/helpers.ts';

const body = async (res: Response) => ((await res.json()) as any).error;

describe('body messages', () => {
  it('a missing confirm is named as missing', async () => {
    const { id: relayId } = await createRelay();
    const host = (await (await api('/api/hosts', { method: 'POST', json: { relayId, address: '192.0.2.50' } })).json()) as any;
    const res = await api(`/api/hosts/${host.id}/reboot`, { method: 'POST', json: {} });
    expect(res.status).toBe(400);
    const error = await body(res);
    expect(error.field).toBe('confirm');
    expect(error.message).toMatch(/^confirm: is required/);
    expect(error.message).not.toMatch(/not a known field/);
  });

  it('an unknown field is still called unknown', async () => {
    const error = await body(await api('/api/settings', { method: 'PUT', json: { scanEveryMinute: true } }));
    expect(error).toMatchObject({ field: 'scanEveryMinute', message: 'scanEveryMinute: is not a known field' });
  });

  it.each([
    ['an array', []],
    ['an array of objects', [{ scanIntervalHours: 1 }]],
    ['null', null],
    ['a number', 3],
  ])('%s as the body is refused as not an object', async (_what, json) => {
    for (const path of ['/api/settings', '/api/scans']) {
      const res = await api(path, { method: path === '/api/settings' ? 'PUT' : 'POST', json });
      expect(res.status, path).toBe(400);
      expect((await body(res)).message, path).toBe('the body must be a JSON object');
    }
  });
});
