import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config.ts';

describe('relay config', () => {
  it('reads the environment with defaults', () => {
    const c = loadConfig({ PATCHMAN_URL: 'https://pm.example.com', PATCHMAN_RELAY_TOKEN: 'pmr_abcdefghijkl' });
    expect(c).toEqual({
      url: 'https://pm.example.com',
      token: 'pmr_abcdefghijkl',
      dataDir: '/var/lib/patchman-relay',
      concurrency: 32,
      connectTimeoutMs: 10_000,
      commandTimeoutMs: 600_000,
      monitorOnly: 'self',
      heartbeatMs: 25_000,
    });
    expect(loadConfig({ PATCHMAN_URL: 'https://pm.example.com', PATCHMAN_RELAY_TOKEN: 'pmr_abcdefghijkl', PATCHMAN_HEARTBEAT_INTERVAL: '2' }).heartbeatMs).toBe(2000);
    expect(() => loadConfig({ PATCHMAN_URL: 'https://pm.example.com', PATCHMAN_RELAY_TOKEN: 'pmr_abcdefghijkl', PATCHMAN_HEARTBEAT_INTERVAL: '0' })).toThrow(/PATCHMAN_HEARTBEAT_INTERVAL/);
    expect(loadConfig({ PATCHMAN_URL: 'https://pm.example.com', PATCHMAN_RELAY_TOKEN: 'pmr_abcdefghijkl', PATCHMAN_MONITOR_ONLY: 'none' }).monitorOnly).toBe('none');
    expect(() => loadConfig({ PATCHMAN_URL: 'https://pm.example.com', PATCHMAN_RELAY_TOKEN: 'pmr_abcdefghijkl', PATCHMAN_MONITOR_ONLY: 'self;id' })).toThrow(/PATCHMAN_MONITOR_ONLY/);
  });

  it('reads the token from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pm-cfg-'));
    writeFileSync(join(dir, 't'), 'pmr_fromfile123456\n');
    expect(loadConfig({ PATCHMAN_URL: 'http://127.0.0.1:8787', PATCHMAN_RELAY_TOKEN_FILE: join(dir, 't') }).token).toBe('pmr_fromfile123456');
  });

  it.each([
    [{}, /PATCHMAN_URL: is required/],
    [{ PATCHMAN_URL: 'ftp://x' }, /PATCHMAN_URL: must start with http/],
    [{ PATCHMAN_URL: 'http://x' }, /PATCHMAN_RELAY_TOKEN/],
    [{ PATCHMAN_URL: 'http://x', PATCHMAN_RELAY_TOKEN: 'pmr_abcdefghijkl', PATCHMAN_CONCURRENCY: '0' }, /PATCHMAN_CONCURRENCY/],
    [{ PATCHMAN_URL: 'http://x', PATCHMAN_RELAY_TOKEN: 'pmr_abcdefghijkl', PATCHMAN_CONCURRENCY: 'lots' }, /PATCHMAN_CONCURRENCY: must be a whole number/],
  ])('refuses %j with a clear message', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
