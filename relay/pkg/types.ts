// The one interface every package-manager module implements. The scan operation
// (relay/ops/scan.ts) only ever talks to a module through it; the registry in ./index.ts maps
// the probe's package-manager names to modules. Adding a package manager is one new file
// that exports a PackageManagerModule, one registry line, and its descriptor entry in
// protocol/package-managers.ts.
import type { OperationResult } from '../../protocol/relay.ts';
import type { SshSession } from '../ssh.ts';
import type { OpError } from '../errors.ts';


type ScanResultT = OperationResult<'scan'>;
export type ProbeResult = ScanResultT['probe'];
export type PackageManagerName = ProbeResult['packageManagers'][number];
export type Privilege = ProbeResult['privilege'];
export type PackageUpdate = ScanResultT['updates'][number];
export type HeldPackage = ScanResultT['held'][number];
export type RebootState = ScanResultT['reboot'];

export interface ScanOptions {
  /** From the probe: how (and whether) the module may run commands as root. */
  privilege: Privilege;
  /** Refresh the package lists first (needs root for most package managers). */
  refresh: boolean;
  /** Limit for each remote command; each module has its own defaults. */
  timeoutMs?: number;
}

export interface PackageScan {
  updates: PackageUpdate[];
  held: HeldPackage[];
  /** Did not fail the scan, but the operator should know (stale lists, removals, …). */
  warnings: string[];
}

export interface RebootCheckOptions {
  timeoutMs?: number;
}

export interface UpgradeOptions {
  privilege: Privilege;
  /** Only these (allowlisted) packages; null = everything. */
  packages: string[] | null;
  /** apt, whole-system runs: `upgrade` (never installs or removes) instead of `dist-upgrade`. */
  aptMode?: 'dist-upgrade' | 'upgrade';
  /** The probe's os-release ID, for package managers whose command depends on the OS
   * (zypper: dup on Tumbleweed). */
  osId?: string;
}

/** How a package manager upgrades. The run's script is started detached (relay/run.ts). */
export interface PackageUpgrader {
  /** The body of the run's POSIX sh script: the non-interactive upgrade, as root. Built from
   * constants and the allowlisted, quoted package names. Throws OpError 'sudo-password'
   * when root is not available without a password. */
  runScript(opts: UpgradeOptions): string;
  /** Read-only: print the installed packages (parseInstalled reads it). */
  readonly installedCommand: string;
  parseInstalled(stdout: string): Map<string, string>;
  /** A failed run's exit status and the end of its log, as an error in plain words: a held
   * lock, an interrupted transaction, a sudo password prompt, an unreachable repository, or
   * the tool's own error lines (codes: protocol/package-managers.ts PACKAGE_FAILURES). */
  failure(exitCode: number, logTail: string, where: string): OpError;
}

/** What a module does; what it is (label, whether single packages may be upgraded, the
 * command shown, sudoers lines) is its descriptor in protocol/package-managers.ts. */
export interface PackageManagerModule {
  readonly name: PackageManagerName;
  readonly upgrade: PackageUpgrader;
  /** Refresh (when asked) and list pending updates. Changes nothing but the package lists.
   * Throws OpError: 'sudo-password' when the refresh needs root and sudo wants a password,
   * 'command-failed' when the package manager fails or prints something unrecognised. */
  scan(session: SshSession, opts: ScanOptions): Promise<PackageScan>;
  /** Does the host need a reboot, and why? Read-only, no root. */
  rebootCheck(session: SshSession, probe: ProbeResult, opts?: RebootCheckOptions): Promise<RebootState>;
}
