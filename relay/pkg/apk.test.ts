// apk: Alpine's apk-tools is not in Debian's archive, so its parsers are tested against real
// output others published (fixtures/apk-*, sources in fixtures/README.md); the simulator's
// Alpine profile drives the whole scan and upgrade path with the same text (sim/fleet.test.ts).
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APK_FULL_ONLY } from '../../protocol/package-managers.ts';
import { OpError } from '../errors.ts';
import { APK_LIST_COMMAND, APK_REBOOT_BEGIN, APK_REBOOT_SCRIPT, apk, apkFailure, parseApkInstalled, parseApkReboot, parseApkUpgradable, splitNameVersion } from './apk.ts';
import { moduleFor } from './index.ts';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

describe('apk', () => {
  it('command lines are constants in the C locale; the reboot script is valid POSIX sh', () => {
    expect(APK_LIST_COMMAND).toBe('env LC_ALL=C LANG=C apk list --upgradable');
    expect(() => execFileSync('/bin/sh', ['-n'], { input: APK_REBOOT_SCRIPT })).not.toThrow();
    expect(moduleFor({ packageManagers: ['apk'] })).toBe(apk);
  });

  it('splits name and version where both hold dashes and digits', () => {
    expect(splitNameVersion('busybox-binsh-1.36.1-r29')).toEqual(['busybox-binsh', '1.36.1-r29']);
    expect(splitNameVersion('libcrypto3-3.3.2-r0')).toEqual(['libcrypto3', '3.3.2-r0']);
    expect(splitNameVersion('ca-certificates-bundle-20240705-r0')).toEqual(['ca-certificates-bundle', '20240705-r0']);
    expect(splitNameVersion('no-version')).toBeNull();
  });

  it('parses published apk list --upgradable output; no update is security (no metadata)', () => {
    const u = parseApkUpgradable(fixture('apk-list-upgradable-vuls.txt'));
    expect(u).toHaveLength(6);
    expect(u[0]).toEqual({ name: 'busybox', currentVersion: '1.36.1-r28', newVersion: '1.36.1-r29', repository: 'busybox', security: false, arch: 'x86_64' });
    expect(u.find((x) => x.name === 'libcrypto3')).toMatchObject({ currentVersion: '3.3.0-r2', newVersion: '3.3.2-r0', repository: 'openssl' });
    expect(parseApkUpgradable('\n')).toEqual([]);
    expect(() => parseApkUpgradable('WARNING: opening from cache https://dl-cdn.alpinelinux.org/alpine/v3.20/main: No such file or directory\n')).toThrow(OpError);
  });

  it('parses published apk info -v output as installed versions', () => {
    expect([...parseApkInstalled(fixture('apk-info-v-vuls.txt'))]).toEqual([
      ['musl', '1.1.16-r14'],
      ['busybox', '1.26.2-r7'],
    ]);
  });

  it('reboot: the running kernel against its flavour’s package (constructed in the script’s format)', () => {
    const out = (running: string, modules: string, kernels: string[]) => `\n${APK_REBOOT_BEGIN}\n\n@@running\n${running}\n\n@@modules\n${modules}\n\n@@kernels\n${kernels.join('\n')}\n\n@@end\n`;
    expect(parseApkReboot(out('6.6.31-0-lts', 'present', ['linux-lts-6.6.31-r0']))).toEqual({ required: false, reason: null });
    expect(parseApkReboot(out('6.6.31-0-lts', 'missing', ['linux-lts-6.6.32-r0']))).toEqual({ required: true, reason: 'running kernel 6.6.31-0-lts, installed linux-lts 6.6.32-r0' });
    expect(parseApkReboot(out('6.6.31-1-virt', 'present', ['linux-lts-6.6.40-r0', 'linux-virt-6.6.31-r1']))).toEqual({ required: false, reason: null });
    // A container runs its host's kernel and has no linux-* package.
    expect(parseApkReboot(out('6.1.0-27-amd64', 'missing', []))).toEqual({ required: false, reason: null });
  });

  it('upgrades only as a whole; failures in plain words', () => {
    expect(apk.upgrade.runScript({ privilege: 'sudo', packages: null })).toContain("exec sudo -n apk upgrade --no-progress");
    expect(() => apk.upgrade.runScript({ privilege: 'root', packages: ['busybox'] })).toThrow(APK_FULL_ONLY);
    expect(apkFailure(99, fixture('apk-lock-held.log'), 'root@alpine:22')).toMatchObject({ code: 'lock-held', message: expect.stringMatching(/Nothing was changed/) });
    expect(apkFailure(1, 'ERROR: busybox-1.36.1-r29: network error (check Internet connection and firewall)\n', 'root@alpine:22').code).toBe('repo-unreachable');
    expect(apkFailure(1, 'ERROR: busybox-1.36.1-r29: UNTRUSTED signature\n', 'root@alpine:22').code).toBe('gpg-key-prompt');
  });
});
