import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { KnownHosts, keyTypeOfBlob } from './known-hosts.ts';
import { fingerprintOfBlob } from './keys.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'patchman-kh-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function hostKeyBlob(): Buffer {
  const pair = ssh2.utils.generateKeyPairSync('ed25519');
  return Buffer.from(pair.public.split(' ')[1], 'base64');
}

describe('KnownHosts', () => {
  it('pins on first use, persists the pin, and refuses a different key', () => {
    const dir = tempDir();
    const a = hostKeyBlob();
    const b = hostKeyBlob();
    const kh = KnownHosts.open(dir, { now: () => new Date('2026-01-02T03:04:05Z') });

    expect(kh.check('Web1.lan', 22, a)).toEqual({ ok: true, pinnedNow: true });
    expect(kh.check('web1.lan', 22, a)).toEqual({ ok: true, pinnedNow: false });

    const file = JSON.parse(readFileSync(join(dir, 'known_hosts.json'), 'utf8'));
    expect(file).toEqual({
      '[web1.lan]:22': { keyType: 'ssh-ed25519', fingerprint: fingerprintOfBlob(a), firstSeenAt: '2026-01-02T03:04:05.000Z' },
    });
    expect(statSync(join(dir, 'known_hosts.json')).mode & 0o777).toBe(0o600);

    // A fresh store reads the pin back.
    const reopened = KnownHosts.open(dir);
    expect(reopened.check('web1.lan', 22, b)).toEqual({ ok: false, expected: fingerprintOfBlob(a), got: fingerprintOfBlob(b) });
    // Same address, other port: a different host as far as pinning goes.
    expect(reopened.check('web1.lan', 2222, b)).toEqual({ ok: true, pinnedNow: true });
  });

  it('accept() replaces a pin, and the replacement survives a reload', () => {
    const dir = tempDir();
    const a = hostKeyBlob();
    const b = hostKeyBlob();
    const kh = KnownHosts.open(dir);
    kh.check('10.0.0.5', 22, a);
    expect(kh.check('10.0.0.5', 22, b).ok).toBe(false);
    kh.accept('10.0.0.5', 22, fingerprintOfBlob(b));
    expect(kh.check('10.0.0.5', 22, b)).toEqual({ ok: true, pinnedNow: false });
    expect(kh.check('10.0.0.5', 22, a).ok).toBe(false);
    expect(KnownHosts.open(dir).check('10.0.0.5', 22, b)).toEqual({ ok: true, pinnedNow: false });
    expect(KnownHosts.open(dir).get('10.0.0.5', 22)?.keyType).toBe('ssh-ed25519');
    expect(() => kh.accept('10.0.0.5', 22, 'MD5:aa:bb')).toThrow(/SHA256/);
  });

  it('writes atomically: no temp files left behind, IPv6 keys bracketed', () => {
    const dir = tempDir();
    const kh = KnownHosts.open(dir);
    kh.check('fd00::1', 22, hostKeyBlob());
    kh.check('host-b', 22, hostKeyBlob());
    expect(readdirSync(dir)).toEqual(['known_hosts.json']);
    expect(Object.keys(JSON.parse(readFileSync(join(dir, 'known_hosts.json'), 'utf8')))).toEqual(['[fd00::1]:22', '[host-b]:22']);
  });

  it('refuses to start from a corrupt file rather than forget every pin', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'known_hosts.json'), '{"[a]:22": {"keyType": "x"}}');
    expect(() => KnownHosts.open(dir)).toThrow(/not a valid host key pin/);
    writeFileSync(join(dir, 'known_hosts.json'), 'not json');
    expect(() => KnownHosts.open(dir)).toThrow(/not valid JSON/);
  });

  it('reads the key type from the blob', () => {
    expect(keyTypeOfBlob(hostKeyBlob())).toBe('ssh-ed25519');
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBe('unknown');
  });
});
