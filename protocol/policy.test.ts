import { describe, expect, it } from 'vitest';
import * as v from 'valibot';
import { cronProblem, globToRegExp, isTimeZone, matchesAny, nextRuns, PackageGlob, PolicyBody } from './policy.ts';

describe('package globs', () => {
  it('match whole names with * and ?, everything else literally', () => {
    expect(globToRegExp('linux-image-*').test('linux-image-6.1.0-41-amd64')).toBe(true);
    expect(globToRegExp('linux-image-*').test('xlinux-image-6')).toBe(false);
    expect(globToRegExp('libssl?').test('libssl3')).toBe(true);
    expect(globToRegExp('libssl?').test('libssl3t64')).toBe(false);
    // `.` and `+` are literal: libstdc++6 is not a pattern
    expect(globToRegExp('libstdc++6').test('libstdc++6')).toBe(true);
    expect(globToRegExp('libstdc++6').test('libstdcc6')).toBe(false);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(matchesAny('docker-ce-cli', ['linux-*', 'docker-ce*'])).toBe(true);
    expect(matchesAny('openssl', [])).toBe(false);
  });

  it('refuse shell characters, spaces, brackets and a leading dash', () => {
    for (const bad of ['a;b', 'a b', '$(id)', '`id`', 'a|b', 'a[0-9]', '-rf', 'a/b', "a'b", 'a>b', '']) {
      expect(v.safeParse(PackageGlob, bad).success, bad).toBe(false);
    }
    for (const ok of ['*', 'linux-image-*', 'libssl3:amd64', 'python3.11?', 'g++-12']) expect(v.safeParse(PackageGlob, ok).success, ok).toBe(true);
  });
});

describe('schedules', () => {
  it('five cron fields only, and real IANA zones', () => {
    expect(cronProblem('30 2 * * 0')).toBeNull();
    expect(cronProblem('0 30 2 * * 0')).toMatch(/five fields/);
    expect(cronProblem('30 25 * * 0')).toMatch(/hour/);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone('CET; rm')).toBe(false);
  });

  it('next runs in the zone, DST included', () => {
    const runs = nextRuns('30 2 * * 0', 'Europe/Berlin', 3, new Date('2026-03-20T00:00:00Z')).map((d) => d.toISOString());
    expect(runs).toEqual(['2026-03-22T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-04-05T00:30:00.000Z']);
  });

  it('a policy body gets its defaults', () => {
    const r = v.parse(PolicyBody, { name: 'x', selector: { tags: ['web'] } });
    expect(r).toMatchObject({ enabled: true, scope: 'security', aptMode: 'dist-upgrade', schedule: null, cooldownDays: 0, reboot: 'never', rollout: { canary: 1, concurrency: 5, haltAfterFailures: 1 } });
  });
});
