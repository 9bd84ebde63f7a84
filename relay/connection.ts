// The relay's one outbound WebSocket to the Worker: hello, heartbeats, requests in,
// responses out, and reconnects with backoff after any drop.
import WebSocket from 'ws';
import * as v from 'valibot';
import {
  Close,
  HEARTBEAT_INTERVAL_MS,
  PING,
  PROTOCOL_FEATURES,
  PROTOCOL_VERSION,
  ToRelay,
  agreedFeatures,
  decode,
  type FromRelay,
  type Request,
} from '../protocol/relay.ts';
import { backoffDelay } from './backoff.ts';
import { GATHER_MS, Outbox } from './outbox.ts';

type RequestMsg = v.InferOutput<typeof Request>;
type HelloMsg = Extract<FromRelay, { type: 'hello' }>;
type ResponseMsg = Extract<FromRelay, { type: 'response' }>;
type OutputMsg = Extract<FromRelay, { type: 'output' }>;

export interface ConnectionOptions {
  /** Base URL of the Worker, http(s)://… */
  url: string;
  token: string;
  hello: Omit<HelloMsg, 'type' | 'v' | 'features'>;
  /** Runs a request; `send` streams its output to the Worker while it runs. */
  onRequest: (req: RequestMsg, send: (msg: OutputMsg) => void) => Promise<ResponseMsg>;
  log?: (line: string) => void;
  /** Requests run at once at most; the rest wait their turn. */
  concurrency?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  heartbeatMs?: number;
  pongTimeoutMs?: number;
  /** How long answers are gathered into one frame (relay/outbox.ts GATHER_MS). */
  gatherMs?: number;
}

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'stopped';

export function connectUrl(base: string): string {
  const u = new URL('/relay/connect', base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

export class RelayConnection {
  state: ConnectionState = 'idle';
  /** Reconnect attempts since the last successful welcome. */
  attempt = 0;
  relayName: string | null = null;
  #opts: Required<ConnectionOptions>;
  #ws: WebSocket | null = null;
  /** Answers for the current socket, batched once its welcome accepted `batch`; null before. */
  #outbox: Outbox | null = null;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #pongDue: ReturnType<typeof setTimeout> | null = null;
  #running = 0;
  /** Requests waiting their turn, with the socket each came on. */
  #queue: (RequestMsg & { via: WebSocket })[] = [];
  #listeners = new Set<(s: ConnectionState) => void>();

  constructor(opts: ConnectionOptions) {
    this.#opts = {
      log: (line) => console.log(line),
      concurrency: 32,
      initialBackoffMs: 1000,
      maxBackoffMs: 60_000,
      heartbeatMs: HEARTBEAT_INTERVAL_MS,
      pongTimeoutMs: 10_000,
      gatherMs: GATHER_MS,
      ...opts,
    };
  }

  onState(fn: (s: ConnectionState) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#setState('stopped');
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#stopHeartbeat();
    const ws = this.#ws;
    this.#outbox?.flush();
    this.#outbox = null;
    this.#ws = null;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000, 'relay stopping');
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000).unref();
      });
    }
  }

  #setState(s: ConnectionState): void {
    if (this.state === s) return;
    this.state = s;
    for (const fn of this.#listeners) fn(s);
  }

  #connect(): void {
    if (this.state === 'stopped') return;
    this.#setState('connecting');
    const url = connectUrl(this.#opts.url);
    const ws = new WebSocket(url, {
      headers: { Authorization: `Bearer ${this.#opts.token}` },
      handshakeTimeout: 15_000,
      maxPayload: 16 * 1024 * 1024,
      // No permessage-deflate (ws offers it by default and the Worker accepts): every request
      // and answer would be compressed on both ends — CPU on the relay's small box and on the
      // Worker for a few kB of JSON each (measured: 3 % of the Worker's CPU in "Scan all").
      perMessageDeflate: false,
    });
    this.#ws = ws;
    let unexpected: string | null = null;
    let opened = false;

    ws.on('unexpected-response', (_req, res) => {
      unexpected =
        res.statusCode === 401
          ? 'the Worker refused the relay token (401): check PATCHMAN_RELAY_TOKEN'
          : `the Worker answered HTTP ${res.statusCode} instead of a WebSocket`;
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      opened = true;
      this.#send({ type: 'hello', v: PROTOCOL_VERSION, ...this.#opts.hello, features: [...PROTOCOL_FEATURES] });
      this.#startHeartbeat(ws);
    });
    ws.on('message', (data, isBinary) => this.#onMessage(ws, isBinary ? null : data.toString()));
    ws.on('pong', () => {}); // transport-level pongs are not used; heartbeats are messages
    ws.on('error', (err) => {
      unexpected ??= err.message;
    });
    ws.on('close', (code, reasonBuf) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#outbox?.drop();
      this.#outbox = null;
      this.#stopHeartbeat();
      if (this.state === 'stopped') return;
      const reason = unexpected ?? `code ${code}${reasonBuf.length ? `: ${reasonBuf.toString()}` : ''}`;
      const delay = backoffDelay(this.attempt++, { initialMs: this.#opts.initialBackoffMs, maxMs: this.#opts.maxBackoffMs });
      const what = opened ? 'disconnected from' : 'could not connect to';
      this.#opts.log(`relay: ${what} ${this.#opts.url} (${reason}); reconnecting in ${(delay / 1000).toFixed(1)} s`);
      this.#setState('waiting');
      const t = setTimeout(() => {
        this.#timers.delete(t);
        this.#connect();
      }, delay);
      this.#timers.add(t);
    });
  }

  #onMessage(ws: WebSocket, text: string | null): void {
    const msg = decode(ToRelay, text);
    if (!msg.ok) {
      this.#opts.log(`relay: invalid message from the Worker (${msg.reason}); closing`);
      ws.close(Close.invalidMessage, `invalid message: ${msg.reason}`.slice(0, 120));
      return;
    }
    const m = msg.value;
    switch (m.type) {
      case 'pong':
        if (this.#pongDue) clearTimeout(this.#pongDue);
        this.#pongDue = null;
        return;
      case 'welcome':
        if (m.v !== PROTOCOL_VERSION) {
          ws.close(Close.versionMismatch, `protocol ${m.v} is not supported`);
          return;
        }
        this.attempt = 0;
        this.relayName = m.name;
        this.#outbox?.drop();
        this.#outbox = agreedFeatures(PROTOCOL_FEATURES, m.features).includes('batch') ? new Outbox((frame) => ws.readyState === WebSocket.OPEN && ws.send(frame), this.#opts.gatherMs) : null;
        if (m.concurrency) this.setConcurrency(m.concurrency);
        this.#setState('connected');
        this.#opts.log(`relay: connected to ${this.#opts.url} as "${m.name}" (protocol ${m.v})`);
        return;
      case 'request':
        this.#queue.push({ ...m, via: ws });
        this.#pump();
        return;
      case 'batch':
        for (const req of m.messages) this.#queue.push({ ...req, via: ws });
        this.#pump();
        return;
      case 'config':
        this.setConcurrency(m.concurrency);
        return;
    }
  }

  get concurrency(): number {
    return this.#opts.concurrency;
  }

  /** The scan-concurrency setting, from the Worker. */
  setConcurrency(n: number): void {
    if (n === this.#opts.concurrency) return;
    this.#opts.log(`relay: concurrency ${this.#opts.concurrency} → ${n}`);
    this.#opts.concurrency = n;
    this.#pump();
  }

  #pump(): void {
    while (this.#running < this.#opts.concurrency && this.#queue.length > 0) {
      const { via, ...req } = this.#queue.shift()!;
      this.#running++;
      this.#opts
        .onRequest(req, (msg) => void this.#send(msg))
        .catch((err): ResponseMsg => ({
          type: 'response',
          id: req.id,
          ok: false,
          error: { code: 'internal', message: err instanceof Error ? err.message : String(err) },
        }))
        .then((res) => {
          // A request from an earlier connection: the Worker re-sends it on this one (with
          // the log offset it holds), and that answer is the one that counts. This one may
          // come before the re-sent log and end the job with a hole in it.
          if (via !== this.#ws) {
            this.#opts.log(`relay: dropped the answer to ${req.id}: it was asked on an earlier connection`);
            return;
          }
          this.#send(res);
        })
        .finally(() => {
          this.#running--;
          this.#pump();
        });
    }
  }

  /** Sends when connected; a message for a dropped socket is lost (the Worker re-sends
   * long runs with the offset it has, and marks other jobs lost). Answers and output go
   * through the outbox when the Worker takes batches: output at once, answers gathered. */
  #send(msg: FromRelay): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    if (this.#outbox && (msg.type === 'response' || msg.type === 'output')) this.#outbox.push(JSON.stringify(msg), msg.type === 'output');
    else ws.send(JSON.stringify(msg));
    return true;
  }

  #startHeartbeat(ws: WebSocket): void {
    this.#stopHeartbeat();
    this.#heartbeat = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(PING);
      if (this.#pongDue) return;
      this.#pongDue = setTimeout(() => {
        this.#pongDue = null;
        this.#opts.log(`relay: no heartbeat answer in ${this.#opts.pongTimeoutMs / 1000} s; dropping the connection`);
        ws.terminate();
      }, this.#opts.pongTimeoutMs);
    }, this.#opts.heartbeatMs);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#pongDue) clearTimeout(this.#pongDue);
    this.#heartbeat = null;
    this.#pongDue = null;
  }
}
