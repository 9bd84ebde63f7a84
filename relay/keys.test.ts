import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { Hello } from '../protocol/relay.ts';
import { generateEd25519, loadOrCreateKeyPair } from './keys.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'patchman-keys-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('loadOrCreateKeyPair', () => {
  it('creates an ed25519 pair once (0600 private key, 0700 dir) and reloads it identically', async () => {
    const dataDir = join(tempDir(), 'relay-data');
    const first = await loadOrCreateKeyPair(dataDir);

    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const privPath = join(dataDir, 'id_ed25519');
    expect(statSync(privPath).mode & 0o777).toBe(0o600);
    expect(readFileSync(privPath, 'utf8')).toBe(first.privateKey);
    expect(first.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(readFileSync(join(dataDir, 'id_ed25519.pub'), 'utf8').trim()).toBe(first.publicKey);

    expect(first.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/=]+ patchman-relay@/);
    expect(first.publicKey.endsWith(`patchman-relay@${hostname()}`)).toBe(true);
    // The Worker accepts it in Hello.
    expect(v.safeParse(Hello, { type: 'hello', v: 1, version: 'x', publicKey: first.publicKey, hostname: 'h' }).success).toBe(true);

    const again = await loadOrCreateKeyPair(dataDir);
    expect(again).toEqual(first);
  });

  it('reports the same fingerprint as ssh-keygen, and ssh-keygen reads the private key', async () => {
    const dataDir = tempDir();
    const pair = await loadOrCreateKeyPair(dataDir);
    const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dataDir, 'id_ed25519.pub')], { encoding: 'utf8' });
    expect(out.split(/\s+/)[1]).toBe(pair.fingerprint);
    const derived = execFileSync('ssh-keygen', ['-y', '-f', join(dataDir, 'id_ed25519')], { encoding: 'utf8' });
    expect(derived.split(' ').slice(0, 2).join(' ')).toBe(pair.publicKey.split(' ').slice(0, 2).join(' '));
  });

  it('restores a missing .pub from the private key and tightens loose permissions', async () => {
    const dataDir = tempDir();
    const pair = await loadOrCreateKeyPair(dataDir);
    unlinkSync(join(dataDir, 'id_ed25519.pub'));
    chmodSync(join(dataDir, 'id_ed25519'), 0o644);
    const again = await loadOrCreateKeyPair(dataDir);
    expect(again).toEqual(pair);
    expect(readFileSync(join(dataDir, 'id_ed25519.pub'), 'utf8').trim()).toBe(pair.publicKey);
    expect(statSync(join(dataDir, 'id_ed25519')).mode & 0o777).toBe(0o600);
  });

  it('refuses a corrupt private key without echoing its contents', async () => {
    const dataDir = tempDir();
    await loadOrCreateKeyPair(dataDir);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dataDir, 'id_ed25519'), 'SECRET-GARBAGE-CONTENT', { mode: 0o600 });
    const err = await loadOrCreateKeyPair(dataDir).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/not a readable OpenSSH private key/);
    expect((err as Error).message).not.toContain('SECRET-GARBAGE');
  });
});

describe('generateEd25519', () => {
  // ssh2 1.17 produces an unreadable key about 1 time in 256 (leading zero byte stripped from
  // the public key); 1500 keys would hit that ~6 times without the check.
  it('only ever returns keys that ssh2 can parse, with a 32-byte public key', async () => {
    const ssh2 = (await import('ssh2')).default;
    for (let i = 0; i < 1500; i++) {
      const parsed = ssh2.utils.parseKey(generateEd25519('t'));
      expect(parsed).not.toBeInstanceOf(Error);
      if (parsed instanceof Error || Array.isArray(parsed)) return;
      expect(parsed.getPublicSSH().length).toBe(51);
    }
  });
});
