// dnf (and yum, which is dnf under its old name on RHEL/CentOS 8+): Fedora, RHEL, Rocky,
// Alma, CentOS Stream, Oracle Linux.
//
// scan:    `dnf -q check-update` (exit 100 = updates, 0 = none, 1 = error), `--refresh` when
//          asked. Run as the SSH user, never through sudo: a non-root dnf keeps its own
//          metadata cache, so a scan needs no root and never takes the rpmdb lock.
//          `dnf -q updateinfo list --security --updates`: the security advisories (with their
//          severity) of pending updates. `rpm -qa`: the installed versions.
// reboot:  `dnf needs-restarting -r` (dnf-plugins-core; exit 1 = needed, with the reason),
//          else the running kernel against the newest installed kernel package.
// upgrade: `dnf -y upgrade [PKG…]`, exit_on_lock so a held rpmdb lock fails at once instead of
//          waiting forever.
import { OpError } from '../errors.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import {
  SCRIPT_PROLOGUE,
  compareVersions,
  describeExit,
  inC,
  rootPrefix,
  sectionLines,
  shQuote,
  splitMarked,
  sudoRefused,
  tail,
  DEFAULT_LIST_TIMEOUT_MS,
  DEFAULT_REFRESH_TIMEOUT_MS,
  UPGRADE_ENV,
} from './shell.ts';
import { scriptRebootCheck } from './reboot-check.ts';
import type { PackageManagerModule, PackageScan, PackageUpdate, PackageUpgrader, RebootState, ScanOptions, UpgradeOptions } from './types.ts';

/** `-q`: no progress or "Last metadata expiration check" lines; the list goes to stdout. */
export const DNF_LIST_COMMAND = { cached: inC('dnf -q check-update'), refresh: inC('dnf -q --refresh check-update') } as const;
export const DNF_SECURITY_COMMAND = inC('dnf -q updateinfo list --security --updates');
/** Every installed package as `name.arch<TAB>[epoch:]version-release` (dnf's spelling). */
export const RPM_INSTALLED_COMMAND = "rpm -qa --qf '%{NAME}.%{ARCH}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n'";
export const DNF_INSTALLED_COMMAND = inC(RPM_INSTALLED_COMMAND);

/** dnf check-update: 100 = updates pending, 0 = none, anything else = an error. */
const UPDATES_PENDING = 100;

// ---- parsing ---------------------------------------------------------------------------

/** `name.arch` → [name, arch] (the arch is after the last dot; names may hold dots). */
export function splitNameArch(na: string): [string, string] {
  const dot = na.lastIndexOf('.');
  return dot > 0 ? [na.slice(0, dot), na.slice(dot + 1)] : [na, ''];
}

export interface CheckUpdateLine {
  name: string;
  arch: string;
  version: string;
  repository: string;
}

/** Parse `dnf -q check-update` stdout: `name.arch  [epoch:]version-release  repo` per update.
 * dnf wraps a line whose name is too long for its column onto the next one, so tokens are
 * read as a stream. The "Obsoleting Packages" block that may follow repeats updates and is
 * not read. Anything that is not three such tokens fails the scan rather than being dropped. */
export function parseCheckUpdate(stdout: string): CheckUpdateLine[] {
  const out: CheckUpdateLine[] = [];
  const tokens: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === 'Obsoleting Packages') break;
    // dnf 4 adds these notes for installed packages that are themselves security updates.
    if (line === '' || /^Security: /.test(line)) continue;
    tokens.push(...line.split(/\s+/));
  }
  for (let i = 0; i < tokens.length; i += 3) {
    const [na, version, repository] = tokens.slice(i, i + 3);
    if (!na || !version || !repository || !/^[^\s.][^\s]*\.[A-Za-z0-9_]+$/.test(na) || !/^(?:\d+:)?[^\s:-][^\s]*-[^\s-]+$/.test(version)) {
      throw new OpError(
        'command-failed',
        `dnf check-update's list was not recognised (near ${JSON.stringify(tokens.slice(i, i + 3).join(' ').slice(0, 200))}); it must be "name.arch version-release repository" in the C locale`,
      );
    }
    const [name, arch] = splitNameArch(na);
    out.push({ name, arch, version, repository });
  }
  return out;
}

export interface Advisory {
  id: string;
  /** `Important`, `Moderate`, … (dnf prints `Important/Sec.`); null when unrated. */
  severity: string | null;
}

/** Parse `dnf updateinfo list --security`: `ADVISORY  SEVERITY/Sec.  NEVRA` → name.arch →
 * the advisories that name it. */
export function parseSecurityAdvisories(stdout: string): Map<string, Advisory[]> {
  const out = new Map<string, Advisory[]>();
  for (const raw of stdout.split('\n')) {
    const m = /^(\S+)\s+(?:(\S+)\/)?Sec\.\s+(\S+)$/.exec(raw.trim());
    if (!m) continue;
    const [, id, severity, nevra] = m;
    const [nvr, arch] = splitNameArch(nevra);
    // name-version-release: the name is everything before the last two dashes.
    const name = nvr.split('-').slice(0, -2).join('-');
    if (!name) continue;
    const key = `${name}.${arch}`;
    const list = out.get(key) ?? [];
    if (!list.some((a) => a.id === id)) list.push({ id, severity: severity && severity !== 'None' ? severity : null });
    out.set(key, list);
  }
  return out;
}

/** `rpm -qa` with RPM_INSTALLED_COMMAND's format: name.arch → version. */
export function parseRpmInstalled(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [na, version] = line.replace(/\r$/, '').split('\t');
    if (na && version) out.set(na, version);
  }
  return out;
}

/** One package update from the three listings. */
export function dnfUpdates(list: CheckUpdateLine[], security: Map<string, Advisory[]>, installed: Map<string, string>): PackageUpdate[] {
  return list.map((u) => {
    const key = `${u.name}.${u.arch}`;
    const advisories = security.get(key) ?? [];
    const notes = advisories.map((a) => (a.severity ? `${a.id} (${a.severity})` : a.id));
    return {
      name: u.name,
      currentVersion: installed.get(key) ?? null,
      newVersion: u.version,
      repository: [u.repository, ...notes].join(', '),
      security: advisories.length > 0,
      arch: u.arch,
    };
  });
}

/** dnf's own error lines (`Error: …`, `Errors during downloading …`, curl errors). */
export function dnfMessages(text: string, max = 6): string[] {
  const lines = [...new Set(text.split('\n').map((l) => l.trim()).filter((l) => /^(?:Error|Errors during|- Curl error|Problem|Failed)/.test(l)))];
  return lines.length > max ? [...lines.slice(0, max), `… and ${lines.length - max} more`] : lines;
}

// ---- scan ---------------------------------------------------------------------------------

async function scan(session: SshSession, opts: ScanOptions): Promise<PackageScan> {
  const warnings: string[] = [];
  const where = describeTarget(session.target);
  const r = await session.exec(opts.refresh ? DNF_LIST_COMMAND.refresh : DNF_LIST_COMMAND.cached, {
    timeoutMs: opts.timeoutMs ?? (opts.refresh ? DEFAULT_REFRESH_TIMEOUT_MS : DEFAULT_LIST_TIMEOUT_MS),
    maxOutputBytes: 16 * 1024 * 1024,
  });
  if (r.code !== 0 && r.code !== UPDATES_PENDING) {
    const msgs = dnfMessages(r.stderr + '\n' + r.stdout);
    const unreachable = REPO_UNREACHABLE.test(r.stderr);
    throw new OpError(
      'command-failed',
      `dnf check-update on ${where} ${describeExit(r)}${unreachable ? ' (a repository could not be reached)' : ''}: ${msgs.length ? msgs.join(' ') : tail(r.stderr) || tail(r.stdout)}`,
    );
  }
  const list = r.code === UPDATES_PENDING ? parseCheckUpdate(r.stdout) : [];
  if (r.code === UPDATES_PENDING && list.length === 0) throw new OpError('command-failed', `dnf check-update on ${where} said updates are pending but listed none`);

  let security = new Map<string, Advisory[]>();
  let installed = new Map<string, string>();
  if (list.length > 0) {
    const s = await session.exec(DNF_SECURITY_COMMAND, { timeoutMs: opts.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS, maxOutputBytes: 16 * 1024 * 1024 });
    if (s.code === 0) security = parseSecurityAdvisories(s.stdout);
    else warnings.push(`dnf updateinfo ${describeExit(s)}, so no update is marked as a security update: ${tail(s.stderr, 300)}`);
    const q = await session.exec(DNF_INSTALLED_COMMAND, { timeoutMs: opts.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS, maxOutputBytes: 64 * 1024 * 1024 });
    if (q.code === 0) installed = parseRpmInstalled(q.stdout);
    else warnings.push(`rpm -qa ${describeExit(q)}; the installed versions are not shown`);
  }
  // dnf prints repository trouble it could skip (skip_if_unavailable) as warnings on stderr.
  if (REPO_UNREACHABLE.test(r.stderr)) warnings.push(`Some repositories could not be refreshed: ${dnfMessages(r.stderr).join(' ') || tail(r.stderr, 300)}`);
  return { updates: dnfUpdates(list, security, installed), held: [], warnings };
}

// ---- reboot -------------------------------------------------------------------------------

export const DNF_REBOOT_BEGIN = '@@patchman-reboot-dnf 1';

export const DNF_REBOOT_SCRIPT = [
  '{',
  ...SCRIPT_PROLOGUE,
  `printf '\\n${DNF_REBOOT_BEGIN}\\n'`,
  'section needs-restarting',
  'dnf -q needs-restarting -r 2>&1',
  'rc=$?',
  'section needs-restarting-exit',
  'echo "$rc"',
  'section running',
  'uname -r',
  'section kernels',
  "rpm -q --qf '%{VERSION}-%{RELEASE}.%{ARCH}\\n' kernel-core kernel kernel-uek-core kernel-uek 2>/dev/null | grep -v 'is not installed'",
  'section container',
  'if command -v systemd-detect-virt >/dev/null 2>&1; then systemd-detect-virt --container 2>/dev/null; fi',
  'section end',
  '} </dev/null',
  '',
].join('\n');

export function parseDnfReboot(output: string): RebootState {
  const s = splitMarked(output, DNF_REBOOT_BEGIN, ['needs-restarting', 'needs-restarting-exit', 'running', 'kernels', 'container'], 'the reboot check');
  const said = sectionLines(s, 'needs-restarting');
  const exit = sectionLines(s, 'needs-restarting-exit')[0];
  // Read the words as well as the exit status: a dnf without the plugin also exits 1.
  if (exit === '1' && said.some((l) => /Reboot is required/.test(l))) {
    const what = said.filter((l) => /^\* /.test(l)).map((l) => l.slice(2).trim());
    return { required: true, reason: `dnf needs-restarting: ${what.length ? `${what.join(', ')} updated since boot` : 'reboot required'}` };
  }
  if (exit === '0' && said.some((l) => /Reboot should not be necessary/.test(l))) return { required: false, reason: null };
  const container = sectionLines(s, 'container')[0];
  if (container && container !== 'none') return { required: false, reason: null };
  const running = sectionLines(s, 'running')[0] ?? '';
  // Kernels are installed side by side (installonly): the newest one is the one that boots next.
  const newest = sectionLines(s, 'kernels')
    .filter((k) => /^\d/.test(k))
    .toSorted(compareVersions)
    .at(-1);
  if (running && newest && compareVersions(newest, running) > 0) return { required: true, reason: `running kernel ${running}, newest installed ${newest}` };
  return { required: false, reason: null };
}

const rebootCheck = scriptRebootCheck(DNF_REBOOT_SCRIPT, parseDnfReboot);

// ---- upgrade -------------------------------------------------------------------------------

/** Never prompt (-y), and fail at once when another dnf/rpm holds the rpmdb lock rather than
 * wait for it without end (dnf's default). */
export const DNF_UPGRADE = 'dnf -y --setopt=exit_on_lock=True upgrade';

/** A dashboard package spec (`name` or `name:arch`) as dnf spells it (`name.arch`). */
export function dnfSpec(spec: string): string {
  const colon = spec.indexOf(':');
  return colon < 0 ? spec : `${spec.slice(0, colon)}.${spec.slice(colon + 1)}`;
}

function dnfRunScript(opts: UpgradeOptions): string {
  const sudo = rootPrefix('dnf', opts.privilege); // throws 'sudo-password' first
  const line = `${sudo}${DNF_UPGRADE}${opts.packages ? ` ${opts.packages.map((p) => shQuote(dnfSpec(p))).join(' ')}` : ''}`;
  return [`export ${UPGRADE_ENV}`, `echo '$ ${line.replace(/'/g, '')}'`, `exec ${line}`].join('\n');
}

const LOCK_HELD = /RPMDB already locked by|Waiting for process with pid \d+ to finish|is locked by another process|can't create transaction lock/i;
const REPO_UNREACHABLE = /Failed to download metadata for repo|Cannot download repomd\.xml|All mirrors were tried|Curl error \(\d+\)/;
const GPG = /GPG check FAILED|you do not have any GPG public keys installed|Public key for \S+ is not installed|Importing GPG key|is not signed|The GPG keys listed for the .* repository are already installed but they are not correct/;
const INTERRUPTED = /unfinished transactions remaining|yum-complete-transaction|transaction was interrupted/i;

export function dnfFailure(exitCode: number, log: string, where: string): OpError {
  if (sudoRefused(log)) {
    return new OpError('sudo-password', `sudo on ${where} asked for a password, so dnf did not run. Allow passwordless sudo for /usr/bin/dnf (the sudoers line on the host page), or log in as root.`, { exitCode });
  }
  const holder = /RPMDB already locked by (\d+)|Waiting for process with pid (\d+)/.exec(log);
  if (LOCK_HELD.test(log)) {
    const pid = holder?.[1] ?? holder?.[2];
    const app = /The application with PID \d+ is: (\S+)/.exec(log)?.[1];
    return new OpError(
      'lock-held',
      `Another dnf or rpm run on ${where} holds the rpmdb lock${pid ? ` (process ${pid}${app ? `, ${app}` : ''})` : ''}. Nothing was changed. Try again when it has finished (dnf-automatic often holds it for a few minutes).`,
      { exitCode },
    );
  }
  if (GPG.test(log)) {
    return new OpError(
      'gpg-key-prompt',
      `dnf on ${where} stopped at a package signature check: ${dnfMessages(log).join(' ') || 'a repository signing key is missing or wrong'}. Import and verify the repository's key on the host (rpm --import), then upgrade again.`,
      { exitCode },
    );
  }
  if (REPO_UNREACHABLE.test(log)) {
    return new OpError('repo-unreachable', `dnf on ${where} could not reach a repository, so nothing was changed: ${dnfMessages(log).join(' ')}`, { exitCode });
  }
  if (INTERRUPTED.test(log)) {
    return new OpError('interrupted-transaction', `An earlier dnf transaction on ${where} did not finish: ${dnfMessages(log).join(' ')}. Look at "dnf history" on the host and finish or undo it first.`, { exitCode });
  }
  const msgs = dnfMessages(log);
  return new OpError('command-failed', `dnf upgrade on ${where} exited with status ${exitCode}${msgs.length ? `: ${msgs.join(' ')}` : ''}`, { exitCode });
}

const dnfUpgrade: PackageUpgrader = {
  runScript: dnfRunScript,
  installedCommand: RPM_INSTALLED_COMMAND,
  parseInstalled: parseRpmInstalled,
  failure: dnfFailure,
};

/** Registered for `dnf` only: on RHEL/CentOS 8+ `yum` is dnf and the probe finds both; a host
 * with yum alone (RHEL/CentOS 7, end of life) has no module. */
export const dnf: PackageManagerModule = { name: 'dnf', scan, rebootCheck, upgrade: dnfUpgrade };
