import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { Operations, ProbeResult, Response } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import { freePort, startSshd, type Sshd } from '../test/sshd.ts';
import type { OpContext } from './context.ts';
import { executeRequest, handlers, type HandlerTable } from './index.ts';

let tmp: string;
let key: KeyPair;
let sshd: Sshd;
let ctx: OpContext;
// A TCP listener that counts connections: proof that a refused request never dialled out.
let counter: Server;
let counterPort: number;
let connections = 0;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-ops-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), connectTimeoutMs: 10_000 };
  counter = createServer((sock) => {
    connections++;
    sock.destroy();
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
  counterPort = (counter.address() as { port: number }).port;
});
afterAll(async () => {
  await sshd?.stop();
  counter?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const validProbe = (): ProbeResultT => ({
  os: { id: 'debian', name: 'Debian GNU/Linux', version: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)', idLike: [] },
  kernel: '6.1.0-28-amd64',
  arch: 'x86_64',
  hostname: 'web1',
  bootId: '3694f407-ad61-47f5-b737-069732f597ed',
  uptimeSeconds: 100,
  packageManagers: ['apt'],
  proxmox: null,
  docker: false,
  privilege: 'root',
});
type ProbeResultT = v.InferOutput<typeof ProbeResult>;

function spyTable(impl?: HandlerTable['probe']): HandlerTable & { probe: ReturnType<typeof vi.fn>; scan: ReturnType<typeof vi.fn> } {
  return {
    probe: vi.fn(impl ?? (async () => validProbe())),
    scan: vi.fn(async () => ({ probe: validProbe(), packageManager: 'apt' as const, updates: [], held: [], reboot: { required: false, reason: null }, warnings: [] })),
    upgrade: vi.fn(async () => {
      throw new Error('not used');
    }),
    reboot: vi.fn(async () => {
      throw new Error('not used');
    }),
    'docker.scan': vi.fn(async () => {
      throw new Error('not used');
    }),
    'docker.update': vi.fn(async () => {
      throw new Error('not used');
    }),
    'guest.rollback': vi.fn(async () => {
      throw new Error('not used');
    }),
    'accept-host-key': vi.fn(async () => {
      throw new Error('not used');
    }),
    'notify.send': vi.fn(async () => {
      throw new Error('not used');
    }),
  };
}

function request(op: string, params: unknown, extra: { timeoutMs?: number } = {}) {
  return { type: 'request' as const, id: 'req-1', op, params, ...extra };
}

describe('the operation table', () => {
  it('has a handler for exactly the protocol operations', () => {
    expect(Object.keys(handlers).sort()).toEqual(Object.keys(Operations).sort());
  });
});

describe('executeRequest refuses before doing anything', () => {
  it('refuses an operation outside the closed vocabulary', async () => {
    for (const op of ['shell', 'exec', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'PROBE', '']) {
      const table = spyTable();
      const refused: string[] = [];
      const res = await executeRequest(request(op, { target: { address: '127.0.0.1', port: counterPort, user: 'root' } }), ctx, { table, onRefused: (r) => refused.push(r) });
      expect(res).toMatchObject({ type: 'response', id: 'req-1', ok: false, error: { code: 'unknown-operation' } });
      expect(table.probe).not.toHaveBeenCalled();
      expect(refused).toEqual([`Unknown operation ${JSON.stringify(op)}`]); // and logged
    }
    expect(connections).toBe(0);
  });

  it('refuses invalid params with invalid-request naming the field, and never connects', async () => {
    const cases: Array<[field: string, target: unknown]> = [
      ['target.address', { address: '-oProxyCommand=id', port: counterPort, user: 'root' }],
      ['target.address', { address: '127.0.0.1 -p 22', port: counterPort, user: 'root' }],
      ['target.user', { address: '127.0.0.1', port: counterPort, user: 'root;id' }],
      ['target.user', { address: '127.0.0.1', port: counterPort, user: '-oProxyCommand=id' }],
      ['target.port', { address: '127.0.0.1', port: 0, user: 'root' }],
      ['target.port', { address: '127.0.0.1', port: 65536, user: 'root' }],
      ['target.port', { address: '127.0.0.1', port: '22', user: 'root' }],
      ['target.proxyCommand', { address: '127.0.0.1', port: counterPort, user: 'root', proxyCommand: 'id' }],
    ];
    for (const [field, target] of cases) {
      for (const table of [spyTable(), undefined /* the real handlers */]) {
        const res = await executeRequest(request('probe', { target }), ctx, { table });
        expect(res.ok, JSON.stringify(target)).toBe(false);
        if (res.ok) continue;
        expect(res.error.code).toBe('invalid-request');
        expect(res.error.message).toContain(field);
        if (table) expect(table.probe).not.toHaveBeenCalled();
      }
    }
    // Missing or malformed params altogether.
    for (const params of [undefined, null, 'probe', {}, { target: null }, { target: {}, extra: 1 }]) {
      const table = spyTable();
      const res = await executeRequest(request('probe', params), ctx, { table });
      expect(res).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
      expect(table.probe).not.toHaveBeenCalled();
    }
    // Give any stray connection attempt time to land, then check none did.
    await new Promise((r) => setTimeout(r, 100));
    expect(connections).toBe(0);
  });
});

describe('the scan operation in the table', () => {
  it('validates scan params (refresh must be a boolean, defaults to true) before running', async () => {
    const table = spyTable();
    for (const params of [{ target: { address: '127.0.0.1', port: counterPort, user: 'root' }, refresh: 'yes' }, { target: { address: '127.0.0.1', port: counterPort, user: 'root' }, extra: 1 }]) {
      const res = await executeRequest(request('scan', params), ctx, { table });
      expect(res).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
    }
    expect(table.scan).not.toHaveBeenCalled();
    await executeRequest(request('scan', { target: { address: 'web1', port: 22, user: 'root' } }), ctx, { table });
    expect(table.scan.mock.calls[0][0]).toEqual({ target: { address: 'web1', port: 22, user: 'root' }, refresh: true });
    expect(connections).toBe(0);
  });

  it('scans through the real sshd and returns a schema-valid response', { timeout: 300_000 }, async () => {
    const res = await executeRequest(request('scan', { target: { address: sshd.address, port: sshd.port, user: 'root' }, refresh: false }), { ...ctx, commandTimeoutMs: 240_000 });
    expect(v.safeParse(Response, res).success).toBe(true);
    expect(res).toMatchObject({ ok: true, result: { packageManager: 'apt', probe: { privilege: 'root' } } });
  });
});

describe('executeRequest runs handlers and checks what they return', () => {
  it('probes through the real sshd and returns a schema-valid response', async () => {
    const res = await executeRequest(request('probe', { target: { address: sshd.address, port: sshd.port, user: 'root' } }), ctx);
    expect(v.safeParse(Response, res).success).toBe(true);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    const result = v.parse(ProbeResult, res.result);
    expect(result.packageManagers).toContain('apt');
  });

  it('turns an OpError into its code and message', async () => {
    const port = await freePort();
    const res = await executeRequest(request('probe', { target: { address: '127.0.0.1', port, user: 'root' } }), ctx);
    expect(res).toMatchObject({ ok: false, error: { code: 'unreachable' } });
    expect(v.safeParse(Response, res).success).toBe(true);

    const table = spyTable(async () => {
      throw new OpError('sudo-password', 'sudo asked for a password on web1');
    });
    expect(await executeRequest(request('probe', { target: { address: 'web1', port: 22, user: 'root' } }), ctx, { table })).toEqual({
      type: 'response',
      id: 'req-1',
      ok: false,
      error: { code: 'sudo-password', message: 'sudo asked for a password on web1' },
    });
  });

  it('turns any other error into internal, without its message or stack', async () => {
    const seen: unknown[] = [];
    const table = spyTable(async () => {
      throw new Error(`-----BEGIN OPENSSH PRIVATE KEY----- ${key.privateKey}`);
    });
    const res = await executeRequest(request('probe', { target: { address: 'web1', port: 22, user: 'root' } }), ctx, {
      table,
      onInternalError: (_op, err) => seen.push(err),
    });
    expect(res).toMatchObject({ ok: false, error: { code: 'internal' } });
    const text = JSON.stringify(res);
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).not.toContain('at ');
    expect(seen).toHaveLength(1);
  });

  it('refuses a handler result that does not match the protocol schema', async () => {
    const table = spyTable(async () => ({ ...validProbe(), packageManagers: ['brew'] }) as unknown as ProbeResultT);
    const res = await executeRequest(request('probe', { target: { address: 'web1', port: 22, user: 'root' } }), ctx, { table });
    expect(res).toMatchObject({ ok: false, error: { code: 'internal' } });
    if (!res.ok) expect(res.error.message).toContain('packageManagers');
  });

  it("passes validated params to the handler and bounds command time by the request's timeout", async () => {
    const table = spyTable();
    const res = await executeRequest(
      request('probe', { target: { address: '  web1.lan ', port: 2222, user: 'admin' } }, { timeoutMs: 5000 }),
      { ...ctx, commandTimeoutMs: 60_000 },
      { table },
    );
    expect(res).toEqual({ type: 'response', id: 'req-1', ok: true, result: validProbe() });
    expect(table.probe).toHaveBeenCalledTimes(1);
    const [params, runCtx] = table.probe.mock.calls[0] as [unknown, OpContext];
    expect(params).toEqual({ target: { address: 'web1.lan', port: 2222, user: 'admin' } }); // trimmed by the schema
    expect(runCtx.commandTimeoutMs).toBe(5000);
  });
});
