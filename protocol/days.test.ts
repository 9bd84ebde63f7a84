import { describe, expect, it } from 'vitest';
import { DAY_MS, daysSince, daysToTenth } from './days.ts';

describe('days', () => {
  it('gives an age in days to a tenth, as /api/exposure and the host list show it', () => {
    const now = Date.parse('2026-12-03T12:00:00.000Z');
    expect(daysSince('2026-11-21T12:00:00.000Z', now)).toBe(12);
    expect(daysSince(new Date(now - 2.34 * DAY_MS).toISOString(), now)).toBe(2.3);
    expect(daysSince(new Date(now - 2.36 * DAY_MS).toISOString(), now)).toBe(2.4);
    expect(daysSince(null, now)).toBeNull();
    expect(daysToTenth(3 * 3_600_000)).toBe(0.1);
  });
});
