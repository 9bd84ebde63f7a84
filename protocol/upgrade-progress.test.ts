import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { upgradeProgress } from './upgrade-progress.ts';

const fixture = (p: string) => readFileSync(new URL(`../${p}`, import.meta.url), 'utf8');

describe('upgradeProgress', () => {
  it('apt: counts "Setting up" lines against "N upgraded, M newly installed" (real run, sim/fixtures)', () => {
    const log = fixture('sim/fixtures/debian12-local/run-install-zip.log');
    expect(upgradeProgress('apt', log)).toEqual({ done: 1, total: 1 });
    // part way: the plan is known, nothing set up yet
    const head = log.slice(0, log.indexOf('Setting up'));
    expect(upgradeProgress('apt', head)).toEqual({ done: 0, total: 1 });
    // before apt has said anything countable
    expect(upgradeProgress('apt', 'Reading package lists...\n')).toBeNull();
  });

  it('apt: a real 120-package dist-upgrade plan gives the total (relay/pkg/fixtures)', () => {
    const log = fixture('relay/pkg/fixtures/apt-debian12-dist-upgrade.txt');
    expect(upgradeProgress('apt', log)).toEqual({ done: 0, total: 120 });
    const more = `${log}Setting up libc6:amd64 (2.36-9+deb12u9) ...\nSetting up zip (3.0-13+deb12u1) ...\n`;
    expect(upgradeProgress('apt', more)).toEqual({ done: 2, total: 120 });
  });

  it('pacman: "Packages (5)" and one "upgrading pkg..." line each (real -Syu output, sim/fixtures)', () => {
    const log = fixture('sim/fixtures/arch/run-full-upgrade.log');
    expect(upgradeProgress('pacman', log)).toEqual({ done: 5, total: 5 });
    const midway = log.slice(0, log.indexOf('upgrading linux-headers'));
    // libarchive and libjpeg-turbo are done, linux is under way
    expect(upgradeProgress('pacman', midway)).toEqual({ done: 2, total: 5 });
    expect(upgradeProgress('pacman', log.slice(0, log.indexOf(':: Proceed')))).toEqual({ done: 0, total: 5 });
  });

  it('says nothing for a package manager it cannot read, or none', () => {
    expect(upgradeProgress('apk', '(1/3) Upgrading musl')).toBeNull();
    expect(upgradeProgress(null, 'Setting up zip (1) ...')).toBeNull();
  });
});
