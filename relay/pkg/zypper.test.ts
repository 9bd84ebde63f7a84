// zypper: the parsers against real zypper output captured on this machine (fixtures/zypper-*,
// see fixtures/README.md), then scan / upgrade / reboot against the REAL zypper and rpm on a
// test host that looks like openSUSE Leap, then Tumbleweed (relay/test/rpm-host.ts): packages
// built here with rpmbuild, a local repository with an updateinfo.xml whose security advisory
// zypper reads as a security patch, behind a real sshd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { TUMBLEWEED_FULL_ONLY } from '../../protocol/package-managers.ts';
import { ScanResult } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import type { OpContext } from '../ops/context.ts';
import { runScan } from '../ops/scan.ts';
import { runUpgrade } from '../ops/upgrade.ts';
import { openSession } from '../ssh.ts';
import { buildRpm, existing, fedoraRpmMacros, namespaceHost, publishRepo, rpmInto, toolVersion, updateinfoXml, type NamespaceHost } from '../test/rpm-host.ts';
import { freePort, startSshd, type Sshd } from '../test/sshd.ts';
import { moduleFor } from './index.ts';
import {
  ZYPPER_LIST_COMMAND,
  ZYPPER_PATCHES_COMMAND,
  ZYPPER_REBOOT_BEGIN,
  ZYPPER_REBOOT_SCRIPT,
  parsePatchInfo,
  parseSecurityPatches,
  parseZypperReboot,
  parseZypperUpdates,
  zypper,
  zypperFailure,
  zypperUpdates,
} from './zypper.ts';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const where = 'root@192.0.2.6:22';

describe('zypper command lines and parsers (real zypper 1.14 output)', () => {
  it('are constants in the C locale; the reboot script is valid POSIX sh', () => {
    expect(ZYPPER_LIST_COMMAND).toBe('env LC_ALL=C LANG=C zypper -n --no-refresh --xmlout list-updates');
    expect(ZYPPER_PATCHES_COMMAND).toBe('env LC_ALL=C LANG=C zypper -n --no-refresh --xmlout list-patches --category security');
    expect(() => execFileSync('/bin/sh', ['-n'], { input: ZYPPER_REBOOT_SCRIPT })).not.toThrow();
    expect(moduleFor({ packageManagers: ['zypper'] })).toBe(zypper);
  });

  it('list-updates XML → updates; the security patch marks hello-pm with its severity', () => {
    const list = parseZypperUpdates(fixture('zypper-list-updates.xml'), 'package');
    const patches = parseSecurityPatches(fixture('zypper-list-patches-security.xml'));
    expect(patches).toEqual([{ id: 'FEDORA-2026-0001', severity: 'important' }]); // the bugfix patch is not security
    const info = parsePatchInfo(fixture('zypper-info-patch.txt'));
    expect([...info]).toEqual([['FEDORA-2026-0001', ['hello-pm']]]);
    const security = new Map([['hello-pm', patches]]);
    expect(zypperUpdates(list, security)).toEqual([
      { name: 'hello-pm', currentVersion: '1.0-1', newVersion: '1.1-1', repository: 'patchman-test, FEDORA-2026-0001 (important)', security: true, arch: 'noarch' },
      { name: 'kernel-default', currentVersion: '5.14.21-1', newVersion: '99.1-1', repository: 'patchman-test', security: false, arch: 'noarch' },
      { name: 'other-pm', currentVersion: '2.0-1', newVersion: '2.1-1', repository: 'patchman-test', security: false, arch: 'noarch' },
    ]);
  });

  it('a patch fixing several packages (the counted Conflicts list), arch suffixes and source packages', () => {
    // Constructed in the layout zypper prints for more than one entry.
    const text = 'Information for patch SUSE-2024-1:\n---\nName        : SUSE-2024-1\nConflicts   : [3]\n    openssl-3.x86_64 < 3.1.4-150600.5.15.1\n    libopenssl3 < 3.1.4-150600.5.15.1\n    srcpackage:openssl-3 < 3.1.4-150600.5.15.1\n';
    expect([...parsePatchInfo(text)]).toEqual([['SUSE-2024-1', ['openssl-3', 'libopenssl3']]]);
  });

  it('output that is not zypper XML fails instead of reading as no updates', () => {
    expect(() => parseZypperUpdates('Repository-Daten werden geladen...\n', 'package')).toThrow(OpError);
    expect(() => parseZypperUpdates('<stream><message type="error">System management is locked</message></stream>', 'package')).toThrow(/System management is locked/);
  });

  it('reboot: needs-rebooting exit 102 / 0, else the kernels', () => {
    const out = (said: string, exit: number, running: string, kernels: string[]) =>
      `\n${ZYPPER_REBOOT_BEGIN}\n\n@@needs-rebooting\n${said}\n@@needs-rebooting-exit\n${exit}\n\n@@running\n${running}\n\n@@kernels\n${kernels.join('\n')}\n\n@@container\n\n@@end\n`;
    expect(parseZypperReboot(out(fixture('zypper-needs-rebooting-required.txt'), 102, '6.4.0-150600.23.25-default', []))).toEqual({
      required: true,
      reason: 'zypper needs-rebooting: Core libraries or services have been updated.',
    });
    expect(parseZypperReboot(out(fixture('zypper-needs-rebooting-none.txt'), 0, '6.4.0-150600.23.25-default', ['6.4.0-150600.23.30.1']))).toEqual({ required: false, reason: null });
    // An old zypper without needs-rebooting: the running kernel is its package's version-release.
    const old = "Unknown command 'needs-rebooting'";
    expect(parseZypperReboot(out(old, 1, '6.4.0-150600.23.25-default', ['6.4.0-150600.23.25.1']))).toEqual({ required: false, reason: null });
    expect(parseZypperReboot(out(old, 1, '6.4.0-150600.23.25-default', ['6.4.0-150600.23.25.1', '6.4.0-150600.23.30.1']))).toEqual({
      required: true,
      reason: 'running kernel 6.4.0-150600.23.25-default, newest installed 6.4.0-150600.23.30.1',
    });
  });

  it('failures in plain words: the real lock and unreachable-repository messages', () => {
    expect(zypperFailure(7, fixture('zypper-update-lock-held.log'), where)).toMatchObject({ code: 'lock-held', exitCode: 7, message: expect.stringMatching(/holds the package management lock \(process \d+, zypper\)\. Nothing was changed/) });
    expect(zypperFailure(4, fixture('zypper-refresh-repo-unreachable.log'), where)).toMatchObject({ code: 'repo-unreachable', message: expect.stringMatching(/Repository 'gone' is invalid/) });
    expect(zypperFailure(4, 'sudo: a password is required\n', where).code).toBe('sudo-password');
  });

  it('the run script: refresh first (stop when it fails), update or dup, info exit codes are success', () => {
    const leap = zypper.upgrade.runScript({ privilege: 'sudo', packages: ['hello-pm'], osId: 'opensuse-leap' });
    expect(leap).toContain("sudo -n zypper -n refresh || exit $?\n");
    expect(leap).toContain("sudo -n zypper -n --no-refresh update 'hello-pm'\n");
    expect(zypper.upgrade.runScript({ privilege: 'root', packages: null, osId: 'opensuse-tumbleweed' })).toContain('\nzypper -n --no-refresh dist-upgrade\n');
    expect(() => zypper.upgrade.runScript({ privilege: 'root', packages: ['x'], osId: 'opensuse-tumbleweed' })).toThrow(TUMBLEWEED_FULL_ONLY);
    expect(() => execFileSync('/bin/sh', ['-n'], { input: leap })).not.toThrow();
  });
});

// ---- the real thing ----------------------------------------------------------------------

const LEAP = 'NAME="openSUSE Leap"\nVERSION="15.6"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="15.6"\nPRETTY_NAME="openSUSE Leap 15.6"\n';
const TUMBLEWEED = 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\nVERSION_ID="20261201"\nPRETTY_NAME="openSUSE Tumbleweed"\n';

let tmp: string;
let key: KeyPair;
let sshd: Sshd;
let ctx: OpContext;
let host: NamespaceHost;
let zyppDir: string;
let repoDir: string;
let built: Record<string, string>;
const target = () => ({ address: '127.0.0.1', port: sshd.port, user: 'root' });

function writeRepo(name: string, baseurl: string): void {
  writeFileSync(join(zyppDir, 'repos.d', `${name}.repo`), `[${name}]\nname=PatchMan test repository ${name}\nenabled=1\nautorefresh=1\nbaseurl=${baseurl}\ntype=rpm-md\ngpgcheck=0\n`);
}

async function upgradeError(p: Promise<unknown>): Promise<OpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error('expected the upgrade to fail');
}

describe('zypper on an openSUSE test host (real zypper, rpm, createrepo_c, sshd)', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'patchman-zypper-'));
    const pkgs = join(tmp, 'pkgs');
    const kernel = (version: string) => buildRpm(pkgs, { name: 'kernel-default', version, provides: ['installhint(reboot-needed)'] });
    built = {
      hello1: buildRpm(pkgs, { name: 'hello-pm', version: '1.0' }),
      hello2: buildRpm(pkgs, { name: 'hello-pm', version: '1.1' }),
      other1: buildRpm(pkgs, { name: 'other-pm', version: '2.0' }),
      other2: buildRpm(pkgs, { name: 'other-pm', version: '2.1' }),
      other3: buildRpm(pkgs, { name: 'other-pm', version: '2.2' }),
      kernel1: kernel('5.14.21'),
      kernel2: kernel('99.1'),
      slow: buildRpm(pkgs, { name: 'slow-pm', version: '1.0', preLua: 'posix.sleep(15)' }),
    };
    repoDir = join(tmp, 'repo');
    publishRepo(repoDir, [built.hello2, built.other2, built.kernel2, built.slow], updateinfoXml(
      [
        { id: 'openSUSE-2026-0001', type: 'security', severity: 'important', pkg: { name: 'hello-pm', version: '1.1' } },
        { id: 'openSUSE-2026-0002', type: 'bugfix', severity: 'low', pkg: { name: 'other-pm', version: '2.1' } },
      ],
      'patchman-test',
    ));
    zyppDir = join(tmp, 'etc-zypp');
    mkdirSync(join(zyppDir, 'repos.d'), { recursive: true });
    writeFileSync(join(zyppDir, 'zypp.conf'), '[main]\n');
    writeRepo('patchman-test', `file://${repoDir}`);
    writeFileSync(join(tmp, 'os-release'), LEAP);
    host = namespaceHost(
      tmp,
      [[join(tmp, 'os-release'), '/etc/os-release'], [zyppDir, '/etc/zypp']],
      existing(['/usr/bin/apt-get', '/usr/bin/pacman', '/usr/bin/dnf', '/usr/bin/systemd-detect-virt']),
    );
    key = await loadOrCreateKeyPair(join(tmp, 'relay'));
    sshd = await startSshd({ authorizedKeys: [key.publicKey], wrap: host.wrap });
    fedoraRpmMacros(join(sshd.dir, 'home'));
    rpmInto(host, ['--initdb']);
    rpmInto(host, ['-i', built.hello1, built.other1, built.kernel1]);
    ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), connectTimeoutMs: 10_000, pollIntervalMs: 50, runs: new Map(), output: () => {} };
    console.info(`[zypper] ${toolVersion('zypper')}, ${toolVersion('rpm')}, ${toolVersion('createrepo-c')}`);
  }, 300_000);

  afterAll(async () => {
    await sshd?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('scans Leap: updates with the security patch apart, no reboot yet', { timeout: 300_000 }, async () => {
    const r = await runScan({ target: target(), refresh: true }, ctx);
    expect(v.safeParse(ScanResult, r).success).toBe(true);
    expect(r.probe.os).toMatchObject({ id: 'opensuse-leap', prettyName: 'openSUSE Leap 15.6' });
    expect(r.probe.packageManagers).toEqual(['zypper']);
    expect(r.packageManager).toBe('zypper');
    expect(r.warnings).toEqual([]);
    expect(r.updates).toEqual([
      { name: 'hello-pm', currentVersion: '1.0-1', newVersion: '1.1-1', repository: 'patchman-test, openSUSE-2026-0001 (important)', security: true, arch: 'noarch' },
      { name: 'kernel-default', currentVersion: '5.14.21-1', newVersion: '99.1-1', repository: 'patchman-test', security: false, arch: 'noarch' },
      { name: 'other-pm', currentVersion: '2.0-1', newVersion: '2.1-1', repository: 'patchman-test', security: false, arch: 'noarch' },
    ]);
    expect(r.reboot).toEqual({ required: false, reason: null });
  });

  it('upgrades the selected security update only; another zypper holding the lock fails it as lock-held', { timeout: 300_000 }, async () => {
    const sel = await runUpgrade({ target: target(), runId: 'zy-sel', packages: ['hello-pm'], resume: false, offset: 0 }, ctx);
    expect(sel).toMatchObject({ packageManager: 'zypper', mode: 'selective', exitCode: 0, changes: [{ name: 'hello-pm.noarch', from: '1.0-1', to: '1.1-1' }] });

    const s = await openSession(target(), ctx);
    try {
      await s.exec('setsid sh -c "zypper -n --no-refresh install slow-pm >/dev/null 2>&1" </dev/null >/dev/null 2>&1 &', { timeoutMs: 30_000 });
    } finally {
      s.close();
    }
    const pidFile = join(host.runDir, 'zypp.pid');
    const until = Date.now() + 120_000;
    while (!(existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '') && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    const err = await upgradeError(runUpgrade({ target: target(), runId: 'zy-lock', resume: false, offset: 0 }, ctx));
    expect(err).toMatchObject({ code: 'lock-held', exitCode: 7, message: expect.stringMatching(/\(process \d+, zypper\)\. Nothing was changed/) });
    expect(rpmInto(host, ['-q', 'other-pm']).trim()).toBe('other-pm-2.0-1.noarch');
    while (rpmInto(host, ['-qa', 'slow-pm']).trim() === '' && Date.now() < until + 60_000) await new Promise((r) => setTimeout(r, 500));
    while (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '' && Date.now() < until + 90_000) await new Promise((r) => setTimeout(r, 300));
  });

  it('the full upgrade installs the new kernel, and zypper needs-rebooting then says reboot', { timeout: 300_000 }, async () => {
    const full = await runUpgrade({ target: target(), runId: 'zy-full', resume: false, offset: 0 }, ctx);
    expect(full).toMatchObject({ mode: 'full', exitCode: 0 });
    expect(full.changes).toEqual([
      { name: 'kernel-default.noarch', from: '5.14.21-1', to: '99.1-1' },
      { name: 'other-pm.noarch', from: '2.0-1', to: '2.1-1' },
    ]);
    expect(full.reboot).toEqual({ required: true, reason: 'zypper needs-rebooting: Core libraries or services have been updated.' });
  });

  it('an unreachable repository stops the upgrade before anything changes; the scan warns', { timeout: 300_000 }, async () => {
    publishRepo(repoDir, [built.other3]);
    writeRepo('patchman-gone', `http://127.0.0.1:${await freePort()}/repo`);
    try {
      const scan = await runScan({ target: target(), refresh: true }, ctx);
      expect(scan.warnings.join(' ')).toMatch(/Refreshing the repositories failed.*Repository 'PatchMan test repository patchman-gone' is invalid/);
      const err = await upgradeError(runUpgrade({ target: target(), runId: 'zy-gone', resume: false, offset: 0 }, ctx));
      expect(err).toMatchObject({ code: 'repo-unreachable', exitCode: 4, message: expect.stringMatching(/nothing was upgraded/) });
      expect(rpmInto(host, ['-q', 'other-pm']).trim()).toBe('other-pm-2.1-1.noarch');
    } finally {
      rmSync(join(zyppDir, 'repos.d', 'patchman-gone.repo'));
    }
  });

  it('on Tumbleweed: no single packages, and the full upgrade is zypper dup', { timeout: 300_000 }, async () => {
    writeFileSync(join(tmp, 'os-release'), TUMBLEWEED);
    const err = await upgradeError(runUpgrade({ target: target(), runId: 'zy-tw-sel', packages: ['other-pm'], resume: false, offset: 0 }, ctx));
    expect(err).toMatchObject({ code: 'invalid-request', message: TUMBLEWEED_FULL_ONLY });
    const chunks: string[] = [];
    const dup = await runUpgrade({ target: target(), runId: 'zy-tw', resume: false, offset: 0 }, { ...ctx, output: (t) => chunks.push(t) });
    expect(chunks.join('')).toContain('$ zypper -n --no-refresh dist-upgrade');
    expect(dup.changes).toEqual([{ name: 'other-pm.noarch', from: '2.1-1', to: '2.2-1' }]);
  });
});
