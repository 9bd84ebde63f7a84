// apk: Alpine Linux.
//
// scan:    [root] `apk update` (a failure is a warning: the scan goes on with the cached
//          indexes). `apk list --upgradable`: read-only, no root, no lock. Alpine's indexes
//          carry no security metadata, so no update is ever "security".
// reboot:  the running kernel (`6.6.31-0-lts`) against the installed kernel package of its
//          flavour (`linux-lts 6.6.32-r0`), and whether /lib/modules/$(uname -r) still exists.
//          A container has no linux-* package and never needs a reboot for one.
// upgrade: `apk upgrade` only, as a whole (the descriptor says why).
import { PACKAGE_MANAGERS } from '../../protocol/package-managers.ts';
import { OpError } from '../errors.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import {
  SCRIPT_PROLOGUE,
  describeExit,
  inC,
  privileged,
  rootPrefix,
  sectionLines,
  splitMarked,
  sudoRefused,
  sudoRefusedError,
  tail,
  DEFAULT_LIST_TIMEOUT_MS,
  DEFAULT_REFRESH_TIMEOUT_MS,
  UPGRADE_ENV,
} from './shell.ts';
import { scriptRebootCheck } from './reboot-check.ts';
import type { PackageManagerModule, PackageScan, PackageUpdate, PackageUpgrader, RebootState, ScanOptions, UpgradeOptions } from './types.ts';

export const APK_UPDATE = 'apk update --no-progress';
export const APK_LIST_COMMAND = inC('apk list --upgradable');
export const APK_INSTALLED_COMMAND = 'apk info -v 2>/dev/null';

// ---- parsing ---------------------------------------------------------------------------

/** `name-version` where version is `X-rN` (apk's `pkgver-rPKGREL`): names may hold dashes
 * and digits (`busybox-binsh`, `libcrypto3`), versions never a dash inside. */
export function splitNameVersion(nv: string): [string, string] | null {
  const m = /^(.+)-([^-\s]+-r\d+)$/.exec(nv);
  return m ? [m[1], m[2]] : null;
}

const UPGRADABLE = /^(\S+) (\S+) \{([^}]*)\} \((.*)\) \[upgradable from: (\S+)\]$/;

/** Parse `apk list --upgradable`. Every non-blank line must be such a line; anything else
 * (a WARNING about an index that could not be read, a translated word) fails the scan. */
export function parseApkUpgradable(stdout: string): PackageUpdate[] {
  const out: PackageUpdate[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '') continue;
    const m = UPGRADABLE.exec(line);
    const next = m ? splitNameVersion(m[1]) : null;
    const from = m ? splitNameVersion(m[5]) : null;
    if (!m || !next || !from || next[0] !== from[0]) {
      throw new OpError('command-failed', `apk's list of upgradable packages was not recognised (line ${JSON.stringify(line.slice(0, 200))})`);
    }
    out.push({ name: next[0], currentVersion: from[1], newVersion: next[1], repository: m[3], security: false, arch: m[2] });
  }
  return out;
}

/** `apk info -v`: `name-version` per line. */
export function parseApkInstalled(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const nv = splitNameVersion(line.trim());
    if (nv) out.set(nv[0], nv[1]);
  }
  return out;
}

/** apk's own `ERROR:` / `WARNING:` lines. */
export function apkMessages(text: string, max = 6): string[] {
  const lines = [...new Set(text.split('\n').map((l) => l.trim()).filter((l) => /^(?:ERROR|WARNING):/.test(l)))];
  return lines.length > max ? [...lines.slice(0, max), `… and ${lines.length - max} more`] : lines;
}

// ---- scan ---------------------------------------------------------------------------------

async function scan(session: SshSession, opts: ScanOptions): Promise<PackageScan> {
  const warnings: string[] = [];
  const where = describeTarget(session.target);
  if (opts.refresh) {
    const r = await session.exec(privileged(APK_UPDATE, opts.privilege), { timeoutMs: opts.timeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS });
    if (r.code !== 0) {
      if (opts.privilege === 'sudo' && sudoRefused(r.stderr)) throw sudoRefusedError(session, 'apk update', r.stderr);
      warnings.push(`Refreshing the package indexes failed (apk update ${describeExit(r)}); these results come from the cached indexes: ${apkMessages(r.stderr + '\n' + r.stdout).join(' ') || tail(r.stderr, 300)}`);
    }
  }
  const r = await session.exec(APK_LIST_COMMAND, { timeoutMs: opts.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS, maxOutputBytes: 16 * 1024 * 1024 });
  if (r.code !== 0) throw new OpError('command-failed', `apk list --upgradable on ${where} ${describeExit(r)}: ${apkMessages(r.stderr).join(' ') || tail(r.stderr) || tail(r.stdout)}`);
  warnings.push(...apkMessages(r.stderr).filter((l) => l.startsWith('WARNING:')));
  return { updates: parseApkUpgradable(r.stdout), held: [], warnings };
}

// ---- reboot -------------------------------------------------------------------------------

export const APK_REBOOT_BEGIN = '@@patchman-reboot-apk 1';

export const APK_REBOOT_SCRIPT = [
  '{',
  ...SCRIPT_PROLOGUE,
  `printf '\\n${APK_REBOOT_BEGIN}\\n'`,
  'section running',
  'uname -r',
  'section modules',
  'if [ -d "/lib/modules/$(uname -r)" ]; then echo present; else echo missing; fi',
  'section kernels',
  "apk info -v 2>/dev/null | grep '^linux-[a-z0-9]*-[0-9]'",
  'section end',
  '} </dev/null',
  '',
].join('\n');

/** `6.6.31-0-lts` runs from package `linux-lts` version `6.6.31-r0`. */
export function parseApkReboot(output: string): RebootState {
  const s = splitMarked(output, APK_REBOOT_BEGIN, ['running', 'modules', 'kernels'], 'the reboot check');
  const running = sectionLines(s, 'running')[0] ?? '';
  const m = /^(.+)-(\d+)-([a-z0-9]+)$/.exec(running);
  if (!m) return { required: false, reason: null };
  const [, version, rel, flavour] = m;
  const pkg = `linux-${flavour}`;
  const installed = sectionLines(s, 'kernels')
    .map(splitNameVersion)
    .find((nv) => nv?.[0] === pkg)?.[1];
  // No kernel package of the running flavour: a container, or a kernel Alpine did not install.
  if (!installed) return { required: false, reason: null };
  if (installed !== `${version}-r${rel}`) return { required: true, reason: `running kernel ${running}, installed ${pkg} ${installed}` };
  if (sectionLines(s, 'modules')[0] === 'missing') return { required: true, reason: `running kernel ${running} has no /lib/modules/${running} any more` };
  return { required: false, reason: null };
}

const rebootCheck = scriptRebootCheck(APK_REBOOT_SCRIPT, parseApkReboot);

// ---- upgrade -------------------------------------------------------------------------------

export const APK_UPGRADE = 'apk upgrade --no-progress';

function apkRunScript(opts: UpgradeOptions): string {
  const d = PACKAGE_MANAGERS.apk.selective;
  if (opts.packages && !d.ok) throw new OpError('invalid-request', d.why);
  const line = `${rootPrefix('apk', opts.privilege)}${APK_UPGRADE}`;
  return [`export ${UPGRADE_ENV}`, `echo '$ ${line}'`, `exec ${line}`].join('\n');
}

const LOCK_HELD = /Unable to lock database: (?:temporary error|Resource temporarily unavailable)/;
const REPO_UNREACHABLE = /network error|DNS lookup error|Connection refused|remote server returned error|No such file or directory.*APKINDEX|fetching .*(?:temporary error|network error)/i;
const SIGNATURE = /UNTRUSTED signature|BAD signature|bad signature/;

export function apkFailure(exitCode: number, log: string, where: string): OpError {
  if (sudoRefused(log)) {
    return new OpError('sudo-password', `sudo on ${where} asked for a password, so apk did not run. Allow passwordless sudo for /sbin/apk (the sudoers line on the host page), or log in as root.`, { exitCode });
  }
  const msgs = apkMessages(log);
  if (LOCK_HELD.test(log)) {
    return new OpError('lock-held', `Another apk run on ${where} holds the package database lock (/lib/apk/db/lock). Nothing was changed. Try again when it has finished.`, { exitCode });
  }
  if (SIGNATURE.test(log)) return new OpError('gpg-key-prompt', `apk on ${where} refused a package or index signed with a key the host does not trust: ${msgs.join(' ')}. Install the repository's key under /etc/apk/keys, then upgrade again.`, { exitCode });
  if (REPO_UNREACHABLE.test(log)) return new OpError('repo-unreachable', `apk on ${where} could not reach a repository: ${msgs.join(' ')}`, { exitCode });
  return new OpError('command-failed', `apk upgrade on ${where} exited with status ${exitCode}${msgs.length ? `: ${msgs.join(' ')}` : ''}`, { exitCode });
}

const apkUpgrade: PackageUpgrader = {
  runScript: apkRunScript,
  installedCommand: APK_INSTALLED_COMMAND,
  parseInstalled: parseApkInstalled,
  failure: apkFailure,
};

export const apk: PackageManagerModule = { name: 'apk', scan, rebootCheck, upgrade: apkUpgrade };
