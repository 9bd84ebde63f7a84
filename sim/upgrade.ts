// What a simulated host IS, beyond its recorded scan outputs: installed packages, pending
// updates, the boot id and kernel, and the detached runs (relay/run.ts) an upgrade starts.
// One SimMachine per simulated host (made by sim/profiles.ts commandTable). It answers the
// relay's upgrade and reboot commands with real behaviour:
//
//   start script  → a run that writes its log over `runMs` (the log is real apt output, or
//                   built line by line in the format of the real output: sim/fixtures/README.md)
//   poll script   → the run's state and log bytes from the offset, exactly as the real script
//   collect       → installed packages when the run started, and now
//   success       → installed versions change, the pending list loses those packages (the
//                   recorded `apt-get -s dist-upgrade` without their lines, counts fixed)
//   reboot        → exit 0, then the host drops off the network for `downMs` and comes back
//                   with a new boot id (and the newest installed kernel, when it has kernels)
//
// Failure modes (sim/host.ts FailureMode): lock-held, dpkg-interrupted, sudo-password (the
// run fails with the real message), drop-during-run (every connection drops once mid-run),
// reboot-no-return, disk-full (the log stops half-way, exit 100, nothing changed). Every command a host answers is recorded in `execs`.
import { randomUUID } from 'node:crypto';
import type { FailureMode, Reply, SimHost } from './host.ts';
import { isKernel, isRpmApk, loadPending, renderPatchInfo, renderScan, upgradeLog, type Pending, type RpmApkRecordings } from './rpm-apk.ts';
import { ZYPPER_PATCH_INFO } from '../relay/pkg/zypper.ts';
import { splitNameVersion } from '../relay/pkg/apk.ts';
import { REBOOT_CHECKS, REBOOT_COMMANDS, BOOT_ID_COMMAND, SH_COMMAND, UPGRADERS, recogniseCollect, recogniseFollow, recognisePoll, recogniseStart, type PmGroup, type StartRequest } from './commands.ts';

// ---- the recorded material this module uses (paths under sim/fixtures) --------------------

export interface MachineFixtures {
  /** `dpkg-query -W -f='${binary:Package}\t${Version}\t${db:Status-Status}\n'` or `pacman -Q`. */
  installed: string;
  /** The recorded pending list: `apt-get -s dist-upgrade` / `checkupdates` stdout. */
  pending: string;
  /** The recorded reboot check output (the relay's script), if the profile has one. */
  rebootCheck?: string;
  /** apt: `apt-get --print-uris dist-upgrade` of the same machine as `pending` (real sizes). */
  printUris?: string;
  /** dnf, zypper, apk: the recorded scan outputs the pending list starts from. */
  rpmApk?: RpmApkRecordings;
  /** dnf, zypper: what needs-restarting / needs-rebooting print (none / required). */
  needsReboot?: { none: string; required: string };
  /** Recorded run logs: the successful ones by key, the failures by mode. */
  logs: {
    /** apt: the real `install --only-upgrade zip` run (first line is the `$ …` echo). */
    installZip?: string;
    /** pacman: the full upgrade of exactly `pending` (no `$` line). */
    fullUpgrade?: string;
    lockHeld: string;
    /** The lock-held exit status, when not apt's 100 / pacman's 1. */
    lockHeldExit?: number;
    dpkgInterrupted?: string;
    sudoPassword: string;
  };
  /** apt on Debian without apt-utils prints this (stderr) before configuring. */
  debconfNote?: boolean;
}

export interface MachineOptions {
  /** How long a successful run takes (its log appears over this time). Default 400 ms. */
  runMs?: number;
  /** How long a failing run takes. Default runMs / 4. */
  failRunMs?: number;
  /** How long a reboot keeps the host off the network. Default 1000 ms. */
  downMs?: number;
  /** From the reboot command's answer until the host drops off. Default 50 ms. */
  goDownAfterMs?: number;
}

export interface ExecRecord {
  at: number;
  user: string;
  command: string;
  stdin: string | null;
  /** The command kind ('probe', 'run-start', 'run-poll', 'reboot', …) or 'unknown'. */
  kind: string;
}

export interface SimRun {
  runId: string;
  user: string;
  privilege: StartRequest['privilege'];
  packages: string[] | null;
  startedAt: number;
  durationMs: number;
  /** The boot id when it started (the real script's .boot file). */
  bootId: string;
  /** Everything the run writes, in order. */
  log: Buffer;
  exitCode: number;
  /** The installed-package listing when it started (.before). */
  before: string;
  /** Applied once, when the run ends with exit 0. */
  effect: (() => void) | null;
  applied: boolean;
  /** The wrapper died before writing an exit status. */
  ended: { why: 'rebooted' | 'killed'; visible: number } | null;
  /** drop-during-run has cut the connections for this run. */
  dropped: boolean;
}

interface Inst {
  name: string;
  old: string | null;
  new: string;
  origins: string;
  arch: string;
}

interface InstalledEntry {
  /** As the package manager prints it (dpkg: `libssl3:amd64` for Multi-Arch: same). */
  key: string;
  version: string;
  status: string;
}

const machines = new Map<string, SimMachine>();

/** The simulated machine behind a host name (or address) of a running fleet. */
export function simMachine(nameOrAddress: string): SimMachine {
  const m = machines.get(nameOrAddress);
  if (!m) throw new Error(`no simulated machine ${nameOrAddress}`);
  return m;
}

/** A machine's disk as a snapshot keeps it (SimMachine.diskState). */
export interface MachineDisk {
  installed: Map<string, InstalledEntry>;
  aptList: string;
  pacmanPending: { name: string; old: string; new: string }[];
  pending: Pending[];
  upgradedSinceBoot: boolean;
  reboot: Map<string, string[]> | null;
  rebootChanged: boolean;
  runs: Map<string, SimRun>;
}

export class SimMachine {
  readonly name: string;
  readonly group: PmGroup;
  bootId: string;
  kernel: string;
  /** Null until the first reboot (the profile's uptime is used until then). */
  bootedAt: number | null = null;
  runMs: number;
  failRunMs: number | undefined;
  downMs: number;
  goDownAfterMs: number;
  readonly runs = new Map<string, SimRun>();
  readonly execs: ExecRecord[] = [];
  /** Told about every answered command (tests use it to change things mid-operation). */
  readonly onExec: ((e: ExecRecord) => void)[] = [];
  host: SimHost | null = null;
  readonly #failure: () => FailureMode | null;
  readonly #fx: MachineFixtures;
  /** Installed packages by plain name. */
  #installed = new Map<string, InstalledEntry>();
  /** apt: the current `apt-get -s dist-upgrade` text; pacman: pending lines. */
  #aptList = '';
  #pacmanPending: { name: string; old: string; new: string }[] = [];
  /** dnf, zypper, apk: pending updates. */
  #pending: Pending[] = [];
  /** dnf, zypper: a kernel (or other core package) was upgraded since boot. */
  #upgradedSinceBoot = false;
  /** Reboot-check sections, when the machine's state moved away from the recording. */
  #reboot: Map<string, string[]> | null = null;
  #rebootChanged = false;
  #uris = new Map<string, { url: string; size: number }>();

  constructor(o: { name: string; group: PmGroup; bootId: string; kernel: string; failure: () => FailureMode | null; fixtures: MachineFixtures; options?: MachineOptions }) {
    this.name = o.name;
    this.group = o.group;
    this.bootId = o.bootId;
    this.kernel = o.kernel;
    this.#failure = o.failure;
    this.#fx = o.fixtures;
    this.runMs = o.options?.runMs ?? 400;
    this.failRunMs = o.options?.failRunMs;
    this.downMs = o.options?.downMs ?? 1000;
    this.goDownAfterMs = o.options?.goDownAfterMs ?? 50;
    this.#loadInstalled(o.fixtures.installed);
    if (o.group === 'apt') {
      this.#aptList = o.fixtures.pending;
      for (const i of parseInsts(this.#aptList)) if (i.old !== null) this.#setInstalled(i.name, i.old);
      for (const u of parsePrintUris(o.fixtures.printUris ?? '')) this.#uris.set(`${u.name} ${u.version}`, u);
    } else if (isRpmApk(o.group)) {
      const key = (name: string, arch: string): string => (o.group === 'apk' ? name : `${name}.${arch}`);
      this.#pending = loadPending(o.group, o.fixtures.rpmApk ?? { list: '' }, (k) => this.#installed.get(k)?.version ?? null);
      for (const p of this.#pending) this.#setInstalled(key(p.name, p.arch), p.old);
    } else {
      this.#pacmanPending = parseCheckupdates(o.fixtures.pending);
      for (const p of this.#pacmanPending) this.#setInstalled(p.name, p.old);
    }
    if (o.fixtures.rebootCheck) this.#reboot = parseSections(o.fixtures.rebootCheck, REBOOT_CHECKS[o.group].begin);
    machines.set(o.name, this);
  }

  attach(host: SimHost): void {
    this.host = host;
    machines.set(host.address, this);
  }

  /** What a Proxmox snapshot of this machine keeps (sim/proxmox.ts): its disk — packages,
   * pending lists, reboot state and the runs' files — not its boot. */
  diskState(): MachineDisk {
    return {
      installed: structuredClone(this.#installed),
      aptList: this.#aptList,
      pacmanPending: structuredClone(this.#pacmanPending),
      pending: structuredClone(this.#pending),
      upgradedSinceBoot: this.#upgradedSinceBoot,
      reboot: structuredClone(this.#reboot),
      rebootChanged: this.#rebootChanged,
      runs: new Map(this.runs),
    };
  }

  /** A rollback: the disk as the snapshot kept it. */
  restoreDisk(d: MachineDisk): void {
    this.#installed = structuredClone(d.installed);
    this.#aptList = d.aptList;
    this.#pacmanPending = structuredClone(d.pacmanPending);
    this.#pending = structuredClone(d.pending);
    this.#upgradedSinceBoot = d.upgradedSinceBoot;
    this.#reboot = structuredClone(d.reboot);
    this.#rebootChanged = d.rebootChanged;
    this.runs.clear();
    for (const [k, r] of d.runs) this.runs.set(k, r);
  }

  get failure(): FailureMode | null {
    return this.#failure();
  }

  // ---- state, as the package manager would print it ----------------------------------

  /** What the module's installedCommand prints now. */
  installedText(): string {
    const rows = [...this.#installed.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (this.group === 'apt') return rows.map((r) => `${r.key}\t${r.version}\t${r.status}\n`).join('');
    if (this.group === 'dnf' || this.group === 'zypper') return rows.map((r) => `${r.key}\t${r.version}\n`).join('');
    if (this.group === 'apk') return rows.map((r) => `${r.key}-${r.version}\n`).join('');
    return rows.map((r) => `${r.key} ${r.version}\n`).join('');
  }

  installedVersion(name: string): string | null {
    return this.#installed.get(name)?.version ?? null;
  }

  /** Names of the packages a full upgrade would change now. */
  pendingNames(): string[] {
    if (isRpmApk(this.group)) return this.#pending.map((p) => p.name);
    return this.group === 'apt' ? parseInsts(this.#aptList).map((i) => i.name) : this.#pacmanPending.map((p) => p.name);
  }

  /** The answer to a scan command whose output depends on this machine's state, or undefined
   * to use the recording as it is. */
  scanReply(kind: string, recorded: Reply | undefined): Reply | undefined {
    if (isRpmApk(this.group)) {
      if (kind === 'dnf-installed') return { stdout: this.installedText() };
      if (kind === REBOOT_CHECKS[this.group].kind && this.#reboot) return { stdout: this.#renderReboot(), stderr: '', code: 0 };
      return renderScan(this.group, kind, this.#pending);
    }
    if (kind === 'apt-list' && this.group === 'apt' && recorded) return { ...recorded, stdout: this.#aptList };
    if ((kind === 'checkupdates' || kind === 'pacman-list') && this.group === 'pacman' && recorded) {
      const lines = this.#pacmanPending.map((p) => `${p.name} ${p.old} -> ${p.new}\n`).join('');
      // checkupdates exits 2 with nothing to list; pacman -Qu exits 1.
      if (lines === '') return { stdout: '', stderr: '', code: kind === 'checkupdates' ? 2 : 1 };
      return { ...recorded, stdout: lines };
    }
    if (kind === REBOOT_CHECKS[this.group].kind && this.#rebootChanged && this.#reboot) return { stdout: this.#renderReboot(), stderr: '', code: 0 };
    return undefined;
  }

  // ---- the commands -----------------------------------------------------------------

  /** Answer a run/reboot command, or undefined when it is none of them. */
  answer(command: string, stdin: string | null, user: string): { kind: string; reply: Reply } | undefined {
    if (command === SH_COMMAND && stdin !== null) {
      const start = recogniseStart(stdin, this.group);
      if (start) return { kind: 'run-start', reply: this.#start(start, user) };
      const poll = recognisePoll(stdin);
      if (poll) return { kind: 'run-poll', reply: this.#poll(poll.runId, poll.offset, poll.maxBytes) };
      const follow = recogniseFollow(stdin);
      if (follow) return { kind: 'run-follow', reply: this.#follow(follow.runId) };
      const collect = recogniseCollect(stdin, this.group);
      if (collect) return { kind: 'run-collect', reply: this.#collect(collect.runId) };
      return undefined;
    }
    if (stdin !== null) return undefined;
    // zypper names the security patches it wants to read: the ids the patch list printed.
    if (this.group === 'zypper' && command.startsWith(`${ZYPPER_PATCH_INFO} `)) {
      const ids = [...command.slice(ZYPPER_PATCH_INFO.length).matchAll(/'([^']+)'/g)].map((m) => m[1]);
      return { kind: 'zypper-patch-info', reply: renderPatchInfo(ids, this.#pending) };
    }
    if (command === BOOT_ID_COMMAND) return { kind: 'boot-id', reply: { stdout: `${this.bootId}\n${this.kernel}\n` } };
    if (command === UPGRADERS[this.group].installedCommand) return { kind: 'installed', reply: { stdout: this.installedText() } };
    if (command === REBOOT_COMMANDS.root || command === REBOOT_COMMANDS.sudo) {
      if (command === REBOOT_COMMANDS.sudo && user !== 'root' && this.failure === 'sudo-password') {
        return { kind: 'reboot', reply: { stderr: this.#fx.logs.sudoPassword, code: 1 } };
      }
      return { kind: 'reboot', reply: { after: () => this.reboot() } };
    }
    return undefined;
  }

  record(e: ExecRecord): void {
    if (this.execs.length < 10_000) this.execs.push(e);
    for (const f of this.onExec) f(e);
  }

  /** The exec records of one kind. */
  ran(kind: string): ExecRecord[] {
    return this.execs.filter((e) => e.kind === kind);
  }

  #start(req: StartRequest, user: string): Reply {
    if (this.runs.has(req.runId)) return this.startRun(req, user, { body: '', exitCode: 0, effect: null });
    return this.startRun(req, user, this.#outcome(req));
  }

  /** Start a detached run (relay/run.ts) that writes `echo` then `outcome.body` over the
   * run's time, and applies `outcome.effect` when it ends well. Also for runs that are not
   * package upgrades (sim/docker.ts: a Compose stack update). */
  startRun(req: Pick<StartRequest, 'runId' | 'echo' | 'privilege' | 'packages'>, user: string, outcome: { body: string; exitCode: number; effect: (() => void) | null }): Reply {
    this.advance();
    const out = (line: string): Reply => ({ stdout: `\n@@patchman-run 1\n${line}\n` });
    if (this.runs.has(req.runId)) return out('exists');
    const now = Date.now();
    let log = Buffer.from(`${req.echo}\n${outcome.body}`, 'utf8');
    if (this.failure === 'disk-full') {
      // No space left: what the tool printed after the cut (its own write error too) never
      // reached the log file, and it gives up without changing anything.
      log = log.subarray(0, log.lastIndexOf(0x0a, Math.floor(log.length / 2)) + 1);
      outcome = { body: '', exitCode: 100, effect: null };
    }
    this.runs.set(req.runId, {
      runId: req.runId,
      user,
      privilege: req.privilege,
      packages: req.packages,
      startedAt: now,
      durationMs: outcome.exitCode === 0 ? this.runMs : (this.failRunMs ?? Math.max(20, Math.round(this.runMs / 4))),
      bootId: this.bootId,
      log,
      exitCode: outcome.exitCode,
      before: this.installedText(),
      effect: outcome.effect,
      applied: false,
      ended: null,
      dropped: false,
    });
    return out('started');
  }

  /** How the run goes: its log (after the `$` line), exit status and effect on the host. */
  #outcome(req: StartRequest): { body: string; exitCode: number; effect: (() => void) | null } {
    const f = this.failure;
    if (req.privilege === 'sudo' && f === 'sudo-password') return { body: this.#fx.logs.sudoPassword, exitCode: 1, effect: null };
    if (f === 'lock-held') return { body: this.#fx.logs.lockHeld, exitCode: this.#fx.logs.lockHeldExit ?? (this.group === 'apt' ? 100 : 1), effect: null };
    if (f === 'dpkg-interrupted' && this.#fx.logs.dpkgInterrupted) return { body: this.#fx.logs.dpkgInterrupted, exitCode: 100, effect: null };
    if (isRpmApk(this.group)) return this.#rpmApkOutcome(req.packages);
    return this.group === 'apt' ? this.#aptOutcome(req.packages) : this.#pacmanOutcome();
  }

  #rpmApkOutcome(packages: string[] | null): { body: string; exitCode: number; effect: (() => void) | null } {
    const group = this.group as 'dnf' | 'zypper' | 'apk';
    // The run's words: `name`, or `name.arch` (dnf) for another architecture.
    const want = packages ? new Set(packages) : null;
    const chosen = want ? this.#pending.filter((p) => want.has(p.name) || want.has(`${p.name}.${p.arch}`)) : this.#pending;
    const body = upgradeLog(group, chosen);
    const effect = chosen.length === 0 ? null : () => {
      for (const p of chosen) {
        this.#setInstalled(group === 'apk' ? p.name : `${p.name}.${p.arch}`, p.new);
        if (isKernel(group, p.name)) this.#kernelUpgraded(p);
      }
      const done = new Set(chosen);
      this.#pending = this.#pending.filter((p) => !done.has(p));
    };
    return { body, exitCode: 0, effect };
  }

  /** A kernel package was upgraded: the reboot check now says so (each family its own way). */
  #kernelUpgraded(p: Pending): void {
    const r = this.#reboot;
    if (!r) return;
    if (this.group === 'apk') {
      r.set('kernels', [...(r.get('kernels') ?? []).filter((l) => splitNameVersion(l)?.[0] !== p.name), `${p.name}-${p.new}`]);
      r.set('modules', ['missing']);
    } else {
      this.#upgradedSinceBoot = true;
      const needs = this.#fx.needsReboot;
      if (needs) {
        r.set(this.group === 'dnf' ? 'needs-restarting' : 'needs-rebooting', needs.required.split('\n').filter((l) => l !== ''));
        r.set(this.group === 'dnf' ? 'needs-restarting-exit' : 'needs-rebooting-exit', [this.group === 'dnf' ? '1' : '102']);
      }
      r.set('kernels', [...(r.get('kernels') ?? []), this.group === 'dnf' ? `${p.new}.${p.arch}` : p.new]);
    }
    this.#rebootChanged = true;
  }

  #aptOutcome(packages: string[] | null): { body: string; exitCode: number; effect: (() => void) | null } {
    const insts = parseInsts(this.#aptList);
    const byName = new Map(insts.map((i) => [i.name, i]));
    const summary = aptSummary(this.#aptList);
    let chosen: Inst[];
    const already: string[] = [];
    if (packages) {
      const unknown = packages.filter((p) => !byName.has(p) && !this.#installed.has(p));
      if (unknown.length > 0) {
        return { body: `${APT_HEAD}E: Unable to locate package ${unknown[0]}\n`, exitCode: 100, effect: null };
      }
      chosen = packages.filter((p) => byName.has(p)).map((p) => byName.get(p)!);
      for (const p of packages) if (!byName.has(p)) already.push(`${p} is already the newest version (${this.#installed.get(p)!.version}).`);
    } else {
      chosen = insts;
    }
    const notUpgraded = packages ? insts.filter((i) => i.old !== null).length - chosen.filter((i) => i.old !== null).length + summary.notUpgraded : summary.notUpgraded;
    const recordedZip = this.#fx.logs.installZip;
    let body: string;
    if (packages && packages.length === 1 && packages[0] === 'zip' && recordedZip && this.#aptList === this.#fx.pending && byName.has('zip')) {
      body = recordedZip.slice(recordedZip.indexOf('\n') + 1); // the real log, without its `$` line
    } else {
      body = this.#aptLog(chosen, already, notUpgraded, packages === null, insts.length === chosen.length && !packages && this.#aptList === this.#fx.pending);
    }
    const names = new Set(chosen.map((i) => i.name));
    const effect = chosen.length === 0 ? null : () => {
      for (const i of chosen) this.#setInstalled(i.name, i.new);
      this.#aptList = aptListWithout(this.#aptList, names);
    };
    return { body, exitCode: 0, effect };
  }

  #pacmanOutcome(): { body: string; exitCode: number; effect: (() => void) | null } {
    const pending = this.#pacmanPending;
    if (pending.length === 0) {
      return { body: ':: Synchronizing package databases...\n core downloading...\n extra downloading...\n community downloading...\n:: Starting full system upgrade...\n there is nothing to do\n', exitCode: 0, effect: null };
    }
    const body = this.#fx.logs.fullUpgrade ?? '';
    const effect = () => {
      for (const p of pending) {
        this.#setInstalled(p.name, p.new);
        if (p.name === 'linux') this.#replaceKernel(archKernelRelease(p.old), archKernelRelease(p.new));
      }
      this.#pacmanPending = [];
    };
    return { body, exitCode: 0, effect };
  }

  /** An apt-get run log in the format of the recorded real one (run-install-zip.log). */
  #aptLog(chosen: Inst[], already: string[], notUpgraded: number, dist: boolean, recordedFull: boolean): string {
    const out: string[] = [APT_HEAD.trimEnd()];
    if (dist) out.push('Calculating upgrade...');
    out.push(...already);
    if (dist) out.push(...aptBlocks(this.#aptList, ['The following upgrades have been deferred due to phasing:', 'The following packages have been kept back:']));
    const upgraded = chosen.filter((i) => i.old !== null);
    const fresh = chosen.filter((i) => i.old === null);
    if (recordedFull && this.#fx.printUris) {
      // The real header of this very upgrade (apt-get --print-uris prints the same).
      out.push(...this.#fx.printUris.split('\n').filter((l) => l !== '' && !l.startsWith("'")).slice(dist ? 4 : 3, -3));
    } else {
      if (fresh.length) out.push('The following NEW packages will be installed:', ...fresh.map((i) => `   ${i.name} (${i.new})`));
      if (upgraded.length) out.push('The following packages will be upgraded:', ...upgraded.map((i) => `   ${i.name} (${i.old} => ${i.new})`));
    }
    if (chosen.length > 0 && this.#fx.debconfNote) out.push('debconf: delaying package configuration, since apt-utils is not installed');
    out.push(`${upgraded.length} upgraded, ${fresh.length} newly installed, 0 to remove and ${notUpgraded} not upgraded.`);
    if (chosen.length === 0) return out.join('\n') + '\n';
    // The full upgrade of the recording fetches what --print-uris listed (the rest was cached).
    const gets = chosen.map((i) => ({ i, ...this.#download(i) })).filter((g) => g.known || !recordedFull);
    const total = gets.reduce((n, g) => n + g.size, 0);
    if (recordedFull && this.#fx.printUris) {
      out.push(...this.#fx.printUris.split('\n').filter((l) => l !== '' && !l.startsWith("'")).slice(-2));
    } else {
      out.push(`Need to get ${sizeToStr(total)}B of archives.`, 'After this operation, 0 B of additional disk space will be used.');
    }
    gets.forEach((g, n) => out.push(`Get:${n + 1} ${g.archive} ${g.i.name} ${g.i.arch} ${g.i.new} [${sizeToStr(g.size)}B]`));
    if (gets.length) out.push(`Fetched ${sizeToStr(total)}B in ${Math.max(1, Math.round(total / 8_000_000))}s (${sizeToStr(Math.min(total, 8_000_000))}B/s)`);
    // dpkg's part: apt runs it on a pty, so its lines end in \r\n (as in the recorded log).
    const dpkg: string[] = [readingDatabase(this.#fx.logs.installZip)];
    for (const i of chosen) {
      const key = this.#installed.get(i.name)?.key ?? i.name;
      dpkg.push(`Preparing to unpack .../${debFile(i)} ...\r`);
      dpkg.push(i.old === null ? `Unpacking ${key} (${i.new}) ...\r` : `Unpacking ${key} (${i.new}) over (${i.old}) ...\r`);
    }
    for (const i of chosen) dpkg.push(`Setting up ${this.#installed.get(i.name)?.key ?? i.name} (${i.new}) ...\r`);
    if (chosen.some((i) => i.name.startsWith('lib')) && this.#installed.has('libc-bin')) dpkg.push(`Processing triggers for libc-bin (${this.#installed.get('libc-bin')!.version}) ...\r`);
    if (this.#installed.has('man-db')) dpkg.push(`Processing triggers for man-db (${this.#installed.get('man-db')!.version}) ...\r`);
    return [...out, ...dpkg].join('\n') + '\n';
  }

  /** Where apt would fetch a package from and its size: from the recorded --print-uris when
   * the machine's pending list is the recorded one, else built from its origin. */
  #download(i: Inst): { archive: string; size: number; known: boolean } {
    const rec = this.#uris.get(`${i.name} ${i.new}`);
    const url = rec?.url ?? '';
    const base = url.includes('/pool/') ? url.slice(0, url.indexOf('/pool/')) : originArchive(i.origins);
    const component = /\/pool\/(?:updates\/)?([a-z-]+)\//.exec(url)?.[1] ?? 'main';
    const suite = suiteOf(i.origins);
    return { archive: `${base} ${suite}/${component} amd64`, size: rec ? rec.size : standInSize(i), known: rec !== undefined };
  }

  #poll(runId: string, offset: number, maxBytes: number): Reply {
    this.advance();
    const run = this.runs.get(runId);
    if (!run) return { stdout: '@@patchman-poll 1\nnone\n' };
    const now = Date.now();
    const size = this.#visible(run, now);
    const done = !run.ended && now >= run.startedAt + run.durationMs;
    const state = done ? `done ${run.exitCode}` : run.bootId !== this.bootId ? 'vanished rebooted' : run.ended ? 'vanished killed' : 'running';
    const head = Buffer.from(`@@patchman-poll 1\n${state}\nsize ${size}\n@@data\n`, 'latin1');
    const data = run.log.subarray(Math.min(offset, size), Math.min(size, offset + maxBytes));
    const reply: Reply = { stdout: Buffer.concat([head, data]) };
    // drop-during-run: once per run, a quarter of the way in, every connection drops.
    if (state === 'running' && !run.dropped && this.failure === 'drop-during-run' && now >= run.startedAt + run.durationMs / 4) {
      run.dropped = true;
      reply.dropConnections = true;
    }
    return reply;
  }

  /** A follow of the run's log: the simulator streams nothing, it only waits (up to a
   * second, a quarter of the run — so that polls still see it running, e.g. for
   * drop-during-run — or until the run ends) like a follow that saw no line; the poll
   * after it returns the log. */
  #follow(runId: string): Reply {
    const run = this.runs.get(runId);
    if (!run || run.ended) return { stdout: '' };
    return { stdout: '', delayMs: Math.max(0, Math.min(1000, run.durationMs / 4, run.startedAt + run.durationMs - Date.now())) };
  }

  #collect(runId: string): Reply {
    this.advance();
    const before = this.runs.get(runId)?.before ?? '';
    return { stdout: `@@patchman-collect 1\n@@before\n${before}\n@@after\n${this.installedText()}\n@@end\n` };
  }

  /** Bytes of the run's log written by `now`: whole lines, in proportion to the time spent. */
  #visible(run: SimRun, now: number): number {
    if (run.ended) return run.ended.visible;
    const t = (now - run.startedAt) / run.durationMs;
    if (t >= 1) return run.log.length;
    const firstLine = run.log.indexOf(0x0a) + 1;
    const want = Math.floor(run.log.length * Math.max(0, t));
    // (lastIndexOf with a negative start counts from the end: at want 0 it found the last
    // newline, and the whole log showed for a moment at the start)
    const cut = want > 0 ? run.log.lastIndexOf(0x0a, want - 1) + 1 : 0;
    return Math.max(firstLine, cut);
  }

  /** Apply what finished runs did. Called before anything reads the state. */
  advance(): void {
    const now = Date.now();
    for (const run of this.runs.values()) {
      if (run.applied || run.ended || now < run.startedAt + run.durationMs) continue;
      run.applied = true;
      if (run.exitCode === 0) run.effect?.();
    }
  }

  /** The run's wrapper is killed (no exit status): the poll says "vanished killed". */
  killRun(runId: string): void {
    const run = this.runs.get(runId);
    if (!run || run.ended) return;
    this.advance();
    if (run.applied) return;
    run.ended = { why: 'killed', visible: this.#visible(run, Date.now()) };
  }

  // ---- reboot ---------------------------------------------------------------------------

  /** The reboot command was answered: go down shortly, come back with a new boot id. */
  reboot(): void {
    setTimeout(() => {
      this.advance();
      for (const run of this.runs.values()) {
        if (!run.applied && !run.ended) run.ended = { why: 'rebooted', visible: this.#visible(run, Date.now()) };
      }
      const forever = this.failure === 'reboot-no-return';
      if (this.host) this.host.goDown(forever ? null : this.downMs, () => this.#booted());
      else this.#booted();
    }, this.goDownAfterMs);
  }

  #booted(): void {
    this.bootId = randomUUID();
    this.bootedAt = Date.now();
    const r = this.#reboot;
    if (!r) return;
    if (this.group === 'apk') {
      const m = /^(.+)-(\d+)-([a-z0-9]+)$/.exec(this.kernel);
      const pkg = (r.get('kernels') ?? []).map(splitNameVersion).find((nv) => nv?.[0] === `linux-${m?.[3]}`);
      if (!m || !pkg) return;
      const v = /^(.+)-r(\d+)$/.exec(pkg[1]);
      if (v) this.kernel = `${v[1]}-${v[2]}-${m[3]}`;
      r.set('running', [this.kernel]);
      r.set('modules', ['present']);
    } else if (this.group === 'dnf' || this.group === 'zypper') {
      if (!this.#upgradedSinceBoot) return;
      this.#upgradedSinceBoot = false;
      const needs = this.#fx.needsReboot;
      if (needs) {
        r.set(this.group === 'dnf' ? 'needs-restarting' : 'needs-rebooting', needs.none.split('\n').filter((l) => l !== ''));
        r.set(this.group === 'dnf' ? 'needs-restarting-exit' : 'needs-rebooting-exit', ['0']);
      }
    } else if (this.group === 'apt') {
      const kernels = r.get('kernels') ?? [];
      if (kernels.length === 0) return; // no kernel of its own (a container): nothing changes
      r.set('reboot-required', ['no']);
      r.set('reboot-required-pkgs', []);
      this.kernel = newest(kernels);
      r.set('running', [this.kernel]);
    } else {
      const installed = (r.get('installed') ?? []).filter((d) => /\d/.test(d));
      if (installed.length === 0) return;
      this.kernel = newest(installed);
      r.set('running', [this.kernel]);
      r.set('modules', ['present']);
    }
    this.#rebootChanged = true;
  }

  #replaceKernel(oldRelease: string, newRelease: string): void {
    const r = this.#reboot;
    if (!r) return;
    const key = this.group === 'apt' ? 'kernels' : 'installed';
    const dirs = (r.get(key) ?? []).filter((d) => d !== oldRelease);
    dirs.push(newRelease);
    r.set(key, dirs);
    if (this.group === 'pacman') r.set('modules', [dirs.includes(r.get('running')?.[0] ?? '') ? 'present' : 'missing']);
    this.#rebootChanged = true;
  }

  #renderReboot(): string {
    const c = REBOOT_CHECKS[this.group];
    let out = `\n${c.begin}\n`;
    for (const name of c.sections) {
      const lines = this.#reboot?.get(name) ?? [];
      out += `\n@@${name}\n` + (lines.length ? lines.join('\n') + '\n' : '');
    }
    return out;
  }

  // ---- installed packages ------------------------------------------------------------------

  #loadInstalled(text: string): void {
    for (const line of text.split('\n')) {
      if (this.group === 'apt') {
        const [key, version, status] = line.split('\t');
        if (key && version && status) this.#installed.set(key.replace(/:[a-z0-9-]+$/, ''), { key, version, status });
      } else if (this.group === 'dnf' || this.group === 'zypper') {
        const [key, version] = line.split('\t');
        if (key && version) this.#installed.set(key, { key, version, status: 'installed' });
      } else if (this.group === 'apk') {
        const nv = splitNameVersion(line.trim());
        if (nv) this.#installed.set(nv[0], { key: nv[0], version: nv[1], status: 'installed' });
      } else {
        const m = /^(\S+) (\S+)$/.exec(line.trim());
        if (m) this.#installed.set(m[1], { key: m[1], version: m[2], status: 'installed' });
      }
    }
  }

  #setInstalled(name: string, version: string): void {
    const e = this.#installed.get(name);
    if (e) e.version = version;
    else this.#installed.set(name, { key: name, version, status: 'installed' });
  }
}

// ---- apt text ------------------------------------------------------------------------------

const APT_HEAD = 'Reading package lists...\nBuilding dependency tree...\nReading state information...\n';

const INST = /^Inst (\S+)(?: \[([^\]\s]*)\])? \((\S+)(?: (.*?))? \[([^\]\s]+)\]\)/;

function parseInsts(text: string): Inst[] {
  const out: Inst[] = [];
  for (const line of text.split('\n')) {
    const m = INST.exec(line);
    if (m) out.push({ name: m[1], old: m[2] ?? null, new: m[3], origins: m[4] ?? '', arch: m[5] });
  }
  return out;
}

const SUMMARY = /^(\d+) upgraded, (\d+) newly installed, (?:(\d+) reinstalled, )?(?:(\d+) downgraded, )?(\d+) to remove and (\d+) not upgraded\.$/m;

function aptSummary(text: string): { notUpgraded: number } {
  const m = SUMMARY.exec(text);
  return { notUpgraded: m ? Number(m[6]) : 0 };
}

/** The indented blocks under these headers, header included. */
function aptBlocks(text: string, headers: string[]): string[] {
  const lines = text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!headers.includes(lines[i])) continue;
    out.push(lines[i]);
    for (let j = i + 1; j < lines.length && lines[j].startsWith(' '); j++) out.push(lines[j]);
  }
  return out;
}

/** Name-list blocks apt prints before the summary, re-wrapped the way apt wraps them. */
const LIST_HEADERS = new Set(['The following packages will be upgraded:', 'The following NEW packages will be installed:', 'The following packages will be REMOVED:']);

/** apt's ShowList: two-space indent, names joined by spaces, lines of at most 78 columns
 * (as in every recorded output). */
export function wrapNames(names: string[]): string[] {
  const lines: string[] = [];
  let line = ' ';
  for (const n of names) {
    if (line.length + 1 + n.length > 78 && line.trim() !== '') {
      lines.push(line);
      line = ' ';
    }
    line += ' ' + n;
  }
  if (line.trim() !== '') lines.push(line);
  return lines;
}

/** A recorded `apt-get -s dist-upgrade` as it reads once `names` are installed: their Inst,
 * Conf and Remv lines gone, the name lists re-wrapped, the summary counts fixed. */
export function aptListWithout(text: string, names: Set<string>): string {
  const lines = text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (LIST_HEADERS.has(line)) {
      const block: string[] = [];
      let j = i + 1;
      for (; j < lines.length && lines[j].startsWith(' '); j++) block.push(...lines[j].trim().split(/\s+/));
      const left = block.filter((n) => !names.has(n));
      if (left.length > 0) out.push(line, ...wrapNames(left));
      i = j - 1;
      continue;
    }
    const m = /^(?:Inst|Conf|Remv|Purg) (\S+)/.exec(line);
    if (m && names.has(m[1])) continue;
    out.push(line);
  }
  const insts = parseInsts(out.join('\n'));
  const remove = out.filter((l) => /^(?:Remv|Purg) /.test(l)).length;
  return out
    .join('\n')
    .replace(SUMMARY, (_all, _u, _n, re, down, _r, kept) =>
      `${insts.filter((i) => i.old !== null).length} upgraded, ${insts.filter((i) => i.old === null).length} newly installed, ` +
      `${re !== undefined ? `${re} reinstalled, ` : ''}${down !== undefined ? `${down} downgraded, ` : ''}${remove} to remove and ${kept} not upgraded.`,
    );
}

/** `'url' file size md5` lines of `apt-get --print-uris`. */
function parsePrintUris(text: string): { name: string; version: string; url: string; size: number }[] {
  const out: { name: string; version: string; url: string; size: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^'([^']+)' (\S+?)_(\S+?)_\S+\.deb (\d+)/.exec(line);
    if (m) out.push({ name: m[2], version: decodeURIComponent(m[3].replace(/%3a/gi, ':')), url: m[1], size: Number(m[4]) });
  }
  return out;
}

/** The .deb file name: name_version-without-epoch_arch.deb. */
function debFile(i: Inst): string {
  return `${i.name}_${i.new.replace(/^\d+:/, '')}_${i.arch}.deb`;
}

/** apt's SizeToStr (1000-based, as apt prints download sizes), without the unit's B. */
export function sizeToStr(bytes: number): string {
  const ext = ['', 'k', 'M', 'G', 'T'];
  let s = bytes;
  for (let i = 0; i < ext.length; i++) {
    if (s < 100 && i !== 0) return `${s.toFixed(1)} ${ext[i]}`;
    if (s < 10000) return `${s.toFixed(0)} ${ext[i]}`;
    s /= 1000;
  }
  return `${s.toFixed(0)} P`;
}

/** `Debian-Security:12/oldstable-security` → bookworm-security, `Ubuntu:24.04/noble-updates` →
 * noble-updates (the first origin counts). */
function suiteOf(origins: string): string {
  const first = origins.split(', ')[0] ?? '';
  const m = /^([^:]+):([^/]+)\/(\S+)$/.exec(first);
  if (!m) return 'stable';
  const [, origin, , suite] = m;
  if (origin.startsWith('Debian')) {
    const codename = 'bookworm';
    if (suite.endsWith('-security')) return `${codename}-security`;
    if (suite.endsWith('-updates')) return `${codename}-updates`;
    return codename;
  }
  return suite;
}

function originArchive(origins: string): string {
  const first = origins.split(', ')[0] ?? '';
  if (first.startsWith('Debian-Security')) return 'http://deb.debian.org/debian-security';
  if (first.startsWith('Debian')) return 'http://deb.debian.org/debian';
  if (first.startsWith('Ubuntu')) return 'http://archive.ubuntu.com/ubuntu';
  if (first.startsWith('Proxmox')) return 'http://download.proxmox.com/debian/pve';
  return 'https://packages.example.invalid/' + (first.split(':')[0] || 'repo');
}

/** A stable stand-in size for a package the recording has none for. */
function standInSize(i: Inst): number {
  let h = 0;
  for (const c of i.name + i.new) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return 20_000 + (h % 2_000_000);
}

/** The `(Reading database ...` line of the recorded run (dpkg's progress, one line). */
function readingDatabase(recorded: string | undefined): string {
  return recorded?.split('\n').find((l) => l.startsWith('(Reading database')) ?? '(Reading database ... 117018 files and directories currently installed.)\r';
}

// ---- pacman, kernels -----------------------------------------------------------------------

function parseCheckupdates(text: string): { name: string; old: string; new: string }[] {
  const out: { name: string; old: string; new: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) (\S+) -> (\S+)$/.exec(line.trim());
    if (m) out.push({ name: m[1], old: m[2], new: m[3] });
  }
  return out;
}

/** Arch's linux package version → its kernel release (`5.4.7.arch1-1` → `5.4.7-arch1-1`). */
export function archKernelRelease(version: string): string {
  return version.replace(/\.(arch\d+)-/, '-$1-');
}

const collator = new Intl.Collator('en', { numeric: true });
function newest(releases: string[]): string {
  return [...releases].sort(collator.compare).at(-1)!;
}

/** The sections of a marked script output (`@@name` lines after the begin marker). */
function parseSections(output: string, begin: string): Map<string, string[]> {
  const lines = output.split('\n');
  const start = lines.indexOf(begin);
  const out = new Map<string, string[]>();
  let cur: string[] | null = null;
  for (const line of lines.slice(start + 1)) {
    const m = /^@@([a-z-]+)$/.exec(line);
    if (m) {
      cur = [];
      out.set(m[1], cur);
      continue;
    }
    if (line !== '') cur?.push(line);
  }
  return out;
}
