// Which hosts may upgrade single packages, and why the others may not: one rule for the
// relay (which refuses), the Worker (409) and the dashboard (disabled checkboxes).

/** Arch: syncing the databases and upgrading some packages leaves libraries out of step. */
export const PACMAN_FULL_ONLY =
  'pacman upgrades the whole system (pacman -Syu) or nothing: Arch does not support partial upgrades, which can leave packages linked against libraries that are not installed (wiki.archlinux.org/title/System_maintenance#Partial_upgrades_are_unsupported).';

/** Proxmox's own documentation: always `apt full-upgrade`, never partial upgrades. */
export const PROXMOX_FULL_ONLY =
  'Proxmox VE and Backup Server are upgraded as a whole (apt full-upgrade), never package by package: Proxmox documents partial upgrades as unsupported (pve.proxmox.com/wiki/Package_Repositories).';

/** Why this host can only be upgraded as a whole, or null when single packages may be
 * chosen (apt, not Proxmox). `packageManager` null: not scanned yet. */
export function fullUpgradeOnly(host: { proxmox: unknown; packageManager: string | null }): string | null {
  if (host.proxmox) return PROXMOX_FULL_ONLY;
  if (host.packageManager === 'apt') return null;
  if (host.packageManager === 'pacman') return PACMAN_FULL_ONLY;
  return `Only apt hosts can upgrade single packages${host.packageManager ? `; ${host.packageManager} hosts are upgraded as a whole` : ''}.`;
}
