// What each simulated host is, and what it answers. Every piece of text a host prints is
// recorded output: captured on this Debian 12 machine through a real sshd (sim/capture.ts →
// sim/fixtures/debian12-local/), or published output from the cited public sources listed
// in sim/fixtures/README.md. Nothing here is made up except the per-host identity (hostname,
// boot id, uptime), which a real host would have anyway. Upgrade logs for package sets
// nobody recorded are built in the recorded format (sim/upgrade.ts; the README says which).
import { readFileSync, existsSync } from 'node:fs';
import { SimDocker, type SimRegistry } from './docker.ts';
import { join } from 'node:path';
import type { CommandTable, ExecInfo, FailureMode, Reply, SimHost } from './host.ts';
import { PROBE, PROBE_BEGIN, probeSections, relayCommands, splitCombined, type RelayCommand } from './commands.ts';
import { SimMachine, type MachineFixtures, type MachineOptions } from './upgrade.ts';
import { isRpmApk } from './rpm-apk.ts';
import { DNF_REBOOT_BEGIN } from '../relay/pkg/dnf.ts';
import { ZYPPER_REBOOT_BEGIN } from '../relay/pkg/zypper.ts';
import { APK_REBOOT_BEGIN } from '../relay/pkg/apk.ts';
import type { PmGroup } from './commands.ts';
import { DEMO_GUESTS, type SimGuestSpec } from './proxmox.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');

export function fixture(path: string): string {
  return readFileSync(join(FIXTURES, path), 'utf8');
}

/** A fixture the relay's own tests use (relay/…/fixtures), read in place rather than copied. */
export function relayFixture(path: string): string {
  return readFileSync(join(import.meta.dirname, '..', 'relay', path), 'utf8');
}

/** A recorded command output, from `<dir>/<kind>.{stdout,stderr,code}` (sim/capture.ts). */
export function recorded(dir: string, kind: string): Reply | undefined {
  const base = join(FIXTURES, dir, kind);
  if (!existsSync(base + '.stdout') && !existsSync(base + '.code')) return undefined;
  const read = (ext: string): string => (existsSync(base + ext) ? readFileSync(base + ext, 'utf8') : '');
  const code = existsSync(base + '.code') ? Number(read('.code').trim()) : 0;
  return { stdout: read('.stdout'), stderr: read('.stderr'), code };
}

/** The probe sections of a recorded probe output (the text after each `@@name` line,
 * without the blank separator line printf puts before the next header). */
export function probeSectionsOf(output: string): Map<string, string> {
  const lines = output.split('\n');
  const begin = lines.indexOf(PROBE_BEGIN);
  if (begin < 0) throw new Error('recorded probe output has no begin marker');
  const sections = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of lines.slice(begin + 1)) {
    const m = /^@@([a-z-]+)$/.exec(line);
    if (m) {
      current = [];
      sections.set(m[1], current);
      continue;
    }
    current?.push(line);
  }
  return new Map([...sections].map(([k, v]) => [k, v.join('\n').replace(/\n+$/, '')]));
}

export interface ProbeFacts {
  /** /etc/os-release as `cat` prints it. */
  osRelease: string;
  kernel: string;
  arch: string;
  uptimeSeconds: number;
  /** Commands `command -v` finds among apt-get pacman dnf yum zypper apk. */
  packageManagerCommands: string[];
  /** Lines of the probe's proxmox section (`pve <pveversion>` / `pbs <versions line>`). */
  proxmox: string[];
  docker: boolean;
}

/** What the relay should conclude about a healthy host of this profile (for tests). */
export interface Expected {
  os: { id: string; version: string; prettyName: string };
  packageManager: PmGroup;
  proxmox: 'pve' | 'pbs' | null;
  updates: number;
  security: number;
  held: number;
  rebootRequired: boolean;
}

export interface Profile {
  title: string;
  /** The SSH identification string after "SSH-2.0-". */
  sshIdent: string;
  probe: ProbeFacts;
  /** Recorded outputs of the scan commands, by RelayCommand kind. */
  outputs: Record<string, Reply>;
  expected: Expected;
  /** A Proxmox VE node's guests (sim/proxmox.ts), each a simulated machine of its own. */
  guests?: { specs: SimGuestSpec[]; profile: string };
}

// ---- the recorded material ---------------------------------------------------------------

/** Recorded outputs for every scan command kind, from the first of `dirs` that has one. */
function outputsFrom(...dirs: string[]): Record<string, Reply> {
  const out: Record<string, Reply> = {};
  for (const c of relayCommands()) {
    if (c.kind === PROBE.kind || out[c.kind]) continue;
    for (const d of dirs) {
      const r = recorded(d, c.kind);
      if (r) {
        out[c.kind] = r;
        break;
      }
    }
  }
  return out;
}

/** Counted straight from a recorded `apt-get -s` output (not with the relay's parser). */
function aptCounts(dir: string): { updates: number; security: number } {
  const inst = fixture(`${dir}/apt-list.stdout`).split('\n').filter((l) => l.startsWith('Inst '));
  return { updates: inst.length, security: inst.filter((l) => /-security[ ,\]]|Debian-Security:/i.test(l)).length };
}
const DEBIAN_LOCAL = aptCounts('debian12-local');

/** A real output kept beside the relay's parsers (relay/pkg/fixtures, see its README). */
const pkgFixture = (name: string): string => relayFixture(`pkg/fixtures/${name}`);

/** A reboot-check script's output, section by section, in the script's own format. */
function rebootOutput(begin: string, sections: [string, string[]][]): string {
  return `\n${begin}\n` + sections.map(([name, lines]) => `\n@@${name}\n` + (lines.length ? lines.join('\n') + '\n' : '')).join('') + '\n@@end\n';
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');

/** The dnf and zypper hosts' pending updates and installed packages are the ones the real
 * dnf / zypper printed against the test repositories (relay/pkg/dnf.test.ts, zypper.test.ts). */
function dnfOutputs(running: string, needsRestarting: 'none' | 'required'): Record<string, Reply> {
  return {
    'dnf-list': { stdout: pkgFixture('dnf-check-update.txt'), code: 100 },
    'dnf-security': { stdout: pkgFixture('dnf-updateinfo-security.txt') },
    'dnf-installed': { stdout: pkgFixture('dnf-rpm-qa.txt') },
    'dnf-reboot': {
      stdout: rebootOutput(DNF_REBOOT_BEGIN, [
        ['needs-restarting', lines(pkgFixture(`dnf-needs-restarting-${needsRestarting}.txt`)).filter((l) => !/release version/.test(l))],
        ['needs-restarting-exit', [needsRestarting === 'none' ? '0' : '1']],
        ['running', [running]],
        ['kernels', [running.replace(/\.x86_64$/, '') + '.x86_64']],
        ['container', []],
      ]),
    },
  };
}

const debianProbe = probeSectionsOf(fixture('debian12-local/probe.stdout'));
const DEBIAN12_OS_RELEASE = debianProbe.get('os-release')! + '\n';
const DEBIAN12_PRETTY = 'Debian GNU/Linux 12 (bookworm)';

export const PROFILES = {
  /** This machine: Debian 12 with pending security updates (captured, sim/fixtures/debian12-local). */
  'debian12-security': {
    title: 'Debian 12 with security updates',
    sshIdent: 'OpenSSH_9.2p1 Debian-2+deb12u10',
    probe: {
      osRelease: DEBIAN12_OS_RELEASE,
      kernel: debianProbe.get('kernel')!,
      arch: debianProbe.get('arch')!,
      uptimeSeconds: 1_170.8,
      packageManagerCommands: ['apt-get'],
      proxmox: [],
      docker: debianProbe.get('docker') === 'yes',
    },
    outputs: outputsFrom('debian12-local'),
    expected: {
      os: { id: 'debian', version: '12', prettyName: DEBIAN12_PRETTY },
      packageManager: 'apt',
      proxmox: null,
      ...DEBIAN_LOCAL,
      held: 0,
      rebootRequired: false,
    },
  },
  /** Debian 12 with nothing to do. */
  'debian12-current': {
    title: 'Debian 12, up to date',
    sshIdent: 'OpenSSH_9.2p1 Debian-2+deb12u10',
    probe: {
      osRelease: DEBIAN12_OS_RELEASE,
      kernel: debianProbe.get('kernel')!,
      arch: debianProbe.get('arch')!,
      uptimeSeconds: 3_284_411.52,
      packageManagerCommands: ['apt-get'],
      proxmox: [],
      docker: false,
    },
    outputs: outputsFrom('debian12-current', 'debian12-local'),
    expected: {
      os: { id: 'debian', version: '12', prettyName: DEBIAN12_PRETTY },
      packageManager: 'apt',
      proxmox: null,
      updates: 0,
      security: 0,
      held: 0,
      rebootRequired: false,
    },
  },
  /** Ubuntu 24.04 LTS with phased and kept-back updates. */
  'ubuntu2404-phased': {
    title: 'Ubuntu 24.04 with phased / kept-back updates',
    sshIdent: 'OpenSSH_9.6p1 Ubuntu-3ubuntu13.5',
    probe: {
      osRelease: fixture('ubuntu2404/os-release'),
      kernel: '6.8.0-56-generic',
      arch: 'x86_64',
      uptimeSeconds: 604_812.33,
      packageManagerCommands: ['apt-get'],
      proxmox: [],
      docker: true,
    },
    outputs: outputsFrom('ubuntu2404'),
    expected: {
      os: { id: 'ubuntu', version: '24.04', prettyName: 'Ubuntu 24.04.1 LTS' },
      packageManager: 'apt',
      proxmox: null,
      updates: 6,
      security: 0,
      held: 7,
      rebootRequired: false,
    },
  },
  /** Proxmox VE 8 with /run/reboot-required after a kernel update. */
  'pve8-reboot': {
    title: 'Proxmox VE 8 needing a reboot',
    sshIdent: 'OpenSSH_9.2p1 Debian-2+deb12u3',
    probe: {
      osRelease: DEBIAN12_OS_RELEASE,
      kernel: '6.8.8-3-pve',
      arch: 'x86_64',
      uptimeSeconds: 1_987_201.07,
      packageManagerCommands: ['apt-get'],
      proxmox: ['pve ' + relayFixture('ops/fixtures/pveversion-pve8.txt').trim()],
      docker: false,
    },
    outputs: outputsFrom('pve8', 'debian12-local'),
    expected: {
      os: { id: 'debian', version: '12', prettyName: DEBIAN12_PRETTY },
      packageManager: 'apt',
      proxmox: 'pve',
      ...DEBIAN_LOCAL,
      held: 0,
      rebootRequired: true,
    },
    // a node without guests: its scan lists none (sim/proxmox.ts answers the discovery)
    guests: { specs: [], profile: 'debian12-security' },
  },
  /** Proxmox Backup Server 3. */
  'pbs3': {
    title: 'Proxmox Backup Server 3',
    sshIdent: 'OpenSSH_9.2p1 Debian-2+deb12u3',
    probe: {
      osRelease: DEBIAN12_OS_RELEASE,
      kernel: '6.8.12-4-pve',
      arch: 'x86_64',
      uptimeSeconds: 811_540.6,
      packageManagerCommands: ['apt-get'],
      proxmox: ['pbs ' + fixture('pbs3/proxmox-backup-manager-versions').trim()],
      docker: false,
    },
    outputs: outputsFrom('pbs3', 'debian12-current', 'debian12-local'),
    expected: {
      os: { id: 'debian', version: '12', prettyName: DEBIAN12_PRETTY },
      packageManager: 'apt',
      proxmox: 'pbs',
      updates: 0,
      security: 0,
      held: 0,
      rebootRequired: false,
    },
  },
  /** Arch Linux after a kernel upgrade without reboot: the running kernel's modules are gone. */
  'arch-reboot': {
    title: 'Arch Linux with updates, kernel modules dir missing',
    sshIdent: 'OpenSSH_9.9',
    probe: {
      osRelease: relayFixture('ops/fixtures/os-release-arch.txt'),
      kernel: '5.4.6-arch1-1',
      arch: 'x86_64',
      uptimeSeconds: 95_113.9,
      packageManagerCommands: ['pacman'],
      proxmox: [],
      docker: true,
    },
    outputs: outputsFrom('arch'),
    expected: {
      os: { id: 'arch', version: '', prettyName: 'Arch Linux' },
      packageManager: 'pacman',
      proxmox: null,
      updates: 5,
      security: 0,
      held: 0,
      rebootRequired: true,
    },
  },
  /** Rocky Linux 9 (dnf): a security advisory among its updates, no reboot needed. */
  'rocky9': {
    title: 'Rocky Linux 9 with a security advisory',
    sshIdent: 'OpenSSH_8.7',
    probe: {
      osRelease: fixture('rpm-apk/os-release-rocky9'),
      kernel: '5.14.0-427.13.1.el9_4.x86_64',
      arch: 'x86_64',
      uptimeSeconds: 1_209_611.4,
      packageManagerCommands: ['dnf', 'yum'],
      proxmox: [],
      docker: false,
    },
    outputs: dnfOutputs('5.14.0-427.13.1.el9_4.x86_64', 'none'),
    expected: { os: { id: 'rocky', version: '9.4', prettyName: 'Rocky Linux 9.4 (Blue Onyx)' }, packageManager: 'dnf', proxmox: null, updates: 2, security: 1, held: 0, rebootRequired: false },
  },
  /** Fedora 40 (dnf): dnf needs-restarting says a core package changed since boot. */
  'fedora40-reboot': {
    title: 'Fedora 40 needing a reboot',
    sshIdent: 'OpenSSH_9.6',
    probe: {
      osRelease: fixture('rpm-apk/os-release-fedora40'),
      kernel: '6.8.5-301.fc40.x86_64',
      arch: 'x86_64',
      uptimeSeconds: 402_118.9,
      packageManagerCommands: ['dnf', 'yum'],
      proxmox: [],
      docker: true,
    },
    outputs: dnfOutputs('6.8.5-301.fc40.x86_64', 'required'),
    expected: { os: { id: 'fedora', version: '40', prettyName: 'Fedora Linux 40 (Server Edition)' }, packageManager: 'dnf', proxmox: null, updates: 2, security: 1, held: 0, rebootRequired: true },
  },
  /** openSUSE Leap 15.6 (zypper): a security patch, and a kernel update that needs a reboot. */
  'leap15': {
    title: 'openSUSE Leap 15.6 with a security patch and a kernel update',
    sshIdent: 'OpenSSH_9.6',
    probe: {
      osRelease: fixture('rpm-apk/os-release-leap15'),
      kernel: '5.14.21-150500.55.65-default',
      arch: 'x86_64',
      uptimeSeconds: 2_419_004.2,
      packageManagerCommands: ['zypper'],
      proxmox: [],
      docker: false,
    },
    outputs: {
      'zypper-refresh': { stdout: pkgFixture('zypper-refresh.txt') },
      'zypper-list': { stdout: pkgFixture('zypper-list-updates.xml') },
      'zypper-patches': { stdout: pkgFixture('zypper-list-patches-security.xml') },
      'zypper-reboot': {
        stdout: rebootOutput(ZYPPER_REBOOT_BEGIN, [
          ['needs-rebooting', lines(pkgFixture('zypper-needs-rebooting-none.txt'))],
          ['needs-rebooting-exit', ['0']],
          ['running', ['5.14.21-150500.55.65-default']],
          ['kernels', ['5.14.21-150500.55.65.1']],
          ['container', []],
        ]),
      },
    },
    expected: { os: { id: 'opensuse-leap', version: '15.6', prettyName: 'openSUSE Leap 15.6' }, packageManager: 'zypper', proxmox: null, updates: 3, security: 1, held: 0, rebootRequired: false },
  },
  /** Alpine 3.20 (apk): published `apk list --upgradable` output; whole-system upgrades only. */
  'alpine320': {
    title: 'Alpine Linux 3.20',
    sshIdent: 'OpenSSH_9.7',
    probe: {
      osRelease: fixture('rpm-apk/os-release-alpine320'),
      kernel: '6.6.31-0-lts',
      arch: 'x86_64',
      uptimeSeconds: 86_512.3,
      packageManagerCommands: ['apk'],
      proxmox: [],
      docker: true,
    },
    outputs: {
      'apk-update': { stdout: '' },
      'apk-list': { stdout: pkgFixture('apk-list-upgradable-vuls.txt') },
      'apk-reboot': { stdout: rebootOutput(APK_REBOOT_BEGIN, [['running', ['6.6.31-0-lts']], ['modules', ['present']], ['kernels', ['linux-lts-6.6.31-r0']]]) },
    },
    expected: { os: { id: 'alpine', version: '3.20.3', prettyName: 'Alpine Linux v3.20' }, packageManager: 'apk', proxmox: null, updates: 6, security: 0, held: 0, rebootRequired: false },
  },
  /** Proxmox VE 8 with containers and VMs (sim/proxmox.ts): each guest a Debian 12 machine
   * with security updates, reached through the node. */
  'pve8-guests': {
    title: 'Proxmox VE 8 with containers and VMs',
    sshIdent: 'OpenSSH_9.2p1 Debian-2+deb12u3',
    probe: {
      osRelease: DEBIAN12_OS_RELEASE,
      kernel: '6.8.12-4-pve',
      arch: 'x86_64',
      uptimeSeconds: 612_004.2,
      packageManagerCommands: ['apt-get'],
      proxmox: ['pve ' + relayFixture('ops/fixtures/pveversion-pve8.txt').trim()],
      docker: false,
    },
    outputs: outputsFrom('debian12-current', 'debian12-local'),
    expected: { os: { id: 'debian', version: '12', prettyName: DEBIAN12_PRETTY }, packageManager: 'apt', proxmox: 'pve', updates: 0, security: 0, held: 0, rebootRequired: false },
    guests: { specs: DEMO_GUESTS, profile: 'debian12-security' },
  },
} satisfies Record<string, Profile>;

export type ProfileName = keyof typeof PROFILES;
export const PROFILE_NAMES = Object.keys(PROFILES) as ProfileName[];

// ---- rendering ---------------------------------------------------------------------------

export interface HostIdentity {
  hostname: string;
  bootId: string;
  failure: () => FailureMode | null;
  /** A Proxmox guest of the same recorded machine without its Docker (sim/proxmox.ts). */
  noDocker?: boolean;
}

type Privilege = 'root' | 'sudo' | 'sudo-password' | 'no-sudo';

function privilegeOf(user: string, failure: FailureMode | null): Privilege {
  if (user === 'root') return 'root';
  return failure === 'sudo-password' ? 'sudo-password' : 'sudo';
}

/** The probe script's output for this host, section by section in the script's own order. */
export function renderProbe(p: ProbeFacts, id: HostIdentity, privilege: Privilege): string {
  const section: Record<string, () => string[]> = {
    'os-release': () => p.osRelease.replace(/\n+$/, '').split('\n'),
    kernel: () => [p.kernel],
    arch: () => [p.arch],
    hostname: () => [id.hostname],
    'boot-id': () => [id.bootId],
    uptime: () => [`${p.uptimeSeconds.toFixed(2)} ${(p.uptimeSeconds * 1.7).toFixed(2)}`],
    'package-managers': () => p.packageManagerCommands,
    proxmox: () => p.proxmox,
    docker: () => [p.docker ? 'yes' : 'no'],
    privilege: () => [privilege],
    derivative: () => [],
    end: () => [],
  };
  let out = `\n${PROBE_BEGIN}\n`;
  for (const name of probeSections()) {
    const render = section[name];
    if (!render) throw new Error(`sim: the probe script has a section "${name}" the simulator does not know; teach sim/profiles.ts renderProbe`);
    out += `\n@@${name}\n`;
    const lines = render();
    if (lines.length) out += lines.join('\n') + '\n';
  }
  return out;
}

// ---- what upgrades and reboots work from (sim/upgrade.ts) ---------------------------------

const DEBIAN_RUN_LOGS = {
  installZip: 'debian12-local/run-install-zip.log',
  lockHeld: 'debian12-local/run-lock-held.log',
  dpkgInterrupted: 'debian12-local/run-dpkg-interrupted.log',
  sudoPassword: 'debian12-local/run-sudo-password.log',
};

/** The recorded material a profile's simulated machine starts from. */
export function machineFixtures(profile: ProfileName): MachineFixtures {
  const prof: Profile = PROFILES[profile];
  const group = prof.expected.packageManager;
  if (isRpmApk(group)) {
    const out = (kind: string): string => String(prof.outputs[kind]?.stdout ?? '');
    return {
      installed: group === 'dnf' ? out('dnf-installed') : group === 'apk' ? pkgFixture('apk-info-v-vuls.txt') : '',
      pending: '',
      rpmApk: group === 'dnf' ? { list: out('dnf-list'), security: out('dnf-security') } : group === 'zypper' ? { list: out('zypper-list'), security: out('zypper-patches'), patchInfo: pkgFixture('zypper-info-patch.txt') } : { list: out('apk-list') },
      rebootCheck: out(`${group}-reboot`),
      needsReboot:
        group === 'dnf'
          ? { none: pkgFixture('dnf-needs-restarting-none.txt').replace(/^Unable.*\n/m, ''), required: pkgFixture('dnf-needs-restarting-required.txt').replace(/^Unable.*\n/m, '') }
          : group === 'zypper'
            ? { none: pkgFixture('zypper-needs-rebooting-none.txt'), required: pkgFixture('zypper-needs-rebooting-required.txt') }
            : undefined,
      logs: {
        lockHeld: pkgFixture(group === 'dnf' ? 'dnf-upgrade-lock-held.log' : group === 'zypper' ? 'zypper-update-lock-held.log' : 'apk-lock-held.log'),
        lockHeldExit: group === 'dnf' ? 200 : group === 'zypper' ? 7 : 99,
        sudoPassword: fixture(DEBIAN_RUN_LOGS.sudoPassword),
      },
    };
  }
  if (prof.expected.packageManager === 'pacman') {
    return {
      installed: fixture('arch/pacman-installed.stdout'),
      pending: String(prof.outputs['checkupdates']?.stdout ?? ''),
      rebootCheck: prof.outputs['pacman-reboot']?.stdout?.toString(),
      logs: { fullUpgrade: fixture('arch/run-full-upgrade.log'), lockHeld: fixture('arch/run-lock-held.log'), sudoPassword: fixture(DEBIAN_RUN_LOGS.sudoPassword) },
    };
  }
  return {
    // Every apt profile's installed packages are this Debian machine's, with the recorded
    // pending list's `[old]` versions on top (see sim/fixtures/README.md).
    installed: fixture('debian12-local/dpkg-installed.stdout'),
    pending: String(prof.outputs['apt-list']?.stdout ?? ''),
    rebootCheck: prof.outputs['apt-reboot']?.stdout?.toString(),
    printUris: fixture('debian12-local/apt-print-uris.stdout'),
    logs: {
      installZip: fixture(DEBIAN_RUN_LOGS.installZip),
      lockHeld: fixture(DEBIAN_RUN_LOGS.lockHeld),
      dpkgInterrupted: fixture(DEBIAN_RUN_LOGS.dpkgInterrupted),
      sudoPassword: fixture(DEBIAN_RUN_LOGS.sudoPassword),
    },
    // apt-utils is not installed on the recording machine; an Ubuntu server has it.
    debconfNote: prof.probe.osRelease === DEBIAN12_OS_RELEASE,
  };
}

/** The exact-match command table of one host, plus the simulated machine behind it. */
export function commandTable(
  profile: ProfileName,
  id: HostIdentity,
  options?: MachineOptions,
  registry?: SimRegistry,
): CommandTable & { machine: SimMachine; docker: SimDocker | null } {
  const prof: Profile = PROFILES[profile];
  const commands = relayCommands();
  const byCommand = new Map<string, RelayCommand[]>();
  for (const c of commands) byCommand.set(c.command, [...(byCommand.get(c.command) ?? []), c]);
  const machine = new SimMachine({
    name: id.hostname,
    group: prof.expected.packageManager,
    bootId: id.bootId,
    kernel: prof.probe.kernel,
    failure: id.failure,
    fixtures: machineFixtures(profile),
    options,
  });
  // Docker hosts answer the relay's docker commands when the fleet runs a registry for them
  const docker = prof.probe.docker && registry && !id.noDocker ? new SimDocker(registry, id.hostname) : null;
  const probeCache = new Map<string, string>();

  const probeOutput = (user: string): string => {
    const priv = privilegeOf(user, id.failure());
    const facts: ProbeFacts = { ...prof.probe, kernel: machine.kernel, ...(id.noDocker ? { docker: false } : {}) };
    const ident: HostIdentity = { ...id, bootId: machine.bootId };
    if (machine.bootedAt !== null) {
      facts.uptimeSeconds = 4 + (Date.now() - machine.bootedAt) / 1000; // a fresh boot
      return renderProbe(facts, ident, priv);
    }
    const key = `${priv} ${machine.bootId} ${machine.kernel}`;
    let text = probeCache.get(key);
    if (text === undefined) probeCache.set(key, (text = renderProbe(facts, ident, priv)));
    return text;
  };
  const answer = (c: RelayCommand, user: string): Reply | undefined => {
    if (c.kind === PROBE.kind) return { stdout: probeOutput(user) };
    if (c.sudo && id.failure() === 'sudo-password') return { stderr: 'sudo: a password is required\n', code: 1 };
    machine.advance();
    return machine.scanReply(c.kind, prof.outputs[c.kind]) ?? prof.outputs[c.kind];
  };
  const find = (exec: ExecInfo): { kind: string; reply: Reply } | undefined => {
    const candidates = byCommand.get(exec.command) ?? [];
    const cmd = candidates.find((c) => (c.stdin === undefined ? exec.stdin === null : c.stdin === exec.stdin));
    if (cmd) {
      const reply = answer(cmd, exec.user);
      return reply ? { kind: cmd.kind, reply } : undefined;
    }
    const run = machine.answer(exec.command, exec.stdin, exec.user) ?? docker?.answer(exec.command, exec.stdin, exec.user, machine);
    if (run) return run;
    // The OpenSSH baseline's one-session form (sim/commands.ts benchScript): the probe script
    // followed by further known commands; the answer is the recorded outputs in sequence.
    if (exec.command === PROBE.command && exec.stdin !== null) {
      const parts = splitCombined(exec.stdin, commands);
      if (!parts) return undefined;
      const replies = parts.map((c) => answer(c, exec.user));
      if (replies.some((r) => r === undefined)) return undefined;
      return {
        kind: 'combined',
        reply: {
          stdout: replies.map((r) => String(r!.stdout ?? '')).join(''),
          stderr: replies.map((r) => r!.stderr ?? '').join(''),
          code: replies.at(-1)!.code ?? 0,
        },
      };
    }
    return undefined;
  };

  return {
    machine,
    docker,
    readsStdin: (command) => (byCommand.get(command) ?? []).some((c) => c.stdin !== undefined),
    reply(exec: ExecInfo) {
      const found = find(exec);
      machine.record({ at: Date.now(), user: exec.user, command: exec.command, stdin: exec.stdin, kind: found?.kind ?? 'unknown' });
      return found;
    },
    attach(host: SimHost) {
      machine.attach(host);
    },
  };
}
