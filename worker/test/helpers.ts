// Helpers for Worker tests: call the Worker, and play the part of a relay on a real
// WebSocket through /relay/connect.
import { env, exports } from 'cloudflare:workers';
import { PROTOCOL_VERSION } from '../../protocol/relay.ts';
import type { Env } from '../env.ts';
import { ADMIN_TOKEN } from './auth.ts';

export { ADMIN_TOKEN };

export const testEnv = env as unknown as Env;
const worker = (exports as unknown as { default: Fetcher }).default;

/** Call the Worker. Signed with the admin API token unless `anonymous` or the caller sets
 * its own Authorization or Cookie header. */
export function api(path: string, init: RequestInit & { json?: unknown; anonymous?: boolean; base?: string } = {}): Promise<Response> {
  const { json, anonymous, base = 'http://patchman.test', ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) headers.set('Content-Type', 'application/json');
  if (!anonymous && !headers.has('Authorization') && !headers.has('Cookie')) headers.set('Authorization', `Bearer ${ADMIN_TOKEN}`);
  return worker.fetch(`${base}${path}`, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body });
}

export async function createRelay(name = 'lab'): Promise<{ id: string; token: string }> {
  const res = await api('/api/relays', { method: 'POST', json: { name } });
  if (res.status !== 201) throw new Error(`create relay: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { relay: { id: string }; token: string };
  return { id: body.relay.id, token: body.token };
}

export const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7kq9r2x0lQm8Y3o3VqkHkz0y8i7c5l4t6Wm1bC0aDe patchman-relay@test';

/** A fake relay: a real WebSocket into the Worker, with a queue of received messages. */
export class FakeRelay {
  ws!: WebSocket;
  inbox: any[] = [];
  closed: { code: number; reason: string } | null = null;
  #waiters: (() => void)[] = [];

  static async connect(token: string, hello: Record<string, unknown> | null = {}): Promise<FakeRelay> {
    const r = new FakeRelay();
    const res = await api('/relay/connect', { headers: { Upgrade: 'websocket', Authorization: `Bearer ${token}` } });
    if (!res.webSocket) throw new Error(`no websocket: ${res.status} ${await res.text()}`);
    r.ws = res.webSocket;
    r.ws.accept();
    r.ws.addEventListener('message', (e) => {
      r.inbox.push(JSON.parse(e.data as string));
      r.#wake();
    });
    r.ws.addEventListener('close', (e) => {
      r.closed = { code: e.code, reason: e.reason };
      r.#wake();
    });
    if (hello) {
      r.send({ type: 'hello', v: PROTOCOL_VERSION, version: '0.1.0-test', publicKey: PUBLIC_KEY, hostname: 'relaybox', ...hello });
      const welcome = await r.next();
      if (welcome.type !== 'welcome') throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`);
    }
    return r;
  }

  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(msg: unknown) {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  async next(timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.closed) throw new Error(`socket closed ${this.closed.code} ${this.closed.reason}`);
      if (Date.now() > deadline) throw new Error('no message in time');
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.inbox.shift();
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('socket not closed in time');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }
}

export async function until<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Scan a host through the fake relay, answering with `result`; resolves once the job succeeded. */
export async function scanHost(relay: FakeRelay, hostId: string, result: unknown): Promise<void> {
  const { jobId } = (await (await api(`/api/hosts/${hostId}/scan`, { method: 'POST' })).json()) as { jobId: string };
  const req = await relay.next();
  if (req.id !== jobId) throw new Error(`the relay was sent ${req.id}, not the scan ${jobId}`);
  relay.send({ type: 'response', id: jobId, ok: true, result });
  await until(async () => ((await (await api(`/api/jobs/${jobId}`)).json()) as { status: string }).status === 'succeeded');
}

/** The D1 binding, counting each round trip (a batch, or one statement's run/all/raw/first). */
export function countingD1(d1: D1Database): { d1: D1Database; calls: string[]; batchSizes: number[] } {
  const calls: string[] = [];
  const batchSizes: number[] = [];
  const watch = (stmt: D1PreparedStatement): D1PreparedStatement => {
    for (const m of ['run', 'all', 'raw', 'first'] as const) {
      const real = (stmt[m] as (...a: unknown[]) => unknown).bind(stmt);
      Object.assign(stmt, { [m]: (...a: unknown[]) => (calls.push(m), real(...a)) });
    }
    const bind = stmt.bind.bind(stmt);
    return Object.assign(stmt, { bind: (...a: unknown[]) => watch(bind(...a)) });
  };
  const counted = {
    prepare: (query: string) => watch(d1.prepare(query)),
    batch: (stmts: D1PreparedStatement[]) => (calls.push('batch'), batchSizes.push(stmts.length), d1.batch(stmts)),
    exec: (query: string) => (calls.push('exec'), d1.exec(query)),
    dump: () => d1.dump(),
    withSession: () => {
      throw new Error('not counted');
    },
  };
  return { d1: counted as unknown as D1Database, calls, batchSizes };
}
