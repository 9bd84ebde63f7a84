// Test helper: a real OpenSSH sshd on 127.0.0.1, in a temp dir, with a fresh ed25519 host
// key and only the public keys the test passes in. Needs root (sshd's privilege separation)
// and /usr/sbin/sshd + ssh-keygen (openssh-server).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

const SSHD = '/usr/sbin/sshd';
const SSH_KEYGEN = 'ssh-keygen';

export interface Sshd {
  port: number;
  address: '127.0.0.1';
  /** `SHA256:…` of the current host key, as `ssh-keygen -l` prints it. */
  hostKeyFingerprint: string;
  /** Directory the sshd runs from (config, keys, authorized_keys, HOME). */
  dir: string;
  /** What sshd has written to stderr so far (LogLevel ERROR: usually nothing). */
  log(): string;
  /** Replace the host key with a new one and restart sshd on the same port. */
  regenerateHostKey(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

async function makeHostKey(dir: string): Promise<{ path: string; fingerprint: string }> {
  const path = join(dir, 'ssh_host_ed25519_key');
  await rm(path, { force: true });
  await rm(path + '.pub', { force: true });
  await execFileP(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'patchman-test-host', '-f', path]);
  const { stdout } = await execFileP(SSH_KEYGEN, ['-l', '-E', 'sha256', '-f', path + '.pub']);
  const fingerprint = stdout.split(/\s+/)[1];
  if (!fingerprint?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -l output: ${stdout}`);
  return { path, fingerprint };
}

export interface SshdOptions {
  authorizedKeys: string[];
  /** Extra environment for every session (sshd's SetEnv), e.g. a PATH with a directory of
   * stub commands first. HOME is always set (to the sshd's temp dir) and cannot be
   * replaced here. Values must not contain `"` or newlines. */
  env?: Record<string, string>;
  /** A command that runs sshd for it (sshd's command line is appended), e.g. `unshare
   * --mount …` to give the test host its own /etc/os-release (relay/test/rpm-host.ts). It
   * must exec sshd, so stopping the child stops sshd. */
  wrap?: string[];
  /** Every session runs chrooted here (sshd's ChrootDirectory), e.g. a Debian root from
   * relay/test/debian-root.ts: the client meets that system's shell, apt and dpkg. HOME is
   * then /root, inside it. Every component of the path must be root-owned and writable by
   * root only. */
  chroot?: string;
}

/** One `SetEnv` line: sshd uses only the first SetEnv directive, so every variable goes on it. */
function setEnvLine(env: Record<string, string>): string {
  const words = Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
    if (/["\n\r\\]/.test(v)) throw new Error(`the value of ${k} must not contain quotes, backslashes or newlines`);
    return `"${k}=${v}"`;
  });
  return `SetEnv ${words.join(' ')}`;
}

export async function startSshd(opts: SshdOptions): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), 'patchman-sshd-'));
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir
  await mkdir(join(dir, 'home'), { mode: 0o700 });
  const authorizedKeysPath = join(dir, 'authorized_keys');
  await writeFile(authorizedKeysPath, opts.authorizedKeys.map((k) => k.trim() + '\n').join(''), { mode: 0o600 });

  const port = await freePort();
  let hostKey = await makeHostKey(dir);
  const configPath = join(dir, 'sshd_config');
  await writeFile(
    configPath,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `HostKey ${hostKey.path}`,
      `AuthorizedKeysFile ${authorizedKeysPath}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      `PidFile ${join(dir, 'sshd.pid')}`,
      // Root's real ~/.bashrc (pyenv init) must not run: parallel logins fight over its lock.
      setEnvLine({ ...(opts.env ?? {}), HOME: opts.chroot ? '/root' : join(dir, 'home') }),
      ...(opts.chroot ? [`ChrootDirectory ${opts.chroot}`] : []),
      'MaxStartups 200:30:400',
      'MaxSessions 50',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );

  let child: ChildProcess | undefined;
  let stderr = '';
  let allStderr = '';

  const launch = async (): Promise<void> => {
    stderr = '';
    const argv = [SSHD, '-D', '-e', '-f', configPath];
    const [cmd, ...args] = opts.wrap ? [...opts.wrap, ...argv] : argv;
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (d: string) => {
      stderr = (stderr + d).slice(-4000);
      allStderr = (allStderr + d).slice(-200_000);
    });
    let exited = false;
    c.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`sshd exited during startup: ${stderr.trim()}`);
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    c.kill('SIGKILL');
    throw new Error(`sshd did not accept connections on port ${port} within 10 s: ${stderr.trim()}`);
  };

  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => c.kill('SIGKILL'), 3000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      c.kill('SIGTERM');
    });
  };

  try {
    await launch();
  } catch (err) {
    await kill();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const sshd: Sshd = {
    port,
    address: '127.0.0.1',
    hostKeyFingerprint: hostKey.fingerprint,
    dir,
    log: () => allStderr,
    async regenerateHostKey() {
      await kill();
      hostKey = await makeHostKey(dir);
      sshd.hostKeyFingerprint = hostKey.fingerprint;
      await launch();
    },
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return sshd;
}
