import { describe, expect, it } from 'vitest';
import { OpError } from '../errors.ts';
import { C_LOCALE, SH_COMMAND, compareVersions, inC, privileged, splitMarked, sudoRefused } from './shell.ts';

describe('command lines', () => {
  it('always force the C locale', () => {
    expect(C_LOCALE).toBe('env LC_ALL=C LANG=C');
    expect(SH_COMMAND).toBe('env LC_ALL=C LANG=C /bin/sh -s');
    expect(inC('apt-mark showhold')).toBe('env LC_ALL=C LANG=C apt-mark showhold');
  });

  it('privileged(): as is for root, sudo -n for passwordless sudo, environment outside sudo', () => {
    expect(privileged('apt-get update', 'root')).toBe('env LC_ALL=C LANG=C apt-get update');
    // `env … sudo -n apt-get`, not `sudo -n env … apt-get`: a sudoers rule for /usr/bin/apt-get
    // only matches when sudo's own command is apt-get.
    expect(privileged('apt-get update', 'sudo')).toBe('env LC_ALL=C LANG=C sudo -n apt-get update');
  });

  it('privileged(): throws sudo-password with a readable message when root is out of reach', () => {
    for (const p of ['sudo-password', 'no-sudo'] as const) {
      let err: unknown;
      try {
        privileged('apt-get update', p);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OpError);
      expect((err as OpError).code).toBe('sudo-password');
      expect((err as OpError).message).toMatch(/apt-get/);
      expect((err as OpError).message).toMatch(p === 'no-sudo' ? /sudo is not installed/ : /asks for a password/);
    }
  });

  it('recognises sudo refusing to run without a password', () => {
    expect(sudoRefused('sudo: a password is required\n')).toBe(true);
    expect(sudoRefused('sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\n')).toBe(true);
    expect(sudoRefused("Sorry, user pmtest is not allowed to execute '/usr/bin/apt-get update' as root on vm.\n")).toBe(true);
    expect(sudoRefused('E: Could not get lock /var/lib/apt/lists/lock\n')).toBe(false);
  });
});

describe('splitMarked', () => {
  it('cuts sections after the begin marker, up to @@end', () => {
    const out = 'motd noise\n@@a\nnot this\n\n@@begin 1\n\n@@a\nx\ny\n@@b\n\n@@unknown\nz\n@@end\nafter\n';
    const s = splitMarked(out, '@@begin 1', ['a', 'b'], 'test');
    expect(s.get('a')).toEqual(['x', 'y']);
    expect(s.get('b')).toEqual(['', '@@unknown', 'z']); // unknown markers are content
  });

  it('refuses output without the begin marker or the end', () => {
    for (const bad of ['nothing\n', '@@begin 1\n@@a\nx\n']) {
      let err: unknown;
      try {
        splitMarked(bad, '@@begin 1', ['a'], 'the test script');
      } catch (e) {
        err = e;
      }
      expect((err as OpError).code).toBe('command-failed');
    }
  });
});

describe('compareVersions (sort -V order)', () => {
  it('orders kernel releases numerically', () => {
    const sorted = ['6.1.0-41', '6.1.0-9', '5.15.0-105', '6.12.12', '5.15.0-99', '6.1.0-40', '6.1.0'].sort(compareVersions);
    expect(sorted).toEqual(['5.15.0-99', '5.15.0-105', '6.1.0', '6.1.0-9', '6.1.0-40', '6.1.0-41', '6.12.12']);
    expect(compareVersions('6.1.123-1', '6.1.119-1')).toBeGreaterThan(0);
    expect(compareVersions('1.0', '1.0')).toBe(0);
    expect(compareVersions('01', '1')).toBe(0);
    expect(compareVersions('1.0~rc1', '1.0')).toBeLessThan(0);
    expect(compareVersions('99999999999999999999.1', '99999999999999999999.0')).toBeGreaterThan(0);
  });
});
