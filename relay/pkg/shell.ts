// Shared by the package-manager modules: how a command line is built (C locale, sudo), how
// a marked multi-section script output is split, and small text helpers. Every command line
// a module runs is a constant made from string literals here and in the module; nothing from
// a request, and nothing the host printed, is ever pasted into one.
import { OpError } from '../errors.ts';
import { describeTarget, type ExecResult, type SshSession } from '../ssh.ts';
import type { Privilege } from './types.ts';

/** Prefix for every package-manager command: translated output must never reach a parser.
 * `env` works from any login shell (fish and csh included). */
export const C_LOCALE = 'env LC_ALL=C LANG=C';

/** How a constant script is run: fed on stdin to a POSIX shell, so the login shell only ever
 * sees this fixed command line. */
export const SH_COMMAND = `${C_LOCALE} /bin/sh -s`;

/** `cmd` (a constant such as `apt-get update`) in the C locale. */
export function inC(cmd: string): string {
  return `${C_LOCALE} ${cmd}`;
}

/**
 * `cmd` (a constant that starts with the package manager's binary, e.g. `apt-get -q update`)
 * run as root: as is when the SSH user is root, else through `sudo -n` (never prompt; fail).
 * The environment is set outside sudo, so a sudoers rule that allows only the package
 * manager's binary (`NOPASSWD: /usr/bin/apt-get`) matches, and sudo's own messages (which
 * sudoRefused() reads) are in the C locale. sudo's env_reset drops LC_ALL/LANG for the command
 * itself (Debian's sudo keeps neither), so privileged commands may print in the host's default
 * locale: their output is never parsed for data, only their exit status, and their error
 * lines are passed on as warning text. (A sudoers `Defaults env_keep += "LC_ALL LANG"` for the
 * relay's user makes them C too.)
 * Throws OpError 'sudo-password' when root is needed but not available without a password.
 */
export function privileged(cmd: string, privilege: Privilege): string {
  switch (privilege) {
    case 'root':
      return `${C_LOCALE} ${cmd}`;
    case 'sudo':
      return `${C_LOCALE} sudo -n ${cmd}`;
    case 'sudo-password':
      throw new OpError(
        'sudo-password',
        `"${binaryOf(cmd)}" must run as root, but sudo on this host asks for a password. ` +
          `Allow passwordless sudo for ${binaryOf(cmd)} (a sudoers rule with NOPASSWD for its full path) or log in as root.`,
      );
    case 'no-sudo':
      throw new OpError(
        'sudo-password',
        `"${binaryOf(cmd)}" must run as root, but the SSH user is not root and sudo is not installed. ` +
          `Install sudo and allow passwordless sudo for ${binaryOf(cmd)}, or log in as root.`,
      );
  }
}

function binaryOf(cmd: string): string {
  return cmd.split(' ')[0] ?? cmd;
}

/** Lines sudo prints when it will not run a command without a password (sudo 1.8 and 1.9). */
const SUDO_REFUSED = /^sudo: (?:a password is required|a terminal is required|.*\bpassword\b.*required)|^Sorry, user \S+ (?:is not allowed to execute|may not run sudo)/m;

export function sudoRefused(stderr: string): boolean {
  return SUDO_REFUSED.test(stderr);
}

/** The OpError for a privileged command that sudo refused at run time (sudoers changed since
 * the probe, or the rule does not cover this command). */
export function sudoRefusedError(session: SshSession, what: string, stderr: string): OpError {
  const line = stderr.split('\n').find((l) => SUDO_REFUSED.test(l))?.trim() ?? 'sudo refused';
  return new OpError(
    'sudo-password',
    `${what} on ${describeTarget(session.target)} needs root, and sudo refused to run it without a password (${line}). ` +
      'Allow passwordless sudo for the package manager, or log in as root.',
  );
}

/** A word for a sh command line, single-quoted. Only for values already checked against an
 * allowlist (package names): quoting is the second line of defence, not the first. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The environment every upgrade runs in: C locale, no prompts from debconf, needrestart
 * restarting services itself, no apt-listchanges pager. sudo's env_reset keeps these only
 * with the sudoers `env_keep` line the dashboard shows; root logins keep them anyway. */
export const UPGRADE_ENV = 'LC_ALL=C LANG=C DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a APT_LISTCHANGES_FRONTEND=none';

/** The command prefix for a root command in a run script: '' as root, 'sudo -n ' otherwise. */
export function rootPrefix(cmd: string, privilege: Privilege): string {
  return privileged(cmd, privilege).slice(C_LOCALE.length + 1, -cmd.length);
}

export function tail(text: string, max = 500): string {
  const t = text.trim();
  return t.length > max ? '…' + t.slice(-max) : t;
}

export function describeExit(r: ExecResult): string {
  return r.code === null ? `was killed by signal ${r.signal ?? 'unknown'}` : `exited with status ${r.code}`;
}

/** POSIX sh lines every script starts with: a PATH that has the sbin dirs, the C locale, and
 * the section marker function. The caller wraps the body in `{ … } </dev/null`. */
export const SCRIPT_PROLOGUE = [
  'PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
  'LC_ALL=C',
  'LANG=C',
  'export PATH LC_ALL LANG',
  'section() { printf \'\\n@@%s\\n\' "$1"; }',
];

/**
 * Split the output of a marked script: everything after the `begin` line, cut at `@@name`
 * lines for the known section names, up to `@@end`. Throws 'command-failed' when the begin
 * marker or the end is missing (a forced command, a shell that died half-way); `fail` lets
 * a caller word that error itself.
 */
export function splitMarked(
  output: string,
  begin: string,
  names: readonly string[],
  what: string,
  fail: (problem: 'no begin marker' | 'output ends early') => OpError = (problem) =>
    new OpError(
      'command-failed',
      problem === 'no begin marker' ? `The output of ${what} was not recognised (no begin marker)` : `The output of ${what} ends early`,
    ),
): Map<string, string[]> {
  const known = new Set([...names, 'end']);
  const lines = output.split('\n').map((l) => l.replace(/\r$/, ''));
  const start = lines.indexOf(begin);
  if (start < 0) throw fail('no begin marker');
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines.slice(start + 1)) {
    const m = /^@@([a-z-]+)$/.exec(line);
    if (m && known.has(m[1])) {
      current = [];
      sections.set(m[1], current);
      if (m[1] === 'end') break;
      continue;
    }
    current?.push(line);
  }
  if (!sections.has('end')) throw fail('output ends early');
  return sections;
}

/** The non-blank lines of a section, trimmed. */
export function sectionLines(sections: Map<string, string[]>, name: string): string[] {
  return (sections.get(name) ?? []).map((l) => l.trim()).filter((l) => l !== '');
}

/**
 * Compare two version-ish strings the way `sort -V` orders kernel releases: runs of digits
 * compare as numbers, everything else character by character; '~' sorts before anything
 * (even the end), as in Debian versions. Returns <0, 0 or >0.
 */
export function compareVersions(a: string, b: string): number {
  const re = /(\d+)|(~)|([^\d~]+)/g;
  const ta = [...a.matchAll(re)].map((m) => m[0]);
  const tb = [...b.matchAll(re)].map((m) => m[0]);
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    const x = ta[i];
    const y = tb[i];
    if (x === undefined) return y === '~' ? 1 : -1;
    if (y === undefined) return x === '~' ? -1 : 1;
    if (x === y) continue;
    if (x === '~') return -1;
    if (y === '~') return 1;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const nx = BigInt(x);
      const ny = BigInt(y);
      if (nx !== ny) return nx < ny ? -1 : 1;
      continue; // equal value, different zero padding
    }
    if (dx !== dy) return dx ? 1 : -1; // a number sorts after a letter run ("1.0" > "1.a")
    return x < y ? -1 : 1;
  }
  return 0;
}

/** Default limits for a package manager's commands (a scan's own timeout overrides them). */
export const DEFAULT_REFRESH_TIMEOUT_MS = 300_000;
export const DEFAULT_LIST_TIMEOUT_MS = 120_000;
export const DEFAULT_REBOOT_TIMEOUT_MS = 30_000;
