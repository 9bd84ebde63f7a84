// A relay may only report on jobs that were dispatched to it: a socket holding another
// relay's token (or a replay of old messages) must not touch a job or a host.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, PUBLIC_KEY, testEnv, until } from './test/helpers.ts';
import { scanResult, scanWith } from './test/fixtures.ts';
import { MAX_REFUSED_REPORTS } from './relay-refusals.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

async function addHost(relayId: string, address: string) {
  const res = await api('/api/hosts', { method: 'POST', json: { relayId, address } });
  expect(res.status).toBe(201);
  return json(res);
}

/** Messages are applied in order per relay: a ping answered means everything before it was handled. */
async function settled(relay: FakeRelay) {
  relay.send({ type: 'ping' });
  for (;;) if ((await relay.next()).type === 'pong') return;
}

describe('messages from a relay are checked against what that relay was asked', () => {
  it("another relay's output and response for a dispatched job are dropped; the right relay still finishes it", async () => {
    const a = await createRelay('a');
    const b = await createRelay('b');
    const relayA = await FakeRelay.connect(a.token);
    const rogue = await FakeRelay.connect(b.token);
    const host = await addHost(a.id, '192.0.2.10');
    const { jobId } = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
    expect((await relayA.next()).id).toBe(jobId);

    rogue.send({ type: 'output', id: jobId, stream: 'stdout', data: 'forged log line\n' });
    rogue.send({ type: 'response', id: jobId, ok: true, result: scanWith({ updates: [], reboot: { required: false, reason: null } }) });
    rogue.send({ type: 'response', id: jobId, ok: false, error: { code: 'unreachable', message: 'forged failure' } });
    await settled(rogue);

    const job = await json(api(`/api/jobs/${jobId}`));
    expect(job.status).toBe('dispatched');
    expect(job.log).toBe('');
    const h = await json(api(`/api/hosts/${host.id}`));
    expect(h.status).toBe('unknown');
    expect(h.lastScanAt).toBeNull();
    expect(rogue.closed).toBeNull(); // dropped, not a protocol error

    relayA.send({ type: 'response', id: jobId, ok: true, result: scanResult });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).status === 'succeeded');
    expect((await json(api(`/api/hosts/${host.id}`))).updatesCount).toBe(3);
  });

  it('a response or output for a job in a state where it makes no sense is dropped (queued, finished)', async () => {
    const a = await createRelay('a');
    const relayA = await FakeRelay.connect(a.token);
    const host = await addHost(a.id, '192.0.2.11');
    // a job of this relay that was never dispatched (queued while the relay was away)
    await testEnv.DB.prepare(`INSERT INTO jobs (id, kind, host_id, relay_id, status, created_at) VALUES ('queued-job', 'scan', ?, ?, 'queued', ?)`)
      .bind(host.id, a.id, Date.now())
      .run();
    relayA.send({ type: 'output', id: 'queued-job', stream: 'stdout', data: 'early\n' });
    relayA.send({ type: 'response', id: 'queued-job', ok: true, result: scanResult });
    await settled(relayA);
    const queued = await json(api('/api/jobs/queued-job'));
    expect(queued.status).toBe('queued');
    expect(queued.log).toBe('');
    expect((await json(api(`/api/hosts/${host.id}`))).lastScanAt).toBeNull();

    await testEnv.DB.prepare(`UPDATE jobs SET status = 'cancelled' WHERE id = 'queued-job'`).run();

    // a finished job replayed: nothing changes
    const { jobId } = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
    expect((await relayA.next()).id).toBe(jobId);
    relayA.send({ type: 'response', id: jobId, ok: true, result: scanResult });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).status === 'succeeded');
    relayA.send({ type: 'output', id: jobId, stream: 'stdout', data: 'replayed\n' });
    relayA.send({ type: 'response', id: jobId, ok: false, error: { code: 'unreachable', message: 'replayed failure' } });
    await settled(relayA);
    const done = await json(api(`/api/jobs/${jobId}`));
    expect(done.status).toBe('succeeded');
    expect(done.log).toBe('');
    expect((await json(api(`/api/hosts/${host.id}`))).status).toBe('online');
  });

  it('a relay that keeps sending reports nobody asked for is disconnected; the Worker keeps serving', async () => {
    const a = await createRelay('a');
    const rogue = await FakeRelay.connect(a.token);
    const host = await addHost(a.id, '192.0.2.12');
    for (let i = 0; i <= MAX_REFUSED_REPORTS; i++) rogue.send({ type: 'output', id: `forged-${i}`, data: 'x\n' });
    await until(async () => rogue.closed !== null, 20_000);
    expect(rogue.closed).toEqual({ code: 4400, reason: 'too many reports about jobs this relay was not asked to run' });
    // nothing of it was stored, and the API answers
    expect((await json(api(`/api/hosts/${host.id}`))).status).toBe('unknown');
    expect(await testEnv.DB.prepare(`SELECT count(*) AS n FROM jobs WHERE id LIKE 'forged-%'`).first('n')).toBe(0);
  });

  it('a second hello on one connection closes it (each hello costs the Worker writes and a dispatch)', async () => {
    const a = await createRelay('a');
    const relay = await FakeRelay.connect(a.token);
    relay.send({ type: 'hello', v: 1, version: '0.1.0-test', hostname: 'relaybox', publicKey: PUBLIC_KEY });
    await until(async () => relay.closed !== null, 10_000);
    expect(relay.closed).toEqual({ code: 4400, reason: 'hello was already sent on this connection' });
  });
});
