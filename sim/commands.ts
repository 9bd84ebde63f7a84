// The one place the simulator learns which commands the relay sends: every command line
// (and stdin script) here is imported from the relay's own modules, never copied, so when
// the relay changes a command the simulated hosts stop recognising it (exit 127) and the
// sim tests fail until the recorded outputs are recaptured (node sim/capture.ts).
import { PROBE_COMMAND, PROBE_SCRIPT, PROBE_BEGIN } from '../relay/ops/probe.ts';
import { APT_COMMANDS, APT_LIST_COMMAND, APT_REBOOT_SCRIPT, APT_SHOWHOLD_COMMAND } from '../relay/pkg/apt.ts';
import { CHECKUPDATES_COMMAND, PACMAN_FALLBACK_SCRIPT, PACMAN_LIST_COMMAND, PACMAN_REBOOT_SCRIPT } from '../relay/pkg/pacman.ts';
import { SH_COMMAND } from '../relay/pkg/shell.ts';

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

export type PmGroup = 'apt' | 'pacman';

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
