// The package-manager registry: the probe's name for a package manager → the module that
// scans it. Adding one is one new file exporting a PackageManagerModule, its descriptor
// (protocol/package-managers.ts) and one line here; no other module changes.
import { apt } from './apt.ts';
import { pacman } from './pacman.ts';
import { dnf } from './dnf.ts';
import { zypper } from './zypper.ts';
import { apk } from './apk.ts';
import type { PackageManagerModule, PackageManagerName, ProbeResult } from './types.ts';

export const registry: Readonly<Partial<Record<PackageManagerName, PackageManagerModule>>> = Object.freeze({
  apt,
  pacman,
  dnf,
  zypper,
  apk,
});

/** The module for a probed host: the first of the probe's package managers (the probe lists
 * them in a fixed order: apt, pacman, dnf, yum, zypper, apk) that has a module. Null when the
 * host has none we support. */
export function moduleFor(probe: Pick<ProbeResult, 'packageManagers'>): PackageManagerModule | null {
  for (const name of probe.packageManagers) {
    const mod = Object.hasOwn(registry, name) ? registry[name] : undefined;
    if (mod) return mod;
  }
  return null;
}

export { privileged } from './shell.ts';
export type { PackageManagerModule, PackageScan, ScanOptions, RebootCheckOptions } from './types.ts';
