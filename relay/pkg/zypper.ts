// zypper: openSUSE Leap, openSUSE Tumbleweed, SLES.
//
// scan:    [root] `zypper -n refresh` (a failure is a warning: the scan goes on with the cached
//          metadata). `zypper -n --no-refresh --xmlout list-updates`: the pending package
//          updates, read-only, no root. `zypper … list-patches --category security`: the
//          security patches with their severity, and `zypper … info -t patch ID…` for the
//          packages each one fixes (its "Conflicts: name < version" lines).
// reboot:  `zypper needs-rebooting` (exit 102 = needed, 0 = not), else the running kernel
//          against the newest installed kernel package.
// upgrade: refresh first and stop if a repository cannot be reached (so an unreachable
//          repository changes nothing), then `zypper -n --no-refresh update [PKG…]`, or
//          `dup` on Tumbleweed (its descriptor's wholeOnlyOn). zypper's informational exit
//          codes 100–103 (updates left, reboot or restart needed) are success.
import { PACKAGE_MANAGERS } from '../../protocol/package-managers.ts';
import { OpError } from '../errors.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import {
  SCRIPT_PROLOGUE,
  compareVersions,
  describeExit,
  inC,
  privileged,
  rootPrefix,
  sectionLines,
  shQuote,
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

export const ZYPPER_REFRESH = 'zypper -n refresh';
export const ZYPPER_LIST_COMMAND = inC('zypper -n --no-refresh --xmlout list-updates');
export const ZYPPER_PATCHES_COMMAND = inC('zypper -n --no-refresh --xmlout list-patches --category security');
/** Followed by the allowlisted, quoted patch ids the host listed. */
export const ZYPPER_PATCH_INFO = inC('zypper -n --no-refresh info -t patch');
export const ZYPPER_INSTALLED_COMMAND = "rpm -qa --qf '%{NAME}.%{ARCH}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n'";

/** A patch id as SUSE and openSUSE spell them (`openSUSE-SLE-15.6-2024-1234`,
 * `SUSE-2024-1234`): nothing a shell would read as more than one word. */
const PATCH_ID = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/;

// ---- parsing ---------------------------------------------------------------------------

function xmlText(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp|#(\d+));/g, (_, name: string, num?: string) =>
    num ? String.fromCharCode(Number(num)) : ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' } as Record<string, string>)[name],
  );
}

function attrs(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([a-z-]+)="([^"]*)"/g)) out[m[1]] = xmlText(m[2]);
  return out;
}

/** The `<update …>` elements of zypper's XML output, with their attributes and the alias
 * of their `<source>`. Throws when the output is not zypper's XML (no `<update-status>`). */
export function parseZypperUpdates(xml: string, kind: 'package' | 'patch'): { attrs: Record<string, string>; alias: string }[] {
  if (!/<update-status\b/.test(xml)) {
    const msg = [...xml.matchAll(/<message type="error">([^<]*)<\/message>/g)].map((m) => xmlText(m[1]).trim());
    throw new OpError('command-failed', `zypper's list was not recognised${msg.length ? `: ${msg.join(' ')}` : ' (no <update-status> element)'}`);
  }
  const out: { attrs: Record<string, string>; alias: string }[] = [];
  for (const m of xml.matchAll(/<update (kind="[^"]*"[^>]*)>([\s\S]*?)<\/update>/g)) {
    const a = attrs(m[1]);
    if (a.kind !== kind) continue;
    const source = /<source [^>]*alias="([^"]*)"/.exec(m[2]);
    out.push({ attrs: a, alias: source ? xmlText(source[1]) : '' });
  }
  return out;
}

export interface SecurityPatch {
  id: string;
  severity: string | null;
}

export function parseSecurityPatches(xml: string): SecurityPatch[] {
  return parseZypperUpdates(xml, 'patch')
    .filter((p) => p.attrs.category === 'security' && (p.attrs.status ?? 'needed') === 'needed')
    .map((p) => ({ id: p.attrs.name, severity: p.attrs.severity && p.attrs.severity !== 'none' && p.attrs.severity !== 'unspecified' ? p.attrs.severity : null }));
}

const ARCHES = new Set(['noarch', 'x86_64', 'i586', 'i686', 'aarch64', 'ppc64le', 's390x', 'armv7hl', 'riscv64']);

/** `zypper info -t patch`: patch id → the package names its Conflicts lines name, either
 * inline (`Conflicts   : hello-pm < 1.1-1`) or as a counted list (`Conflicts   : [2]`
 * followed by indented `name.arch < version` lines). `srcpackage:` entries are skipped. */
export function parsePatchInfo(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let patch: string | null = null;
  let inConflicts = false;
  const add = (entry: string): void => {
    const m = /^(\S+) < \S+$/.exec(entry.trim());
    if (!m || !patch || m[1].startsWith('srcpackage:')) return;
    const dot = m[1].lastIndexOf('.');
    const name = dot > 0 && ARCHES.has(m[1].slice(dot + 1)) ? m[1].slice(0, dot) : m[1];
    const list = out.get(patch) ?? [];
    if (!list.includes(name)) list.push(name);
    out.set(patch, list);
  };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const header = /^Information for patch (\S+):$/.exec(line.trim());
    if (header) {
      patch = header[1];
      inConflicts = false;
      continue;
    }
    const field = /^([A-Z][A-Za-z ]*?)\s*: ?(.*)$/.exec(line);
    if (field && !/^\s/.test(line)) {
      inConflicts = field[1] === 'Conflicts';
      if (inConflicts && !/^\[\d+\]$/.test(field[2].trim())) add(field[2]);
      continue;
    }
    if (inConflicts && /^\s+\S/.test(line)) add(line);
  }
  return out;
}

export function zypperUpdates(list: ReturnType<typeof parseZypperUpdates>, security: Map<string, SecurityPatch[]>): PackageUpdate[] {
  return list.map(({ attrs: a, alias }) => {
    const patches = security.get(a.name) ?? [];
    return {
      name: a.name,
      currentVersion: a['edition-old'] || null,
      newVersion: a.edition,
      repository: [alias, ...patches.map((p) => (p.severity ? `${p.id} (${p.severity})` : p.id))].filter((s) => s !== '').join(', '),
      security: patches.length > 0,
      arch: a.arch ?? '',
    };
  });
}

/** zypper's error lines, from its plain or XML output. */
export function zypperMessages(text: string, max = 6): string[] {
  const lines = [
    ...new Set(
      xmlText(text.replace(/<[^>]+>/g, '\n'))
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => /^(?:Error|Warning: Skipping|Problem|Download \(curl\) error|Repository '.*' is invalid|Some of the repositories|System management is locked|Signature verification failed|File '.*' from repository .* is unsigned|Abort|ZYPPER_EXIT)/.test(l)),
    ),
  ];
  return lines.length > max ? [...lines.slice(0, max), `… and ${lines.length - max} more`] : lines;
}

// ---- scan ---------------------------------------------------------------------------------

async function refresh(session: SshSession, opts: ScanOptions, warnings: string[]): Promise<void> {
  const r = await session.exec(privileged(ZYPPER_REFRESH, opts.privilege), { timeoutMs: opts.timeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS });
  if (r.code === 0) return;
  if (opts.privilege === 'sudo' && sudoRefused(r.stderr)) throw sudoRefusedError(session, 'zypper refresh', r.stderr);
  const msgs = zypperMessages(r.stderr + '\n' + r.stdout);
  warnings.push(
    `Refreshing the repositories failed (zypper refresh ${describeExit(r)}); results for those repositories come from their cached metadata` +
      (msgs.length ? `: ${msgs.join(' ')}` : '.'),
  );
}

async function scan(session: SshSession, opts: ScanOptions): Promise<PackageScan> {
  const warnings: string[] = [];
  const where = describeTarget(session.target);
  if (opts.refresh) await refresh(session, opts, warnings);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
  const r = await session.exec(ZYPPER_LIST_COMMAND, { timeoutMs, maxOutputBytes: 32 * 1024 * 1024 });
  // 106: some repositories were skipped (their metadata could not be read).
  if (r.code !== 0 && r.code !== 106) {
    throw new OpError('command-failed', `zypper list-updates on ${where} ${describeExit(r)}: ${zypperMessages(r.stdout + '\n' + r.stderr).join(' ') || tail(r.stderr) || tail(r.stdout)}`);
  }
  if (r.code === 106) warnings.push(`zypper skipped some repositories: ${zypperMessages(r.stdout + '\n' + r.stderr).join(' ')}`);
  const list = parseZypperUpdates(r.stdout, 'package');

  const security = new Map<string, SecurityPatch[]>();
  if (list.length > 0) {
    const p = await session.exec(ZYPPER_PATCHES_COMMAND, { timeoutMs, maxOutputBytes: 32 * 1024 * 1024 });
    const patches = p.code === 0 || p.code === 100 || p.code === 101 ? parseSecurityPatches(p.stdout) : null;
    if (!patches) warnings.push(`zypper list-patches ${describeExit(p)}, so no update is marked as a security update`);
    const ids = (patches ?? []).filter((x) => PATCH_ID.test(x.id));
    if (ids.length > 0) {
      const info = await session.exec(`${ZYPPER_PATCH_INFO} ${ids.map((x) => shQuote(x.id)).join(' ')}`, { timeoutMs, maxOutputBytes: 32 * 1024 * 1024 });
      if (info.code !== 0) warnings.push(`zypper info -t patch ${describeExit(info)}, so no update is marked as a security update`);
      else {
        for (const [id, names] of parsePatchInfo(info.stdout)) {
          const patch = ids.find((x) => x.id === id);
          if (!patch) continue;
          for (const n of names) security.set(n, [...(security.get(n) ?? []), patch]);
        }
      }
    }
  }
  return { updates: zypperUpdates(list, security), held: [], warnings };
}

// ---- reboot -------------------------------------------------------------------------------

export const ZYPPER_REBOOT_BEGIN = '@@patchman-reboot-zypper 1';

export const ZYPPER_REBOOT_SCRIPT = [
  '{',
  ...SCRIPT_PROLOGUE,
  `printf '\\n${ZYPPER_REBOOT_BEGIN}\\n'`,
  'section needs-rebooting',
  'zypper -n needs-rebooting 2>&1',
  'rc=$?',
  'section needs-rebooting-exit',
  'echo "$rc"',
  'section running',
  'uname -r',
  'section kernels',
  "rpm -q --qf '%{VERSION}-%{RELEASE}\\n' kernel-default kernel-default-base kernel-preempt kernel-rt kernel-azure kernel-longterm 2>/dev/null | grep -v 'is not installed'",
  'section container',
  'if command -v systemd-detect-virt >/dev/null 2>&1; then systemd-detect-virt --container 2>/dev/null; fi',
  'section end',
  '} </dev/null',
  '',
].join('\n');

/** zypper's "reboot needed" exit status (ZYPPER_EXIT_INF_REBOOT_NEEDED). */
const REBOOT_NEEDED = 102;

export function parseZypperReboot(output: string): RebootState {
  const s = splitMarked(output, ZYPPER_REBOOT_BEGIN, ['needs-rebooting', 'needs-rebooting-exit', 'running', 'kernels', 'container'], 'the reboot check');
  const exit = Number(sectionLines(s, 'needs-rebooting-exit')[0]);
  const said = sectionLines(s, 'needs-rebooting');
  if (exit === REBOOT_NEEDED) return { required: true, reason: `zypper needs-rebooting: ${said.find((l) => /updated/.test(l)) ?? 'core libraries or services have been updated'}` };
  if (exit === 0 && said.some((l) => /Reboot is probably not necessary|No core libraries/.test(l))) return { required: false, reason: null };
  const container = sectionLines(s, 'container')[0];
  if (container && container !== 'none') return { required: false, reason: null };
  // `6.4.0-150600.23.25-default` runs from package version-release `6.4.0-150600.23.25.1`.
  const running = sectionLines(s, 'running')[0] ?? '';
  const base = running.replace(/-[a-z][a-z0-9]*$/, '');
  const newest = sectionLines(s, 'kernels')
    .filter((k) => /^\d/.test(k))
    .toSorted(compareVersions)
    .at(-1);
  if (!base || !newest || newest === base || newest.startsWith(`${base}.`)) return { required: false, reason: null };
  if (compareVersions(newest, base) > 0) return { required: true, reason: `running kernel ${running}, newest installed ${newest}` };
  return { required: false, reason: null };
}

const rebootCheck = scriptRebootCheck(ZYPPER_REBOOT_SCRIPT, parseZypperReboot);

// ---- upgrade -------------------------------------------------------------------------------

export const ZYPPER_UPGRADE = { update: 'zypper -n --no-refresh update', dup: 'zypper -n --no-refresh dist-upgrade' } as const;

/** Tumbleweed and the other rolling openSUSE flavours upgrade with dup only. */
export function wholeSystemOnly(osId: string | undefined): boolean {
  return !!osId && !!PACKAGE_MANAGERS.zypper.wholeOnlyOn?.osIds.includes(osId.toLowerCase());
}

function zypperRunScript(opts: UpgradeOptions): string {
  const sudo = rootPrefix('zypper', opts.privilege); // throws 'sudo-password' first
  const dup = wholeSystemOnly(opts.osId);
  if (dup && opts.packages) throw new OpError('invalid-request', PACKAGE_MANAGERS.zypper.wholeOnlyOn!.why);
  const refreshLine = `${sudo}${ZYPPER_REFRESH}`;
  const line = `${sudo}${dup ? ZYPPER_UPGRADE.dup : ZYPPER_UPGRADE.update}${opts.packages ? ` ${opts.packages.map((p) => shQuote(p.replace(/:.*$/, ''))).join(' ')}` : ''}`;
  return [
    `export ${UPGRADE_ENV}`,
    `echo '$ ${refreshLine}'`,
    // An unreachable repository stops the run here: nothing is changed.
    `${refreshLine} || exit $?`,
    `echo '$ ${line.replace(/'/g, '')}'`,
    line,
    'rc=$?',
    // 100–103: updates remain, a reboot or a restart of zypper is needed — all success.
    'if [ "$rc" -ge 100 ] && [ "$rc" -le 103 ]; then echo "[zypper exit status $rc: done]"; exit 0; fi',
    'exit "$rc"',
  ].join('\n');
}

/** `rpm -qa` lines: name.arch → [epoch:]version-release. */
export function parseZypperInstalled(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [na, version] = line.replace(/\r$/, '').split('\t');
    if (na && version) out.set(na, version);
  }
  return out;
}

const LOCKED = /System management is locked by the application with pid (\d+) \(([^)]*)\)/;
const REPO_UNREACHABLE = /Download \(curl\) error|Problem retrieving files from|Repository '[^']*' is invalid|Some of the repositories have not been refreshed|Valid metadata not found at specified URL|Failed to mount|Could not resolve host/;
const GPG = /Signature verification failed|is unsigned, continue\?|Do you want to reject the key|Error building the cache:.*key|GPG check failed|gpg key|public key is not available/i;

export function zypperFailure(exitCode: number, log: string, where: string): OpError {
  if (sudoRefused(log)) {
    return new OpError('sudo-password', `sudo on ${where} asked for a password, so zypper did not run. Allow passwordless sudo for /usr/bin/zypper (the sudoers line on the host page), or log in as root.`, { exitCode });
  }
  const lock = LOCKED.exec(log);
  if (lock) {
    return new OpError(
      'lock-held',
      `Another zypper or YaST run on ${where} holds the package management lock (process ${lock[1]}, ${lock[2]}). Nothing was changed. Try again when it has finished.`,
      { exitCode },
    );
  }
  const msgs = zypperMessages(log);
  if (GPG.test(log)) {
    return new OpError('gpg-key-prompt', `zypper on ${where} stopped at a signature check that needs someone to trust a key: ${msgs.join(' ')}. Import and verify the repository's key on the host (zypper refresh, answering the prompt), then upgrade again.`, { exitCode });
  }
  if (REPO_UNREACHABLE.test(log)) {
    return new OpError('repo-unreachable', `zypper on ${where} could not refresh a repository, so nothing was upgraded: ${msgs.join(' ')}`, { exitCode });
  }
  return new OpError('command-failed', `zypper on ${where} exited with status ${exitCode}${msgs.length ? `: ${msgs.join(' ')}` : ''}`, { exitCode });
}

const zypperUpgrade: PackageUpgrader = {
  runScript: zypperRunScript,
  installedCommand: ZYPPER_INSTALLED_COMMAND,
  parseInstalled: parseZypperInstalled,
  failure: zypperFailure,
};

export const zypper: PackageManagerModule = { name: 'zypper', scan, rebootCheck, upgrade: zypperUpgrade };
