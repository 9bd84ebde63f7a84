// The `probe` operation: what is this host? One constant shell script, fed to `/bin/sh -s`
// on stdin (so the user's login shell only ever sees a fixed command line), printing
// marked sections that parseProbe turns into a ProbeResult. Nothing from the request is
// interpolated into the script or the command.
import { OpError } from '../errors.ts';
import { splitMarked } from '../pkg/shell.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import { openTargetSession } from '../proxmox/target.ts';
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import type { OpContext } from './context.ts';
import { PACKAGE_MANAGERS as DESCRIPTORS, PACKAGE_MANAGER_NAMES } from '../../protocol/package-managers.ts';

export type ProbeResult = OperationResult<'probe'>;
type PackageManager = ProbeResult['packageManagers'][number];
type Privilege = ProbeResult['privilege'];
const PRIVILEGES: readonly Privilege[] = ['root', 'sudo', 'sudo-password', 'no-sudo'];

export const DEFAULT_PROBE_TIMEOUT_MS = 30_000;

/** The command line run on the host; the script arrives on stdin. `env` works from any login
 * shell (fish and csh included), and LC_ALL=C keeps translated text away from the parser. */
export const PROBE_COMMAND = 'env LC_ALL=C LANG=C /bin/sh -s';

export const PROBE_BEGIN = '@@patchman-probe 1';

/** `apt-get pacman dnf yum zypper apk`: constants from the descriptors. */
const PROBE_COMMANDS = PACKAGE_MANAGER_NAMES.map((n) => DESCRIPTORS[n].probeCommand).join(' ');

// POSIX sh only (dash, busybox ash). The body is one brace group so the shell has read the
// whole script before anything runs, and nothing it starts can swallow the rest of stdin.
export const PROBE_SCRIPT = [
  '{',
  'PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
  'LC_ALL=C',
  'export PATH LC_ALL',
  'section() { printf \'\\n@@%s\\n\' "$1"; }',
  'printf \'\\n@@patchman-probe 1\\n\'',
  'section os-release',
  'if [ -r /etc/os-release ]; then cat /etc/os-release',
  'elif [ -r /usr/lib/os-release ]; then cat /usr/lib/os-release',
  'fi',
  'section kernel',
  'uname -r',
  'section arch',
  'uname -m',
  'section hostname',
  'uname -n',
  'section boot-id',
  'cat /proc/sys/kernel/random/boot_id 2>/dev/null',
  'section uptime',
  'cat /proc/uptime 2>/dev/null',
  'section package-managers',
  `for pm in ${PROBE_COMMANDS}; do`,
  '  if command -v "$pm" >/dev/null 2>&1; then echo "$pm"; fi',
  'done',
  'section proxmox',
  'if command -v pveversion >/dev/null 2>&1; then',
  '  v=$(pveversion 2>/dev/null | head -n 1)',
  '  [ -n "$v" ] || v=$(dpkg-query -W -f=\'${Version}\' pve-manager 2>/dev/null)',
  '  printf \'pve %s\\n\' "$v"',
  'fi',
  'if command -v proxmox-backup-manager >/dev/null 2>&1; then',
  '  v=$(proxmox-backup-manager versions 2>/dev/null | head -n 1)',
  '  [ -n "$v" ] || v=$(dpkg-query -W -f=\'${Version}\' proxmox-backup-server 2>/dev/null)',
  '  printf \'pbs %s\\n\' "$v"',
  'fi',
  'section docker',
  'if command -v docker >/dev/null 2>&1; then echo yes; else echo no; fi',
  // Can package-manager commands run as root? `sudo -n -l CMD` succeeds only when sudo would
  // run CMD without asking for a password (what our sudoers snippet grants for the package
  // manager's binary); it never prompts. The binary is the first package manager found, in
  // the same order the scan picks its module.
  'section privilege',
  'if [ "$(id -u)" = 0 ]; then echo root',
  'elif command -v sudo >/dev/null 2>&1; then',
  '  pmbin=',
  `  for pm in ${PROBE_COMMANDS}; do`,
  '    if command -v "$pm" >/dev/null 2>&1; then pmbin=$(command -v "$pm"); break; fi',
  '  done',
  '  if [ -n "$pmbin" ]; then',
  '    if sudo -n -l "$pmbin" >/dev/null 2>&1; then echo sudo; else echo sudo-password; fi',
  '  elif sudo -n -l >/dev/null 2>&1; then echo sudo',
  '  else echo sudo-password',
  '  fi',
  'else echo no-sudo',
  'fi',
  // Derivatives that keep ID=debian in os-release but mark themselves elsewhere.
  'section derivative',
  'if [ -e /etc/rpi-issue ]; then echo raspberrypi; fi',
  'if [ -e /boot/dietpi/.version ]; then echo dietpi; fi',
  'section end',
  '} </dev/null',
  '',
].join('\n');

const SECTIONS = [
  'os-release',
  'kernel',
  'arch',
  'hostname',
  'boot-id',
  'uptime',
  'package-managers',
  'proxmox',
  'docker',
  'privilege',
  'derivative',
  'end',
];

/** The binary each package manager is found by, in the descriptors' order of preference. */
const PACKAGE_MANAGERS: ReadonlyArray<[command: string, name: PackageManager]> = PACKAGE_MANAGER_NAMES.map((n) => [DESCRIPTORS[n].probeCommand, n]);

// ---- os-release(5) --------------------------------------------------------------------------

/** One value as systemd's env-file parser reads it: '…' is literal; in "…" a backslash
 * escapes only " \ $ ` ; outside quotes a backslash escapes any character; unquoted
 * trailing whitespace is dropped. (The spec forbids concatenation; we tolerate it like sh.) */
function parseValue(raw: string): string {
  let out = '';
  let pendingSpace = '';
  let i = 0;
  while (i < raw.length) {
    const c = raw[i];
    if (c === "'") {
      const end = raw.indexOf("'", i + 1);
      out += pendingSpace + (end < 0 ? raw.slice(i + 1) : raw.slice(i + 1, end));
      pendingSpace = '';
      i = end < 0 ? raw.length : end + 1;
    } else if (c === '"') {
      out += pendingSpace;
      pendingSpace = '';
      i++;
      while (i < raw.length && raw[i] !== '"') {
        if (raw[i] === '\\' && i + 1 < raw.length && '"\\$`'.includes(raw[i + 1])) {
          out += raw[i + 1];
          i += 2;
        } else {
          out += raw[i];
          i++;
        }
      }
      i++; // closing quote (or past the end)
    } else if (c === '\\' && i + 1 < raw.length) {
      out += pendingSpace + raw[i + 1];
      pendingSpace = '';
      i += 2;
    } else if (c === ' ' || c === '\t') {
      pendingSpace += c;
      i++;
    } else {
      out += pendingSpace + c;
      pendingSpace = '';
      i++;
    }
  }
  return out;
}

/** Parse os-release(5) text into its variables. Comments (# or ; first) and blank lines are
 * skipped, as are lines that are not assignments. */
export function parseOsRelease(text: string): Record<string, string> {
  const vars: Record<string, string> = Object.create(null);
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '').replace(/^[ \t]+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)$/.exec(line);
    if (!m) continue;
    vars[m[1]] = parseValue(m[2]);
  }
  return vars;
}

export function osFromRelease(vars: Record<string, string>): ProbeResult['os'] {
  const name = vars.NAME || 'Linux';
  const fallbackPretty = vars.NAME ? `${vars.NAME}${vars.VERSION ? ' ' + vars.VERSION : ''}` : 'Linux';
  return {
    id: vars.ID || 'linux',
    name,
    version: vars.VERSION_ID ?? '',
    prettyName: vars.PRETTY_NAME || fallbackPretty,
    idLike: (vars.ID_LIKE ?? '').split(/\s+/).filter((s) => s !== ''),
  };
}

/** Raspberry Pi OS (since bookworm) and DietPi say ID=debian; the probe's derivative section
 * says which they are, and the host gets their own ID (Raspberry Pi OS's older `raspbian`)
 * with debian in ID_LIKE, so the dashboard shows the right badge. */
const DERIVATIVES: Record<string, { id: string; name: string }> = {
  raspberrypi: { id: 'raspbian', name: 'Raspberry Pi OS' },
  dietpi: { id: 'dietpi', name: 'DietPi' },
};

export function withDerivative(os: ProbeResult['os'], lines: string[]): ProbeResult['os'] {
  if (os.id !== 'debian') return os;
  // DietPi runs on Raspberry Pis too: it is the more specific of the two.
  const found = ['dietpi', 'raspberrypi'].find((d) => lines.some((l) => l.trim() === d));
  if (!found) return os;
  const d = DERIVATIVES[found];
  return { ...os, id: d.id, name: d.name, prettyName: `${d.name} (${os.prettyName})`, idLike: [...new Set([...os.idLike, 'debian'])] };
}

// ---- Proxmox ----------------------------------------------------------------------------

/** From the probe's proxmox section: `pve <pveversion line>` and/or `pbs <versions line>`.
 * A PBS installed on a PVE node reports as PVE (the node is managed as PVE). */
export function parseProxmox(lines: string[]): ProbeResult['proxmox'] {
  let pve: string | undefined;
  let pbs: string | undefined;
  for (const line of lines) {
    const m = /^(pve|pbs)(?: (.*))?$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === 'pve') pve ??= m[2] ?? '';
    else pbs ??= m[2] ?? '';
  }
  const anyVersion = (s: string): string => /\b(\d+\.\d+(?:[.-][0-9A-Za-z.~+-]+)?)/.exec(s)?.[1] ?? '';
  if (pve !== undefined) {
    // `pve-manager/8.2.4/faa83925c9641325 (running kernel: 6.8.8-3-pve)`
    const version = /pve-manager\/(\d[^/\s]*)/.exec(pve)?.[1] ?? anyVersion(pve);
    return { product: 'pve', version };
  }
  if (pbs !== undefined) {
    // `proxmox-backup-server 3.2.7-1 running version: 3.2.7`
    const version = /running version:\s*(\d[^\s,]*)/.exec(pbs)?.[1] ?? anyVersion(pbs);
    return { product: 'pbs', version };
  }
  return null;
}

// ---- the whole output ------------------------------------------------------------------

function notRecognised(detail: string): OpError {
  return new OpError(
    'command-failed',
    `The probe script's output was not recognised (${detail}). A forced command in authorized_keys or an unusual login shell can cause this.`,
  );
}

/** Split the script's output into its sections. Anything a login shell printed before the
 * begin marker (motd, echo in .bashrc) is ignored. */
export function splitSections(output: string): Map<string, string[]> {
  return splitMarked(output, PROBE_BEGIN, SECTIONS, 'the probe script', notRecognised);
}

function firstLine(lines: string[] | undefined): string {
  return (lines ?? []).map((l) => l.trim()).find((l) => l !== '') ?? '';
}

export function parseProbe(output: string): ProbeResult {
  const s = splitSections(output);
  const uptime = Number.parseFloat(firstLine(s.get('uptime')).split(/\s+/)[0] ?? '');
  const found = new Set((s.get('package-managers') ?? []).map((l) => l.trim()));
  return {
    os: withDerivative(osFromRelease(parseOsRelease((s.get('os-release') ?? []).join('\n'))), s.get('derivative') ?? []),
    kernel: firstLine(s.get('kernel')),
    arch: firstLine(s.get('arch')),
    hostname: firstLine(s.get('hostname')),
    bootId: firstLine(s.get('boot-id')),
    uptimeSeconds: Number.isFinite(uptime) && uptime >= 0 ? uptime : 0,
    packageManagers: PACKAGE_MANAGERS.filter(([cmd]) => found.has(cmd)).map(([, name]) => name),
    proxmox: parseProxmox(s.get('proxmox') ?? []),
    docker: firstLine(s.get('docker')) === 'yes',
    privilege: parsePrivilege(firstLine(s.get('privilege'))),
  };
}

/** The privilege section's one word. Anything else (the section missing, a shell that printed
 * something odd) is treated as the least privilege: never assume root we have not seen. */
export function parsePrivilege(word: string): Privilege {
  return (PRIVILEGES as readonly string[]).includes(word) ? (word as Privilege) : 'no-sudo';
}

function tail(text: string, max = 500): string {
  const t = text.trim();
  return t.length > max ? '…' + t.slice(-max) : t;
}

/** Run the probe script on an open session (the scan operation reuses it). */
export async function probeSession(session: SshSession, timeoutMs: number = DEFAULT_PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const r = await session.exec(PROBE_COMMAND, { stdin: PROBE_SCRIPT, timeoutMs, maxOutputBytes: 1024 * 1024 });
  if (r.code !== 0) {
    const how = r.code === null ? `was killed by signal ${r.signal ?? 'unknown'}` : `exited with status ${r.code}`;
    const err = tail(r.stderr) || tail(r.stdout);
    throw new OpError('command-failed', `The probe script on ${describeTarget(session.target)} ${how}${err ? ': ' + err : ''}`);
  }
  return parseProbe(r.stdout);
}

export async function runProbe(params: OperationParams<'probe'>, ctx: OpContext): Promise<ProbeResult> {
  const session = await openTargetSession(params.target, ctx);
  try {
    return await probeSession(session, ctx.commandTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
  } finally {
    session.close();
  }
}
