// What every operation handler gets besides its validated params.
import type { KnownHosts } from '../known-hosts.ts';
import type { SshTarget } from '../ssh.ts';
import type { NotifyAllowlist } from '../notify-allow.ts';

/** A detached run this relay process is following, by run id (see ops/upgrade.ts). */
export interface ActiveRun {
  /** Where the next poll reads the host's log from; a re-sent request rewinds it to what
   * the Worker holds. */
  offset: number;
  promise: Promise<unknown>;
}

export interface OpContext {
  /** The relay's OpenSSH private key. Secret: never put it in a message or a log line. */
  privateKey: string;
  knownHosts: KnownHosts;
  /** TCP connect + SSH handshake + authentication. Default 10 s (relay/ssh.ts). */
  connectTimeoutMs?: number;
  /** Limit for each remote command an operation runs. Each operation has its own default. */
  commandTimeoutMs?: number;
  /** The Worker's deadline for the whole request (long runs such as upgrades use it). */
  requestTimeoutMs?: number;
  /** Send output of the running request to the Worker (set per request by executeRequest). */
  output?: (data: string, range?: { from: number; to: number }) => void;
  /** Why the relay must never change this host (PATCHMAN_MONITOR_ONLY), or null. */
  monitorOnly?: (target: SshTarget) => string | null;
  /** Runs being followed, shared by every request of this relay process. */
  runs?: Map<string, ActiveRun>;
  /** How often a running upgrade's log is polled. Default 1 s. */
  pollIntervalMs?: number;
  /** How often SSH is tried while a rebooted host is down. Default 5 s. */
  rebootRetryMs?: number;
  /** Where notify.send may deliver (PATCHMAN_NOTIFY_ALLOW); absent = nowhere. */
  notifyAllow?: NotifyAllowlist;
  /** The relay's local log (never forwarded). */
  log?: (line: string) => void;
}
