// Real OpenSSH sshd processes as benchmark hosts: `count` hosts, each its own 127.x.y.z
// address on one port, at most 16 per sshd (OpenSSH's MAX_LISTEN_SOCKS), in a temp dir, with
// the configuration relay/test/sshd.ts uses plus a high MaxStartups (many handshakes at once).
// Needs root and openssh-server.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loopbackAddresses } from '../sim/fleet.ts';

export interface SshdHost {
  name: string;
  address: string;
  port: number;
}

export interface SshdFleet {
  hosts: SshdHost[];
  pids: number[];
  stop(): Promise<void>;
}

const PER_SSHD = 16;

function canConnect(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startSshdFleet(opts: { count: number; baseAddress: string; port: number; authorizedKeys: string[] }): Promise<SshdFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'patchman-bench-sshd-'));
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, opts.authorizedKeys.map((k) => k.trim() + '\n').join(''), { mode: 0o600 });
  const addresses = loopbackAddresses(opts.baseAddress, opts.count);
  const children: ChildProcess[] = [];
  const hosts: SshdHost[] = [];

  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), 3000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i * PER_SSHD < addresses.length; i++) {
      const mine = addresses.slice(i * PER_SSHD, (i + 1) * PER_SSHD);
      const key = join(dir, `host_${i}_ed25519`);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `bench-sshd-${i}`, '-f', key]);
      const config = join(dir, `sshd_config_${i}`);
      writeFileSync(
        config,
        [
          ...mine.map((a) => `ListenAddress ${a}:${opts.port}`),
          `HostKey ${key}`,
          `AuthorizedKeysFile ${authorized}`,
          'StrictModes no',
          'UsePAM no',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PermitRootLogin prohibit-password',
          `PidFile ${join(dir, `sshd_${i}.pid`)}`,
          // Root's real ~/.bashrc must not run (parallel logins fight over its lock).
          `SetEnv HOME=${home}`,
          'MaxStartups 1000:30:2000',
          'MaxSessions 100',
          'LogLevel ERROR',
          '',
        ].join('\n'),
      );
      const c = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      c.stderr?.resume();
      children.push(c);
      for (const a of mine) hosts.push({ name: `sshd-${hosts.length + 1}`, address: a, port: opts.port });
    }
    const deadline = Date.now() + 15_000;
    for (const h of hosts) {
      while (!(await canConnect(h.address, h.port))) {
        if (Date.now() > deadline) throw new Error(`sshd did not listen on ${h.address}:${h.port}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { hosts, pids: children.map((c) => c.pid!), stop };
}
