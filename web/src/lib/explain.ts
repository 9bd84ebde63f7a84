// Plain words for what the relay found out, and what to do about it.
import type { Host } from '$protocol/api.ts';
import { LEGACY_FAILURE_CODES, PACKAGE_FAILURES, PACKAGE_MANAGER_NAMES, type PackageFailureCode } from '$protocol/package-managers.ts';

export interface Target {
  address: string;
  port: number;
  user: string;
  relay?: string | null;
}

export interface Explanation {
  title: string;
  fix: string;
}

/** The file /etc/sudoers.d/<user> (the package tools and reboot, no password, the upgrade's
 * environment kept): the lines the README shows and the sudo tests install. */
export { sudoersLines } from '$protocol/setup.ts';

/** Run as <user> on the host: create ~/.ssh and append the relay's key to authorized_keys. */
export function authorizeCommand(user: string, publicKey: string): string {
  return `install -d -m 700 ~${user}/.ssh && echo '${publicKey}' >> ~${user}/.ssh/authorized_keys`;
}

/** What to do about a package manager's failure (codes in neutral words; older relays'
 * apt-named codes read as their neutral equivalent). */
const PACKAGE_FAILURE_FIX: Record<PackageFailureCode, string> = {
  'lock-held':
    'Another apt, dnf, zypper, pacman or apk run (often an automatic update timer) was busy on the host. Nothing was changed; try again when it has finished.',
  'interrupted-transaction':
    'An earlier run stopped halfway. Finish it on the host as root first (apt: dpkg --configure -a; dnf: dnf history, or dnf-automatic’s leftovers; zypper: zypper verify), then scan and upgrade again.',
  'gpg-key-prompt':
    'A repository is signed with a key the host has not accepted yet. PatchMan never accepts keys itself: import and verify it on the host (rpm --import, or run the package manager once by hand), then upgrade again.',
  'repo-unreachable':
    'The host could not download from one of its package repositories (network, proxy, DNS or a mirror down). Nothing was changed; check the repository settings on the host and try again.',
};

export function explainError(code: string, message: string, t: Target): Explanation {
  const failure = (code in PACKAGE_FAILURE_FIX ? code : LEGACY_FAILURE_CODES[code]) as PackageFailureCode | undefined;
  if (failure) return { title: PACKAGE_FAILURES[failure], fix: PACKAGE_FAILURE_FIX[failure] };
  const via = t.relay ? ` from the relay “${t.relay}”` : ' from the relay';
  switch (code) {
    case 'unreachable':
      return {
        title: `Cannot reach ${t.address} on port ${t.port}`,
        fix: `Nothing accepted the SSH connection${via}. Check the address and the SSH port, that sshd is running on the host, and that no firewall keeps the relay's machine out.`,
      };
    case 'timeout':
      return {
        title: `${t.address} did not answer in time`,
        fix: `The host may be down or asleep, or a firewall silently drops the relay's packets. Check that the address and port are right and that the host is up.`,
      };
    case 'auth-refused':
      return {
        title: `The host refused the relay's SSH key for “${t.user}”`,
        fix: `Put the relay's key into ~${t.user}/.ssh/authorized_keys (the command above does it; run it as ${t.user}). The .ssh folder must belong to ${t.user} and not be writable by others.${t.user === 'root' ? ' For root, sshd must allow key logins (PermitRootLogin prohibit-password, the default).' : ''}`,
      };
    case 'host-key-changed':
      return {
        title: `The host's SSH key has changed`,
        fix: `${t.address} presents a different host key than the one pinned on first contact. If the machine was reinstalled, an admin must accept the new fingerprint; if not, find out why before going on.`,
      };
    case 'sudo-password':
      return /no sudo/i.test(message)
        ? {
            title: `There is no sudo for “${t.user}”`,
            fix: `Install sudo and add the sudoers file above (/etc/sudoers.d/${t.user}), or connect as root.`,
          }
        : {
            title: `sudo asks “${t.user}” for a password`,
            fix: `PatchMan runs the package manager through sudo without a password. Add the sudoers file above (/etc/sudoers.d/${t.user}), or connect as root.`,
          };
    case 'unsupported-os':
      return {
        title: 'This operating system is not supported',
        fix: `The connection works, but the host has none of the package managers PatchMan drives (${PACKAGE_MANAGER_NAMES.join(', ')}).`,
      };
    case 'relay-disconnected':
      return {
        title: 'The relay is not connected',
        fix: `The test runs${via}, which is offline right now. Start it (or look at its log) and try again.`,
      };
    case 'command-failed':
      return { title: 'A command on the host failed', fix: 'The connection works, but the probe did not. The details below say what the host answered.' };
    case 'invalid-request':
      return { title: 'The relay refused the request', fix: 'The relay found something wrong with the address, port or user.' };
    case 'no-relay':
      return { title: 'No relay for this host', fix: 'Edit the host and choose the relay that reaches it.' };
    default:
      return { title: 'The test failed', fix: 'See the details below.' };
  }
}

export function privilegeLabel(p: Host['privilege']): string {
  switch (p) {
    case 'root':
      return 'root';
    case 'sudo':
      return 'passwordless sudo';
    case 'sudo-password':
      return 'sudo needs a password';
    case 'no-sudo':
      return 'no sudo';
    default:
      return 'not known yet';
  }
}

export const privilegeOk = (p: Host['privilege']) => p === 'root' || p === 'sudo';

export const HELD_REASONS: Record<'kept-back' | 'phased' | 'held', { label: string; why: string }> = {
  'kept-back': {
    label: 'kept back',
    why: 'The package manager keeps it back: installing it needs changes (new packages or removals) it will not make on its own.',
  },
  phased: {
    label: 'phased',
    why: 'Ubuntu is rolling this update out gradually; this host is not in the current phase yet.',
  },
  held: {
    label: 'held',
    why: 'Pinned on the host (apt-mark hold, or IgnorePkg in pacman.conf).',
  },
};
