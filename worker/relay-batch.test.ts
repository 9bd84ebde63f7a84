// The `batch` protocol feature at the Worker's end (protocol/relay.ts): a relay that offers it
// gets its jobs in batch frames and may answer in them; each message in a frame is checked
// and applied exactly as if it had come alone. A relay that does not offer it (an older one)
// sees single frames, and may not send batches. Real Worker in workerd, fake relay on a real
// WebSocket.
import { describe, expect, it } from 'vitest';
import { runInDurableObject } from 'cloudflare:test';
import { api, createRelay, FakeRelay, testEnv, until } from './test/helpers.ts';
import { scanResult } from './test/fixtures.ts';
import { relayHub, type RelayHub } from './relay-hub.ts';
import { Close } from '../protocol/relay.ts';
import { openDb, schema } from './db/index.ts';
import { newId } from './lib/crypto.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const hub = (relayId: string) => relayHub(testEnv, relayId) as unknown as DurableObjectStub<RelayHub>;

async function hostsOf(relayId: string, n: number, prefix: string): Promise<string[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const res = await api('/api/hosts', { method: 'POST', json: { relayId, name: `${prefix}${i}`, address: `198.51.100.${i + 1}` } });
    expect(res.status).toBe(201);
    out.push((await json(res)).id);
  }
  return out;
}

/** A fake relay whose raw frames are kept (the helper's inbox holds them parsed, one per frame). */
async function relayOffering(features: string[] | undefined) {
  const { id, token } = await createRelay(`batch-${features?.join('-') ?? 'old'}`);
  const relay = await FakeRelay.connect(token, null);
  relay.send({ type: 'hello', v: 1, version: '0.1.0-test', publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7kq9r2x0lQm8Y3o3VqkHkz0y8i7c5l4t6Wm1bC0aDe t', hostname: 'relaybox', ...(features ? { features } : {}) });
  const welcome = await relay.next();
  expect(welcome.type).toBe('welcome');
  return { relayId: id, relay, welcome };
}

const jobStatus = async (id: string) => (await json(api(`/api/jobs/${id}`))).status as string;

describe('RelayHub: batch frames (protocol feature `batch`)', { timeout: 60_000 }, () => {
  it('welcomes a relay offering `batch` with it (unknown features ignored), and hands it its jobs in one frame', async () => {
    const { relayId, relay, welcome } = await relayOffering(['zstd', 'batch']);
    expect(welcome.features).toEqual(['batch']);
    const hostIds = await hostsOf(relayId, 30, 'b');
    const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds } }));
    const frame = await relay.next();
    expect(frame.type).toBe('batch');
    // (in the dispatch's order, which is not the order of the POST's answer)
    expect(frame.messages.map((m: any) => m.id).sort()).toEqual([...jobIds].sort());
    expect(frame.messages.every((m: any) => m.type === 'request' && m.op === 'scan')).toBe(true);
  });

  it('applies answers and output sent in one frame as if each had come alone, and still refuses what was not asked', async () => {
    const { relayId, relay } = await relayOffering(['batch']);
    const hostIds = await hostsOf(relayId, 5, 'a');
    const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds } }));
    await relay.next();
    // an upgrade this relay is running, whose output comes in the same frame
    const upgrade = newId();
    await openDb(testEnv.DB)
      .insert(schema.jobs)
      .values({ id: upgrade, kind: 'upgrade', hostId: hostIds[0], relayId, status: 'dispatched', createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 600_000 });
    const stranger = newId(); // no such job: refused, and the rest of the frame still applies
    relay.send({
      type: 'batch',
      messages: [
        { type: 'output', id: upgrade, data: 'Reading package lists...\n', range: { from: 0, to: 25 } },
        ...jobIds.slice(0, 4).map((id: string) => ({ type: 'response', id, ok: true, result: scanResult })),
        { type: 'response', id: stranger, ok: true, result: scanResult },
        { type: 'response', id: jobIds[4], ok: false, error: { code: 'unreachable', message: 'connect ECONNREFUSED' } },
        { type: 'output', id: upgrade, data: 'Setting up zip\n', range: { from: 25, to: 40 } },
      ],
    });
    await until(async () => (await Promise.all(jobIds.map(jobStatus))).every((s) => s === 'succeeded' || s === 'failed'), 10_000);
    expect(await Promise.all(jobIds.map(jobStatus))).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed']);
    // (a job's host from the job: the POST's answer is not in the order of its hostIds)
    const hostOf = async (jobId: string) => (await json(api(`/api/jobs/${jobId}`))).hostId as string;
    expect((await json(api(`/api/hosts/${await hostOf(jobIds[1])}`))).updatesCount).toBe(3);
    expect((await json(api(`/api/hosts/${await hostOf(jobIds[4])}`))).statusReason).toBe('connect ECONNREFUSED');
    expect((await json(api(`/api/jobs/${upgrade}`))).log).toBe('Reading package lists...\nSetting up zip\n');
    expect((await api(`/api/jobs/${stranger}`)).status).toBe(404);
  });

  it('settles a request the Worker awaits (no job: "test connection") from inside a frame', async () => {
    const { relayId, relay } = await relayOffering(['batch']);
    const answer = runInDurableObject(hub(relayId), (h: RelayHub) => h.request('probe', { target: { address: '198.51.100.9', port: 22, user: 'root' } }, 5000));
    const req = await relay.next();
    expect(req.type).toBe('request');
    relay.send({ type: 'batch', messages: [{ type: 'response', id: req.id, ok: true, result: { os: 'x' } }] });
    expect(await answer).toEqual({ ok: true, response: { type: 'response', id: req.id, ok: true, result: { os: 'x' } } });
  });

  it('sends an older relay (no features in its hello) one frame per job, and closes on a batch it did not agree to', async () => {
    const { relayId, relay, welcome } = await relayOffering(undefined);
    expect(welcome.features).toEqual([]);
    const hostIds = await hostsOf(relayId, 3, 'o');
    const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds } }));
    const frames = [await relay.next(), await relay.next(), await relay.next()];
    expect(frames.every((f) => f.type === 'request')).toBe(true);
    expect(frames.map((f) => f.id).sort()).toEqual([...jobIds].sort());
    relay.send({ type: 'batch', messages: [{ type: 'response', id: jobIds[0], ok: true, result: scanResult }] });
    expect((await relay.waitClosed()).code).toBe(Close.invalidMessage);
    expect(await jobStatus(jobIds[0])).not.toBe('succeeded');
  });

  it('closes on a frame that puts a hello or a heartbeat inside a batch', async () => {
    const { relay } = await relayOffering(['batch']);
    relay.send({ type: 'batch', messages: [{ type: 'ping' }] });
    const closed = await relay.waitClosed();
    expect(closed.code).toBe(Close.invalidMessage);
    expect(closed.reason).toMatch(/invalid message/);
  });
});
