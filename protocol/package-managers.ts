// The one description of every package manager PatchMan drives, read by every part: the
// protocol's name list, the relay's modules (relay/pkg/*.ts implement the behaviour), the
// Worker's full-upgrade-only rule, the sudoers lines, the dashboard's dialogs, badges and
// help, and the simulator. Adding a package manager is: its relay module, its fixtures and
// tests, one entry here, one simulator profile.

/** Every package manager name, in the order the probe prefers them when a host has several. */
export const PACKAGE_MANAGER_NAMES = ['apt', 'pacman', 'dnf', 'yum', 'zypper', 'apk'] as const;
export type PackageManagerName = (typeof PACKAGE_MANAGER_NAMES)[number];

/** Whether single packages may be upgraded, and if not, why (shown to the operator). */
export type Selective = { ok: true } | { ok: false; why: string };

export interface PackageManagerDescriptor {
  name: PackageManagerName;
  /** What the operator knows it as. */
  label: string;
  /** The systems that use it, in a few words. */
  systems: string;
  /** The binary `command -v` finds on a host (the probe looks for these). */
  probeCommand: string;
  /** Whether selected packages may be upgraded on its hosts. */
  selective: Selective;
  /** OS ids (os-release ID) on which only a whole-system upgrade is allowed, and why. */
  wholeOnlyOn?: { osIds: readonly string[]; why: string; command: string };
  /** The command the operator is told the relay runs. `selected` only when selective.ok. */
  command: { full: string; selected?: string };
  /** Binaries the relay runs through `sudo -n` for it (protocol/setup.ts lists them all). */
  sudo: readonly string[];
  /** Whether its repositories carry security metadata (else no update is ever "security"). */
  securityMetadata: boolean;
  /** How it decides that a reboot is needed (help text). */
  reboot: string;
}

/** Arch: syncing the databases and upgrading some packages leaves libraries out of step. */
export const PACMAN_FULL_ONLY =
  'pacman upgrades the whole system (pacman -Syu) or nothing: Arch does not support partial upgrades, which can leave packages linked against libraries that are not installed (wiki.archlinux.org/title/System_maintenance#Partial_upgrades_are_unsupported).';

/** Proxmox's own documentation: always `apt full-upgrade`, never partial upgrades. */
export const PROXMOX_FULL_ONLY =
  'Proxmox VE and Backup Server are upgraded as a whole (apt full-upgrade), never package by package: Proxmox documents partial upgrades as unsupported (pve.proxmox.com/wiki/Package_Repositories).';

/** openSUSE Tumbleweed (and MicroOS, Slowroll) is a rolling release: `zypper dup` only. */
export const TUMBLEWEED_FULL_ONLY =
  'openSUSE Tumbleweed is a rolling release, upgraded as a whole with zypper dup and never package by package: openSUSE documents zypper dup as the only supported way to update it (en.opensuse.org/Portal:Tumbleweed).';

/** Alpine: picking packages would need `apk add -u`, which changes /etc/apk/world. */
export const APK_FULL_ONLY =
  'PatchMan upgrades Alpine hosts only as a whole (apk upgrade): upgrading single packages would need apk add -u, which also records them in /etc/apk/world as explicitly wanted and so changes what the host keeps installed.';

const DNF: Omit<PackageManagerDescriptor, 'name' | 'label' | 'probeCommand'> = {
  systems: 'Fedora, RHEL, Rocky, Alma, CentOS Stream, Oracle Linux',
  selective: { ok: true },
  command: { full: 'dnf -y upgrade', selected: 'dnf -y upgrade with just these packages' },
  sudo: ['/usr/bin/dnf'],
  securityMetadata: true,
  reboot: '`dnf needs-restarting -r` (exit 1, with the reason), else the running kernel against the newest installed one.',
};

export const PACKAGE_MANAGERS: { readonly [K in PackageManagerName]: PackageManagerDescriptor & { name: K } } = {
  apt: {
    name: 'apt',
    label: 'apt',
    systems: 'Debian, Ubuntu, Raspberry Pi OS, Linux Mint, Pop!_OS, DietPi, Proxmox',
    probeCommand: 'apt-get',
    selective: { ok: true },
    command: { full: 'apt-get dist-upgrade', selected: 'apt-get install --only-upgrade with just these packages' },
    sudo: ['/usr/bin/apt-get', '/usr/bin/apt-mark'],
    securityMetadata: true,
    reboot: '`/run/reboot-required`, else the running kernel against the newest installed one.',
  },
  pacman: {
    name: 'pacman',
    label: 'pacman',
    systems: 'Arch Linux, CachyOS, Manjaro, EndeavourOS',
    probeCommand: 'pacman',
    selective: { ok: false, why: PACMAN_FULL_ONLY },
    command: { full: 'pacman -Syu' },
    sudo: ['/usr/bin/pacman', '/usr/bin/checkupdates'],
    securityMetadata: false,
    reboot: 'the running kernel’s modules directory `/usr/lib/modules/$(uname -r)` is gone, because the kernel package was upgraded.',
  },
  dnf: { ...DNF, name: 'dnf', label: 'dnf', probeCommand: 'dnf' },
  // yum on RHEL/CentOS 8+ is dnf under its old name (the probe finds both, and dnf comes
  // first); yum alone (RHEL/CentOS 7, end of life) has no relay module.
  yum: { ...DNF, name: 'yum', label: 'yum', probeCommand: 'yum' },
  zypper: {
    name: 'zypper',
    label: 'zypper',
    systems: 'openSUSE Leap, openSUSE Tumbleweed, SLES',
    probeCommand: 'zypper',
    selective: { ok: true },
    wholeOnlyOn: { osIds: ['opensuse-tumbleweed', 'opensuse-microos', 'opensuse-slowroll'], why: TUMBLEWEED_FULL_ONLY, command: 'zypper dup' },
    command: { full: 'zypper update', selected: 'zypper update with just these packages' },
    sudo: ['/usr/bin/zypper'],
    securityMetadata: true,
    reboot: '`zypper needs-rebooting` (exit 102), else the running kernel against the newest installed one.',
  },
  apk: {
    name: 'apk',
    label: 'apk',
    systems: 'Alpine Linux',
    probeCommand: 'apk',
    selective: { ok: false, why: APK_FULL_ONLY },
    command: { full: 'apk upgrade' },
    sudo: ['/sbin/apk'],
    securityMetadata: false,
    reboot: 'the running kernel against the installed `linux-*` kernel package.',
  },
};

export function isPackageManagerName(name: string | null | undefined): name is PackageManagerName {
  return name != null && (PACKAGE_MANAGER_NAMES as readonly string[]).includes(name);
}

export function descriptorOf(name: string | null | undefined): PackageManagerDescriptor | null {
  return isPackageManagerName(name) ? PACKAGE_MANAGERS[name] : null;
}

/** What the rule needs to know of a host (an API Host, a D1 row or a probe result). */
export interface HostFacts {
  proxmox: unknown;
  packageManager: string | null;
  os?: { id: string } | null;
  /** The D1 row's spelling of os.id. */
  osId?: string | null;
}

function osIdOf(host: HostFacts): string {
  return (host.os?.id ?? host.osId ?? '').toLowerCase();
}

/** Why this host can only be upgraded as a whole, or null when single packages may be
 * chosen. One rule for the relay (which refuses), the Worker (409) and the dashboard. */
export function fullUpgradeOnly(host: HostFacts): string | null {
  if (host.proxmox) return PROXMOX_FULL_ONLY;
  const d = descriptorOf(host.packageManager);
  if (!d) return host.packageManager ? `PatchMan cannot upgrade single packages with ${host.packageManager}.` : 'Scan this host first.';
  if (!d.selective.ok) return d.selective.why;
  const osId = osIdOf(host);
  if (d.wholeOnlyOn?.osIds.includes(osId)) return d.wholeOnlyOn.why;
  return null;
}

/** The command the operator is told the relay runs, for a full upgrade or selected packages. */
export function upgradeCommand(host: HostFacts, selected: boolean): string {
  const d = descriptorOf(host.packageManager);
  if (!d) return `a full upgrade with ${host.packageManager ?? 'the package manager'}`;
  if (host.proxmox) return `${d.command.full}, as Proxmox requires`;
  const osId = osIdOf(host);
  if (d.wholeOnlyOn?.osIds.includes(osId)) return d.wholeOnlyOn.command;
  return selected && d.command.selected ? d.command.selected : d.command.full;
}

// ---- failures, in neutral words ----------------------------------------------------------

/** The failure codes every package manager module uses for a failed upgrade, with a lead in
 * plain words (the dashboard puts it before the relay's message). */
export const PACKAGE_FAILURES = {
  'lock-held': 'Another package manager run holds the lock',
  'interrupted-transaction': 'An earlier package manager run was interrupted',
  'gpg-key-prompt': 'A repository signing key must be accepted on the host first',
  'repo-unreachable': 'A package repository could not be reached',
} as const;
export type PackageFailureCode = keyof typeof PACKAGE_FAILURES;
export const PACKAGE_FAILURE_CODES = Object.keys(PACKAGE_FAILURES) as PackageFailureCode[];

/** Codes older relays sent (apt/pacman era), read as their neutral equivalent. */
export const LEGACY_FAILURE_CODES: Readonly<Record<string, PackageFailureCode>> = {
  locked: 'lock-held',
  'dpkg-interrupted': 'interrupted-transaction',
};
