// What an operator puts on a managed host so PatchMan can work there without root logins:
// shown by the dashboard, written in the README, and used as is by the tests that upgrade
// this machine through sudo (so the lines users copy are the lines that were tested).

import { PACKAGE_MANAGERS, PACKAGE_MANAGER_NAMES } from './package-managers.ts';

/** Binaries the relay runs through `sudo -n`: each package manager's (its descriptor says
 * which) and reboot. */
export const SUDO_COMMANDS = [...new Set([...PACKAGE_MANAGER_NAMES.flatMap((n) => PACKAGE_MANAGERS[n].sudo), '/usr/sbin/reboot', '/usr/bin/reboot'])];

/** The environment an upgrade needs inside sudo (env_reset drops it otherwise): the C
 * locale, no debconf prompts, needrestart restarting services itself, no listchanges pager. */
export const SUDO_ENV_KEEP = ['LC_ALL', 'LANG', 'DEBIAN_FRONTEND', 'NEEDRESTART_MODE', 'APT_LISTCHANGES_FRONTEND'];

/** The file /etc/sudoers.d/<user>: those commands without a password, nothing else. */
export function sudoersLines(user: string): string {
  return `Defaults:${user} env_keep += "${SUDO_ENV_KEEP.join(' ')}"\n${user} ALL=(root) NOPASSWD: ${SUDO_COMMANDS.join(', ')}\n`;
}
