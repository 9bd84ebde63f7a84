import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startSshd, type Sshd } from './sshd.ts';

function banner(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.setEncoding('utf8');
    sock.once('data', (d: string) => {
      sock.destroy();
      resolve(d);
    });
    sock.once('error', reject);
  });
}

describe('startSshd (test helper)', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd({ authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIN7P6SD2ww5MN+4iXPfhvcA/Uf3jrBDa4ZTOUHB2S1g test'] });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('runs a real OpenSSH server on 127.0.0.1 with the given authorized_keys', async () => {
    expect(sshd.address).toBe('127.0.0.1');
    expect(await banner(sshd.port)).toMatch(/^SSH-2\.0-OpenSSH_/);
    expect(readFileSync(join(sshd.dir, 'authorized_keys'), 'utf8')).toContain('AAAAC3NzaC1lZDI1NTE5AAAAIIN7P6SD2ww5MN');
    expect(sshd.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('regenerates the host key and restarts on the same port; stop removes the temp dir', async () => {
    const before = sshd.hostKeyFingerprint;
    const port = sshd.port;
    await sshd.regenerateHostKey();
    expect(sshd.port).toBe(port);
    expect(sshd.hostKeyFingerprint).not.toBe(before);
    expect(await banner(sshd.port)).toMatch(/^SSH-2\.0-OpenSSH_/);
    const dir = sshd.dir;
    await sshd.stop();
    expect(existsSync(dir)).toBe(false);
    await expect(banner(port)).rejects.toThrow(/ECONNREFUSED/);
  });
});
