// Which hosts may upgrade single packages, and why the others may not: the rule now lives
// with the package-manager descriptors (protocol/package-managers.ts); re-exported here for
// the modules that import it by this name.
export { PACMAN_FULL_ONLY, PROXMOX_FULL_ONLY, fullUpgradeOnly } from './package-managers.ts';
