// The one place the simulator learns which commands the relay sends: every command line
// (and stdin script) here is imported from the relay's own modules, never copied, so when
// the relay changes a command the simulated hosts stop recognising it (exit 127) and the
// sim tests fail until the recorded outputs are recaptured (node sim/capture.ts).
import { PROBE_COMMAND, PROBE_SCRIPT, PROBE_BEGIN } from '../relay/ops/probe.ts';
import { BOOT_ID_COMMAND, REBOOT_COMMAND } from '../relay/ops/reboot.ts';
import { APT_COMMANDS, APT_LIST_COMMAND, APT_REBOOT_BEGIN, APT_REBOOT_SCRIPT, APT_SHOWHOLD_COMMAND, apt } from '../relay/pkg/apt.ts';
import { CHECKUPDATES_COMMAND, PACMAN_FALLBACK_SCRIPT, PACMAN_LIST_COMMAND, PACMAN_REBOOT_BEGIN, PACMAN_REBOOT_SCRIPT, pacman } from '../relay/pkg/pacman.ts';
import { DNF_INSTALLED_COMMAND, DNF_LIST_COMMAND, DNF_REBOOT_BEGIN, DNF_REBOOT_SCRIPT, DNF_SECURITY_COMMAND, dnf } from '../relay/pkg/dnf.ts';
import { ZYPPER_LIST_COMMAND, ZYPPER_PATCHES_COMMAND, ZYPPER_REBOOT_BEGIN, ZYPPER_REBOOT_SCRIPT, ZYPPER_REFRESH, zypper } from '../relay/pkg/zypper.ts';
import { APK_LIST_COMMAND, APK_REBOOT_BEGIN, APK_REBOOT_SCRIPT, APK_UPDATE, apk } from '../relay/pkg/apk.ts';
import { PACKAGE_MANAGERS, PACKAGE_MANAGER_NAMES, type PackageManagerName } from '../protocol/package-managers.ts';
import { SH_COMMAND, privileged } from '../relay/pkg/shell.ts';
import type { PackageUpgrader } from '../relay/pkg/types.ts';
import { RUN_POLL_BEGIN, RUN_START_BEGIN, collectScript, followScript, pollScript, startScript } from '../relay/run.ts';

export interface RelayCommand {
  /** What the command is for; profiles key their recorded outputs by it. */
  kind: string;
  command: string;
  /** The script the relay writes to stdin, when it sends one. */
  stdin?: string;
  /** Which package manager's scan sends it (none: every scan). */
  group?: PmGroup;
  /** Sent only when the scan refreshes the lists. */
  refreshOnly?: boolean;
  /** Sent only when an earlier answer calls for it (kept-back packages, no checkupdates). */
  conditional?: boolean;
  /** The command runs through `sudo -n` (a non-root login). */
  sudo?: boolean;
}

/** A package manager the simulator has hosts for (yum is dnf's other name). */
export type PmGroup = Exclude<PackageManagerName, 'yum'>;

export const PROBE: RelayCommand = { kind: 'probe', command: PROBE_COMMAND, stdin: PROBE_SCRIPT };

/** Every command the relay can send during probe and scan, in the order a scan sends them. */
export function relayCommands(): RelayCommand[] {
  return [
    PROBE,
    { kind: 'apt-update', command: APT_COMMANDS.update.root, group: 'apt', refreshOnly: true },
    { kind: 'apt-update', command: APT_COMMANDS.update.sudo, group: 'apt', refreshOnly: true, sudo: true },
    { kind: 'apt-list', command: APT_LIST_COMMAND, group: 'apt' },
    { kind: 'apt-showhold', command: APT_SHOWHOLD_COMMAND, group: 'apt', conditional: true },
    { kind: 'apt-reboot', command: SH_COMMAND, stdin: APT_REBOOT_SCRIPT, group: 'apt' },
    { kind: 'checkupdates', command: CHECKUPDATES_COMMAND, group: 'pacman', refreshOnly: true },
    { kind: 'pacman-sync', command: SH_COMMAND, stdin: PACMAN_FALLBACK_SCRIPT.root, group: 'pacman', refreshOnly: true, conditional: true },
    { kind: 'pacman-sync', command: SH_COMMAND, stdin: PACMAN_FALLBACK_SCRIPT.sudo, group: 'pacman', refreshOnly: true, conditional: true, sudo: true },
    { kind: 'pacman-list', command: PACMAN_LIST_COMMAND, group: 'pacman' },
    { kind: 'pacman-reboot', command: SH_COMMAND, stdin: PACMAN_REBOOT_SCRIPT, group: 'pacman' },
    { kind: 'dnf-list', command: DNF_LIST_COMMAND.refresh, group: 'dnf', refreshOnly: true },
    { kind: 'dnf-list', command: DNF_LIST_COMMAND.cached, group: 'dnf' },
    { kind: 'dnf-security', command: DNF_SECURITY_COMMAND, group: 'dnf', conditional: true },
    { kind: 'dnf-installed', command: DNF_INSTALLED_COMMAND, group: 'dnf', conditional: true },
    { kind: 'dnf-reboot', command: SH_COMMAND, stdin: DNF_REBOOT_SCRIPT, group: 'dnf' },
    { kind: 'zypper-refresh', command: privileged(ZYPPER_REFRESH, 'root'), group: 'zypper', refreshOnly: true },
    { kind: 'zypper-refresh', command: privileged(ZYPPER_REFRESH, 'sudo'), group: 'zypper', refreshOnly: true, sudo: true },
    { kind: 'zypper-list', command: ZYPPER_LIST_COMMAND, group: 'zypper' },
    { kind: 'zypper-patches', command: ZYPPER_PATCHES_COMMAND, group: 'zypper', conditional: true },
    { kind: 'zypper-reboot', command: SH_COMMAND, stdin: ZYPPER_REBOOT_SCRIPT, group: 'zypper' },
    { kind: 'apk-update', command: privileged(APK_UPDATE, 'root'), group: 'apk', refreshOnly: true },
    { kind: 'apk-update', command: privileged(APK_UPDATE, 'sudo'), group: 'apk', refreshOnly: true, sudo: true },
    { kind: 'apk-list', command: APK_LIST_COMMAND, group: 'apk' },
    { kind: 'apk-reboot', command: SH_COMMAND, stdin: APK_REBOOT_SCRIPT, group: 'apk' },
  ];
}

export { PROBE_BEGIN };

/** The probe script's sections, in the order it prints them. */
export function probeSections(): string[] {
  const names: string[] = [];
  for (const m of PROBE_SCRIPT.matchAll(/^\s*section ([a-z-]+)\s*$/gm)) names.push(m[1]);
  if (!names.includes('end')) throw new Error('sim: the probe script has no end section; sim/commands.ts needs updating');
  return names;
}

// ---- one shell session for the OpenSSH baseline ------------------------------------------

/** Marks the start of each further command in a combined script (see combinedScript). */
const HEREDOC = 'PATCHMAN_SIM_EOF';

/** How one command appears inside a combined script fed to `sh -s`. */
export function scriptPiece(c: RelayCommand): string {
  if (c === PROBE || c.kind === 'probe') return c.stdin!;
  if (c.command !== SH_COMMAND) return `${c.command} </dev/null\n`;
  return `${c.command} <<'${HEREDOC}'\n${c.stdin!.endsWith('\n') ? c.stdin : c.stdin + '\n'}${HEREDOC}\n`;
}

/** The commands a root scan with refresh:false (or a probe) sends, for one package-manager group. */
export function scanCommands(group: PmGroup, op: 'scan' | 'probe'): RelayCommand[] {
  if (op === 'probe') return [PROBE];
  return relayCommands().filter((c) => c === PROBE || (c.group === group && !c.refreshOnly && !c.conditional && !c.sudo));
}

/**
 * The same commands a relay scan runs over one SSH connection (several exec channels), as
 * ONE script for `env LC_ALL=C LANG=C /bin/sh -s` on stdin, for the OpenSSH baseline: the
 * probe script, then each further command (scripts as here-documents). The simulated hosts
 * recognise exactly these pieces too, and answer with the recorded outputs concatenated.
 */
export function benchScript(group: PmGroup, op: 'scan' | 'probe'): string {
  return scanCommands(group, op).map(scriptPiece).join('');
}

/** Split a combined script back into known commands (greedy, exact); null if any part is unknown. */
export function splitCombined(stdin: string, known: RelayCommand[]): RelayCommand[] | null {
  const out: RelayCommand[] = [];
  let at = 0;
  // The probe script must come first; the rest in any order.
  if (!stdin.startsWith(PROBE_SCRIPT)) return null;
  out.push(PROBE);
  at = PROBE_SCRIPT.length;
  while (at < stdin.length) {
    const next = known.find((c) => c !== PROBE && c.kind !== 'probe' && stdin.startsWith(scriptPiece(c), at));
    if (!next) return null;
    out.push(next);
    at += scriptPiece(next).length;
  }
  return out;
}

// ---- upgrade and reboot -----------------------------------------------------------------
//
// The run scripts (relay/run.ts) carry a run id, a log offset and the run's own command, so
// they cannot be table entries: each is recognised by its structure, the variable parts are
// read out, and the whole script must then be byte for byte what the relay's own builder
// makes of them. The run command must be exactly what the host's package module builds.

export { BOOT_ID_COMMAND, SH_COMMAND };

/** The relay's upgrade half of each package module. */
export const UPGRADERS: Record<PmGroup, PackageUpgrader> = { apt: apt.upgrade, pacman: pacman.upgrade, dnf: dnf.upgrade, zypper: zypper.upgrade, apk: apk.upgrade };

/** The reboot command as root and through sudo (relay/ops/reboot.ts). */
export const REBOOT_COMMANDS = { root: privileged(REBOOT_COMMAND, 'root'), sudo: privileged(REBOOT_COMMAND, 'sudo') } as const;

/** The reboot-check scripts: begin marker and section names in the order they print. */
export const REBOOT_CHECKS = {
  apt: { kind: 'apt-reboot', begin: APT_REBOOT_BEGIN, sections: scriptSections(APT_REBOOT_SCRIPT) },
  pacman: { kind: 'pacman-reboot', begin: PACMAN_REBOOT_BEGIN, sections: scriptSections(PACMAN_REBOOT_SCRIPT) },
  dnf: { kind: 'dnf-reboot', begin: DNF_REBOOT_BEGIN, sections: scriptSections(DNF_REBOOT_SCRIPT) },
  zypper: { kind: 'zypper-reboot', begin: ZYPPER_REBOOT_BEGIN, sections: scriptSections(ZYPPER_REBOOT_SCRIPT) },
  apk: { kind: 'apk-reboot', begin: APK_REBOOT_BEGIN, sections: scriptSections(APK_REBOOT_SCRIPT) },
} as const;

function scriptSections(script: string): string[] {
  const names = [...script.matchAll(/^\s*section ([a-z-]+)\s*$/gm)].map((m) => m[1]);
  if (!names.includes('end')) throw new Error('sim: a reboot-check script has no end section; sim/commands.ts needs updating');
  return names;
}

export type RunPrivilege = 'root' | 'sudo';

export interface StartRequest {
  runId: string;
  /** The run's command (the body of its .sh). */
  command: string;
  privilege: RunPrivilege;
  /** null: a full upgrade. */
  packages: string[] | null;
  /** What the command's `echo '$ …'` line prints first. */
  echo: string;
}

const HERE_OPEN = "<<'PATCHMAN_RUN_EOF'\n";
const HERE_CLOSE = '\nPATCHMAN_RUN_EOF\n';

/** The run id at the end of the script's `r=<run dir>/<id>` line (whatever the run dir is:
 * the whole script is compared with the relay's own afterwards). */
function runIdOf(stdin: string): string | null {
  return /^r=\S*\/([A-Za-z0-9_-]+)"?$/m.exec(stdin)?.[1] ?? null;
}

/** Which privilege and packages make `up.runScript` build exactly `command`, if any. */
export function matchRunCommand(command: string, up: PackageUpgrader): { privilege: RunPrivilege; packages: string[] | null } | null {
  // The package names are the quoted words of the command lines (not of the `echo '$ …'`).
  const lines = command.split('\n').filter((l) => !l.startsWith("echo '"));
  const quoted = lines.flatMap((l) => [...l.matchAll(/'([^'\s]*)'/g)].map((m) => m[1]));
  // The OS ids some package managers build another command for (zypper: dup on Tumbleweed).
  const osIds = [undefined, ...PACKAGE_MANAGER_NAMES.flatMap((n) => PACKAGE_MANAGERS[n].wholeOnlyOn?.osIds ?? [])];
  for (const privilege of ['root', 'sudo'] as const) {
    for (const packages of quoted.length > 0 ? [null, quoted] : [null]) {
      for (const osId of osIds) {
        try {
          if (up.runScript({ privilege, packages, osId }) === command) return { privilege, packages };
          // apt's `upgrade` mode (a policy's aptMode): simulated like a full upgrade
          if (!packages && up.runScript({ privilege, packages, osId, aptMode: 'upgrade' }) === command) return { privilege, packages };
        } catch {
          /* e.g. pacman refuses packages */
        }
      }
    }
  }
  return null;
}

/** The start script, or null when `stdin` is not one the relay would send to this host. */
export function recogniseStart(stdin: string, group: PmGroup): StartRequest | null {
  if (!stdin.includes(`printf '\\n${RUN_START_BEGIN}\\n'`)) return null;
  const runId = runIdOf(stdin);
  const open = stdin.indexOf(HERE_OPEN);
  const close = open < 0 ? -1 : stdin.indexOf(HERE_CLOSE, open);
  if (!runId || close < 0) return null;
  const command = stdin.slice(open + HERE_OPEN.length, close);
  const up = UPGRADERS[group];
  const m = matchRunCommand(command, up);
  if (!m) return null;
  try {
    if (startScript(runId, command, up.installedCommand) !== stdin) return null;
  } catch {
    return null;
  }
  const echo = /^echo '(.*)'$/m.exec(command)?.[1];
  if (echo === undefined) return null;
  return { runId, command, ...m, echo };
}

/** The poll script: run id, offset, most bytes. */
export function recognisePoll(stdin: string): { runId: string; offset: number; maxBytes: number } | null {
  if (!stdin.includes(`printf '${RUN_POLL_BEGIN}\\n'`)) return null;
  const runId = runIdOf(stdin);
  const t = /^tail -c \+(\d+) "\$r\.log" \| head -c (\d+)$/m.exec(stdin);
  if (!runId || !t) return null;
  const offset = Number(t[1]) - 1;
  const maxBytes = Number(t[2]);
  try {
    return pollScript(runId, offset, maxBytes) === stdin ? { runId, offset, maxBytes } : null;
  } catch {
    return null;
  }
}

/** The follow script (a run's log as it grows): run id, offset. */
export function recogniseFollow(stdin: string): { runId: string; offset: number } | null {
  const t = /^tail -c \+(\d+) -f "\$r\.log" &$/m.exec(stdin);
  const runId = runIdOf(stdin);
  if (!runId || !t) return null;
  const offset = Number(t[1]) - 1;
  try {
    return followScript(runId, offset) === stdin ? { runId, offset } : null;
  } catch {
    return null;
  }
}

/** The collect script (installed packages before and after a run). */
export function recogniseCollect(stdin: string, group: PmGroup): { runId: string } | null {
  if (!stdin.includes('@@patchman-collect 1')) return null;
  const runId = runIdOf(stdin);
  if (!runId) return null;
  try {
    return collectScript(runId, UPGRADERS[group].installedCommand) === stdin ? { runId } : null;
  } catch {
    return null;
  }
}
