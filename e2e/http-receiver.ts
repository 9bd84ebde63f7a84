// A real HTTP receiver on loopback for notification tests: it records every request (method,
// path, headers, body) and answers by path — `/status/<code>` with that status, anything
// else 200. `GET /__received` lists what it got (for tests that run inside workerd);
// `POST /__reset` forgets it.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Wait until `n` requests (matching `path` if given) have arrived. */
  waitFor(n: number, path?: string, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(host = '127.0.0.1'): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      if (path === '/__received') {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(received));
        return;
      }
      if (path === '/__reset') {
        received.length = 0;
        res.writeHead(204).end();
        return;
      }
      received.push({ method: req.method ?? '', path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (path.startsWith('/hang')) return; // never answers (until the receiver closes)
      const m = /\/status\/(\d{3})/.exec(path);
      const status = m ? Number(m[1]) : 200;
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(status < 300 ? '{"ok":true}' : '{"ok":false,"error":"receiver says no"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;
  return {
    url,
    received,
    async waitFor(n, path, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const got = received.filter((r) => !path || r.path === path);
        if (got.length >= n) return got;
        if (Date.now() > end) throw new Error(`receiver: ${got.length} of ${n} requests${path ? ` to ${path}` : ''} within ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
