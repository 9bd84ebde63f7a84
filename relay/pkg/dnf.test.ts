// dnf: the parsers against real dnf output captured on this machine (fixtures/dnf-*.txt, see
// fixtures/README.md), then the whole scan / upgrade / reboot path against the REAL dnf and
// rpm on a test host that looks like Fedora (relay/test/rpm-host.ts): tiny packages of two
// versions built here with rpmbuild, a local repository with an updateinfo.xml marking one
// update as a security advisory, behind a real sshd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import * as v from 'valibot';
import { ScanResult } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import { openSession } from '../ssh.ts';
import { buildRpm, existing, fedoraRpmMacros, namespaceHost, publishRepo, rpmInto, toolVersion, updateinfoXml, type NamespaceHost } from '../test/rpm-host.ts';
import { freePort, startSshd, type Sshd } from '../test/sshd.ts';
import type { OpContext } from '../ops/context.ts';
import { runScan } from '../ops/scan.ts';
import { runUpgrade } from '../ops/upgrade.ts';
import {
  DNF_LIST_COMMAND,
  DNF_REBOOT_SCRIPT,
  DNF_SECURITY_COMMAND,
  dnfFailure,
  dnfSpec,
  dnfUpdates,
  parseCheckUpdate,
  parseDnfReboot,
  parseRpmInstalled,
  parseSecurityAdvisories,
  DNF_REBOOT_BEGIN,
} from './dnf.ts';
import { moduleFor } from './index.ts';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const where = 'root@192.0.2.5:22';

describe('dnf command lines', () => {
  it('are constants in the C locale; the reboot script is valid POSIX sh', () => {
    expect(DNF_LIST_COMMAND).toEqual({ cached: 'env LC_ALL=C LANG=C dnf -q check-update', refresh: 'env LC_ALL=C LANG=C dnf -q --refresh check-update' });
    expect(DNF_SECURITY_COMMAND).toBe('env LC_ALL=C LANG=C dnf -q updateinfo list --security --updates');
    expect(() => execFileSync('/bin/sh', ['-n'], { input: DNF_REBOOT_SCRIPT })).not.toThrow();
    expect(moduleFor({ packageManagers: ['dnf', 'yum'] })?.name).toBe('dnf');
    expect(moduleFor({ packageManagers: ['yum'] })).toBeNull(); // yum alone: EL7, end of life
  });
});

describe('dnf parsers, on real dnf 4 output (fixtures)', () => {
  it('check-update: name.arch, version-release, repository', () => {
    expect(parseCheckUpdate(fixture('dnf-check-update.txt'))).toEqual([
      { name: 'hello-pm', arch: 'noarch', version: '1.1-1', repository: 'patchman-test' },
      { name: 'other-pm', arch: 'noarch', version: '2.1-1', repository: 'patchman-test' },
    ]);
  });

  it('check-update: a wrapped long name, epochs, and the Obsoleting block is not read', () => {
    const text = '\nlibreoffice-langpack-zh-Hant-extra-very-long-name.x86_64\n                 1:24.2.5.2-1.fc40          updates\nkernel.x86_64  6.9.4-200.fc40  updates\nObsoleting Packages\ngrub2-tools.x86_64  1:2.06-121.fc40  updates\n    grub2-tools.x86_64  1:2.06-120.fc40  @updates\n';
    expect(parseCheckUpdate(text)).toEqual([
      { name: 'libreoffice-langpack-zh-Hant-extra-very-long-name', arch: 'x86_64', version: '1:24.2.5.2-1.fc40', repository: 'updates' },
      { name: 'kernel', arch: 'x86_64', version: '6.9.4-200.fc40', repository: 'updates' },
    ]);
  });

  it('check-update: anything else fails the scan rather than turning into fewer updates', () => {
    for (const bad of ['Paket.noarch\n', 'hello-pm.noarch 1.1-1\n', 'Fehler: Keine Verbindung zum Server möglich\n']) {
      expect(() => parseCheckUpdate(bad)).toThrow(OpError);
    }
    expect(parseCheckUpdate('\n')).toEqual([]);
  });

  it('updateinfo list --security: advisories with severity, by name.arch', () => {
    const sec = parseSecurityAdvisories(fixture('dnf-updateinfo-security.txt'));
    expect([...sec]).toEqual([['hello-pm.noarch', [{ id: 'FEDORA-2026-0001', severity: 'Important' }]]]);
    // The full list (all types) marks only the Sec. lines.
    expect([...parseSecurityAdvisories(fixture('dnf-updateinfo-list.txt')).keys()]).toEqual(['hello-pm.noarch']);
  });

  it('joins the three listings into updates', () => {
    const u = dnfUpdates(parseCheckUpdate(fixture('dnf-check-update.txt')), parseSecurityAdvisories(fixture('dnf-updateinfo-security.txt')), parseRpmInstalled(fixture('dnf-rpm-qa.txt')));
    expect(u).toEqual([
      { name: 'hello-pm', currentVersion: '1.0-1', newVersion: '1.1-1', repository: 'patchman-test, FEDORA-2026-0001 (Important)', security: true, arch: 'noarch' },
      { name: 'other-pm', currentVersion: '2.0-1', newVersion: '2.1-1', repository: 'patchman-test', security: false, arch: 'noarch' },
    ]);
  });

  it('reboot: needs-restarting -r first (its words and exit status), else the kernels', () => {
    const out = (nr: string, exit: number, running: string, kernels: string[], container = 'none') =>
      `\n${DNF_REBOOT_BEGIN}\n\n@@needs-restarting\n${nr}\n@@needs-restarting-exit\n${exit}\n\n@@running\n${running}\n\n@@kernels\n${kernels.join('\n')}\n\n@@container\n${container}\n\n@@end\n`;
    expect(parseDnfReboot(out(fixture('dnf-needs-restarting-required.txt'), 1, '6.8.9-300.fc40.x86_64', []))).toEqual({
      required: true,
      reason: 'dnf needs-restarting: kernel updated since boot',
    });
    expect(parseDnfReboot(out(fixture('dnf-needs-restarting-none.txt'), 0, '6.8.9-300.fc40.x86_64', ['6.9.4-200.fc40.x86_64']))).toEqual({ required: false, reason: null });
    // No plugin: dnf says "No such command" and also exits 1 — the kernels decide.
    const missing = fixture('dnf-needs-restarting-missing.txt');
    expect(parseDnfReboot(out(missing, 1, '6.8.9-300.fc40.x86_64', ['6.8.9-300.fc40.x86_64', '6.9.4-200.fc40.x86_64']))).toEqual({
      required: true,
      reason: 'running kernel 6.8.9-300.fc40.x86_64, newest installed 6.9.4-200.fc40.x86_64',
    });
    expect(parseDnfReboot(out(missing, 1, '6.9.4-200.fc40.x86_64', ['6.8.9-300.fc40.x86_64', '6.9.4-200.fc40.x86_64']))).toEqual({ required: false, reason: null });
    expect(parseDnfReboot(out(missing, 1, '6.1.0-27-amd64', ['6.9.4-200.fc40.x86_64'], 'lxc'))).toEqual({ required: false, reason: null });
  });

  it('failures in plain words: the real lock, unreachable repository and signature messages', () => {
    expect(dnfFailure(200, fixture('dnf-upgrade-lock-held.log'), where)).toMatchObject({ code: 'lock-held', exitCode: 200, message: expect.stringMatching(/holds the rpmdb lock \(process \d+, dnf\)\. Nothing was changed/) });
    expect(dnfFailure(1, fixture('dnf-upgrade-repo-unreachable.log'), where)).toMatchObject({ code: 'repo-unreachable', message: expect.stringMatching(/could not reach a repository.*Failed to download metadata for repo 'patchman-gone'/) });
    expect(dnfFailure(1, fixture('dnf-upgrade-unsigned.log'), where)).toMatchObject({ code: 'gpg-key-prompt', message: expect.stringMatching(/signature check.*GPG check FAILED/) });
    expect(dnfFailure(1, 'sudo: a password is required\n', where).code).toBe('sudo-password');
    expect(dnfFailure(1, 'Error: Transaction test error:\n  file /usr/bin/x conflicts\n', where)).toMatchObject({ code: 'command-failed', message: expect.stringMatching(/exited with status 1: Error: Transaction test error:/) });
  });

  it('spells an arch-qualified dashboard spec the dnf way', () => {
    expect(dnfSpec('glibc:i686')).toBe('glibc.i686');
    expect(dnfSpec('python3.12-libs')).toBe('python3.12-libs');
  });
});

// ---- the real thing ----------------------------------------------------------------------

const OS_RELEASE = 'NAME="Fedora Linux"\nVERSION="40 (Server Edition)"\nID=fedora\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40 (Server Edition)"\n';

/** This machine is a container, whose kernel is its host's: hiding systemd-detect-virt makes
 * the test host a VM for the reboot check, so its kernel packages count. */
const VM_NOT_CONTAINER = ['/usr/bin/systemd-detect-virt'];

let tmp: string;
let key: KeyPair;
let sshd: Sshd;
let ctx: OpContext;
let conf: string;
let repoDir: string;
let built: Record<string, string>;
let host: NamespaceHost;
const target = () => ({ address: '127.0.0.1', port: sshd.port, user: 'root' });

function writeRepo(name: string, baseurl: string, extra = 'gpgcheck=0\n'): void {
  writeFileSync(join(conf, 'repos.d', `${name}.repo`), `[${name}]\nname=PatchMan test repository ${name}\nbaseurl=${baseurl}\n${extra}`);
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

describe('dnf on a Fedora test host (real dnf, rpm, createrepo_c, sshd)', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'patchman-dnf-'));
    const pkgs = join(tmp, 'pkgs');
    built = {
      release: buildRpm(pkgs, { name: 'patchman-test-release', version: '40', provides: ['system-release', 'system-release(releasever) = 40'] }),
      hello1: buildRpm(pkgs, { name: 'hello-pm', version: '1.0' }),
      hello2: buildRpm(pkgs, { name: 'hello-pm', version: '1.1' }),
      other1: buildRpm(pkgs, { name: 'other-pm', version: '2.0' }),
      other2: buildRpm(pkgs, { name: 'other-pm', version: '2.1' }),
      other3: buildRpm(pkgs, { name: 'other-pm', version: '2.2' }),
      kernel1: buildRpm(pkgs, { name: 'kernel', version: '1.0' }),
      kernel2: buildRpm(pkgs, { name: 'kernel', version: '99.0' }),
      // A transaction that takes a while, to hold the rpmdb lock for real.
      slow: buildRpm(pkgs, { name: 'slow-pm', version: '1.0', preLua: 'posix.sleep(20)' }),
    };
    repoDir = join(tmp, 'repo');
    publishRepo(repoDir, [built.hello2, built.other2, built.kernel2, built.slow], updateinfoXml(
      [
        { id: 'FEDORA-2026-0001', type: 'security', severity: 'Important', pkg: { name: 'hello-pm', version: '1.1' } },
        { id: 'FEDORA-2026-0002', type: 'bugfix', severity: 'None', pkg: { name: 'other-pm', version: '2.1' } },
      ],
      'patchman-test',
    ));

    // /etc/dnf of the test host: its own cache, history and logs in the temp dir.
    conf = join(tmp, 'etc-dnf');
    mkdirSync(join(conf, 'repos.d'), { recursive: true });
    mkdirSync(join(tmp, 'no-plugins'));
    writeFileSync(
      join(conf, 'dnf.conf'),
      `[main]\ngpgcheck=True\ninstallonly_limit=3\nbest=False\nskip_if_unavailable=False\nreposdir=/etc/dnf/repos.d\npluginpath=${tmp}/no-plugins\n`,
    );
    // No plugins: Debian's dnf-plugins-core (needs-restarting) conflicts with zypper, so the
    // reboot check takes its fallback, the kernels, which this test can move for real.
    writeRepo('patchman-test', `file://${repoDir}`);
    writeFileSync(join(tmp, 'os-release'), OS_RELEASE);

    host = namespaceHost(tmp, [[join(tmp, 'os-release'), '/etc/os-release'], [conf, '/etc/dnf']], existing(['/usr/bin/apt-get', '/usr/bin/pacman', '/usr/bin/zypper', ...VM_NOT_CONTAINER]));
    key = await loadOrCreateKeyPair(join(tmp, 'relay'));
    sshd = await startSshd({ authorizedKeys: [key.publicKey], wrap: host.wrap });
    fedoraRpmMacros(join(sshd.dir, 'home'));
    rpmInto(host, ['--initdb']);
    rpmInto(host, ['-i', built.release, built.hello1, built.other1, built.kernel1]);
    ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), connectTimeoutMs: 10_000, pollIntervalMs: 50, runs: new Map(), output: (t) => { if (process.env.DNF_DEBUG) process.stderr.write(t); } };
    console.info(`[dnf] ${toolVersion('dnf')}, ${toolVersion('rpm')}, ${toolVersion('createrepo-c')}`);
  }, 300_000);

  afterAll(async () => {
    await sshd?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('scans: probe says Fedora/dnf, the security advisory marks one update, no reboot yet', { timeout: 300_000 }, async () => {
    const r = await runScan({ target: target(), refresh: true }, ctx);
    expect(v.safeParse(ScanResult, r).success).toBe(true);
    expect(r.probe.os).toMatchObject({ id: 'fedora', version: '40', prettyName: 'Fedora Linux 40 (Server Edition)' });
    expect(r.probe.packageManagers).toEqual(['dnf']);
    expect(r.packageManager).toBe('dnf');
    expect(r.warnings).toEqual([]);
    expect(r.updates).toEqual([
      { name: 'hello-pm', currentVersion: '1.0-1', newVersion: '1.1-1', repository: 'patchman-test, FEDORA-2026-0001 (Important)', security: true, arch: 'noarch' },
      { name: 'kernel', currentVersion: '1.0-1', newVersion: '99.0-1', repository: 'patchman-test', security: false, arch: 'noarch' },
      { name: 'other-pm', currentVersion: '2.0-1', newVersion: '2.1-1', repository: 'patchman-test', security: false, arch: 'noarch' },
    ]);
    // Installed kernel 1.0-1 is older than the running one (this machine's).
    expect(r.reboot).toEqual({ required: false, reason: null });
  });

  it('upgrades the selected security update only, then the rest, and reports the reboot the new kernel needs', { timeout: 300_000 }, async () => {
    const sel = await runUpgrade({ target: target(), runId: 'dnf-sel', packages: ['hello-pm'], resume: false, offset: 0 }, ctx);
    expect(sel).toMatchObject({ packageManager: 'dnf', mode: 'selective', exitCode: 0, changes: [{ name: 'hello-pm.noarch', from: '1.0-1', to: '1.1-1' }] });
    expect(sel.logTail).toMatch(/Complete!/);
    const after = await runScan({ target: target(), refresh: false }, ctx);
    expect(after.updates.map((u) => u.name)).toEqual(['kernel', 'other-pm']);

    const full = await runUpgrade({ target: target(), runId: 'dnf-full', resume: false, offset: 0 }, ctx);
    expect(full).toMatchObject({ mode: 'full', exitCode: 0 });
    expect(full.changes).toEqual([
      { name: 'kernel.noarch', from: '1.0-1', to: '99.0-1' },
      { name: 'other-pm.noarch', from: '2.0-1', to: '2.1-1' },
    ]);
    // No needs-restarting here: the newest installed kernel package against uname -r.
    expect(full.reboot).toEqual({ required: true, reason: `running kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, newest installed 99.0-1.noarch` });
    expect((await runScan({ target: target(), refresh: false }, ctx)).updates).toEqual([]);
  });

  it('a held rpmdb lock (another dnf mid-transaction) fails at once as lock-held, nothing changed', { timeout: 300_000 }, async () => {
    publishRepo(repoDir, [built.other3]); // something to upgrade
    // A second, real dnf that installs slow-pm, whose %pre sleeps with the lock held.
    const s = await openSession(target(), ctx);
    try {
      await s.exec('setsid sh -c "dnf -y -q --refresh install slow-pm >/dev/null 2>&1" </dev/null >/dev/null 2>&1 &', { timeoutMs: 30_000 });
    } finally {
      s.close();
    }
    const lock = join(host.varDir, 'lib', 'dnf', 'rpmdb_lock.pid');
    const until = Date.now() + 120_000;
    while (!existsSync(lock) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(lock)).toBe(true);
    const err = await upgradeError(runUpgrade({ target: target(), runId: 'dnf-lock', resume: false, offset: 0 }, ctx));
    expect(err).toMatchObject({ code: 'lock-held', exitCode: 200 });
    expect(err.message).toMatch(/holds the rpmdb lock \(process \d+, dnf\)\. Nothing was changed/);
    expect(rpmInto(host, ['-q', 'other-pm']).trim()).toBe('other-pm-2.1-1.noarch');
    while (existsSync(lock) && Date.now() < until + 60_000) await new Promise((r) => setTimeout(r, 500));
  });

  it('an unsigned package with gpgcheck on fails as gpg-key-prompt', { timeout: 300_000 }, async () => {
    writeRepo('patchman-test', `file://${repoDir}`, 'gpgcheck=1\n');
    const err = await upgradeError(runUpgrade({ target: target(), runId: 'dnf-gpg', resume: false, offset: 0 }, ctx));
    // dnf's own words when the host has no keys at all (with keys: "GPG check FAILED").
    expect(err).toMatchObject({ code: 'gpg-key-prompt', exitCode: 1, message: expect.stringMatching(/package signature check/) });
    writeRepo('patchman-test', `file://${repoDir}`);
  });

  it('an unreachable repository fails the scan and the upgrade in plain words', { timeout: 300_000 }, async () => {
    writeRepo('patchman-gone', `http://127.0.0.1:${await freePort()}/repo`, 'gpgcheck=0\ntimeout=5\nretries=1\n');
    try {
      await expect(runScan({ target: target(), refresh: true }, ctx)).rejects.toMatchObject({ code: 'command-failed', message: expect.stringMatching(/a repository could not be reached/) });
      const err = await upgradeError(runUpgrade({ target: target(), runId: 'dnf-gone', resume: false, offset: 0 }, ctx));
      expect(err).toMatchObject({ code: 'repo-unreachable', message: expect.stringMatching(/Failed to download metadata for repo 'patchman-gone'/) });
    } finally {
      rmSync(join(conf, 'repos.d', 'patchman-gone.repo'));
    }
  });
});
