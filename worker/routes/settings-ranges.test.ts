// Every setting has a sensible range (README's settings table); a value outside it is a 400
// naming the field. A stored value that no longer fits falls back to its own default only.
import { describe, expect, it } from 'vitest';
import { api, testEnv } from '../test/helpers.ts';
import { DEFAULT_SETTINGS, SETTING_RANGES } from '../../protocol/api.ts';

const put = (json: unknown) => api('/api/settings', { method: 'PUT', json });

describe('setting ranges', () => {
  it.each([
    ['scanIntervalHours', 0.0001],
    ['scanIntervalHours', 0.5],
    ['scanIntervalHours', 2.5],
    ['scanIntervalHours', 169],
    ['scanIntervalHours', -1],
    ['retentionDays', 0],
    ['retentionDays', 3651],
    ['retentionDays', 1.5],
    ['scanConcurrency', 0],
    ['scanConcurrency', 257],
    ['snapshotKeep', 0],
    ['snapshotKeep', 21],
    ['accessTeamDomain', `${'a'.repeat(250)}.cloudflareaccess.com`],
  ])('%s = %s is refused, naming the field', async (field, value) => {
    const res = await put({ [field]: value });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as any;
    expect(error.field).toBe(field);
    expect(error.message).toMatch(new RegExp(`^${field}: `));
  });

  it.each([
    ['scanIntervalHours', 0],
    ['scanIntervalHours', 1],
    ['scanIntervalHours', 168],
    ['retentionDays', 1],
    ['retentionDays', 3650],
    ['scanConcurrency', 1],
    ['scanConcurrency', 256],
    ['snapshotKeep', 1],
    ['snapshotKeep', 20],
  ])('%s = %s is accepted', async (field, value) => {
    const res = await put({ [field]: value });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any)[field]).toBe(value);
  });

  it('the ranges are the named ones', () => {
    expect(SETTING_RANGES).toEqual({ scanIntervalHours: { min: 1, max: 168 }, retentionDays: { min: 1, max: 3650 }, scanConcurrency: { min: 1, max: 256 }, snapshotKeep: { min: 1, max: 20 } });
  });

  it('a stored value out of range falls back to its default; the other settings stay', async () => {
    await testEnv.DB.batch([
      testEnv.DB.prepare(`INSERT INTO settings (key, value) VALUES ('scanIntervalHours', '0.0001')`),
      testEnv.DB.prepare(`INSERT INTO settings (key, value) VALUES ('retentionDays', '90')`),
    ]);
    const s = (await (await api('/api/settings')).json()) as any;
    expect(s.scanIntervalHours).toBe(DEFAULT_SETTINGS.scanIntervalHours);
    expect(s.retentionDays).toBe(90);
  });
});
