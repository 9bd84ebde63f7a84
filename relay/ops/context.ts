// What every operation handler gets besides its validated params.
import type { KnownHosts } from '../known-hosts.ts';

export interface OpContext {
  /** The relay's OpenSSH private key. Secret: never put it in a message or a log line. */
  privateKey: string;
  knownHosts: KnownHosts;
  /** TCP connect + SSH handshake + authentication. Default 10 s (relay/ssh.ts). */
  connectTimeoutMs?: number;
  /** Limit for each remote command an operation runs. Each operation has its own default. */
  commandTimeoutMs?: number;
}
