// What the benchmarks share: a fake Worker (the relay's WebSocket server side, answering
// hello and collecting responses), process CPU and memory from /proc, and the machine's idle
// CPU (the machine may be shared: each round records how idle it was before it started).
import { readFileSync, writeFileSync } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOCOL_FEATURES, agreedFeatures } from '../protocol/relay.ts';

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86_64/arm64

// ---- /proc ------------------------------------------------------------------------------

export function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3); utime is field 14, stime field 15
  return { user: Number(fields[11]) / CLK_TCK, sys: Number(fields[12]) / CLK_TCK };
}

export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

export function procStatus(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    /* old kernel: the peak then covers the whole process life */
  }
}

// ---- the fake Worker ----------------------------------------------------------------------

export interface Outcome {
  ok: boolean;
  code?: string;
  message?: string;
  result?: any;
}

export class FakeWorker {
  wss: WebSocketServer;
  port = 0;
  #socket: WebSocket | null = null;
  #helloWaiters: Array<(hello: any) => void> = [];
  #pending = new Map<string, (o: Outcome) => void>();

  readonly concurrency: number;
  readonly requestTimeoutMs: number;

  constructor(concurrency: number, requestTimeoutMs = 600_000) {
    this.concurrency = concurrency;
    this.requestTimeoutMs = requestTimeoutMs;
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/relay/connect', maxPayload: 64 * 1024 * 1024 });
    this.wss.on('connection', (ws) => {
      this.#socket = ws;
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString());
        if (msg.type === 'hello') {
          // the features the real Worker accepts, so that the relay sends the same frames to both
          const features = agreedFeatures(msg.features, PROTOCOL_FEATURES);
          ws.send(JSON.stringify({ type: 'welcome', v: msg.v, relayId: 'bench', name: 'bench relay', concurrency: this.concurrency, features }));
          for (const w of this.#helloWaiters.splice(0)) w(msg);
        } else if (msg.type === 'ping') {
          ws.send('{"type":"pong"}');
        } else {
          for (const m of msg.type === 'batch' ? msg.messages : [msg]) this.#answered(m);
        }
      });
      ws.on('close', () => {
        if (this.#socket === ws) this.#socket = null;
        for (const [id, done] of this.#pending) {
          this.#pending.delete(id);
          done({ ok: false, code: 'relay-disconnected' });
        }
      });
    });
  }

  #answered(msg: any): void {
    if (msg.type !== 'response') return;
    const done = this.#pending.get(msg.id);
    this.#pending.delete(msg.id);
    done?.(msg.ok ? { ok: true, result: msg.result } : { ok: false, code: msg.error?.code, message: msg.error?.message });
  }

  async listening(): Promise<void> {
    await new Promise<void>((r) => (this.wss.address() ? r() : this.wss.once('listening', () => r())));
    this.port = (this.wss.address() as { port: number }).port;
  }

  hello(timeoutMs: number): Promise<any> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the relay did not connect')), timeoutMs);
      this.#helloWaiters.push((h) => {
        clearTimeout(t);
        resolve(h);
      });
    });
  }

  request(id: string, op: string, params: unknown): Promise<Outcome> {
    const ws = this.#socket;
    if (!ws) return Promise.resolve({ ok: false, code: 'relay-disconnected' });
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      ws.send(JSON.stringify({ type: 'request', id, op, params, timeoutMs: this.requestTimeoutMs }));
    });
  }

  close(): void {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
  }
}


/** The share of CPU time the whole machine spent idle over `ms` (0–1), from /proc/stat. */
export async function idleShare(ms = 1000): Promise<number> {
  const a = cpuTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTicks();
  return b.total > a.total ? (b.idle - a.idle) / (b.total - a.total) : 1;
}

/** The whole machine's idle and total CPU ticks so far (/proc/stat, all cores). */
export function cpuTicks(): { idle: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { idle: f[3] + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
}

/** Load averages (1, 5, 15 min). */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
