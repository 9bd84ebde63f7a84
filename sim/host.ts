// One simulated SSH host: an ssh2 Server on its own address/port with its own ed25519 host
// key, public-key authentication against an authorised list, and `exec` requests answered
// from a table of recorded outputs (exact match of the command line, and of stdin for the
// commands that read a script from it). Anything not in the table gets exit 127 and a
// stderr line, so a command the relay changed is caught instead of silently "working".
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel, AuthContext, ParsedKey, PublicKeyAuthContext } from 'ssh2';

const { Server, utils } = ssh2;

/** What a command prints and how it ends. */
export interface Reply {
  /** A Buffer for output that is not text (a slice of a log at a byte offset). */
  stdout?: string | Buffer;
  stderr?: string;
  /** Exit status (default 0). */
  code?: number;
  /** Instead of ending the command: write the first half of stdout, then cut every TCP
   * connection of the host (no SSH disconnect), as a network failure would. */
  dropConnections?: boolean;
  /** Called once the reply has been sent (e.g. a reboot: the host goes down after saying OK). */
  after?: () => void;
  /** Answer this much later than the host's usual latency (a command that waits, e.g. a
   * follow of a run's log). */
  delayMs?: number;
}

export interface ExecInfo {
  command: string;
  /** Everything the client wrote to stdin (only collected for commands that read stdin). */
  stdin: string | null;
  user: string;
}

/** How a host answers commands. `readsStdin(command)` says whether to wait for stdin's EOF
 * before answering (a shell reading a script); `reply` returns undefined for an unknown
 * command. `kind` names the command for per-command latency ("probe", "apt-update", …). */
export interface CommandTable {
  readsStdin(command: string): boolean;
  reply(exec: ExecInfo): { kind: string; reply: Reply } | undefined;
  /** Told the host it answers for (a table that reboots it or cuts its connections). */
  attach?(host: SimHost): void;
}

export type FailureMode =
  /** Nothing listens on the host's address/port: connection refused. */
  | 'refuse'
  /** The TCP connection is accepted but no SSH banner ever comes: connect timeout. */
  | 'hang-connect'
  /** Authentication works, every command hangs forever: command timeout. */
  | 'hang-command'
  /** Every public key is refused. */
  | 'auth-refused'
  /** Commands start, print part of their output, then the TCP connection drops. */
  | 'drop'
  /** The login user is not root and sudo wants a password (sudo -n fails). */
  | 'sudo-password'
  /** The host presents a different (rotated) host key from the one it had before. */
  | 'host-key-changed'
  /** Upgrades fail: another apt/dpkg (pacman) holds the lock (the real message, exit 100 / 1). */
  | 'lock-held'
  /** Upgrades fail: an earlier dpkg run was interrupted (apt's real message, exit 100). */
  | 'dpkg-interrupted'
  /** Every SSH connection drops once while an upgrade runs; the run itself goes on. */
  | 'drop-during-run'
  /** The host goes down on reboot and stays down (until the failure is cleared). */
  | 'reboot-no-return'
  /** The disk fills up while an upgrade logs: the log stops half-way and apt fails (exit 100). */
  | 'disk-full';

export const FAILURE_MODES: readonly FailureMode[] = [
  'refuse',
  'hang-connect',
  'hang-command',
  'auth-refused',
  'drop',
  'sudo-password',
  'host-key-changed',
  'lock-held',
  'dpkg-interrupted',
  'drop-during-run',
  'reboot-no-return',
  'disk-full',
];

export interface Latency {
  /** Added before each command answers, in ms. */
  commandMs?: number;
  /** Uniformly random extra 0…jitterMs on top. */
  jitterMs?: number;
  /** Per command kind (see CommandTable), replacing commandMs for that kind. */
  perKind?: Record<string, number>;
  /** Delay before the SSH banner is sent (a slow network/handshake). */
  connectMs?: number;
}

export interface UnknownCommand {
  host: string;
  command: string;
  stdinBytes: number;
}

export interface HostOptions {
  name: string;
  address: string;
  /** 0: any free port. */
  port: number;
  hostKey: string;
  /** Presented instead of hostKey in failure mode 'host-key-changed'. */
  rotatedHostKey: string;
  authorizedKeys: string[];
  table: CommandTable;
  failure?: FailureMode | null;
  latency?: Latency;
  /** The SSH identification after "SSH-2.0-". */
  ident?: string;
  onUnknownCommand?: (u: UnknownCommand) => void;
  /** Told about every command answered (for counters). */
  onExec?: (host: string, kind: string) => void;
}

function parsePublicKeys(keys: string[]): ParsedKey[] {
  const out: ParsedKey[] = [];
  for (const k of keys) {
    const parsed = utils.parseKey(k.trim());
    if (parsed instanceof Error) throw new Error(`authorized key not readable: ${parsed.message}`);
    out.push(Array.isArray(parsed) ? parsed[0] : parsed);
  }
  return out;
}

export function publicKeyBlob(privateKey: string): Buffer {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw parsed;
  return (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH();
}

/** A simulated host. `start()` binds (unless failure is 'refuse'), `stop()` unbinds and drops
 * every connection; `setFailure()` switches modes at run time; `goDown()` takes it off the
 * network for a while (a reboot). */
export class SimHost {
  readonly name: string;
  readonly address: string;
  port: number;
  failure: FailureMode | null;
  latency: Latency;
  #opts: HostOptions;
  #authorized: ParsedKey[];
  #net: NetServer | null = null;
  #ssh: { normal: InstanceType<typeof Server>; rotated: InstanceType<typeof Server> };
  #sockets = new Set<Socket>();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;
  /** Down (rebooting): nothing listens. `#onBack` runs when it comes back. */
  #down = false;
  #downTimer: ReturnType<typeof setTimeout> | null = null;
  #onBack: (() => void) | null = null;

  constructor(opts: HostOptions) {
    this.#opts = opts;
    this.name = opts.name;
    this.address = opts.address;
    this.port = opts.port;
    this.failure = opts.failure ?? null;
    this.latency = opts.latency ?? {};
    this.#authorized = parsePublicKeys(opts.authorizedKeys);
    const ident = opts.ident ?? 'OpenSSH_9.2p1 PatchManSim';
    const make = (key: string) => new Server({ hostKeys: [key], ident }, (client: Connection) => this.#onClient(client));
    this.#ssh = { normal: make(opts.hostKey), rotated: make(opts.rotatedHostKey) };
    opts.table.attach?.(this);
  }

  get isDown(): boolean {
    return this.#down;
  }

  async start(): Promise<void> {
    if (this.failure === 'refuse') {
      if (this.port === 0) this.port = await reservePort(this.address);
      return;
    }
    await this.#listen();
  }

  async #listen(): Promise<void> {
    if (this.#net) return;
    const srv = createServer((sock) => this.#onSocket(sock));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen({ host: this.address, port: this.port, backlog: 4096 }, () => {
        srv.off('error', reject);
        resolve();
      });
    });
    srv.on('error', () => {});
    this.#net = srv;
    this.port = (srv.address() as { port: number }).port;
  }

  async #unlisten(): Promise<void> {
    const srv = this.#net;
    this.#net = null;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
  }

  async setFailure(mode: FailureMode | null): Promise<void> {
    this.failure = mode;
    if (mode === 'refuse') await this.#unlisten();
    else if (this.#down && this.#downTimer === null && mode !== 'reboot-no-return') await this.comeBack(); // down for good: cleared
    else if (!this.#stopped && !this.#down) await this.#listen();
  }

  /** Cut every TCP connection (no SSH disconnect message), keep listening. */
  dropConnections(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  /** Go off the network: every connection drops, new ones are refused. Back after `downMs`
   * (null: not until comeBack() or the failure is cleared); `onBack` runs just before it
   * listens again. */
  goDown(downMs: number | null, onBack: () => void): void {
    if (this.#down || this.#stopped) return;
    this.#down = true;
    this.#onBack = onBack;
    void this.#unlisten();
    if (downMs !== null) this.#downTimer = setTimeout(() => void this.comeBack(), downMs);
  }

  async comeBack(): Promise<void> {
    if (!this.#down) return;
    if (this.#downTimer) clearTimeout(this.#downTimer);
    this.#downTimer = null;
    this.#down = false;
    const onBack = this.#onBack;
    this.#onBack = null;
    onBack?.();
    if (!this.#stopped && this.failure !== 'refuse') await this.#listen();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#downTimer) clearTimeout(this.#downTimer);
    this.#downTimer = null;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await this.#unlisten();
  }

  #later(ms: number, fn: () => void): void {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  #onSocket(sock: Socket): void {
    this.#sockets.add(sock);
    sock.once('close', () => this.#sockets.delete(sock));
    sock.on('error', () => {});
    sock.setNoDelay(true);
    if (this.failure === 'hang-connect') return; // never say anything
    const server = this.failure === 'host-key-changed' ? this.#ssh.rotated : this.#ssh.normal;
    this.#later(this.latency.connectMs ?? 0, () => {
      if (!sock.destroyed) server.injectSocket(sock);
    });
  }

  #checkKey(ctx: PublicKeyAuthContext): boolean {
    for (const key of this.#authorized) {
      if (ctx.key.algo !== key.type && !(key.type === 'ssh-rsa' && ctx.key.algo.startsWith('rsa-sha2-'))) continue;
      if (!ctx.key.data.equals(key.getPublicSSH())) continue;
      if (!ctx.signature) return true; // the "would this key do?" query
      return ctx.blob !== undefined && key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
    }
    return false;
  }

  #onClient(client: Connection): void {
    let user = '';
    client.on('error', () => {});
    client.on('authentication', (ctx: AuthContext) => {
      if (ctx.method === 'publickey' && this.failure !== 'auth-refused' && this.#checkKey(ctx)) {
        user = ctx.username;
        return ctx.accept();
      }
      ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, _reject, info) => {
          const ch = accept();
          this.#onExec(client, ch, info.command, user);
        });
        session.on('env', (accept) => accept?.());
        session.on('pty', (_accept, reject) => reject?.());
        session.on('shell', (_accept, reject) => reject?.());
        session.on('subsystem', (_accept, reject) => reject?.());
        session.on('signal', (accept) => accept?.());
      });
    });
  }

  #onExec(client: Connection, ch: ServerChannel, command: string, user: string): void {
    ch.on('error', () => {});
    // (stderr written after the client went away errors on its own stream)
    ch.stderr.on('error', () => {});
    const readsStdin = this.#opts.table.readsStdin(command);
    const chunks: Buffer[] = [];
    let stdinBytes = 0;
    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      const stdin = readsStdin ? Buffer.concat(chunks).toString('utf8') : null;
      this.#answer(client, ch, { command, stdin, user }, stdinBytes);
    };
    ch.on('data', (d: Buffer) => {
      stdinBytes += d.length;
      if (readsStdin && stdinBytes <= 1024 * 1024) chunks.push(d);
    });
    if (readsStdin) ch.once('end', answer);
    else answer();
  }

  #answer(client: Connection, ch: ServerChannel, exec: ExecInfo, stdinBytes: number): void {
    if (this.failure === 'hang-command') return; // the channel stays open, silent
    const found = this.#opts.table.reply(exec);
    if (!found) {
      this.#opts.onUnknownCommand?.({ host: this.name, command: exec.command, stdinBytes });
      const shown = exec.command.length > 200 ? exec.command.slice(0, 200) + '…' : exec.command;
      return this.#finish(ch, 'unknown', {
        stderr: `patchman-sim: no recorded output for this command${exec.stdin !== null ? ` with this stdin (${stdinBytes} bytes)` : ''}: ${shown}\n`,
        code: 127,
      });
    }
    this.#opts.onExec?.(this.name, found.kind);
    const l = this.latency;
    const delay = (l.perKind?.[found.kind] ?? l.commandMs ?? 0) + (l.jitterMs ? Math.random() * l.jitterMs : 0) + (found.reply.delayMs ?? 0);
    this.#later(Math.round(delay), () => {
      if (this.failure === 'drop' || found.reply.dropConnections) {
        const out = found.reply.stdout ?? '';
        try {
          ch.write(out.slice(0, Math.floor(out.length / 2)));
        } catch {
          /* gone */
        }
        // Let the partial output reach the client, then cut the TCP connection(s) (no SSH disconnect).
        this.#later(20, () => {
          if (found.reply.dropConnections) this.dropConnections();
          else (client as unknown as { _sock?: Socket })._sock?.destroy();
        });
        return;
      }
      this.#finish(ch, found.kind, found.reply);
    });
  }

  #finish(ch: ServerChannel, _kind: string, r: Reply): void {
    try {
      if (r.stdout && r.stdout.length > 0) ch.write(r.stdout);
      if (r.stderr) ch.stderr.write(r.stderr);
      ch.exit(r.code ?? 0);
      ch.end();
    } catch {
      /* the client went away */
    }
    r.after?.();
  }
}

/** A port that was free on `address` a moment ago and that nothing listens on now. */
export async function reservePort(address: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host: address, port: 0 }, () => resolve());
  });
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
