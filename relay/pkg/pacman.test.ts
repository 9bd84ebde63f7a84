import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpError } from '../errors.ts';
import type { ExecOptions, ExecResult, SshSession } from '../ssh.ts';
import { pacman } from './pacman.ts';
import {
  CHECKUPDATES_COMMAND,
  PACMAN_FALLBACK_SCRIPT,
  PACMAN_LIST_COMMAND,
  PACMAN_REBOOT_SCRIPT,
  parseFallback,
  parsePacmanReboot,
  parsePacmanUpdates,
} from './pacman.ts';

import { PACMAN_FULL_ONLY, PACMAN_INSTALLED_COMMAND, PACMAN_UPGRADE, pacmanFailure, parsePacmanInstalled } from './pacman.ts';
import { UPGRADE_ENV } from './shell.ts';
import { PACKAGE_MANAGERS } from '../../protocol/package-managers.ts';
import { thrownOpError } from '../test/op-error.ts';
const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

const thrown = thrownOpError;

describe('pacman command lines', () => {
  it('are constants in the C locale; the scripts are valid POSIX sh', () => {
    expect(CHECKUPDATES_COMMAND).toBe('env LC_ALL=C LANG=C checkupdates');
    expect(PACMAN_LIST_COMMAND).toBe('env LC_ALL=C LANG=C pacman -Qu --color never');
    for (const script of [PACMAN_FALLBACK_SCRIPT.root, PACMAN_FALLBACK_SCRIPT.sudo, PACMAN_REBOOT_SCRIPT]) {
      expect(() => execFileSync('/bin/sh', ['-n'], { input: script })).not.toThrow();
      expect(script.trimEnd().endsWith('} </dev/null')).toBe(true);
    }
    expect(PACMAN_FALLBACK_SCRIPT.sudo).toContain('sudo -n pacman -Sy --dbpath "$t"');
    expect(PACMAN_FALLBACK_SCRIPT.root).not.toContain('sudo');
    // Never a sync of the real databases: every -Sy names the temporary --dbpath.
    for (const script of [PACMAN_FALLBACK_SCRIPT.root, PACMAN_FALLBACK_SCRIPT.sudo]) {
      for (const line of script.split('\n').filter((l) => l.includes('-Sy'))) expect(line).toContain('--dbpath "$t"');
    }
  });
});

describe('parsePacmanUpdates', () => {
  it('parses published checkupdates output (systemd/particleos#126): epochs included', () => {
    const r = parsePacmanUpdates(fixture('checkupdates-arch-particleos.txt'));
    expect(r.updates).toHaveLength(18);
    expect(r.held).toEqual([]);
    expect(r.updates[0]).toEqual({ name: 'bash', currentVersion: '5.3.3-2', newVersion: '5.3.8-1', repository: '', security: false, arch: '' });
    expect(r.updates.find((u) => u.name === 'mesa')).toMatchObject({ currentVersion: '1:25.2.7-1', newVersion: '1:25.3.1-2' });
    expect(r.updates.every((u) => u.security === false)).toBe(true);
  });

  it('an IgnorePkg entry of pacman -Qu is held, not an update', () => {
    // The " [ignored]" suffix as pacman's query.c prints it (no captured sample).
    const r = parsePacmanUpdates('linux 6.9.7.arch1-1 -> 6.9.8.arch1-1 [ignored]\nfirefox 126.0-1 -> 127.0-1\n');
    expect(r.held).toEqual([{ name: 'linux', reason: 'held' }]);
    expect(r.updates.map((u) => u.name)).toEqual(['firefox']);
  });

  it('nothing to do is an empty list; anything unrecognised fails instead of being skipped', () => {
    expect(parsePacmanUpdates('\n')).toEqual({ updates: [], held: [] });
    for (const bad of ['linux 6.9.7.arch1-1 -> 6.9.8.arch1-1 [ignoriert]\n', 'warning: database file for \'core\' does not exist\n', 'linux 1 => 2\n']) {
      expect(thrown(() => parsePacmanUpdates(bad)).code).toBe('command-failed');
    }
  });
});

// ---- the fallback script, run here against fake pacman/sudo ---------------------------------

describe('the fallback script (no pacman-contrib), run with a fake pacman', () => {
  let dir: string;
  let bin: string;
  let tmp: string;
  let log: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'patchman-pacman-'));
    bin = join(dir, 'bin');
    tmp = join(dir, 'tmp');
    log = join(dir, 'log');
    mkdirSync(bin);
    mkdirSync(tmp);
    // Fake pacman: logs its arguments; -Sy writes a db into <dbpath>/sync; -Qu lists updates
    // only if that db and the local link exist.
    writeFileSync(
      join(bin, 'pacman'),
      [
        '#!/bin/sh',
        'echo "pacman $*" >> "$FAKE_LOG"',
        'db=',
        'prev=',
        'for a in "$@"; do [ "$prev" = --dbpath ] && db=$a; prev=$a; done',
        'case "$1" in',
        '  -Sy) [ -n "$db" ] || exit 99',
        '       if [ "${FAKE_SYNC_RC:-0}" != 0 ]; then echo "error: failed to synchronize all databases (unable to lock database)" >&2; exit "$FAKE_SYNC_RC"; fi',
        '       echo "synced" > "$db/sync/core.db"; exit 0 ;;',
        '  -Qu) [ -f "$db/sync/core.db" ] && [ -L "$db/local" ] || { echo "error: no db" >&2; exit 1; }',
        '       printf "linux 6.9.7.arch1-1 -> 6.9.8.arch1-1\\nvim 9.1.0-1 -> 9.1.1-1 [ignored]\\n"; exit 0 ;;',
        'esac',
        'exit 98',
        '',
      ].join('\n'),
    );
    writeFileSync(join(bin, 'pacman-conf'), '#!/bin/sh\necho /var/lib/pacman/\n');
    writeFileSync(
      join(bin, 'sudo'),
      ['#!/bin/sh', 'echo "sudo $*" >> "$FAKE_LOG"', '[ "$1" = -n ] || exit 97', 'shift', 'if [ -n "$FAKE_SUDO_DENY" ]; then echo "sudo: a password is required" >&2; exit 1; fi', 'exec "$@"', ''].join('\n'),
    );
    for (const f of ['pacman', 'pacman-conf', 'sudo']) chmodSync(join(bin, f), 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function run(script: string, env: Record<string, string> = {}): string {
    writeFileSync(log, '');
    return execFileSync('/bin/sh', ['-s'], {
      input: script,
      encoding: 'utf8',
      env: { PATH: `${bin}:/usr/bin:/bin`, TMPDIR: tmp, FAKE_LOG: log, LC_ALL: 'C', ...env },
    });
  }

  it('syncs a temporary copy through sudo -n, lists against it, and removes it', () => {
    const r = parseFallback(run(PACMAN_FALLBACK_SCRIPT.sudo));
    expect(r.syncExit).toBe(0);
    expect(r.list?.updates.map((u) => [u.name, u.currentVersion, u.newVersion])).toEqual([['linux', '6.9.7.arch1-1', '6.9.8.arch1-1']]);
    expect(r.list?.held).toEqual([{ name: 'vim', reason: 'held' }]);
    expect(r.leftover).toBeUndefined();
    expect(readdirSync(tmp)).toEqual([]); // cleaned up
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    expect(calls[0]).toMatch(/^sudo -n pacman -Sy --dbpath \S+\/patchman-db\.\S+ --logfile \/dev\/null --color never$/);
    expect(calls[1]).toMatch(/^pacman -Sy --dbpath /);
    expect(calls[2]).toMatch(/^pacman -Qu --dbpath \S+\/patchman-db\.\S+ --color never$/);
    expect(calls).toHaveLength(3);
  });

  it('as root: no sudo at all', () => {
    const r = parseFallback(run(PACMAN_FALLBACK_SCRIPT.root));
    expect(r.list?.updates).toHaveLength(1);
    expect(readFileSync(log, 'utf8')).not.toContain('sudo');
  });

  it('reports a failed sync (and sudo refusing) without listing, and still cleans up', () => {
    const failed = parseFallback(run(PACMAN_FALLBACK_SCRIPT.root, { FAKE_SYNC_RC: '1' }));
    expect(failed.syncExit).toBe(1);
    expect(failed.list).toBeUndefined();
    expect(failed.syncErrors.join('\n')).toMatch(/failed to synchronize/);
    const denied = parseFallback(run(PACMAN_FALLBACK_SCRIPT.sudo, { FAKE_SUDO_DENY: '1' }));
    expect(denied.syncErrors).toEqual(['sudo: a password is required']);
    expect(readdirSync(tmp)).toEqual([]);
  });
});

// ---- reboot ---------------------------------------------------------------------------------

function rebootOutput(p: { running: string; modules: 'present' | 'missing'; installed?: string[]; container?: string }): string {
  return ['', '@@patchman-reboot-pacman 1', '', '@@running', p.running, '', '@@modules', p.modules, '', '@@installed', ...(p.installed ?? []), '', '@@container', p.container ?? 'none', '', '@@end', ''].join('\n');
}

describe('pacman reboot check', () => {
  it("the running kernel's modules directory is gone: reboot, for any kernel flavour", () => {
    for (const [running, installed] of [
      ['6.9.7-arch1-1', '6.9.8-arch1-1'],
      ['6.6.36-1-lts', '6.6.37-1-lts'],
      ['6.9.7-zen1-1-zen', '6.9.8-zen1-1-zen'],
      ['6.10.0-2-cachyos', '6.10.1-1-cachyos'],
      ['6.6.30-2-MANJARO', '6.6.32-1-MANJARO'],
    ]) {
      expect(parsePacmanReboot(rebootOutput({ running, modules: 'missing', installed: [installed] }))).toEqual({
        required: true,
        reason: `running kernel ${running} is no longer installed (no /usr/lib/modules/${running}); installed: ${installed}`,
      });
    }
  });

  it('no reboot when the modules are there, in a container, or without kernels of its own', () => {
    expect(parsePacmanReboot(rebootOutput({ running: '6.9.7-arch1-1', modules: 'present', installed: ['6.9.7-arch1-1'] })).required).toBe(false);
    expect(parsePacmanReboot(rebootOutput({ running: '6.9.7-arch1-1', modules: 'missing', installed: ['6.9.8-arch1-1'], container: 'docker' })).required).toBe(false);
    expect(parsePacmanReboot(rebootOutput({ running: '6.9.7-arch1-1', modules: 'missing', installed: [] })).required).toBe(false);
  });

  it('the script, run here (a container without /usr/lib/modules), reports no reboot', () => {
    const out = execFileSync('env', ['LC_ALL=C', 'LANG=C', '/bin/sh', '-s'], { input: PACMAN_REBOOT_SCRIPT, encoding: 'utf8' });
    expect(out).toContain(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    const running = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
    if (!existsSync(`/usr/lib/modules/${running}`) && (!existsSync('/usr/lib/modules') || readdirSync('/usr/lib/modules').length === 0)) {
      expect(parsePacmanReboot(out)).toEqual({ required: false, reason: null });
    } else {
      expect(typeof parsePacmanReboot(out).required).toBe('boolean');
    }
  });
});

// ---- the module's flow, against a scripted session -----------------------------------------


function scripted(answers: Record<string, Partial<ExecResult> | ((opts?: ExecOptions) => Partial<ExecResult>)>): SshSession & { calls: string[] } {
  const calls: string[] = [];
  return {
    target: { address: 'arch1', port: 22, user: 'admin' },
    hostKey: { fingerprint: 'SHA256:x', pinnedNow: false },
    kex: undefined,
    calls,
    async exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
      const key = command === 'env LC_ALL=C LANG=C /bin/sh -s' ? `script:${opts?.stdin?.includes('sudo -n pacman') ? 'sudo' : opts?.stdin?.includes('pacman -Sy') ? 'root' : 'other'}` : command;
      calls.push(key);
      const a = answers[key];
      if (!a) throw new Error(`unexpected command ${key}`);
      const r = typeof a === 'function' ? a(opts) : a;
      return { code: 0, signal: null, stdout: '', stderr: '', ...r };
    },
    close() {},
  };
}

const fallbackOut = (sync: number, list = '', errors = '') =>
  `\n@@patchman-pacman-sync 1\n\n@@sync-errors\n${errors}\n@@sync-exit\n${sync}\n` + (sync === 0 ? `\n@@list\n${list}\n@@list-exit\n0\n` : '') + '\n@@cleanup\n\n@@end\n';

describe('pacman.scan', () => {
  const particle = fixture('checkupdates-arch-particleos.txt');

  it('refresh: checkupdates, exit 0 (updates) and 2 (none)', async () => {
    const s = scripted({ [CHECKUPDATES_COMMAND]: { code: 0, stdout: particle } });
    expect((await pacman.scan(s, { privilege: 'no-sudo', refresh: true })).updates).toHaveLength(18);
    expect(s.calls).toEqual([CHECKUPDATES_COMMAND]);
    const none = scripted({ [CHECKUPDATES_COMMAND]: { code: 2 } });
    expect(await pacman.scan(none, { privilege: 'no-sudo', refresh: true })).toEqual({ updates: [], held: [], warnings: [] });
  });

  it('refresh: checkupdates failing is a warning, and the list comes from the real (old) databases', async () => {
    const s = scripted({
      [CHECKUPDATES_COMMAND]: { code: 1, stderr: '==> ERROR: Cannot fetch updates\n' },
      [PACMAN_LIST_COMMAND]: { code: 0, stdout: 'bash 5.3.3-2 -> 5.3.8-1\n' },
    });
    const r = await pacman.scan(s, { privilege: 'no-sudo', refresh: true });
    expect(r.updates.map((u) => u.name)).toEqual(['bash']);
    expect(r.warnings).toEqual([expect.stringMatching(/^Refreshing the package lists failed \(checkupdates exited with status 1\).*Cannot fetch updates/)]);
  });

  it('refresh without pacman-contrib: the fallback through sudo, or sudo-password when sudo wants one', async () => {
    const s = scripted({ [CHECKUPDATES_COMMAND]: { code: 127, stderr: "env: 'checkupdates': No such file or directory\n" }, 'script:sudo': { stdout: fallbackOut(0, 'linux 1-1 -> 2-1\n') } });
    const r = await pacman.scan(s, { privilege: 'sudo', refresh: true });
    expect(r.updates.map((u) => u.name)).toEqual(['linux']);
    expect(r.warnings[0]).toMatch(/checkupdates \(pacman-contrib\) is not installed/);
    expect(s.calls).toEqual([CHECKUPDATES_COMMAND, 'script:sudo']);

    const root = scripted({ [CHECKUPDATES_COMMAND]: { code: 127 }, 'script:root': { stdout: fallbackOut(0, '') } });
    expect((await pacman.scan(root, { privilege: 'root', refresh: true })).updates).toEqual([]);

    for (const privilege of ['sudo-password', 'no-sudo'] as const) {
      const p = scripted({ [CHECKUPDATES_COMMAND]: { code: 127 } });
      const err = await pacman.scan(p, { privilege, refresh: true }).catch((e: unknown) => e);
      expect((err as OpError).code).toBe('sudo-password');
      expect(p.calls).toEqual([CHECKUPDATES_COMMAND]); // nothing privileged was attempted
    }

    const denied = scripted({ [CHECKUPDATES_COMMAND]: { code: 127 }, 'script:sudo': { stdout: fallbackOut(1, '', 'sudo: a password is required') } });
    const err = await pacman.scan(denied, { privilege: 'sudo', refresh: true }).catch((e: unknown) => e);
    expect((err as OpError).code).toBe('sudo-password');
    expect((err as OpError).message).toMatch(/sudo refused .*a password is required/);
  });

  it('no refresh: pacman -Qu on the real databases (exit 1 and no output = nothing pending)', async () => {
    const s = scripted({ [PACMAN_LIST_COMMAND]: { code: 1 } });
    expect(await pacman.scan(s, { privilege: 'no-sudo', refresh: false })).toEqual({ updates: [], held: [], warnings: [] });
    const broken = scripted({ [PACMAN_LIST_COMMAND]: { code: 1, stderr: 'error: could not open database\n' } });
    expect(((await pacman.scan(broken, { privilege: 'root', refresh: false }).catch((e: unknown) => e)) as OpError).code).toBe('command-failed');
  });
});

// ---- upgrade -------------------------------------------------------------------------------

/** Published text, quoted in sim/fixtures/README.md with its source. */
const simFixture = (name: string): string => readFileSync(join(import.meta.dirname, '../../sim/fixtures', name), 'utf8');

describe('pacman upgrade: the run script', () => {
  it('pacman -Syu only, as root or through sudo -n: exact lines', () => {
    expect(PACMAN_UPGRADE).toBe('pacman -Syu --noconfirm --noprogressbar --color never');
    expect(pacman.upgrade.runScript({ privilege: 'root', packages: null })).toBe(
      [`export ${UPGRADE_ENV}`, "echo '$ pacman -Syu --noconfirm --noprogressbar --color never'", 'exec pacman -Syu --noconfirm --noprogressbar --color never'].join('\n'),
    );
    expect(pacman.upgrade.runScript({ privilege: 'sudo', packages: null })).toBe(
      [`export ${UPGRADE_ENV}`, "echo '$ sudo -n pacman -Syu --noconfirm --noprogressbar --color never'", 'exec sudo -n pacman -Syu --noconfirm --noprogressbar --color never'].join('\n'),
    );
    expect(() => execFileSync('/bin/sh', ['-n'], { input: pacman.upgrade.runScript({ privilege: 'sudo', packages: null }) })).not.toThrow();
  });

  it('refuses a partial upgrade, saying why', () => {
    expect(PACKAGE_MANAGERS.pacman.selective).toEqual({ ok: false, why: PACMAN_FULL_ONLY });
    const e = thrown(() => pacman.upgrade.runScript({ privilege: 'root', packages: ['linux'] }));
    expect(e.code).toBe('invalid-request');
    expect(e.message).toBe(PACMAN_FULL_ONLY);
    expect(PACMAN_FULL_ONLY).toMatch(/Partial_upgrades_are_unsupported/);
  });

  it('without passwordless sudo there is no script: sudo-password', () => {
    for (const privilege of ['sudo-password', 'no-sudo'] as const) expect(thrown(() => pacman.upgrade.runScript({ privilege, packages: null })).code).toBe('sudo-password');
  });
});

describe('pacman upgrade: installed packages (pacman -Q)', () => {
  it('the installed-package command is pacman -Q without colour', () => {
    expect(PACMAN_INSTALLED_COMMAND).toBe('pacman -Q --color never');
  });

  it('parses published pacman -Q output, skipping pacman\'s warning lines', () => {
    const text = simFixture('arch/pacman-Q-cnquery.txt');
    expect(text).toContain("warning: database file for 'core' does not exist");
    expect(parsePacmanInstalled(text)).toEqual(
      new Map([
        ['acl', '2.2.53-2'],
        ['archlinux-keyring', '20200108-1'],
        ['argon2', '20190702-2'],
      ]),
    );
  });

  it('keeps epochs and pkgrel, tolerates CRLF', () => {
    expect(parsePacmanInstalled('alsa-plugins 1:1.2.12-5\r\nlinux 5.4.6.arch3-1\n\n')).toEqual(
      new Map([
        ['alsa-plugins', '1:1.2.12-5'],
        ['linux', '5.4.6.arch3-1'],
      ]),
    );
  });
});

describe('pacman upgrade: failures in plain words', () => {
  const where = 'root@arch1:22';

  it('the database lock, as pacman -Syu reports it (the sync takes the lock first)', () => {
    const e = pacmanFailure(1, simFixture('arch/run-lock-held.log'), where);
    expect(e).toMatchObject({ code: 'lock-held', exitCode: 1 });
    expect(e.message).toMatch(/^pacman on root@arch1:22 could not lock its database: another pacman is running, or one died and left \/var\/lib\/pacman\/db\.lck behind/);
  });

  it('the lock as pacman\'s transaction init reports it (src/pacman/util.c trans_init_error)', () => {
    const text = "error: failed to init transaction (unable to lock database)\nerror: could not lock database: File exists\n  if you're sure a package manager is not already\n  running, you can remove /var/lib/pacman/db.lck\n";
    expect(pacmanFailure(1, text, where).code).toBe('lock-held');
  });

  it('sudo asking for a password', () => {
    const e = pacmanFailure(1, "$ sudo -n pacman -Syu --noconfirm --noprogressbar --color never\nsudo: a password is required\n", where);
    expect(e.code).toBe('sudo-password');
  });

  it('anything else: command-failed with pacman\'s error lines', () => {
    const log = ':: Processing package changes...\nerror: failed to commit transaction (conflicting files)\nlibfoo: /usr/lib/libfoo.so exists in filesystem\nErrors occurred, no packages were upgraded.\n';
    const e = pacmanFailure(1, log, where);
    expect(e.code).toBe('command-failed');
    expect(e.message).toBe('pacman -Syu on root@arch1:22 exited with status 1: error: failed to commit transaction (conflicting files)');
  });
});
