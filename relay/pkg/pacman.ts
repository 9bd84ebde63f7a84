// pacman: Arch Linux, CachyOS, Manjaro (and other Arch derivatives).
//
// scan, refresh:    `checkupdates` (pacman-contrib): syncs a private copy of the sync
//                   databases with fakeroot and lists `name old -> new`; needs no root and
//                   never touches the real sync databases. Exit 0 = updates, 2 = none.
//                   Without pacman-contrib, the same thing by hand (FALLBACK SCRIPT): a
//                   temporary --dbpath with the real `local` db linked in, `pacman -Sy` on
//                   that copy as root (sudo -n), `pacman -Qu` against it, then removed.
//                   Never `pacman -Sy` on the real databases: a sync without the upgrade is a
//                   partial upgrade, which Arch does not support.
// scan, no refresh: `pacman -Qu` against the real sync databases (read-only, no root).
// security:         always false — pacman repositories carry no security metadata.
// reboot:           the running kernel's /usr/lib/modules/$(uname -r) is gone (the kernel
//                   package was upgraded or removed). Works for every flavour (linux,
//                   linux-lts, linux-zen, linux-hardened, CachyOS, Manjaro kernels).
import { OpError } from '../errors.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import {
  SCRIPT_PROLOGUE,
  SH_COMMAND,
  describeExit,
  inC,
  privileged,
  sectionLines,
  splitMarked,
  sudoRefused,
  sudoRefusedError,
  tail,
  DEFAULT_LIST_TIMEOUT_MS,
  DEFAULT_REFRESH_TIMEOUT_MS,
  UPGRADE_ENV,
  rootPrefix,
} from './shell.ts';
import { scriptRebootCheck } from './reboot-check.ts';
import { PACMAN_FULL_ONLY } from '../../protocol/package-managers.ts';
import type { HeldPackage, PackageManagerModule, PackageScan, PackageUpdate, PackageUpgrader, RebootState, ScanOptions, UpgradeOptions } from './types.ts';


export const CHECKUPDATES_COMMAND = inC('checkupdates');
export const PACMAN_LIST_COMMAND = inC('pacman -Qu --color never');

/** `env` exits 127 when the command does not exist. */
const NOT_FOUND = 127;

// ---- parsing ---------------------------------------------------------------------------

/** `name old -> new`, and `… [ignored]` for IgnorePkg/IgnoreGroup entries (pacman -Qu; the
 * word is translated in other locales, one more reason for LC_ALL=C). */
const UPDATE_LINE = /^(\S+) (\S+) -> (\S+)( \[ignored\])?$/;

export interface PacmanList {
  updates: PackageUpdate[];
  held: HeldPackage[];
}

/** Parse `checkupdates` / `pacman -Qu` stdout. Every non-blank line must be an update line;
 * anything else (translated text, a shell's noise) fails the scan rather than being skipped. */
export function parsePacmanUpdates(stdout: string): PacmanList {
  const updates: PackageUpdate[] = [];
  const held: HeldPackage[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '') continue;
    const m = UPDATE_LINE.exec(line);
    if (!m) {
      throw new OpError(
        'command-failed',
        `pacman's list of updates was not recognised (line ${JSON.stringify(line.slice(0, 200))}); it must be "name old -> new" in the C locale`,
      );
    }
    const [, name, currentVersion, newVersion, ignored] = m;
    if (ignored) held.push({ name, reason: 'held' });
    else updates.push({ name, currentVersion, newVersion, repository: '', security: false, arch: '' });
  }
  return { updates, held };
}

// ---- the fallback when pacman-contrib is missing -----------------------------------------

export const PACMAN_SYNC_BEGIN = '@@patchman-pacman-sync 1';

/** checkupdates by hand. `sudo` is '' (root) or 'sudo -n ' — two constants, nothing else.
 * The temp dir and its `sync` subdir are created by the SSH user, so the files root writes
 * into them can be removed again without root. */
function fallbackScript(sudo: '' | 'sudo -n '): string {
  return [
    '{',
    ...SCRIPT_PROLOGUE,
    `printf '\\n${PACMAN_SYNC_BEGIN}\\n'`,
    'db=$(pacman-conf DBPath 2>/dev/null)',
    'if [ -z "$db" ] || [ ! -d "$db" ]; then db=/var/lib/pacman/; fi',
    't=$(mktemp -d "${TMPDIR:-/tmp}/patchman-db.XXXXXXXX")',
    'if [ -z "$t" ] || [ ! -d "$t" ]; then section sync-errors; echo "mktemp -d failed"; section sync-exit; echo 1; section end; exit 0; fi',
    // pacman ≥ 7 downloads as an unprivileged user (DownloadUser): it must reach the dir.
    'chmod 755 "$t"',
    'mkdir "$t/sync" && chmod 755 "$t/sync"',
    'ln -s "${db%/}/local" "$t/local"',
    'section sync-errors',
    `${sudo}pacman -Sy --dbpath "$t" --logfile /dev/null --color never 2>&1 >/dev/null`,
    'rc=$?',
    'section sync-exit',
    'echo "$rc"',
    'if [ "$rc" = 0 ]; then',
    '  section list',
    '  pacman -Qu --dbpath "$t" --color never 2>/dev/null',
    '  lrc=$?',
    '  section list-exit',
    '  echo "$lrc"',
    'fi',
    'rm -rf "$t" 2>/dev/null',
    'section cleanup',
    'if [ -e "$t" ]; then echo "$t"; fi',
    'section end',
    '} </dev/null',
    '',
  ].join('\n');
}

export const PACMAN_FALLBACK_SCRIPT = { root: fallbackScript(''), sudo: fallbackScript('sudo -n ') } as const;

export interface FallbackResult {
  syncExit: number;
  syncErrors: string[];
  /** Present when the sync succeeded. */
  list?: PacmanList;
  /** A temp dir the script could not remove. */
  leftover?: string;
}

export function parseFallback(output: string): FallbackResult {
  const s = splitMarked(output, PACMAN_SYNC_BEGIN, ['sync-errors', 'sync-exit', 'list', 'list-exit', 'cleanup'], 'the pacman sync script');
  const syncExit = Number.parseInt(sectionLines(s, 'sync-exit')[0] ?? '', 10);
  const res: FallbackResult = { syncExit: Number.isFinite(syncExit) ? syncExit : -1, syncErrors: sectionLines(s, 'sync-errors') };
  if (res.syncExit === 0) {
    const listExit = sectionLines(s, 'list-exit')[0];
    // pacman -Qu exits 1 when there is nothing to list.
    if (listExit !== '0' && listExit !== '1') throw new OpError('command-failed', `pacman -Qu against the temporary database exited with status ${listExit ?? 'unknown'}`);
    res.list = parsePacmanUpdates((s.get('list') ?? []).join('\n'));
  }
  const left = sectionLines(s, 'cleanup')[0];
  if (left) res.leftover = left;
  return res;
}

// ---- scan ---------------------------------------------------------------------------------

async function listRealDb(session: SshSession, opts: ScanOptions): Promise<PacmanList> {
  const r = await session.exec(PACMAN_LIST_COMMAND, { timeoutMs: opts.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS });
  // Exit 1 with nothing on stdout and no error is pacman's "no upgrades".
  if (r.code === 0 || (r.code === 1 && r.stdout.trim() === '' && !/^error:/m.test(r.stderr))) return parsePacmanUpdates(r.stdout);
  throw new OpError('command-failed', `pacman -Qu on ${describeTarget(session.target)} ${describeExit(r)}: ${tail(r.stderr) || tail(r.stdout)}`);
}

async function fallbackRefresh(session: SshSession, opts: ScanOptions, warnings: string[]): Promise<PacmanList | null> {
  privileged('pacman', opts.privilege); // throws 'sudo-password' unless root or passwordless sudo
  const script = opts.privilege === 'root' ? PACMAN_FALLBACK_SCRIPT.root : PACMAN_FALLBACK_SCRIPT.sudo;
  const r = await session.exec(SH_COMMAND, { stdin: script, timeoutMs: opts.timeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS, maxOutputBytes: 16 * 1024 * 1024 });
  if (r.code !== 0) throw new OpError('command-failed', `The pacman sync script on ${describeTarget(session.target)} ${describeExit(r)}: ${tail(r.stderr) || tail(r.stdout)}`);
  const f = parseFallback(r.stdout);
  if (f.leftover) warnings.push(`Could not remove the temporary pacman database ${f.leftover} on the host`);
  if (f.list) {
    warnings.push('checkupdates (pacman-contrib) is not installed: the package lists were refreshed into a temporary database through pacman -Sy --dbpath');
    return f.list;
  }
  const errors = f.syncErrors.join('\n');
  if (opts.privilege === 'sudo' && sudoRefused(errors)) throw sudoRefusedError(session, 'pacman -Sy --dbpath (temporary database)', errors);
  warnings.push(
    `Refreshing the package lists failed (pacman -Sy into a temporary database exited with status ${f.syncExit}); these results come from the last sync of the real databases` +
      (errors ? `: ${tail(errors, 300)}` : '.'),
  );
  return null;
}

async function scan(session: SshSession, opts: ScanOptions): Promise<PackageScan> {
  const warnings: string[] = [];
  if (opts.refresh) {
    const r = await session.exec(CHECKUPDATES_COMMAND, { timeoutMs: opts.timeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS });
    if (r.code === 0 || r.code === 2) return { ...parsePacmanUpdates(r.code === 2 ? '' : r.stdout), warnings };
    if (r.code === NOT_FOUND) {
      const list = await fallbackRefresh(session, opts, warnings);
      if (list) return { ...list, warnings };
    } else {
      warnings.push(
        `Refreshing the package lists failed (checkupdates ${describeExit(r)}); these results come from the last sync of the real databases` +
          (r.stderr.trim() ? `: ${tail(r.stderr, 300)}` : '.'),
      );
    }
  }
  return { ...(await listRealDb(session, opts)), warnings };
}

// ---- reboot -------------------------------------------------------------------------------

export const PACMAN_REBOOT_BEGIN = '@@patchman-reboot-pacman 1';

export const PACMAN_REBOOT_SCRIPT = [
  '{',
  ...SCRIPT_PROLOGUE,
  `printf '\\n${PACMAN_REBOOT_BEGIN}\\n'`,
  'section running',
  'uname -r',
  'section modules',
  'if [ -d "/usr/lib/modules/$(uname -r)" ]; then echo present; else echo missing; fi',
  'section installed',
  'for d in /usr/lib/modules/*; do',
  '  if [ -d "$d" ]; then echo "${d##*/}"; fi',
  'done',
  'section container',
  'if command -v systemd-detect-virt >/dev/null 2>&1; then systemd-detect-virt --container 2>/dev/null; fi',
  'section end',
  '} </dev/null',
  '',
].join('\n');

export function parsePacmanReboot(output: string): RebootState {
  const s = splitMarked(output, PACMAN_REBOOT_BEGIN, ['running', 'modules', 'installed', 'container'], 'the reboot check');
  const running = sectionLines(s, 'running')[0] ?? '';
  if (sectionLines(s, 'modules')[0] !== 'missing' || running === '') return { required: false, reason: null };
  // A container runs its host's kernel: it has no modules of its own to compare with.
  const container = sectionLines(s, 'container')[0];
  if (container && container !== 'none') return { required: false, reason: null };
  const installed = sectionLines(s, 'installed').filter((d) => /\d/.test(d));
  if (installed.length === 0) return { required: false, reason: null };
  return {
    required: true,
    reason: `running kernel ${running} is no longer installed (no /usr/lib/modules/${running}); installed: ${installed.join(', ')}`,
  };
}

const rebootCheck = scriptRebootCheck(PACMAN_REBOOT_SCRIPT, parsePacmanReboot);

// ---- upgrade -------------------------------------------------------------------------------

export { PACMAN_FULL_ONLY };

export const PACMAN_UPGRADE = 'pacman -Syu --noconfirm --noprogressbar --color never';

export const PACMAN_INSTALLED_COMMAND = 'pacman -Q --color never';

function pacmanRunScript(opts: UpgradeOptions): string {
  if (opts.packages) throw new OpError('invalid-request', PACMAN_FULL_ONLY);
  const line = `${rootPrefix('pacman', opts.privilege)}${PACMAN_UPGRADE}`;
  return [`export ${UPGRADE_ENV}`, `echo '$ ${line}'`, `exec ${line}`].join('\n');
}

/** `pacman -Q`: `name version` per line. */
export function parsePacmanInstalled(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) (\S+)$/.exec(line.trim());
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

export function pacmanFailure(exitCode: number, log: string, where: string): OpError {
  if (sudoRefused(log)) {
    return new OpError('sudo-password', `sudo on ${where} asked for a password, so pacman did not run. Allow passwordless sudo for /usr/bin/pacman, or log in as root.`, { exitCode });
  }
  const lock = /unable to lock database|could not lock database/i.test(log);
  if (lock) {
    return new OpError(
      'lock-held',
      `pacman on ${where} could not lock its database: another pacman is running, or one died and left /var/lib/pacman/db.lck behind (remove it only if no pacman is running). Nothing was changed.`,
      { exitCode },
    );
  }
  const errors = [...new Set(log.split('\n').map((l) => l.trim()).filter((l) => /^error:/.test(l)))].slice(0, 8);
  return new OpError('command-failed', `pacman -Syu on ${where} exited with status ${exitCode}${errors.length ? `: ${errors.join(' ')}` : ''}`, { exitCode });
}

const pacmanUpgrade: PackageUpgrader = {
  runScript: pacmanRunScript,
  installedCommand: PACMAN_INSTALLED_COMMAND,
  parseInstalled: parsePacmanInstalled,
  failure: pacmanFailure,
};

export const pacman: PackageManagerModule = { name: 'pacman', scan, rebootCheck, upgrade: pacmanUpgrade };
