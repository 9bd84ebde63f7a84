import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpError } from './errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from './keys.ts';
import { KnownHosts } from './known-hosts.ts';
import { openSession } from './ssh.ts';
import { freePort, startSshd, type Sshd } from './test/sshd.ts';

let tmp: string;
let key: KeyPair;
let otherKey: KeyPair;
let sshd: Sshd;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-ssh-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  otherKey = await loadOrCreateKeyPair(join(tmp, 'stranger'));
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
});
afterAll(async () => {
  await sshd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function store(name: string): KnownHosts {
  return KnownHosts.open(join(tmp, name));
}

async function opError(p: Promise<unknown>): Promise<OpError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpError);
  return err as OpError;
}

describe('openSession against a real sshd', () => {
  it('authenticates with the relay key, pins the host key (curve25519-sha256) and runs commands', async () => {
    const knownHosts = store('kh-basic');
    const s = await openSession({ address: sshd.address, port: sshd.port, user: 'root' }, { privateKey: key.privateKey, knownHosts });
    try {
      expect(s.kex).toBe('curve25519-sha256');
      expect(s.hostKey).toEqual({ fingerprint: sshd.hostKeyFingerprint, pinnedNow: true });
      expect(knownHosts.get('127.0.0.1', sshd.port)).toMatchObject({ keyType: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint });

      const r = await s.exec('echo "$HOME"; id -u; echo oops >&2; exit 3');
      expect(r).toEqual({ code: 3, signal: null, stdout: `${join(sshd.dir, 'home')}\n0\n`, stderr: 'oops\n' });

      const cat = await s.exec('cat', { stdin: 'line 1\nline 2 ünïcode\n' });
      expect(cat).toEqual({ code: 0, signal: null, stdout: 'line 1\nline 2 ünïcode\n', stderr: '' });

      // Several commands in parallel on one connection.
      const many = await Promise.all([1, 2, 3, 4, 5].map((n) => s.exec(`echo ${n}`)));
      expect(many.map((m) => m.stdout)).toEqual(['1\n', '2\n', '3\n', '4\n', '5\n']);
    } finally {
      s.close();
    }

    const again = await openSession({ address: sshd.address, port: sshd.port, user: 'root' }, { privateKey: key.privateKey, knownHosts });
    expect(again.hostKey.pinnedNow).toBe(false);
    again.close();
  });

  it('stops waiting for a command that runs past its timeout and throws a timeout error', async () => {
    const s = await openSession({ address: sshd.address, port: sshd.port, user: 'root' }, { privateKey: key.privateKey, knownHosts: store('kh-timeout') });
    try {
      const started = Date.now();
      // Writes output for ever: once the channel is closed it dies of SIGPIPE on the host.
      const err = await opError(s.exec('while :; do echo tick; sleep 0.05; done', { timeoutMs: 500 }));
      expect(err.code).toBe('timeout');
      expect(err.message).toMatch(/did not finish within 0\.5 s/);
      expect(Date.now() - started).toBeLessThan(3000);
      // The connection survives a timed-out channel.
      expect(await s.exec('echo still here')).toMatchObject({ code: 0, stdout: 'still here\n' });
    } finally {
      s.close();
    }
  });

  it('stops a command whose output exceeds the limit', async () => {
    const s = await openSession({ address: sshd.address, port: sshd.port, user: 'root' }, { privateKey: key.privateKey, knownHosts: store('kh-big') });
    try {
      const err = await opError(s.exec('head -c 200000 /dev/zero', { maxOutputBytes: 65536, timeoutMs: 10_000 }));
      expect(err.code).toBe('command-failed');
      expect(err.message).toMatch(/more than 65536 bytes/);
    } finally {
      s.close();
    }
  });

  it('maps a closed port to unreachable', async () => {
    const port = await freePort();
    const err = await opError(openSession({ address: '127.0.0.1', port, user: 'root' }, { privateKey: key.privateKey, knownHosts: store('kh-closed') }));
    expect(err.code).toBe('unreachable');
    expect(err.message).toMatch(/connection refused/);
  });

  it('maps a server that never speaks SSH to timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const err = await opError(
        openSession({ address: '127.0.0.1', port, user: 'root' }, { privateKey: key.privateKey, knownHosts: store('kh-silent'), connectTimeoutMs: 400 }),
      );
      expect(err.code).toBe('timeout');
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('maps a key that is not in authorized_keys to auth-refused', async () => {
    const err = await opError(
      openSession({ address: sshd.address, port: sshd.port, user: 'root' }, { privateKey: otherKey.privateKey, knownHosts: store('kh-auth') }),
    );
    expect(err.code).toBe('auth-refused');
    expect(err.message).toBe(`SSH key not accepted for root@127.0.0.1:${sshd.port} — add the relay's public key to authorized_keys`);
  });
});

// Runs last in this file: it replaces the sshd's host key.
describe('host key pinning against a real sshd', () => {
  it('refuses a changed host key with both fingerprints, and connects again after accept()', async () => {
    const knownHosts = store('kh-changed');
    const target = { address: sshd.address, port: sshd.port, user: 'root' };
    const first = await openSession(target, { privateKey: key.privateKey, knownHosts });
    first.close();
    const oldFp = sshd.hostKeyFingerprint;

    await sshd.regenerateHostKey();
    const newFp = sshd.hostKeyFingerprint;
    expect(newFp).not.toBe(oldFp);

    const err = await opError(openSession(target, { privateKey: key.privateKey, knownHosts }));
    expect(err.code).toBe('host-key-changed');
    expect(err.message).toContain(oldFp);
    expect(err.message).toContain(newFp);
    // The pin was not silently replaced.
    expect(knownHosts.get(target.address, target.port)?.fingerprint).toBe(oldFp);

    knownHosts.accept(target.address, target.port, newFp);
    const s = await openSession(target, { privateKey: key.privateKey, knownHosts });
    expect(s.hostKey).toEqual({ fingerprint: newFp, pinnedNow: false });
    expect((await s.exec('echo ok')).stdout).toBe('ok\n');
    s.close();
  });
});
