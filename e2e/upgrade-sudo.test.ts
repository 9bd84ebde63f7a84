// A real upgrade as a user that is not root, through a real sshd, on a real Debian 12 root
// with real pending updates (a throw-away overlay of relay/test/debian-root.ts, which sshd
// chroots every session into), with exactly the sudoers file the dashboard and README tell
// operators to install (protocol/setup.ts): sudo -n runs apt-get, the upgrade environment
// survives sudo, and the run lives in /var/tmp/patchman-<uid> because this user has no
// writable home. A user without those sudo rights is refused before anything runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sudoersLines } from '../protocol/setup.ts';
import { OpError } from '../relay/errors.ts';
import { loadOrCreateKeyPair } from '../relay/keys.ts';
import { KnownHosts } from '../relay/known-hosts.ts';
import type { OpContext } from '../relay/ops/context.ts';
import { runUpgrade } from '../relay/ops/upgrade.ts';
import { aptLine, aptOn } from '../relay/test/apt-local.ts';
import { overlayRoot, type OverlayRoot } from '../relay/test/debian-root.ts';
import { startSshd, type Sshd } from '../relay/test/sshd.ts';

const SUDO_USER = `pmup${process.pid}`;
const PLAIN_USER = `pmup${process.pid}n`;
const SUDOERS = `/etc/sudoers.d/patchman-${SUDO_USER}`;

let root: OverlayRoot;
let apt: ReturnType<typeof aptOn>;
let tmp: string;
let sshd: Sshd;
let ctx: OpContext;

function removeUsers(): void {
  for (const u of [SUDO_USER, PLAIN_USER]) {
    try {
      execFileSync('userdel', [u], { stdio: 'ignore' });
    } catch {
      /* not there */
    }
  }
}

beforeAll(async () => {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/sudo')) throw new Error('needs root and sudo (apt-get install sudo)');
  tmp = mkdtempSync(join(tmpdir(), 'patchman-upgrade-sudo-'));
  root = await overlayRoot();
  apt = aptOn(root.dir);
  const key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  sshd = await startSshd({ authorizedKeys: [key.publicKey], chroot: root.dir });
  // sshd authenticates the user from this machine's passwd, then the session (and sudo)
  // meets the root's own: the users exist in both, with the same uid
  for (const u of [SUDO_USER, PLAIN_USER]) {
    execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', u]);
    execFileSync('usermod', ['-p', '*', u]); // not locked, no password
    const uid = execFileSync('id', ['-u', u], { encoding: 'utf8' }).trim();
    await root.run(['useradd', '--no-create-home', '--shell', '/bin/sh', '--uid', uid, u]);
    await root.run(['usermod', '-p', '*', u]);
  }
  writeFileSync(join(root.dir, SUDOERS), sudoersLines(SUDO_USER), { mode: 0o440 });
  await root.run(['visudo', '-cf', SUDOERS]);
  chmodSync(sshd.dir, 0o711); // sshd reads authorized_keys as the user logging in
  chmodSync(join(sshd.dir, 'authorized_keys'), 0o644);
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), runs: new Map(), pollIntervalMs: 300, requestTimeoutMs: 600_000 };
});

afterAll(async () => {
  removeUsers();
  await sshd?.stop();
  await root?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const target = (user: string) => ({ address: '127.0.0.1', port: sshd.port, user });

describe('upgrading through sudo with the documented sudoers lines', () => {
  it('upgrades one real package as a non-root user, non-interactively, and reports exactly that change', { timeout: 600_000 }, async () => {
    const pending = apt.aptSimulation();
    const [pkg] = apt.leafUpdates([...pending.keys()]);
    const { current, next } = pending.get(pkg)!;
    const output: string[] = [];
    const runId = `sudo${process.pid}`;
    const result = await runUpgrade({ target: target(SUDO_USER), runId, packages: [pkg], resume: false, offset: 0 }, { ...ctx, output: (d) => output.push(d) });
    const log = output.join('');

    expect(apt.dpkgVersion(pkg)).toBe(next);
    expect(result).toMatchObject({ packageManager: 'apt', mode: 'selective', exitCode: 0 });
    expect(result.changes).toEqual([{ name: expect.stringMatching(new RegExp(`^${pkg.replace(/[+.]/g, '\\$&')}(:\\w+)?$`)), from: current, to: next }]);
    expect(log).toContain(`$ sudo -n apt-get`);
    expect(log).toMatch(aptLine('Unpacking', pkg));
    // the environment made it through sudo: C locale, and debconf never tried a terminal
    expect(log).toMatch(/^Setting up /m);
    expect(log).not.toMatch(/debconf: unable to initialize frontend|falling back to frontend/);
    // the user has no home it can write: the run went to a private /var/tmp dir
    const uid = Number(execFileSync('id', ['-u', SUDO_USER], { encoding: 'utf8' }).trim());
    const dir = join(root.dir, `/var/tmp/patchman-${uid}`);
    const st = statSync(dir);
    expect(st.uid).toBe(uid);
    expect(st.mode & 0o777).toBe(0o700);
    expect(existsSync(join(dir, `${runId}.rc`))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
    console.log(`[upgrade as ${SUDO_USER}] ${pkg} ${current} → ${next} in ${result.durationMs} ms`);
  });

  it('a user sudo asks a password of is refused before anything runs, in plain words', { timeout: 120_000 }, async () => {
    const pending = apt.aptSimulation();
    const [pkg] = apt.leafUpdates([...pending.keys()]);
    const output: string[] = [];
    const err = await runUpgrade({ target: target(PLAIN_USER), runId: `plain${process.pid}`, packages: [pkg], resume: false, offset: 0 }, { ...ctx, output: (d) => output.push(d) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpError);
    expect((err as OpError).code).toBe('sudo-password');
    expect((err as OpError).message).toMatch(/must run as root, but sudo on this host asks for a password/);
    expect(output).toEqual([]);
    expect(apt.dpkgVersion(pkg)).toBe(pending.get(pkg)!.current);
  });
});
