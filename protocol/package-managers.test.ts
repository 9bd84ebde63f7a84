import { describe, expect, it } from 'vitest';
import * as v from 'valibot';
import {
  APK_FULL_ONLY,
  LEGACY_FAILURE_CODES,
  PACKAGE_FAILURE_CODES,
  PACKAGE_MANAGERS,
  PACKAGE_MANAGER_NAMES,
  PACMAN_FULL_ONLY,
  PROXMOX_FULL_ONLY,
  TUMBLEWEED_FULL_ONLY,
  fullUpgradeOnly,
  upgradeCommand,
} from './package-managers.ts';
import { ErrorCode, PackageManagerName } from './relay.ts';
import { SUDO_COMMANDS, sudoersLines } from './setup.ts';
import { PROBE_SCRIPT } from '../relay/ops/probe.ts';

const host = (packageManager: string | null, osId = 'linux', proxmox: unknown = null) => ({ packageManager, proxmox, os: { id: osId } });

describe('the package-manager descriptors', () => {
  it('are the one name list: the protocol, the probe and the sudoers lines read them', () => {
    expect(PACKAGE_MANAGER_NAMES).toEqual(['apt', 'pacman', 'dnf', 'yum', 'zypper', 'apk']);
    for (const n of PACKAGE_MANAGER_NAMES) {
      expect(PACKAGE_MANAGERS[n].name).toBe(n);
      expect(v.is(PackageManagerName, n)).toBe(true);
      for (const bin of PACKAGE_MANAGERS[n].sudo) expect(SUDO_COMMANDS).toContain(bin);
    }
    expect(v.is(PackageManagerName, 'emerge')).toBe(false);
    expect(PROBE_SCRIPT).toContain('for pm in apt-get pacman dnf yum zypper apk; do');
    expect(sudoersLines('patchman')).toContain('/usr/bin/dnf, /usr/bin/zypper, /sbin/apk, /usr/sbin/reboot');
    expect(new Set(SUDO_COMMANDS).size).toBe(SUDO_COMMANDS.length);
  });

  it('say where only whole-system upgrades are allowed, and why', () => {
    expect(fullUpgradeOnly(host('apt', 'debian'))).toBeNull();
    expect(fullUpgradeOnly(host('apt', 'debian', { product: 'pve', version: '8.2' }))).toBe(PROXMOX_FULL_ONLY);
    expect(fullUpgradeOnly(host('pacman', 'arch'))).toBe(PACMAN_FULL_ONLY);
    expect(fullUpgradeOnly(host('dnf', 'rocky'))).toBeNull();
    expect(fullUpgradeOnly(host('yum', 'ol'))).toBeNull();
    expect(fullUpgradeOnly(host('zypper', 'opensuse-leap'))).toBeNull();
    expect(fullUpgradeOnly(host('zypper', 'opensuse-tumbleweed'))).toBe(TUMBLEWEED_FULL_ONLY);
    expect(fullUpgradeOnly(host('apk', 'alpine'))).toBe(APK_FULL_ONLY);
    expect(fullUpgradeOnly(host(null))).toMatch(/Scan this host first/);
    expect(fullUpgradeOnly({ packageManager: 'dnf', proxmox: null })).toBeNull(); // no os known yet
    expect(fullUpgradeOnly({ packageManager: 'zypper', proxmox: null, osId: 'opensuse-tumbleweed' })).toBe(TUMBLEWEED_FULL_ONLY); // a D1 row
  });

  it('name the command the operator is told about', () => {
    expect(upgradeCommand(host('apt', 'debian'), false)).toBe('apt-get dist-upgrade');
    expect(upgradeCommand(host('apt', 'debian'), true)).toMatch(/only-upgrade/);
    expect(upgradeCommand(host('pacman', 'arch'), false)).toBe('pacman -Syu');
    expect(upgradeCommand(host('dnf', 'fedora'), false)).toBe('dnf -y upgrade');
    expect(upgradeCommand(host('zypper', 'opensuse-tumbleweed'), false)).toBe('zypper dup');
    expect(upgradeCommand(host('zypper', 'opensuse-leap'), false)).toBe('zypper update');
    expect(upgradeCommand(host('apk', 'alpine'), false)).toBe('apk upgrade');
  });

  it('give failures neutral codes the protocol accepts; the old apt codes still parse and map', () => {
    for (const c of [...PACKAGE_FAILURE_CODES, ...Object.keys(LEGACY_FAILURE_CODES)]) expect(v.is(ErrorCode, c)).toBe(true);
    expect(PACKAGE_FAILURE_CODES).toEqual(['lock-held', 'interrupted-transaction', 'gpg-key-prompt', 'repo-unreachable']);
    expect(LEGACY_FAILURE_CODES).toEqual({ locked: 'lock-held', 'dpkg-interrupted': 'interrupted-transaction' });
  });
});
