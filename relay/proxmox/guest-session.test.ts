import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { OpError } from '../errors.ts';
import type { ExecOptions, ExecResult, SshSession } from '../ssh.ts';
import { GuestSession } from './guest-session.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

/** A node that records each command line and answers with what the test gives it. */
function fakeNode(answer: (cmd: string, opts: ExecOptions) => Partial<ExecResult>) {
  const seen: { cmd: string; opts: ExecOptions }[] = [];
  const node: SshSession = {
    target: { address: '192.0.2.7', port: 22, user: 'root' },
    hostKey: { fingerprint: 'SHA256:node', pinnedNow: false },
    kex: 'curve25519-sha256',
    async exec(cmd, opts = {}) {
      seen.push({ cmd, opts });
      return { code: 0, signal: null, stdout: '', stderr: '', ...answer(cmd, opts) };
    },
    close() {},
  };
  return { node, seen };
}

describe('GuestSession', () => {
  it('runs a container command through pct exec, quoted, stdin and options passed through', async () => {
    const { node, seen } = fakeNode(() => ({ stdout: 'hi\n' }));
    const s = new GuestSession(node, { address: '192.0.2.7', port: 22, user: 'root', guest: { kind: 'lxc', vmid: 105 } }, '');
    const r = await s.exec("echo 'it''s'", { stdin: 'script', timeoutMs: 5000 });
    expect(r.stdout).toBe('hi\n');
    expect(seen[0].cmd).toBe(`pct exec 105 -- /bin/sh -c 'echo '\\''it'\\'''\\''s'\\'''`);
    expect(seen[0].opts).toMatchObject({ stdin: 'script', timeoutMs: 5000 });
    expect(s.hostKey.fingerprint).toBe('SHA256:node');
  });

  it('prefixes sudo -n for a non-root node user', async () => {
    const { node, seen } = fakeNode(() => ({}));
    await new GuestSession(node, { address: '192.0.2.7', port: 22, user: 'patchman', guest: { kind: 'lxc', vmid: 105 } }, 'sudo -n ').exec('true');
    expect(seen[0].cmd).toBe(`sudo -n pct exec 105 -- /bin/sh -c 'true'`);
  });

  it('runs a VM command through qm guest exec and reads its JSON', async () => {
    const { node, seen } = fakeNode(() => ({ stdout: fixture('qm-guest-exec-pretty.json') }));
    const s = new GuestSession(node, { address: '192.0.2.7', port: 22, user: 'root', guest: { kind: 'qemu', vmid: 101 } }, '');
    const r = await s.exec('env LC_ALL=C /bin/sh -s', { stdin: 'apt-get check', timeoutMs: 120_000 });
    expect(seen[0].cmd).toBe(`qm guest exec 101 --timeout 120 --pass-stdin 1 -- /bin/sh -c 'env LC_ALL=C /bin/sh -s'`);
    expect(r).toMatchObject({ code: 100, stdout: 'Reading package lists...\n' });
    expect(r.stderr).toContain('Could not open lock file');
  });

  it('hands a VM command output to onStdout at once, since qm does not stream', async () => {
    const { node } = fakeNode(() => ({ stdout: fixture('qm-guest-exec-compact.json') }));
    const s = new GuestSession(node, { address: '192.0.2.7', port: 22, user: 'root', guest: { kind: 'qemu', vmid: 101 } }, '');
    const chunks: string[] = [];
    const r = await s.exec('x', { onStdout: (c) => chunks.push(c.toString()) });
    expect(r.stdout).toBe('');
    expect(chunks.join('')).toContain('EXPLORERSWEEP');
    expect(s.streams).toBe(false);
  });

  it('gives back the exact bytes of non-ASCII output that qm double-encodes', async () => {
    // "é" is C3 A9; qm prints each byte as a character: "\u00c3\u00a9"
    const { node } = fakeNode(() => ({ stdout: '{\n   "exitcode" : 0,\n   "exited" : 1,\n   "out-data" : "caf\u00c3\u00a9\\n"\n}\n' }));
    const s = new GuestSession(node, { address: '192.0.2.7', port: 22, user: 'root', guest: { kind: 'qemu', vmid: 101 } }, '');
    const r = await s.exec('echo café', { binary: true });
    expect(r.stdout).toBe('café\n');
    expect(r.stdoutBytes).toEqual(Buffer.from('café\n', 'utf8'));
  });

  it('names a guest agent that does not answer, and a timeout', async () => {
    const down = fakeNode(() => ({ code: 255, stderr: fixture('qm-agent-not-running.txt') }));
    const s = new GuestSession(down.node, { address: '192.0.2.7', port: 22, user: 'root', guest: { kind: 'qemu', vmid: 101 } }, '');
    await expect(s.exec('true')).rejects.toMatchObject({ code: 'unreachable', message: expect.stringMatching(/VM 101.*guest agent is not running/) });
    const slow = fakeNode(() => ({ stdout: fixture('qm-guest-exec-timeout.json'), stderr: 'timeout reached, returning pid\n' }));
    const t = new GuestSession(slow.node, { address: '192.0.2.7', port: 22, user: 'root', guest: { kind: 'qemu', vmid: 101 } }, '');
    await expect(t.exec('sleep 99', { timeoutMs: 1000 })).rejects.toBeInstanceOf(OpError);
    await expect(t.exec('sleep 99', { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'timeout' });
  });
});
