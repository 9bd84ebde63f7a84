// SSH to managed hosts over ssh2: key authentication only, host keys pinned on first use,
// failures mapped to the protocol's error codes with messages an operator can act on.
import ssh2 from 'ssh2';
import type { Client as SshClient, ClientChannel, KexAlgorithm } from 'ssh2';
import { OpError } from './errors.ts';
import type { KnownHosts, HostKeyCheck } from './known-hosts.ts';
import { fingerprintOfBlob } from './keys.ts';

const { Client } = ssh2;

export interface SshTarget {
  address: string;
  port: number;
  user: string;
  /** A Proxmox guest reached through this node (relay/proxmox/target.ts); openSession
   * itself always connects to the node. */
  guest?: { kind: 'lxc' | 'qemu'; vmid: number };
}

export interface SshContext {
  privateKey: string;
  knownHosts: KnownHosts;
  /** TCP connect + handshake + authentication, in ms. Default 10 000. */
  connectTimeoutMs?: number;
}

export interface ExecOptions {
  /** After this long, stop waiting: throw a 'timeout' OpError, send SIGKILL (best effort, see
   * signalChannel) and close the channel. Default: no limit. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. Without it stdin is closed at once. */
  stdin?: string;
  /** Per stream (stdout, stderr). Exceeding it kills the command ('command-failed'). Default 16 MiB. */
  maxOutputBytes?: number;
  /** Also return stdout as raw bytes (`stdoutBytes`): for byte offsets into a remote file. */
  binary?: boolean;
  /** Hand stdout to this as it arrives instead of collecting it (a followed log); the
   * result's stdout is then empty and maxOutputBytes does not apply to it. */
  onStdout?: (chunk: Buffer) => void;
  /** Stop the command (as on a timeout) and reject with an 'internal' OpError. */
  signal?: AbortSignal;
}

export interface ExecResult {
  /** Exit status, or null when the command died from a signal. */
  code: number | null;
  /** Signal name without the SIG prefix (e.g. 'KILL'), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Raw stdout, when asked for with `binary`. */
  stdoutBytes?: Buffer;
}

export interface SshSession {
  readonly target: SshTarget;
  /** The host key the server presented (`SHA256:…`), and whether it was pinned by this connection. */
  readonly hostKey: { fingerprint: string; pinnedNow: boolean };
  /** The negotiated key exchange, e.g. 'curve25519-sha256'. */
  readonly kex: string | undefined;
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  close(): void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/** Key exchange preference: curve25519-sha256 (RFC 8731) first, then the ssh2 defaults.
 * ssh2's own default list puts the pre-standard `@libssh.org` alias first. */
export const KEX_ALGORITHMS = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group-exchange-sha256',
  'diffie-hellman-group14-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
];

export function describeTarget(t: SshTarget): string {
  const host = t.address.includes(':') ? `[${t.address}]` : t.address;
  const guest = t.guest ? ` (${t.guest.kind === 'lxc' ? 'CT' : 'VM'} ${t.guest.vmid})` : '';
  return `${t.user}@${host}:${t.port}${guest}`;
}

function hostPort(t: SshTarget): string {
  return t.address.includes(':') ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`;
}

type SshError = Error & { level?: string; code?: string };

function mapConnectError(err: SshError, t: SshTarget, timeoutMs: number, hostCheck: HostKeyCheck | undefined): OpError {
  if (hostCheck && !hostCheck.ok) {
    return new OpError(
      'host-key-changed',
      `The host key of ${hostPort(t)} has changed: pinned ${hostCheck.expected}, now offered ${hostCheck.got}. ` +
        'If the host was reinstalled or its SSH keys were regenerated, accept the new key; otherwise treat this as a possible attack.',
      { cause: err, hostKey: { pinned: hostCheck.expected, offered: hostCheck.got } },
    );
  }
  const where = hostPort(t);
  switch (err.code) {
    case 'ECONNREFUSED':
      return new OpError('unreachable', `Cannot reach ${where}: connection refused (is sshd running on port ${t.port}?)`, { cause: err });
    case 'EHOSTUNREACH':
      return new OpError('unreachable', `Cannot reach ${where}: no route to host`, { cause: err });
    case 'ENETUNREACH':
      return new OpError('unreachable', `Cannot reach ${where}: network unreachable`, { cause: err });
    case 'ENOTFOUND':
    case 'EAI_NONAME':
      return new OpError('unreachable', `Cannot reach ${where}: host name ${t.address} not found`, { cause: err });
    case 'EAI_AGAIN':
      return new OpError('unreachable', `Cannot reach ${where}: DNS lookup for ${t.address} failed (temporary)`, { cause: err });
    case 'ECONNRESET':
    case 'EPIPE':
      return new OpError('unreachable', `Connection to ${where} was reset during the SSH handshake`, { cause: err });
    case 'ETIMEDOUT':
      return new OpError('timeout', `Connecting to ${where} timed out`, { cause: err });
  }
  if (err.level === 'client-timeout') {
    return new OpError('timeout', `No SSH session with ${where} within ${Math.round(timeoutMs / 100) / 10} s`, { cause: err });
  }
  if (err.level === 'client-authentication') {
    return new OpError(
      'auth-refused',
      `SSH key not accepted for ${describeTarget(t)} — add the relay's public key to authorized_keys`,
      { cause: err },
    );
  }
  if (err.level === 'handshake' || err.level === 'protocol') {
    return new OpError('unreachable', `SSH handshake with ${where} failed: ${err.message}`, { cause: err });
  }
  return new OpError('unreachable', `SSH connection to ${where} failed: ${err.message}`, { cause: err });
}

/** Connect and authenticate. Resolves once the session is ready for commands. */
export function openSession(target: SshTarget, ctx: SshContext): Promise<SshSession> {
  const timeoutMs = ctx.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const client = new Client();
  let hostCheck: HostKeyCheck | undefined;
  let fingerprint = '';
  let kex: string | undefined;
  let hostKeyStoreError: unknown;

  return new Promise<SshSession>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      client.removeAllListeners('ready');
      client.on('error', () => {}); // late errors from the dying connection
      client.end();
      reject(e);
    };

    client.on('handshake', (negotiated) => {
      kex = negotiated.kex;
    });
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      client.removeAllListeners('error');
      client.removeAllListeners('close');
      resolve(new Session(client, target, { fingerprint, pinnedNow: hostCheck?.ok === true && hostCheck.pinnedNow }, kex));
    });
    client.on('error', (err: SshError) => {
      if (hostKeyStoreError) return fail(hostKeyStoreError);
      fail(mapConnectError(err, target, timeoutMs, hostCheck));
    });
    client.on('close', () => {
      if (hostKeyStoreError) return fail(hostKeyStoreError);
      if (hostCheck && !hostCheck.ok) return fail(mapConnectError(new Error('host key mismatch'), target, timeoutMs, hostCheck));
      fail(new OpError('unreachable', `SSH connection to ${hostPort(target)} closed before the session was ready`));
    });

    try {
      client.connect({
        host: target.address,
        port: target.port,
        username: target.user,
        privateKey: ctx.privateKey,
        readyTimeout: timeoutMs,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 4,
        tryKeyboard: false,
        algorithms: { kex: KEX_ALGORITHMS as KexAlgorithm[] },
        // Without hostHash, ssh2 hands us the raw public key blob.
        hostVerifier: (key: Buffer) => {
          fingerprint = fingerprintOfBlob(key);
          try {
            hostCheck = ctx.knownHosts.check(target.address, target.port, key);
          } catch (e) {
            hostKeyStoreError = e; // e.g. the store could not be written: refuse rather than go unpinned
            return false;
          }
          return hostCheck.ok;
        },
      });
      // Nagle's algorithm would hold each exec's small packets (channel open, exec request,
      // stdin, EOF) until the previous one is ACKed, and the server's delayed ACK turns every
      // round trip into 40 ms or more. Applied by Node once the socket connects.
      client.setNoDelay(true);
    } catch (e) {
      // ssh2 throws synchronously for a bad private key; never echo the key itself.
      const msg = e instanceof Error && /private key|privateKey|parse/i.test(e.message) ? 'the relay private key could not be used' : 'could not start the SSH connection';
      fail(new Error(msg));
    }
  });
}

/** Send a `signal` channel request (RFC 4254 §6.9; OpenSSH ≥ 7.8 delivers it with killpg to
 * the session's process group). ssh2's public `channel.signal()` is silently a no-op once we
 * have sent EOF on stdin, which every exec does, so this goes to the protocol layer directly.
 * Best effort: OpenSSH refuses signals for root logins ("session signalling requires
 * privilege separation": root sessions skip post-auth privsep), and there the command keeps
 * running until it finishes or writes to the closed channel (SIGPIPE). Closing the channel
 * always ends our side. */
function signalChannel(ch: ClientChannel, name: string): void {
  const c = ch as unknown as {
    type?: string;
    outgoing?: { id?: number; state?: string };
    _client?: { _protocol?: { signal?: (id: number, signal: string) => void } };
  };
  try {
    const proto = c._client?._protocol;
    if (c.type === 'session' && (c.outgoing?.state === 'open' || c.outgoing?.state === 'eof') && typeof c.outgoing.id === 'number' && typeof proto?.signal === 'function') {
      proto.signal(c.outgoing.id, name);
    }
  } catch {
    /* the connection is already gone */
  }
}

class Session implements SshSession {
  readonly target: SshTarget;
  readonly hostKey: { fingerprint: string; pinnedNow: boolean };
  readonly kex: string | undefined;
  #client: SshClient;
  #closed = false;
  #lost: OpError | undefined;
  #pending = new Set<(err: OpError) => void>();

  constructor(client: SshClient, target: SshTarget, hostKey: { fingerprint: string; pinnedNow: boolean }, kex: string | undefined) {
    this.#client = client;
    this.target = target;
    this.hostKey = hostKey;
    this.kex = kex;
    client.on('error', (err: SshError) => {
      this.#lost ??= new OpError('unreachable', `SSH connection to ${hostPort(target)} failed: ${err.message}`);
    });
    client.on('close', () => {
      const err = this.#lost ?? new OpError('unreachable', `SSH connection to ${hostPort(target)} was lost`);
      this.#lost = err;
      for (const failPending of [...this.#pending]) failPending(err);
    });
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const where = hostPort(this.target);
    if (this.#closed) return Promise.reject(new OpError('internal', 'SSH session already closed'));
    if (this.#lost) return Promise.reject(this.#lost);
    const maxOutput = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;

    return new Promise<ExecResult>((resolve, reject) => {
      let settled = false;
      let stream: ClientChannel | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;

      const kill = (): void => {
        if (!stream) return;
        signalChannel(stream, 'KILL');
        try {
          stream.close();
        } catch {
          /* already closed */
        }
      };
      const finish = (err: OpError | undefined, result?: ExecResult): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        this.#pending.delete(onLost);
        if (err) reject(err);
        else resolve(result!);
      };
      const onLost = (err: OpError): void => finish(err);
      this.#pending.add(onLost);
      if (opts.signal) {
        const onAbort = (): void => {
          finish(new OpError('internal', `Command on ${where} was stopped`));
          kill();
        };
        if (opts.signal.aborted) onAbort();
        else opts.signal.addEventListener('abort', onAbort, { once: true });
      }

      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          // Settle now: on a hung connection the channel's close may never come back.
          finish(new OpError('timeout', `Command on ${where} did not finish within ${Math.round(opts.timeoutMs! / 100) / 10} s and was stopped`));
          kill();
        }, opts.timeoutMs);
      }

      try {
        this.#client.exec(command, (err, ch) => {
          if (err) return finish(new OpError('command-failed', `Could not start a command on ${where}: ${err.message}`));
          stream = ch;
          if (settled) return kill(); // timed out or lost while the channel was opening

          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let outLen = 0;
          let errLen = 0;
          let code: number | null = null;
          let signal: string | null = null;
          let sawExit = false;

          const tooMuch = (): void => {
            finish(new OpError('command-failed', `Command on ${where} produced more than ${maxOutput} bytes of output and was stopped`));
            kill();
          };
          ch.on('data', (chunk: Buffer) => {
            if (opts.onStdout) return void (settled || opts.onStdout(chunk));
            outLen += chunk.length;
            if (outLen > maxOutput) return tooMuch();
            out.push(chunk);
          });
          ch.stderr.on('data', (chunk: Buffer) => {
            errLen += chunk.length;
            if (errLen > maxOutput) return tooMuch();
            errOut.push(chunk);
          });
          ch.on('exit', (c: number | null, sig?: string) => {
            sawExit = true;
            if (typeof c === 'number') code = c;
            else signal = sig ?? null;
          });
          ch.on('close', () => {
            if (!sawExit && this.#lost) return finish(this.#lost);
            const stdoutBytes = Buffer.concat(out);
            finish(undefined, {
              code,
              signal,
              stdout: stdoutBytes.toString('utf8'),
              stderr: Buffer.concat(errOut).toString('utf8'),
              ...(opts.binary ? { stdoutBytes } : {}),
            });
          });
          ch.end(opts.stdin ?? undefined);
        });
      } catch (e) {
        finish(this.#lost ?? new OpError('unreachable', `SSH connection to ${where} is not usable: ${(e as Error).message}`));
      }
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.end();
  }
}
