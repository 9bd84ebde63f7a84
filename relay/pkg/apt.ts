// apt: Debian, Ubuntu, Proxmox VE / Backup Server (and their derivatives).
//
// scan:   [root] apt-get update (a failure is a warning: the scan goes on with the old lists)
//         apt-get -s dist-upgrade — the simulation needs no root and no lock; its `Inst` lines
//           carry the installed version, the candidate, its origins and architecture
//         apt-mark showhold — which kept-back packages are dpkg holds
// reboot: one constant script: /run/reboot-required(.pkgs), the running kernel, the kernels
//         installed under /boot, and (Debian) the running build vs the installed package.
import { OpError } from '../errors.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import {
  C_LOCALE,
  SCRIPT_PROLOGUE,
  SH_COMMAND,
  compareVersions,
  describeExit,
  inC,
  privileged,
  sectionLines,
  splitMarked,
  sudoRefused,
  sudoRefusedError,
  tail,
  DEFAULT_LIST_TIMEOUT_MS,
  DEFAULT_REBOOT_TIMEOUT_MS,
  DEFAULT_REFRESH_TIMEOUT_MS,
  UPGRADE_ENV,
  rootPrefix,
  shQuote,
} from './shell.ts';
import { scriptRebootCheck } from './reboot-check.ts';
import type { HeldPackage, PackageManagerModule, PackageScan, PackageUpdate, PackageUpgrader, RebootState, ScanOptions, UpgradeOptions } from './types.ts';


/** Refresh, run through privileged(): `DPkg::Lock::Timeout` waits for a running apt/dpkg
 * (unattended-upgrades) instead of failing at once. */
export const APT_UPDATE = 'apt-get -q -o DPkg::Lock::Timeout=60 update';

/** The simulation. `Debug::NoLocking` lets a non-root user (and root, while dpkg runs) read
 * the state without taking the lock; nothing is changed either way. */
export const APT_LIST_COMMAND = inC('apt-get -s -o Debug::NoLocking=1 dist-upgrade');

export const APT_SHOWHOLD_COMMAND = inC('apt-mark showhold');

// ---- the simulation --------------------------------------------------------------------

/** Block headers apt prints in the C locale: apt < 3 (and apt-get) and apt ≥ 3's
 * APT::Output-Version 30 wording. */
const KEPT_HEADERS = new Set(['The following packages have been kept back:', 'Not upgrading:']);
const PHASED_HEADERS = new Set(['The following upgrades have been deferred due to phasing:', 'Not upgrading yet due to phasing:']);

const SUMMARY_V1 = /^(\d+) upgraded, (\d+) newly installed, (?:(\d+) reinstalled, )?(?:(\d+) downgraded, )?(\d+) to remove and (\d+) not upgraded\.$/;
const SUMMARY_V30 = /^Upgrading: (\d+), Installing: (\d+), (?:Reinstalling: (\d+), )?(?:Downgrading: (\d+), )?Removing: (\d+), Not Upgrading: (\d+)$/;

/** `Inst name [installed] (candidate origin, origin… [arch])` plus optional trailers apt adds
 * for ordering problems (`[]`, `[pkg on dep]`). The installed version is missing for a
 * package the upgrade newly installs. Versions never contain spaces or brackets. */
const INST = /^Inst (\S+)(?: \[([^\]\s]*)\])? \((\S+)(?: (.*?))? \[([^\]\s]+)\]\)(?: .*)?$/;

export interface AptSummary {
  upgraded: number;
  newlyInstalled: number;
  reinstalled: number;
  downgraded: number;
  remove: number;
  notUpgraded: number;
}

export interface AptSimulation {
  updates: PackageUpdate[];
  /** Names in the "kept back" block (includes dpkg holds). */
  keptBack: string[];
  /** Names in the "deferred due to phasing" block (Ubuntu). */
  phased: string[];
  /** Packages the full upgrade would remove (`Remv` lines). */
  removals: string[];
  summary: AptSummary;
  /** `Inst` lines the parser did not understand (reported as a warning, never dropped silently). */
  unparsed: string[];
}

/** An origin as apt's RelStr prints it: `Label:Version/Archive` (e.g.
 * `Debian-Security:12/stable-security`, `Ubuntu:24.04/noble-security`,
 * `UbuntuESMApps:24.04/noble-apps-security`). Security when the archive (suite) is a
 * `-security` pocket, or the label is (`Debian-Security:10/oldoldstable`). */
export function isSecurityOrigin(origin: string): boolean {
  const o = origin.trim();
  const colon = o.indexOf(':');
  const label = colon >= 0 ? o.slice(0, colon) : '';
  const archive = o.slice(o.lastIndexOf('/') + 1);
  return /(?:^|-)security$/i.test(archive) || /(?:^|-)security$/i.test(label);
}

export function parseInstLine(line: string): PackageUpdate | null {
  const m = INST.exec(line.replace(/\r$/, ''));
  if (!m) return null;
  const [, name, current, newVersion, originText, arch] = m;
  const repository = (originText ?? '').trim();
  const origins = repository === '' ? [] : repository.split(', ');
  return {
    name,
    currentVersion: current === undefined || current === '' ? null : current,
    newVersion,
    repository,
    security: origins.some(isSecurityOrigin),
    arch,
  };
}

function notC(detail: string): OpError {
  return new OpError(
    'command-failed',
    `apt-get's output was not recognised (${detail}). It must be in the C locale (English): ` +
      'the relay runs it with LC_ALL=C, so something on the host (a forced command in authorized_keys, a wrapper around apt-get) is overriding that. ' +
      'Refusing to report a possibly incomplete list of updates.',
  );
}

function blockNames(line: string): string[] {
  // `APT::Get::Show-Versions` prints `name (old => new)`; apt 3 prints columns.
  return line
    .replace(/\([^)]*\)/g, ' ')
    .trim()
    .split(/\s+/)
    .filter((s) => s !== '');
}

/** Parse `apt-get -s dist-upgrade` stdout. Throws 'command-failed' when the output is not
 * apt's C-locale output (no summary line): translated text must never turn into "0 updates". */
export function parseAptSimulation(stdout: string): AptSimulation {
  const updates: PackageUpdate[] = [];
  const keptBack: string[] = [];
  const phased: string[] = [];
  const removals: string[] = [];
  const unparsed: string[] = [];
  let summary: AptSummary | undefined;
  let block: 'kept' | 'phased' | 'other' | undefined;

  for (const raw of stdout.split('\n')) {
    const line = raw.replace(/\r$/, '');
    // The summary first: apt ≥ 3 indents it under a "Summary:" header.
    const m = SUMMARY_V1.exec(line.trim()) ?? SUMMARY_V30.exec(line.trim());
    if (m) {
      summary = {
        upgraded: Number(m[1]),
        newlyInstalled: Number(m[2]),
        reinstalled: Number(m[3] ?? 0),
        downgraded: Number(m[4] ?? 0),
        remove: Number(m[5]),
        notUpgraded: Number(m[6]),
      };
      block = undefined;
      continue;
    }
    if (block && /^\s+\S/.test(line)) {
      if (block === 'kept') keptBack.push(...blockNames(line));
      else if (block === 'phased') phased.push(...blockNames(line));
      continue;
    }
    block = undefined;
    if (line.startsWith('Inst ')) {
      const u = parseInstLine(line);
      if (u) updates.push(u);
      else unparsed.push(line);
      continue;
    }
    if (line.startsWith('Remv ') || line.startsWith('Purg ')) {
      const name = line.split(' ')[1];
      if (name) removals.push(name);
      continue;
    }
    if (line.startsWith('Conf ')) continue;
    if (KEPT_HEADERS.has(line)) {
      block = 'kept';
      continue;
    }
    if (PHASED_HEADERS.has(line)) {
      block = 'phased';
      continue;
    }
    if (/^\S.*:$/.test(line)) block = 'other'; // "The following packages will be upgraded:", "Upgrading:", …
  }
  if (!summary) {
    throw notC(updates.length > 0 || unparsed.length > 0 ? `${updates.length + unparsed.length} "Inst" lines but no "N upgraded, N newly installed, …" summary line` : 'no "N upgraded, N newly installed, …" summary line');
  }
  return { updates, keptBack: unique(keptBack), phased: unique(phased), removals: unique(removals), summary, unparsed };
}

function unique(names: string[]): string[] {
  return [...new Set(names)];
}

/** `apt-mark showhold`: one package name per line. */
export function parseShowHold(stdout: string): string[] {
  return unique(
    stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?$/.test(l)),
  );
}

/** What apt will not install with a plain full upgrade: dpkg holds first, then phasing, then
 * the rest of the kept-back block. */
export function classifyHeld(sim: Pick<AptSimulation, 'keptBack' | 'phased'>, holds: readonly string[]): HeldPackage[] {
  const held = new Set(holds);
  const out: HeldPackage[] = [];
  const seen = new Set<string>();
  const add = (name: string, reason: HeldPackage['reason']): void => {
    if (seen.has(name)) return;
    seen.add(name);
    out.push({ name, reason });
  };
  for (const name of [...sim.keptBack, ...sim.phased]) if (held.has(name)) add(name, 'held');
  for (const name of sim.phased) add(name, 'phased');
  for (const name of sim.keptBack) add(name, 'kept-back');
  return out;
}

/** apt's own error and warning lines (`E: …`, `W: …`, `Err:…`) from stderr/stdout. */
export function aptMessages(text: string, max = 8): string[] {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(?:E|W|Err):/.test(l));
  const u = unique(lines);
  return u.length > max ? [...u.slice(0, max), `… and ${u.length - max} more`] : u;
}

function listNames(names: string[], max = 10): string {
  return names.length > max ? `${names.slice(0, max).join(', ')} and ${names.length - max} more` : names.join(', ');
}

/** Warnings for things in a parsed simulation that did not fail the scan. */
export function simulationWarnings(sim: AptSimulation): string[] {
  const w: string[] = [];
  if (sim.unparsed.length > 0) {
    w.push(`${sim.unparsed.length} "Inst" line(s) from apt-get were not understood and are missing from the list, e.g. ${JSON.stringify(sim.unparsed[0].slice(0, 200))}`);
  }
  const s = sim.summary;
  const expected = s.upgraded + s.newlyInstalled + s.reinstalled + s.downgraded;
  const listed = sim.updates.length + sim.unparsed.length;
  if (listed !== expected) {
    w.push(`apt-get's summary counts ${expected} package(s) to install or upgrade, but ${listed} "Inst" line(s) were printed`);
  }
  if (sim.removals.length > 0) {
    w.push(`A full upgrade would also remove ${sim.removals.length} package(s): ${listNames(sim.removals)}`);
  }
  return w;
}

// ---- scan --------------------------------------------------------------------------------

async function refresh(session: SshSession, opts: ScanOptions, warnings: string[]): Promise<void> {
  const command = privileged(APT_UPDATE, opts.privilege); // throws 'sudo-password' first
  const timeoutMs = opts.timeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS;
  let r;
  try {
    r = await session.exec(command, { timeoutMs });
  } catch (err) {
    if (err instanceof OpError && err.code === 'timeout') {
      warnings.push(`Refreshing the package lists (apt-get update) did not finish within ${Math.round(timeoutMs / 1000)} s; these results come from the lists of the last successful refresh.`);
      return;
    }
    throw err;
  }
  if (r.code === 0) {
    // apt-get update exits 0 for some failed sources, with a W: line saying so.
    const failed = aptMessages(r.stderr).filter((l) => /^W: (?:Failed to fetch|Some index files failed)/.test(l));
    if (failed.length > 0) warnings.push(`Some package lists could not be refreshed; results for those sources are from older lists: ${failed.join(' ')}`);
    return;
  }
  if (opts.privilege === 'sudo' && sudoRefused(r.stderr)) throw sudoRefusedError(session, 'apt-get update', r.stderr);
  const msgs = aptMessages(r.stderr + '\n' + r.stdout);
  warnings.push(
    `Refreshing the package lists failed (apt-get update ${describeExit(r)}); these results come from the lists of the last successful refresh` +
      (msgs.length > 0 ? `: ${msgs.join(' ')}` : r.stderr.trim() ? `: ${tail(r.stderr, 300)}` : '.'),
  );
}

async function scan(session: SshSession, opts: ScanOptions): Promise<PackageScan> {
  const warnings: string[] = [];
  if (opts.refresh) await refresh(session, opts, warnings);

  const r = await session.exec(APT_LIST_COMMAND, { timeoutMs: opts.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS, maxOutputBytes: 64 * 1024 * 1024 });
  if (r.code !== 0) {
    const msgs = aptMessages(r.stderr + '\n' + r.stdout);
    throw new OpError(
      'command-failed',
      `apt-get -s dist-upgrade on ${describeTarget(session.target)} ${describeExit(r)}: ${msgs.length > 0 ? msgs.join(' ') : tail(r.stderr) || tail(r.stdout)}`,
    );
  }
  const sim = parseAptSimulation(r.stdout);
  warnings.push(...simulationWarnings(sim), ...aptMessages(r.stderr).filter((l) => !l.startsWith('E:')));

  let holds: string[] = [];
  if (sim.keptBack.length > 0 || sim.phased.length > 0) {
    try {
      const h = await session.exec(APT_SHOWHOLD_COMMAND, { timeoutMs: opts.timeoutMs ?? DEFAULT_REBOOT_TIMEOUT_MS });
      if (h.code === 0) holds = parseShowHold(h.stdout);
      else warnings.push(`apt-mark showhold ${describeExit(h)}; held packages are reported as kept back`);
    } catch (err) {
      if (!(err instanceof OpError) || err.code !== 'timeout') throw err;
      warnings.push('apt-mark showhold timed out; held packages are reported as kept back');
    }
  }
  return { updates: sim.updates, held: classifyHeld(sim, holds), warnings };
}

// ---- reboot ------------------------------------------------------------------------------

export const APT_REBOOT_BEGIN = '@@patchman-reboot-apt 1';

/** Every fact the reboot decision needs, in one constant script (run like the probe). */
export const APT_REBOOT_SCRIPT = [
  '{',
  ...SCRIPT_PROLOGUE,
  `printf '\\n${APT_REBOOT_BEGIN}\\n'`,
  'section reboot-required',
  'if [ -e /run/reboot-required ] || [ -e /var/run/reboot-required ]; then echo yes; else echo no; fi',
  'section reboot-required-pkgs',
  'if [ -r /run/reboot-required.pkgs ]; then cat /run/reboot-required.pkgs',
  'elif [ -r /var/run/reboot-required.pkgs ]; then cat /var/run/reboot-required.pkgs',
  'fi',
  'section running',
  'uname -r',
  'section running-build',
  'uname -v',
  'section kernels',
  'for f in /boot/vmlinuz-*; do',
  '  if [ -e "$f" ]; then echo "${f#/boot/vmlinuz-}"; fi',
  'done',
  'section running-package',
  'r=$(uname -r)',
  "dpkg-query -W -f='${Package} ${Status} ${Version}\\n' \"linux-image-$r\" \"linux-image-$r-unsigned\" 2>/dev/null",
  'section end',
  '} </dev/null',
  '',
].join('\n');

const REBOOT_SECTIONS = ['reboot-required', 'reboot-required-pkgs', 'running', 'running-build', 'kernels', 'running-package'];

/** The numeric part of a kernel release that orders it: `6.1.0-40` of `6.1.0-40-amd64`,
 * `6.8.12-4` of `6.8.12-4-pve`, `6.12.12` of `6.12.12+bpo-amd64`, `6.6.51` of
 * `6.6.51+rpt-rpi-v8`. Flavours of one version (Raspberry Pi's v8/2712, Ubuntu's
 * generic/lowlatency) compare equal, so a second flavour never reads as "newer". */
export function kernelVersionKey(release: string): string | null {
  return /^\d+(?:\.\d+)*(?:-\d+)?/.exec(release)?.[0] ?? null;
}

export interface KernelFacts {
  running: string;
  /** Releases with a /boot/vmlinuz-<release>. Empty in containers and direct-kernel VMs. */
  installed: string[];
  /** `uname -v`. */
  runningBuild?: string;
  /** The installed version of the running release's Debian package, if any. */
  runningPackageVersion?: string | null;
}

/** The kernel half of the decision: the running kernel vs the newest installed one. Without
 * any /boot/vmlinuz-* the host has no kernel of its own (a container) and never needs a
 * reboot for one. */
export function kernelReboot(f: KernelFacts): RebootState {
  // Debian replaces a kernel in place when its ABI name stays (6.1.0-28-amd64 6.1.119-1 →
  // 6.1.123-1): uname -r is unchanged, but uname -v names the running build.
  const build = /\bDebian (\S+) \(/.exec(f.runningBuild ?? '')?.[1];
  const pkg = f.runningPackageVersion;
  if (build && pkg && f.installed.includes(f.running)) {
    const strip = (v: string): string => v.replace(/\+b\d+$/, '');
    if (compareVersions(strip(pkg), strip(build)) > 0) {
      return { required: true, reason: `running kernel ${f.running} is build ${build}, installed ${pkg}` };
    }
  }
  const runningKey = kernelVersionKey(f.running);
  if (!runningKey) return { required: false, reason: null };
  let newest: { release: string; key: string } | undefined;
  for (const release of f.installed) {
    const key = kernelVersionKey(release);
    if (!key) continue;
    if (!newest || compareVersions(key, newest.key) > 0) newest = { release, key };
  }
  if (newest && compareVersions(newest.key, runningKey) > 0) {
    return { required: true, reason: `running kernel ${f.running}, newest installed ${newest.release}` };
  }
  return { required: false, reason: null };
}

export function parseAptReboot(output: string): RebootState {
  const s = splitMarked(output, APT_REBOOT_BEGIN, REBOOT_SECTIONS, 'the reboot check');
  if (sectionLines(s, 'reboot-required')[0] === 'yes') {
    const pkgs = unique(sectionLines(s, 'reboot-required-pkgs'));
    return { required: true, reason: pkgs.length > 0 ? `/run/reboot-required (${listNames(pkgs)})` : '/run/reboot-required' };
  }
  const running = sectionLines(s, 'running')[0] ?? '';
  const pkgLine = sectionLines(s, 'running-package').find((l) => / ok installed /.test(l));
  return kernelReboot({
    running,
    installed: sectionLines(s, 'kernels'),
    runningBuild: sectionLines(s, 'running-build')[0],
    runningPackageVersion: pkgLine ? (pkgLine.split(' ').pop() ?? null) : null,
  });
}

const rebootCheck = scriptRebootCheck(APT_REBOOT_SCRIPT, parseAptReboot);

// ---- upgrade -------------------------------------------------------------------------------

/** Non-interactive and safe: keep changed config files (confold) unless the package's default
 * is to take the new one (confdef), wait up to 2 minutes for a dpkg lock held by
 * unattended-upgrades instead of failing at once, never prompt. */
export const APT_UPGRADE_OPTIONS =
  '-y -q -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o APT::Get::Show-Versions=1';

/** Read-only: every package dpkg knows, with its version and state. */
export const APT_INSTALLED_COMMAND = "dpkg-query -W -f='${binary:Package}\\t${Version}\\t${db:Status-Status}\\n'";

function aptRunScript(opts: UpgradeOptions): string {
  const sudo = rootPrefix('apt-get', opts.privilege); // throws 'sudo-password' first
  const what = opts.packages
    ? `install --only-upgrade ${opts.packages.map(shQuote).join(' ')}`
    : opts.aptMode === 'upgrade'
      ? 'upgrade'
      : 'dist-upgrade';
  const line = `${sudo}apt-get ${APT_UPGRADE_OPTIONS} ${what}`;
  return [`export ${UPGRADE_ENV}`, `echo '$ ${line.replace(/'/g, '')}'`, `exec ${line}`].join('\n');
}

/** `dpkg-query -W` lines: name, version, status; only installed packages count. */
export function parseDpkgInstalled(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [name, version, status] = line.replace(/\r$/, '').split('\t');
    if (name && version && status === 'installed') out.set(name, version);
  }
  return out;
}

const LOCK = /Could not get lock (\S+?)\.? (?:It is held by process (\d+)(?: \(([^)]*)\))?)?|Unable to acquire the dpkg frontend lock|Unable to lock the administration directory/;

export function aptFailure(exitCode: number, log: string, where: string): OpError {
  const msgs = aptMessages(log);
  if (sudoRefused(log)) {
    return new OpError('sudo-password', `sudo on ${where} asked for a password, so apt-get did not run. Allow passwordless sudo for /usr/bin/apt-get (the sudoers line on the host page), or log in as root.`, { exitCode });
  }
  if (/dpkg was interrupted/.test(log)) {
    return new OpError(
      'interrupted-transaction',
      `An earlier dpkg run on ${where} was interrupted, so apt-get refuses to go on. Run "dpkg --configure -a" as root on the host to finish it, then upgrade again.`,
      { exitCode },
    );
  }
  const lock = LOCK.exec(log);
  if (lock) {
    const holder = lock[2] ? ` (held by process ${lock[2]}${lock[3] ? `, ${lock[3]}` : ''})` : '';
    return new OpError(
      'lock-held',
      `Another package manager run on ${where} holds the dpkg lock${holder}; apt-get waited 2 minutes for it and gave up. Nothing was changed. Try again when it has finished (unattended-upgrades often holds it for a few minutes).`,
      { exitCode },
    );
  }
  return new OpError('command-failed', `apt-get on ${where} exited with status ${exitCode}${msgs.length ? `: ${msgs.join(' ')}` : ''}`, { exitCode });
}

const aptUpgrade: PackageUpgrader = {
  runScript: aptRunScript,
  installedCommand: APT_INSTALLED_COMMAND,
  parseInstalled: parseDpkgInstalled,
  failure: aptFailure,
};

export const apt: PackageManagerModule = { name: 'apt', scan, rebootCheck, upgrade: aptUpgrade };

/** For tests and docs: the exact command lines this module may run (besides the script). */
export const APT_COMMANDS = {
  update: { root: `${C_LOCALE} ${APT_UPDATE}`, sudo: `${C_LOCALE} sudo -n ${APT_UPDATE}` },
  list: APT_LIST_COMMAND,
  showhold: APT_SHOWHOLD_COMMAND,
  reboot: SH_COMMAND,
} as const;
