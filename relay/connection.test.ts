// The relay's connection against a real WebSocket server standing in for the Worker
// (the Worker end is covered by worker/ tests and the end-to-end test).
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { PING, PONG, PROTOCOL_VERSION, Close } from '../protocol/relay.ts';
import { RelayConnection, connectUrl } from './connection.ts';
import { backoffDelay } from './backoff.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7kq9r2x0lQm8Y3o3VqkHkz0y8i7c5l4t6Wm1bC0aDe relay@test';

interface FakeWorker {
  url: string;
  wss: WebSocketServer;
  sockets: WebSocket[];
  received: any[];
  /** Each text frame as it came (a batch frame is one entry in it, its messages in `received`). */
  frames: string[];
  auth: (string | undefined)[];
  /** What each connection offered in Sec-WebSocket-Extensions. */
  extensions: (string | undefined)[];
  nextSocket(): Promise<WebSocket>;
  close(): Promise<void>;
}

async function fakeWorker(opts: { welcome?: boolean; answerPings?: boolean; perMessageDeflate?: boolean; features?: string[] } = {}): Promise<FakeWorker> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/relay/connect', perMessageDeflate: opts.perMessageDeflate ?? false });
  await new Promise((r) => wss.once('listening', r));
  const w: FakeWorker = {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    wss,
    sockets: [],
    received: [],
    frames: [],
    auth: [],
    extensions: [],
    nextSocket: () => new Promise((resolve) => wss.once('connection', (ws) => resolve(ws))),
    close: () => new Promise((r) => { for (const s of w.sockets) s.terminate(); wss.close(() => r()); }),
  };
  wss.on('connection', (ws, req) => {
    w.sockets.push(ws);
    w.auth.push(req.headers.authorization);
    w.extensions.push(req.headers['sec-websocket-extensions']);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text === PING) {
        if (opts.answerPings !== false) ws.send(PONG);
        return;
      }
      const msg = JSON.parse(text);
      w.frames.push(text);
      w.received.push(...(msg.type === 'batch' ? msg.messages : [msg]));
      if (msg.type === 'hello' && opts.welcome !== false) {
        ws.send(JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, relayId: 'r1', name: 'lab relay', ...(opts.features ? { features: opts.features } : {}) }));
      }
    });
  });
  return w;
}

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function relayTo(url: string, extra: Partial<ConstructorParameters<typeof RelayConnection>[0]> = {}) {
  const lines: string[] = [];
  const conn = new RelayConnection({
    url,
    token: 'pmr_secret-token-value',
    hello: { version: '0.1.0', publicKey: KEY, hostname: 'relaybox' },
    onRequest: async (req) => ({ type: 'response', id: req.id, ok: true, result: { echo: req.op } }),
    log: (l) => lines.push(l),
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    ...extra,
  });
  cleanup.push(() => conn.stop());
  return { conn, lines };
}

/** A fake Worker and a relay connected to it (welcomed). */
async function connected(workerOpts: Parameters<typeof fakeWorker>[0] = {}, relayOpts: Parameters<typeof relayTo>[1] = {}) {
  const w = await fakeWorker(workerOpts);
  cleanup.push(() => w.close());
  const { conn, lines } = relayTo(w.url, relayOpts);
  conn.start();
  await until(() => conn.state === 'connected');
  return { w, conn, lines };
}

describe('RelayConnection', () => {
  it('maps the Worker URL to its relay socket', () => {
    expect(connectUrl('https://pm.example.com')).toBe('wss://pm.example.com/relay/connect');
    expect(connectUrl('http://127.0.0.1:8787/')).toBe('ws://127.0.0.1:8787/relay/connect');
  });

  it('authenticates with the bearer token, says hello with its public key, and logs the connection without the token', async () => {
    const { w, conn, lines } = await connected();
    expect(w.auth[0]).toBe('Bearer pmr_secret-token-value');
    expect(w.received[0]).toEqual({ type: 'hello', v: PROTOCOL_VERSION, version: '0.1.0', publicKey: KEY, hostname: 'relaybox', features: ['batch'] });
    expect(lines.some((l) => l.includes('connected') && l.includes('lab relay'))).toBe(true);
    expect(lines.join('\n')).not.toContain('secret-token');
  });

  it('does not offer permessage-deflate, even to a server that would take it (CPU on both ends for small JSON)', async () => {
    const { w, conn } = await connected({ perMessageDeflate: true });
    expect(w.extensions).toEqual([undefined]);
    expect((w.sockets[0] as unknown as { extensions: string }).extensions).toBe('');
  });

  it('answers requests with correlated responses', async () => {
    const { w, conn } = await connected();
    w.sockets[0].send(JSON.stringify({ type: 'request', id: 'job-1', op: 'probe', params: {} }));
    w.sockets[0].send(JSON.stringify({ type: 'request', id: 'job-2', op: 'probe', params: {} }));
    await until(() => w.received.filter((m) => m.type === 'response').length === 2);
    const ids = w.received.filter((m) => m.type === 'response').map((m) => m.id).sort();
    expect(ids).toEqual(['job-1', 'job-2']);
  });

  it('with a Worker that accepted `batch`: takes a batch of requests, and answers that finish together share a frame', async () => {
    const w = await fakeWorker({ features: ['batch'] });
    cleanup.push(() => w.close());
    const { conn } = relayTo(w.url, {
      onRequest: async (req) => {
        await new Promise((r) => setTimeout(r, 5));
        return { type: 'response', id: req.id, ok: true, result: { echo: req.op } };
      },
    });
    conn.start();
    await until(() => conn.state === 'connected');
    const requests = Array.from({ length: 12 }, (_, i) => ({ type: 'request', id: `job-${i}`, op: 'probe', params: {} }));
    // the first alone, so that the twelve come within one gathering of its answer
    w.sockets[0].send(JSON.stringify({ type: 'request', id: 'first', op: 'probe', params: {} }));
    await until(() => w.received.some((m) => m.id === 'first'));
    w.sockets[0].send(JSON.stringify({ type: 'batch', messages: requests }));
    await until(() => w.received.filter((m) => m.type === 'response').length === 13);
    expect(w.received.filter((m) => m.type === 'response').map((m) => m.id).sort()).toEqual(['first', ...requests.map((r) => r.id)].sort());
    const answerFrames = w.frames.filter((f) => /"type":"(response|batch)"/.test(f));
    expect(answerFrames.length).toBeLessThan(6);
    expect(answerFrames.some((f) => JSON.parse(f).type === 'batch')).toBe(true);
  });

  it('with an older Worker (its welcome names no features): one frame per answer, as before', async () => {
    const { w, conn } = await connected();
    for (let i = 0; i < 8; i++) w.sockets[0].send(JSON.stringify({ type: 'request', id: `j${i}`, op: 'probe', params: {} }));
    await until(() => w.received.filter((m) => m.type === 'response').length === 8);
    expect(w.frames.filter((f) => JSON.parse(f).type === 'response')).toHaveLength(8);
    expect(w.frames.some((f) => JSON.parse(f).type === 'batch')).toBe(false);
  });

  it("sends a job's output at once, even under a stream of batched answers", async () => {
    const w = await fakeWorker({ features: ['batch'] });
    cleanup.push(() => w.close());
    const { conn } = relayTo(w.url, {
      gatherMs: 5000, // answers held that long: the output must not be
      onRequest: async (req, send) => {
        if (req.op === 'upgrade') {
          send({ type: 'output', id: req.id, data: 'Unpacking openssl ...\n' });
          await new Promise((r) => setTimeout(r, 1000));
        }
        return { type: 'response', id: req.id, ok: true, result: null };
      },
    });
    conn.start();
    await until(() => conn.state === 'connected');
    w.sockets[0].send(JSON.stringify({ type: 'request', id: 'p0', op: 'probe', params: {} }));
    await until(() => w.received.some((m) => m.id === 'p0'));
    const t0 = Date.now();
    w.sockets[0].send(JSON.stringify({ type: 'request', id: 'up', op: 'upgrade', params: {} }));
    await until(() => w.received.some((m) => m.type === 'output' && m.id === 'up'));
    expect(Date.now() - t0).toBeLessThan(500);
    // …while an answer that follows another waits for its frame
    w.sockets[0].send(JSON.stringify({ type: 'request', id: 'p1', op: 'probe', params: {} }));
    await new Promise((r) => setTimeout(r, 300));
    expect(w.received.some((m) => m.id === 'p1')).toBe(false);
  });

  it('runs at most `concurrency` requests at once', async () => {
    const w = await fakeWorker();
    cleanup.push(() => w.close());
    let running = 0;
    let peak = 0;
    const { conn } = relayTo(w.url, {
      concurrency: 3,
      onRequest: async (req) => {
        peak = Math.max(peak, ++running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        return { type: 'response', id: req.id, ok: true, result: null };
      },
    });
    conn.start();
    await until(() => conn.state === 'connected');
    for (let i = 0; i < 12; i++) w.sockets[0].send(JSON.stringify({ type: 'request', id: `j${i}`, op: 'probe', params: {} }));
    await until(() => w.received.filter((m) => m.type === 'response').length === 12);
    expect(peak).toBe(3);
  });

  it('takes the concurrency the Worker sends, at welcome and later', async () => {
    const w = await fakeWorker({ welcome: false });
    cleanup.push(() => w.close());
    const { conn } = relayTo(w.url, { concurrency: 32 });
    conn.start();
    const ws = await w.nextSocket();
    await until(() => w.received.some((m) => m.type === 'hello'));
    ws.send(JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, relayId: 'r1', name: 'lab', concurrency: 4 }));
    await until(() => conn.state === 'connected');
    expect(conn.concurrency).toBe(4);
    ws.send(JSON.stringify({ type: 'config', concurrency: 9 }));
    await until(() => conn.concurrency === 9);
  });

  it('reconnects after the Worker drops the socket (e.g. a redeploy)', async () => {
    const { w, conn, lines } = await connected();
    w.sockets[0].terminate();
    await until(() => w.sockets.length === 2 && conn.state === 'connected');
    expect(lines.some((l) => /disconnected from .*reconnecting in/.test(l))).toBe(true);
    expect(w.received.filter((m) => m.type === 'hello')).toHaveLength(2);
  });

  it('does not answer on a new connection what was asked on an old one (the Worker re-sends it)', async () => {
    const w = await fakeWorker();
    cleanup.push(() => w.close());
    let finish!: () => void;
    const held = new Promise<void>((r) => (finish = r));
    const { conn, lines } = relayTo(w.url, {
      onRequest: async (req) => {
        if (req.id === 'job-old') await held;
        return { type: 'response', id: req.id, ok: true, result: {} };
      },
    });
    conn.start();
    await until(() => conn.state === 'connected');
    w.sockets[0].send(JSON.stringify({ type: 'request', id: 'job-old', op: 'upgrade', params: {} }));
    await new Promise((r) => setTimeout(r, 50));
    w.sockets[0].terminate();
    await until(() => w.sockets.length === 2 && conn.state === 'connected');
    finish();
    w.sockets[1].send(JSON.stringify({ type: 'request', id: 'job-new', op: 'probe', params: {} }));
    await until(() => w.received.some((m) => m.type === 'response' && m.id === 'job-new'));
    await until(() => lines.some((l) => l.includes('dropped the answer to job-old')));
    expect(w.received.filter((m) => m.type === 'response').map((m) => m.id)).toEqual(['job-new']);
  });

  it('keeps retrying while the Worker is down and connects when it is back', async () => {
    const w = await fakeWorker();
    const port = new URL(w.url).port;
    await w.close();
    const { conn, lines } = relayTo(w.url);
    conn.start();
    await until(() => lines.filter((l) => l.includes('reconnecting')).length >= 3);
    expect(conn.attempt).toBeGreaterThanOrEqual(3);
    const back = new WebSocketServer({ host: '127.0.0.1', port: Number(port), path: '/relay/connect' });
    cleanup.push(() => new Promise((r) => { for (const c of back.clients) c.terminate(); back.close(() => r()); }));
    back.on('connection', (ws) => ws.on('message', (d) => {
      if (JSON.parse(d.toString()).type === 'hello') ws.send(JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, relayId: 'r1', name: 'back' }));
    }));
    await until(() => conn.state === 'connected');
    expect(conn.attempt).toBe(0);
  });

  it('says clearly when the token is refused', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => { res.statusCode = 401; res.end('{"error":{}}'); });
    server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => server.close(() => r())));
    const { conn, lines } = relayTo(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    conn.start();
    await until(() => lines.some((l) => l.includes('refused the relay token (401)')));
  });

  it('drops and reconnects a connection whose heartbeats go unanswered', async () => {
    const w = await fakeWorker({ answerPings: false });
    cleanup.push(() => w.close());
    const { conn, lines } = relayTo(w.url, { heartbeatMs: 30, pongTimeoutMs: 60 });
    conn.start();
    await until(() => lines.some((l) => l.includes('no heartbeat answer')));
    await until(() => w.sockets.length >= 2);
  });

  it('closes with a reason on garbage from the Worker', async () => {
    const { w, conn } = await connected();
    const closed = new Promise<[number, string]>((r) => w.sockets[0].once('close', (code, reason) => r([code, reason.toString()])));
    w.sockets[0].send('{"type":"rm -rf"}');
    const [code, reason] = await closed;
    expect(code).toBe(Close.invalidMessage);
    expect(reason).toMatch(/invalid message/);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially, is capped, and is jittered between 50 % and 100 %', () => {
    const o = { initialMs: 1000, maxMs: 60_000 };
    expect(backoffDelay(0, o, () => 1)).toBe(1000);
    expect(backoffDelay(0, o, () => 0)).toBe(500);
    expect(backoffDelay(3, o, () => 1)).toBe(8000);
    expect(backoffDelay(20, o, () => 1)).toBe(60_000);
    expect(backoffDelay(20, o, () => 0)).toBe(30_000);
  });
});
