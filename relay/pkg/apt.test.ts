import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpError } from '../errors.ts';
import type { ExecOptions, ExecResult, SshSession } from '../ssh.ts';
import { apt } from './apt.ts';
import {
  APT_COMMANDS,
  APT_LIST_COMMAND,
  APT_REBOOT_SCRIPT,
  APT_SHOWHOLD_COMMAND,
  APT_UPDATE,
  aptMessages,
  classifyHeld,
  isSecurityOrigin,
  kernelReboot,
  kernelVersionKey,
  parseAptReboot,
  parseAptSimulation,
  parseInstLine,
  parseShowHold,
  simulationWarnings,
} from './apt.ts';

import { APT_INSTALLED_COMMAND, aptFailure, parseDpkgInstalled } from './apt.ts';
import { UPGRADE_ENV } from './shell.ts';
import { thrownOpError } from '../test/op-error.ts';
const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

const thrown = thrownOpError;

describe('apt command lines', () => {
  it('are constants that force the C locale', () => {
    expect(APT_LIST_COMMAND).toBe('env LC_ALL=C LANG=C apt-get -s -o Debug::NoLocking=1 dist-upgrade');
    expect(APT_SHOWHOLD_COMMAND).toBe('env LC_ALL=C LANG=C apt-mark showhold');
    expect(APT_UPDATE).toBe('apt-get -q -o DPkg::Lock::Timeout=60 update');
    expect(APT_COMMANDS.update).toEqual({
      root: 'env LC_ALL=C LANG=C apt-get -q -o DPkg::Lock::Timeout=60 update',
      sudo: 'env LC_ALL=C LANG=C sudo -n apt-get -q -o DPkg::Lock::Timeout=60 update',
    });
  });

  it('the reboot script is valid POSIX sh (dash) and one brace group reading nothing from stdin', () => {
    expect(APT_REBOOT_SCRIPT.startsWith('{\n')).toBe(true);
    expect(APT_REBOOT_SCRIPT.trimEnd().endsWith('} </dev/null')).toBe(true);
    expect(() => execFileSync('/bin/sh', ['-n'], { input: APT_REBOOT_SCRIPT })).not.toThrow();
  });
});

// ---- the simulation ------------------------------------------------------------------------

describe('parseAptSimulation: Debian 12, captured on this machine', () => {
  const text = fixture('apt-debian12-dist-upgrade.txt');
  const sim = parseAptSimulation(text);

  it('finds every Inst line, with versions, origins and architecture', () => {
    expect(sim.summary).toEqual({ upgraded: 120, newlyInstalled: 0, reinstalled: 0, downgraded: 0, remove: 0, notUpgraded: 0 });
    expect(sim.updates).toHaveLength(120);
    expect(sim.unparsed).toEqual([]);
    expect(simulationWarnings(sim)).toEqual([]);
    expect(sim.updates.find((u) => u.name === 'base-files')).toEqual({
      name: 'base-files',
      currentVersion: '12.4+deb12u11',
      newVersion: '12.4+deb12u15',
      repository: 'Debian:12.15/oldstable',
      security: false,
      arch: 'amd64',
    });
    // Trailing `[]` and two origins, one of them the security pocket.
    expect(sim.updates.find((u) => u.name === 'libgcrypt20-dev')).toEqual({
      name: 'libgcrypt20-dev',
      currentVersion: '1.10.1-3',
      newVersion: '1.10.1-3+deb12u1',
      repository: 'Debian:12.15/oldstable, Debian-Security:12/oldstable-security',
      security: true,
      arch: 'amd64',
    });
    // Epoch.
    expect(sim.updates.find((u) => u.name === 'login')).toMatchObject({ currentVersion: '1:4.13+dfsg1-1+deb12u1', newVersion: '1:4.13+dfsg1-1+deb12u2' });
  });

  it('classifies security exactly as "the Inst line names a -security origin"', () => {
    const expected = new Set(
      text
        .split('\n')
        .filter((l) => l.startsWith('Inst ') && l.includes('-security'))
        .map((l) => l.split(' ')[1]),
    );
    expect(expected.size).toBe(74);
    expect(new Set(sim.updates.filter((u) => u.security).map((u) => u.name))).toEqual(expected);
  });
});

describe('parseAptSimulation refuses translated output', () => {
  it('German apt output (captured here with LANGUAGE=de) is a command-failed, not "0 updates"', () => {
    const de = fixture('apt-debian12-dist-upgrade-de.txt');
    expect(de).toContain('Die folgenden Pakete werden aktualisiert (Upgrade):');
    const err = thrown(() => parseAptSimulation(de));
    expect(err.code).toBe('command-failed');
    expect(err.message).toMatch(/C locale/);
    expect(err.message).toMatch(/120 "Inst" lines but no/);
  });

  it('a German summary with no Inst lines at all is refused too', () => {
    const text = 'Paketlisten werden gelesen…\nPaketaktualisierung (Upgrade) wird berechnet…\n0 aktualisiert, 0 neu installiert, 0 zu entfernen und 0 nicht aktualisiert.\n';
    expect(thrown(() => parseAptSimulation(text)).code).toBe('command-failed');
    expect(thrown(() => parseAptSimulation('')).code).toBe('command-failed');
  });
});

describe('parseAptSimulation: published Ubuntu outputs', () => {
  it('Ubuntu 24.04 with phased updates (securedrop#7433)', () => {
    const sim = parseAptSimulation(fixture('apt-ubuntu2404-phased-securedrop.txt'));
    expect(sim.updates.map((u) => [u.name, u.currentVersion, u.newVersion, u.security, u.arch])).toEqual([
      ['libdrm-common', '2.4.120-2build1', '2.4.122-1~ubuntu0.24.04.1', false, 'all'],
      ['libdrm2', '2.4.120-2build1', '2.4.122-1~ubuntu0.24.04.1', false, 'amd64'],
    ]);
    expect(sim.phased).toEqual([
      'libnss-systemd',
      'libpam-systemd',
      'libsystemd-shared',
      'libsystemd0',
      'libudev1',
      'systemd',
      'systemd-dev',
      'systemd-resolved',
      'systemd-sysv',
      'systemd-timesyncd',
      'udev',
    ]);
    expect(sim.phased).toHaveLength(sim.summary.notUpgraded);
    expect(sim.keptBack).toEqual([]);
    expect(classifyHeld(sim, []).every((h) => h.reason === 'phased')).toBe(true);
    expect(simulationWarnings(sim)).toEqual([]);
  });

  it('Ubuntu 22.04 with new packages, kept-back packages and security (saltstack test data)', () => {
    const sim = parseAptSimulation(fixture('apt-ubuntu2204-kept-back-new-salt.txt'));
    expect(sim.summary).toMatchObject({ upgraded: 4, newlyInstalled: 7, notUpgraded: 5 });
    expect(sim.updates).toHaveLength(11);
    expect(sim.updates.filter((u) => u.currentVersion === null).map((u) => u.name)).toEqual([
      'linux-cloud-tools-5.15.0-86',
      'linux-cloud-tools-5.15.0-86-generic',
      'linux-modules-5.15.0-86-generic',
      'linux-image-5.15.0-86-generic',
      'linux-modules-extra-5.15.0-86-generic',
      'linux-headers-5.15.0-86',
      'linux-headers-5.15.0-86-generic',
    ]);
    expect(sim.updates.every((u) => u.security && u.repository === 'Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security')).toBe(true);
    expect(sim.updates.find((u) => u.name === 'linux-generic')).toMatchObject({ currentVersion: '5.15.0.69.67', newVersion: '5.15.0.86.83' });
    // The published text has "netplan. io" (a paste artefact); the intact names come through.
    expect(sim.keptBack).toEqual(expect.arrayContaining(['libnetplan0', 'libsgutils2-2', 'sg3-utils', 'sg3-utils-udev']));
    expect(simulationWarnings(sim)).toEqual([]);
    // dpkg holds win over "kept back".
    expect(classifyHeld(sim, ['sg3-utils', 'not-pending'])).toEqual(
      expect.arrayContaining([
        { name: 'sg3-utils', reason: 'held' },
        { name: 'libnetplan0', reason: 'kept-back' },
      ]),
    );
    expect(classifyHeld(sim, ['sg3-utils', 'not-pending']).find((h) => h.name === 'not-pending')).toBeUndefined();
  });

  it('phased block printed with APT::Get::Show-Versions (canonical/lxd#17246)', () => {
    const sim = parseAptSimulation(fixture('apt-ubuntu2404-phased-show-versions-lxd.txt'));
    expect(sim.phased).toHaveLength(11);
    expect(sim.phased).toContain('dhcpcd-base');
    expect(sim.phased.every((n) => /^[a-z0-9][a-z0-9.+-]+$/.test(n))).toBe(true);
    expect(sim.updates).toEqual([]);
  });

  it("apt 3's output format (Not upgrading yet due to phasing / Summary:) (bkbilly/lnxlink#234)", () => {
    const sim = parseAptSimulation(fixture('apt3-phased-lnxlink.txt'));
    expect(sim.summary).toEqual({ upgraded: 0, newlyInstalled: 0, reinstalled: 0, downgraded: 0, remove: 0, notUpgraded: 16 });
    expect(sim.phased).toHaveLength(16);
    expect(sim.phased).toContain('libsystemd0:i386');
  });

  it('apt 3 keeps back packages under "Not upgrading:"', () => {
    // Header wording from apt 3.0's private-output.cc (ShowKept); the rest as in apt3-phased-lnxlink.txt.
    const text = 'Not upgrading:\n  foo  bar\n\nSummary:\n  Upgrading: 0, Installing: 0, Removing: 0, Not Upgrading: 2\n';
    expect(parseAptSimulation(text).keptBack).toEqual(['foo', 'bar']);
  });
});

describe('parseInstLine: published lines', () => {
  const lines = fixture('apt-lines-checkmk.txt').split('\n').filter((l) => l.startsWith('Inst '));
  const byName = new Map(lines.map((l) => [l.split(' ')[1], parseInstLine(l)]));

  it('parses every line of Checkmk test data (Debian 9/10, Ubuntu 16.04 ESM)', () => {
    expect(lines).toHaveLength(12);
    for (const [name, u] of byName) expect(u?.name, name).toBe(name);
  });

  it('reads epochs and new packages', () => {
    expect(byName.get('default-jre')).toMatchObject({ currentVersion: '2:1.8-58', newVersion: '2:1.8-58+deb9u1', security: false });
    expect(byName.get('bind9-host')).toMatchObject({ currentVersion: '1:9.10.3.dfsg.P4-8ubuntu1.19', newVersion: '1:9.10.3.dfsg.P4-8ubuntu1.19+esm1' });
    expect(byName.get('linux-image-4.19.0-19-amd64')).toEqual({
      name: 'linux-image-4.19.0-19-amd64',
      currentVersion: null,
      newVersion: '4.19.232-1',
      repository: 'Debian-Security:10/oldstable',
      security: true,
      arch: 'amd64',
    });
  });

  it('security: -security suites, the Debian-Security label (Debian ≤ 10 suites), ESM', () => {
    expect(byName.get('librsvg2-2')?.security).toBe(true); // Debian-Security:9/oldstable
    expect(byName.get('libapt-pkg5.0')?.security).toBe(true);
    expect(byName.get('tzdata')).toMatchObject({ security: true, arch: 'all', repository: 'UbuntuESM:16.04/xenial-infra-security' });
    expect(byName.get('linux-libc-dev')?.security).toBe(false);
    expect(byName.get('ubuntu-advantage-tools')?.security).toBe(false);
  });

  it('removals become a warning', () => {
    // The Checkmk lines have no summary line; this one is added so the simulation parses.
    const sim = parseAptSimulation(fixture('apt-lines-checkmk.txt') + '11 upgraded, 1 newly installed, 2 to remove and 0 not upgraded.\n');
    expect(sim.removals).toEqual(['default-java-plugin', 'icedtea-8-plugin']);
    expect(simulationWarnings(sim)).toEqual(['A full upgrade would also remove 2 package(s): default-java-plugin, icedtea-8-plugin']);
  });

  it('ESM Apps, several trailing bracket groups, foreign architectures', () => {
    // Constructed: the origin as RelStr prints Ubuntu Pro's documented label and suite
    // (UbuntuESMApps, <codename>-apps-security); we have no captured ESM Apps line.
    expect(parseInstLine('Inst libfoo1 [1.0-1] (1.0-1ubuntu0.1~esm1 UbuntuESMApps:24.04/noble-apps-security [amd64])')?.security).toBe(true);
    // Quoted as real `-s full-upgrade` output on Ubuntu 24.04 in a code comment (unverified).
    expect(
      parseInstLine(
        'Inst libpam-modules-bin [1.5.3-5ubuntu5.6] (1.5.3-5ubuntu5.7 Ubuntu:24.04/noble-updates, Ubuntu:24.04/noble-security [amd64]) [libpam-modules:amd64 on libpam-modules-bin:amd64] [libpam-modules:amd64 ]',
      ),
    ).toMatchObject({ name: 'libpam-modules-bin', newVersion: '1.5.3-5ubuntu5.7', security: true, arch: 'amd64' });
    expect(parseInstLine('Inst libc6:i386 [2.36-9+deb12u7] (2.36-9+deb12u9 Debian:12.9/stable [i386])')).toMatchObject({ name: 'libc6:i386', arch: 'i386' });
    expect(parseInstLine('Inst foo [1] (2 [all])')).toMatchObject({ repository: '', security: false });
    expect(parseInstLine('Inst broken line')).toBeNull();
  });

  it('isSecurityOrigin', () => {
    for (const o of ['Debian-Security:12/stable-security', 'Ubuntu:24.04/noble-security', 'UbuntuESMApps:22.04/jammy-apps-security', 'UbuntuESM:22.04/jammy-infra-security', 'Debian-Security:10/oldstable', 'debian-security:12/BOOKWORM-SECURITY']) {
      expect(isSecurityOrigin(o), o).toBe(true);
    }
    for (const o of ['Debian:12.15/oldstable', 'Ubuntu:24.04/noble-updates', 'Ubuntu:24.04/noble-security-backports', 'Tailscale:/noble', 'security-tools:1/stable', '']) {
      expect(isSecurityOrigin(o), o).toBe(false);
    }
  });
});

describe('parseAptSimulation at scale', () => {
  it('parses 10 000 synthetic Inst lines built from the real line shapes', () => {
    // SYNTHETIC: generated here; each shape is a real line from the fixtures with the name
    // and versions varied.
    const shapes = [
      (i: number) => `Inst pkg${i} [1.${i}-1] (1.${i}-2 Debian:12.15/oldstable [amd64])`,
      (i: number) => `Inst pkg${i} [1.${i}-1] (1.${i}-1+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []`,
      (i: number) => `Inst pkg${i} (5.15.0-${i}.96 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])`,
      (i: number) => `Inst pkg${i} [2:8.2.${i}-1ubuntu2.16] (2:8.2.${i}-1ubuntu2.18 Ubuntu:22.04/jammy-updates [all])`,
      (i: number) => `Inst pkg${i}:i386 [1:9.${i}-1] (1:9.${i}-1+esm1 UbuntuESM:16.04/xenial-infra-security [i386]) [pkg${i + 1}:i386 on pkg${i}:i386] [pkg${i + 1}:i386 ]`,
    ];
    const n = 10_000;
    const lines = ['Reading package lists...', 'The following packages have been kept back:'];
    for (let i = 0; i < 500; i += 10) lines.push(`  ${Array.from({ length: 10 }, (_, j) => `held${i + j}`).join(' ')}`);
    for (let i = 0; i < n; i++) {
      lines.push(shapes[i % shapes.length](i));
      lines.push(`Conf pkg${i} (x Debian:12.15/oldstable [amd64])`);
    }
    const newCount = n / shapes.length;
    lines.push(`${n - newCount} upgraded, ${newCount} newly installed, 0 to remove and 500 not upgraded.`);
    const sim = parseAptSimulation(lines.join('\n'));
    expect(sim.updates).toHaveLength(n);
    expect(sim.unparsed).toEqual([]);
    expect(sim.updates.filter((u) => u.security)).toHaveLength((3 * n) / 5);
    expect(sim.updates.filter((u) => u.currentVersion === null)).toHaveLength(newCount);
    expect(sim.updates.filter((u) => u.arch === 'i386')).toHaveLength(n / 5);
    expect(sim.keptBack).toHaveLength(500);
    expect(new Set(sim.updates.map((u) => u.name)).size).toBe(n);
    expect(simulationWarnings(sim)).toEqual([]);
  });
});

describe('other apt output', () => {
  it('parseShowHold and aptMessages', () => {
    expect(parseShowHold('linux-image-amd64\nlibc6:i386\n\nnot a name!\n')).toEqual(['linux-image-amd64', 'libc6:i386']);
    const stderr = [
      'Err:1 http://deb.debian.org/debian bookworm InRelease',
      '  Temporary failure resolving \'deb.debian.org\'',
      'W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving \'deb.debian.org\'',
      'W: Some index files failed to download. They have been ignored, or old ones used instead.',
      'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 123 (apt-get)',
    ].join('\n');
    expect(aptMessages(stderr)).toHaveLength(4);
    expect(aptMessages(stderr, 2)).toEqual([expect.stringMatching(/^Err:1/), expect.stringMatching(/^W: Failed/), '… and 2 more']);
  });

  it('a summary that does not match the Inst lines is a warning', () => {
    const sim = parseAptSimulation('Inst a [1] (2 X:1/s [all])\nInst b [1 (2 X:1/s [all])\n3 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n');
    expect(sim.unparsed).toEqual(['Inst b [1 (2 X:1/s [all])']);
    const w = simulationWarnings(sim);
    expect(w[0]).toMatch(/1 "Inst" line\(s\) from apt-get were not understood/);
    expect(w[1]).toMatch(/summary counts 3 .* but 2 "Inst"/);
  });
});

// ---- reboot --------------------------------------------------------------------------------

/** A reboot-script output in APT_REBOOT_SCRIPT's format (for facts we cannot produce here). */
function rebootOutput(p: { required?: boolean; pkgs?: string[]; running: string; build?: string; kernels?: string[]; pkg?: string }): string {
  return [
    '',
    '@@patchman-reboot-apt 1',
    '',
    '@@reboot-required',
    p.required ? 'yes' : 'no',
    '',
    '@@reboot-required-pkgs',
    ...(p.pkgs ?? []),
    '',
    '@@running',
    p.running,
    '',
    '@@running-build',
    p.build ?? '#1 SMP PREEMPT_DYNAMIC',
    '',
    '@@kernels',
    ...(p.kernels ?? []),
    '',
    '@@running-package',
    ...(p.pkg ? [p.pkg] : []),
    '',
    '@@end',
    '',
  ].join('\n');
}

describe('apt reboot check', () => {
  it('this machine (captured): a container without a kernel of its own never needs a reboot', () => {
    expect(parseAptReboot(fixture('apt-reboot-debian12-container.txt'))).toEqual({ required: false, reason: null });
  });

  it('/run/reboot-required wins, with the packages that asked for it', () => {
    expect(parseAptReboot(rebootOutput({ required: true, pkgs: ['linux-image-6.8.0-51-generic', 'linux-base', 'linux-base'], running: '6.8.0-50-generic' }))).toEqual({
      required: true,
      reason: '/run/reboot-required (linux-image-6.8.0-51-generic, linux-base)',
    });
    expect(parseAptReboot(rebootOutput({ required: true, running: 'x' }))).toEqual({ required: true, reason: '/run/reboot-required' });
  });

  it('a newer kernel installed than the one running', () => {
    expect(parseAptReboot(rebootOutput({ running: '6.1.0-40-amd64', kernels: ['6.1.0-40-amd64', '6.1.0-41-amd64', '6.1.0-9-amd64'] }))).toEqual({
      required: true,
      reason: 'running kernel 6.1.0-40-amd64, newest installed 6.1.0-41-amd64',
    });
    expect(parseAptReboot(rebootOutput({ running: '5.15.0-99-generic', kernels: ['5.15.0-99-generic', '5.15.0-105-generic'] })).required).toBe(true);
    expect(parseAptReboot(rebootOutput({ running: '6.8.12-4-pve', kernels: ['6.5.13-6-pve', '6.8.12-4-pve', '6.8.12-10-pve'] }))).toMatchObject({ required: true, reason: expect.stringContaining('6.8.12-10-pve') });
    // A backports kernel installed next to the stable one boots next (grub sorts by version).
    expect(parseAptReboot(rebootOutput({ running: '6.1.0-28-amd64', kernels: ['6.1.0-28-amd64', '6.12.12+bpo-amd64'] })).required).toBe(true);
  });

  it('no false positives: up to date, other flavours of the same version, an external newer kernel', () => {
    expect(parseAptReboot(rebootOutput({ running: '6.1.0-41-amd64', kernels: ['6.1.0-40-amd64', '6.1.0-41-amd64'] })).required).toBe(false);
    expect(parseAptReboot(rebootOutput({ running: '6.6.51+rpt-rpi-v8', kernels: ['6.6.51+rpt-rpi-2712', '6.6.51+rpt-rpi-v8'] })).required).toBe(false);
    expect(parseAptReboot(rebootOutput({ running: '6.8.0-45-lowlatency', kernels: ['6.8.0-45-generic', '6.8.0-45-lowlatency'] })).required).toBe(false);
    // A VM booted with a kernel from outside (firecracker, like this machine) that has an older
    // distribution kernel in /boot.
    expect(parseAptReboot(rebootOutput({ running: '6.18.44-fc-v782', kernels: ['6.1.0-28-amd64'] })).required).toBe(false);
    expect(parseAptReboot(rebootOutput({ running: 'weird', kernels: ['6.1.0-28-amd64'] })).required).toBe(false);
  });

  it('Debian: a kernel replaced in place under the same ABI name (uname -v names the running build)', () => {
    const p = { running: '6.1.0-28-amd64', kernels: ['6.1.0-28-amd64'], build: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)' };
    expect(parseAptReboot(rebootOutput({ ...p, pkg: 'linux-image-6.1.0-28-amd64 install ok installed 6.1.123-1' }))).toEqual({
      required: true,
      reason: 'running kernel 6.1.0-28-amd64 is build 6.1.119-1, installed 6.1.123-1',
    });
    expect(parseAptReboot(rebootOutput({ ...p, pkg: 'linux-image-6.1.0-28-amd64 install ok installed 6.1.119-1' })).required).toBe(false);
    expect(parseAptReboot(rebootOutput({ ...p, pkg: 'linux-image-6.1.0-28-amd64 install ok installed 6.1.119-1+b1' })).required).toBe(false);
    expect(parseAptReboot(rebootOutput({ ...p, pkg: 'linux-image-6.1.0-28-amd64 deinstall ok config-files 6.1.123-1' })).required).toBe(false);
  });

  it('kernelVersionKey', () => {
    expect(kernelVersionKey('6.1.0-40-amd64')).toBe('6.1.0-40');
    expect(kernelVersionKey('6.12.12+bpo-amd64')).toBe('6.12.12');
    expect(kernelVersionKey('6.8.12-4-pve')).toBe('6.8.12-4');
    expect(kernelVersionKey('vmlinuz')).toBeNull();
    expect(kernelReboot({ running: '6.1.0-40-amd64', installed: [] })).toEqual({ required: false, reason: null });
  });

  it('the script, run here, reports what this machine has', () => {
    const out = execFileSync('env', ['LC_ALL=C', 'LANG=C', '/bin/sh', '-s'], { input: APT_REBOOT_SCRIPT, encoding: 'utf8' });
    const r = parseAptReboot(out);
    const flagged = existsSync('/run/reboot-required');
    const kernels = existsSync('/boot') ? readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')) : [];
    if (flagged) expect(r.required).toBe(true);
    else if (kernels.length === 0) expect(r).toEqual({ required: false, reason: null });
    expect(out).toContain(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
  });
});

// ---- the module's flow, against a scripted session -----------------------------------------


function scripted(answers: Record<string, Partial<ExecResult> | Error>): SshSession & { calls: string[] } {
  const calls: string[] = [];
  return {
    target: { address: 'web1', port: 22, user: 'admin' },
    hostKey: { fingerprint: 'SHA256:x', pinnedNow: false },
    kex: undefined,
    calls,
    async exec(command: string, _opts?: ExecOptions): Promise<ExecResult> {
      calls.push(command);
      const a = answers[command];
      if (!a) throw new Error(`unexpected command ${command}`);
      if (a instanceof Error) throw a;
      return { code: 0, signal: null, stdout: '', stderr: '', ...a };
    },
    close() {},
  };
}

describe('apt.scan', () => {
  const salt = fixture('apt-ubuntu2204-kept-back-new-salt.txt');

  it('refreshes as root, lists, and asks dpkg for holds only when something is kept back', async () => {
    const s = scripted({
      [APT_COMMANDS.update.root]: { code: 0 },
      [APT_LIST_COMMAND]: { stdout: salt },
      [APT_SHOWHOLD_COMMAND]: { stdout: 'sg3-utils\n' },
    });
    const r = await apt.scan(s, { privilege: 'root', refresh: true });
    expect(s.calls).toEqual([APT_COMMANDS.update.root, APT_LIST_COMMAND, APT_SHOWHOLD_COMMAND]);
    expect(r.updates).toHaveLength(11);
    expect(r.held).toContainEqual({ name: 'sg3-utils', reason: 'held' });
    expect(r.warnings).toEqual([]);

    const plain = scripted({ [APT_LIST_COMMAND]: { stdout: fixture('apt-debian12-dist-upgrade.txt') } });
    await apt.scan(plain, { privilege: 'no-sudo', refresh: false });
    expect(plain.calls).toEqual([APT_LIST_COMMAND]);
  });

  it('a failed refresh is a warning with apt\'s error lines; the scan goes on with the old lists', async () => {
    const s = scripted({
      [APT_COMMANDS.update.sudo]: { code: 100, stderr: "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'\nE: Some index files failed to download. They have been ignored, or old ones used instead.\n" },
      [APT_LIST_COMMAND]: { stdout: fixture('apt-debian12-dist-upgrade.txt') },
    });
    const r = await apt.scan(s, { privilege: 'sudo', refresh: true });
    expect(r.updates).toHaveLength(120);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^Refreshing the package lists failed \(apt-get update exited with status 100\); these results come from the lists of the last successful refresh: W: Failed to fetch .* E: Some index files failed/);

    const slow = scripted({ [APT_COMMANDS.update.root]: new OpError('timeout', 'did not finish'), [APT_LIST_COMMAND]: { stdout: salt }, [APT_SHOWHOLD_COMMAND]: {} });
    expect((await apt.scan(slow, { privilege: 'root', refresh: true, timeoutMs: 5000 })).warnings).toEqual([expect.stringMatching(/did not finish within 5 s/)]);
  });

  it('refresh needing a password fails with sudo-password before anything runs, or when sudo refuses', async () => {
    for (const privilege of ['sudo-password', 'no-sudo'] as const) {
      const s = scripted({});
      const err = (await apt.scan(s, { privilege, refresh: true }).catch((e: unknown) => e)) as OpError;
      expect(err.code).toBe('sudo-password');
      expect(s.calls).toEqual([]);
    }
    const refused = scripted({ [APT_COMMANDS.update.sudo]: { code: 1, stderr: 'sudo: a password is required\n' } });
    const err = (await apt.scan(refused, { privilege: 'sudo', refresh: true }).catch((e: unknown) => e)) as OpError;
    expect(err.code).toBe('sudo-password');
    expect(err.message).toMatch(/apt-get update on admin@web1:22 needs root, and sudo refused/);
  });

  it('a failing simulation is command-failed with apt\'s error', async () => {
    const s = scripted({ [APT_LIST_COMMAND]: { code: 100, stdout: 'Reading package lists...\n', stderr: "E: Unmet dependencies. Try 'apt --fix-broken install' with no packages (or specify a solution).\n" } });
    const err = (await apt.scan(s, { privilege: 'root', refresh: false }).catch((e: unknown) => e)) as OpError;
    expect(err.code).toBe('command-failed');
    expect(err.message).toMatch(/exited with status 100: E: Unmet dependencies/);
  });
});

// ---- upgrade -------------------------------------------------------------------------------

/** Recorded on this project's Debian 12 machine (sim/fixtures/README.md says how). */
const recorded = (name: string): string => readFileSync(join(import.meta.dirname, '../../sim/fixtures/debian12-local', name), 'utf8');

const APT_GET = 'apt-get -y -q -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o APT::Get::Show-Versions=1';

describe('apt upgrade: the run script', () => {
  it('full upgrade as root and through sudo -n: exact lines', () => {
    expect(UPGRADE_ENV).toMatch(/^LC_ALL=C LANG=C DEBIAN_FRONTEND=noninteractive /);
    expect(apt.upgrade.runScript({ privilege: 'root', packages: null })).toBe(
      [`export ${UPGRADE_ENV}`, `echo '$ ${APT_GET} dist-upgrade'`, `exec ${APT_GET} dist-upgrade`].join('\n'),
    );
    expect(apt.upgrade.runScript({ privilege: 'sudo', packages: null })).toBe(
      [`export ${UPGRADE_ENV}`, `echo '$ sudo -n ${APT_GET} dist-upgrade'`, `exec sudo -n ${APT_GET} dist-upgrade`].join('\n'),
    );
  });

  it('aptMode upgrade: apt-get upgrade, which never installs or removes packages', () => {
    expect(apt.upgrade.runScript({ privilege: 'root', packages: null, aptMode: 'upgrade' }).split('\n')[2]).toBe(`exec ${APT_GET} upgrade`);
    expect(apt.upgrade.runScript({ privilege: 'root', packages: null, aptMode: 'dist-upgrade' }).split('\n')[2]).toBe(`exec ${APT_GET} dist-upgrade`);
  });

  it('selective: install --only-upgrade with every package name single-quoted', () => {
    expect(apt.upgrade.runScript({ privilege: 'root', packages: ['zip', 'libstdc++6', 'libssl3:amd64'] })).toBe(
      [
        `export ${UPGRADE_ENV}`,
        `echo '$ ${APT_GET} install --only-upgrade zip libstdc++6 libssl3:amd64'`,
        `exec ${APT_GET} install --only-upgrade 'zip' 'libstdc++6' 'libssl3:amd64'`,
      ].join('\n'),
    );
    expect(apt.upgrade.runScript({ privilege: 'sudo', packages: ['zip'] }).split('\n')[2]).toBe(`exec sudo -n ${APT_GET} install --only-upgrade 'zip'`);
  });

  it('without passwordless sudo there is no script: sudo-password', () => {
    for (const privilege of ['sudo-password', 'no-sudo'] as const) expect(thrown(() => apt.upgrade.runScript({ privilege, packages: null })).code).toBe('sudo-password');
  });

  it('run by a real /bin/sh, apt-get gets exactly these arguments and the non-interactive environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchman-fake-apt-'));
    try {
      // A stand-in apt-get that prints its arguments one per line, and the environment it got.
      writeFileSync(join(dir, 'apt-get'), '#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\necho "env:$DEBIAN_FRONTEND $LC_ALL"\n');
      chmodSync(join(dir, 'apt-get'), 0o755);
      const out = execFileSync('/bin/sh', ['-c', apt.upgrade.runScript({ privilege: 'root', packages: ['zip', 'libstdc++6'] })], {
        env: { PATH: `${dir}:/usr/bin:/bin` },
        encoding: 'utf8',
      });
      expect(out.split('\n')).toEqual([
        `$ ${APT_GET} install --only-upgrade zip libstdc++6`,
        ...APT_GET.split(' ').slice(1).map((a) => `arg:${a}`),
        'arg:install',
        'arg:--only-upgrade',
        'arg:zip',
        'arg:libstdc++6',
        'env:noninteractive C',
        '',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('apt upgrade: installed packages (dpkg-query)', () => {
  it('the installed-package command is read-only dpkg-query with name, version, status', () => {
    expect(APT_INSTALLED_COMMAND).toBe("dpkg-query -W -f='${binary:Package}\\t${Version}\\t${db:Status-Status}\\n'");
  });

  it('parses this machine\'s recorded dpkg-query output', () => {
    const text = readFileSync(join(import.meta.dirname, '../../sim/fixtures/debian12-local/dpkg-installed.stdout'), 'utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    const m = parseDpkgInstalled(text);
    expect(m.size).toBe(lines.length);
    expect(m.size).toBeGreaterThan(500);
    expect(m.get('zip')).toBe('3.0-13');
    expect(m.get('libc6:amd64')).toBe('2.36-9+deb12u14');
    expect(m.get('libcap2:amd64')).toBe('1:2.66-4+deb12u2+b2');
    expect(m.has('libc6')).toBe(false); // dpkg names Multi-Arch: same packages with their arch
  });

  it('counts only installed packages; tolerates CRLF and junk', () => {
    // The states dpkg-query prints for a removed-but-configured and a half-installed package.
    const text = 'zip\t3.0-13\tinstalled\r\noldpkg\t1.0-1\tconfig-files\nbroken\t2.0\thalf-installed\n\nnot a line\n';
    expect(parseDpkgInstalled(text)).toEqual(new Map([['zip', '3.0-13']]));
  });
});

describe('apt upgrade: failures in plain words, from real apt output', () => {
  const where = 'root@web1:22';

  it('the dpkg frontend lock, while apt waited for it (DPkg::Lock::Timeout)', () => {
    const log = recorded('run-lock-held.log');
    expect(log).toContain('Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 16458 (python3)...');
    const e = aptFailure(100, log, where);
    expect(e.code).toBe('lock-held');
    expect(e.exitCode).toBe(100);
    expect(e.message).toBe(
      'Another package manager run on root@web1:22 holds the dpkg lock (held by process 16458, python3); apt-get waited 2 minutes for it and gave up. Nothing was changed. Try again when it has finished (unattended-upgrades often holds it for a few minutes).',
    );
  });

  it('the dpkg frontend lock and the administration directory lock, without a timeout', () => {
    const front = aptFailure(100, recorded('apt-lock-frontend.txt'), where);
    expect(front.code).toBe('lock-held');
    expect(front.message).toContain('(held by process 17023, python3)');
    const admin = aptFailure(100, recorded('apt-lock-admin.txt'), where);
    expect(admin.code).toBe('lock-held');
    expect(admin.message).toContain('(held by process 17070, python3)');
  });

  it('an interrupted dpkg', () => {
    const e = aptFailure(100, recorded('run-dpkg-interrupted.log'), where);
    expect(e.code).toBe('interrupted-transaction');
    expect(e.message).toMatch(/^An earlier dpkg run on root@web1:22 was interrupted, so apt-get refuses to go on\. Run "dpkg --configure -a" as root/);
  });

  it('sudo asking for a password', () => {
    const log = `$ sudo -n ${APT_GET} dist-upgrade\n` + recorded('run-sudo-password.log');
    const e = aptFailure(1, log, where);
    expect(e.code).toBe('sudo-password');
    expect(e.message).toMatch(/^sudo on root@web1:22 asked for a password, so apt-get did not run\./);
  });

  it('anything else: command-failed with apt\'s own E: lines', () => {
    const e = aptFailure(100, 'Reading package lists...\nE: Unable to locate package nosuch\n', where);
    expect(e.code).toBe('command-failed');
    expect(e.exitCode).toBe(100);
    expect(e.message).toBe('apt-get on root@web1:22 exited with status 100: E: Unable to locate package nosuch');
    // A successful log that merely mentions a lock file is not a lock failure.
    expect(aptFailure(1, recorded('run-install-zip.log'), where).code).toBe('command-failed');
  });
});
