// Relay results applied in bulk (relay-apply.ts, RelayHub.drain): many responses that arrive
// together, against the real Worker in workerd (local D1) with a fake relay on a real
// WebSocket; and the batch rules (order per job, one terminal state, only the job's own
// relay) on applyRelayMessages directly.
import { describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { api, createRelay, FakeRelay, testEnv, until } from './test/helpers.ts';
import { probeResult, scanResult, scanWith } from './test/fixtures.ts';
import { openDb, schema } from './db/index.ts';
import { readLog } from './job-log.ts';
import { acceptsRelayMessage, applyRelayMessages } from './relay-apply.ts';
import { newId } from './lib/crypto.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

async function addHost(relayId: string, body: Record<string, unknown>) {
  const res = await api('/api/hosts', { method: 'POST', json: { relayId, ...body } });
  expect(res.status).toBe(201);
  return json(res);
}

/** n distinct pending updates (so pooled inserts of several hosts can be told apart). */
const updatesFor = (i: number, n: number) =>
  Array.from({ length: n }, (_, k) => ({ ...scanResult.updates[0], name: `pkg-${i}-${k}`, newVersion: `${i}.${k}` }));

describe('many responses at once', () => {
  it('applies a burst of scan answers: every host gets its own package list, duplicates and strangers are dropped, Docker hosts get one docker scan each', { timeout: 60_000 }, async () => {
    const { id: relayId, token } = await createRelay('burst');
    const relay = await FakeRelay.connect(token);
    const N = 24;
    const hosts = [];
    for (let i = 0; i < N; i++) hosts.push(await addHost(relayId, { name: `b${i}`, address: `192.0.2.${100 + i}` }));
    const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds: hosts.map((h) => h.id) } }));
    expect(jobIds).toHaveLength(N);
    const requests = [];
    for (let i = 0; i < N; i++) requests.push(await relay.next());
    const hostIndex = new Map(hosts.map((h, i) => [`192.0.2.${100 + i}`, i]));
    // all answers in one burst; host i has (i % 7) * 5 updates, every third host runs Docker;
    // three answers twice (the second one different), and one for a job nobody asked for
    for (const req of requests) {
      const i = hostIndex.get(req.params.target.address)!;
      relay.send({ type: 'response', id: req.id, ok: true, result: scanWith({ updates: updatesFor(i, (i % 7) * 5), probe: { ...probeResult, docker: i % 3 === 0 } }) });
    }
    for (const req of requests.slice(0, 3)) relay.send({ type: 'response', id: req.id, ok: true, result: scanWith({ updates: [] }) });
    relay.send({ type: 'response', id: newId(), ok: true, result: scanResult });

    const jobs = await until(async () => {
      const all = await Promise.all(jobIds.map((id: string) => json(api(`/api/jobs/${id}`))));
      return all.every((j) => j.status === 'succeeded') && all;
    }, 20_000);
    expect(jobs).toHaveLength(N);
    for (let i = 0; i < N; i++) {
      const list = await json(api(`/api/hosts/${hosts[i].id}/updates`));
      const names = (list.updates ?? list).map((u: any) => u.name).sort();
      expect(names, `host ${i}`).toEqual(updatesFor(i, (i % 7) * 5).map((u) => u.name).sort());
    }
    // the follow-up docker scans of the burst: one per Docker host, nothing else
    const dockerHosts = hosts.filter((_, i) => i % 3 === 0).map((h) => `192.0.2.${100 + hostIndex.get(h.address)!}`);
    const followUps = [];
    for (let k = 0; k < dockerHosts.length; k++) followUps.push(await relay.next(10_000));
    expect(followUps.every((r) => r.op === 'docker.scan')).toBe(true);
    expect(followUps.map((r) => r.params.target.address).sort()).toEqual([...dockerHosts].sort());
    await new Promise((r) => setTimeout(r, 300));
    expect(relay.inbox).toEqual([]);
  });
});

describe('applyRelayMessages', () => {
  async function fixture() {
    const { id: relayId } = await createRelay('direct');
    const { id: otherRelay } = await createRelay('other');
    const host = await addHost(relayId, { name: 'd1', address: '192.0.2.200' });
    const db = openDb(testEnv.DB);
    const job = (status: 'queued' | 'dispatched' | 'running', kind: 'scan' | 'upgrade' = 'upgrade', relay = relayId) => {
      const id = newId();
      return db
        .insert(schema.jobs)
        .values({ id, kind, hostId: host.id, relayId: relay, status, createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 60_000 })
        .returning()
        .then(([row]) => row);
    };
    return { db, relayId, otherRelay, host, job };
  }
  const upgradeOk = { packageManager: 'apt', mode: 'full', exitCode: 0, changes: [], logBytes: 10, logTail: '', durationMs: 1, reboot: { required: false, reason: null }, warnings: [] };

  it('accepts only messages about jobs sent to this relay and still dispatched or running (issue 10, hole 1)', async () => {
    const { db, relayId, otherRelay, job } = await fixture();
    const queued = await job('queued', 'scan');
    const foreign = await job('dispatched', 'scan', otherRelay);
    const mine = await job('dispatched', 'scan');
    expect(acceptsRelayMessage(mine, relayId)).toBe(true);
    expect(acceptsRelayMessage(queued, relayId)).toBe(false);
    expect(acceptsRelayMessage(foreign, relayId)).toBe(false);
    expect(acceptsRelayMessage(undefined, relayId)).toBe(false);

    const out = await applyRelayMessages(db, relayId, [
      { type: 'output', id: foreign.id, data: 'not yours\n' },
      { type: 'response', id: foreign.id, ok: true, result: scanResult },
      { type: 'response', id: queued.id, ok: true, result: scanResult },
    ]);
    expect(out.refused.map((r) => r.reason)).toEqual(['job of another relay', 'job of another relay', 'job is queued']);
    expect(out.finished).toEqual([]);
    for (const j of [queued, foreign]) {
      const row = await db.query.jobs.findFirst({ where: eq(schema.jobs.id, j.id) });
      expect(row!.status).toBe(j.status);
      expect(await readLog(db, j.id)).toBe('');
    }
  });

  it('keeps order per job inside a batch: output before the response that finishes it; one terminal state', async () => {
    const { db, relayId, job } = await fixture();
    const up = await job('dispatched');
    const out = await applyRelayMessages(db, relayId, [
      { type: 'output', id: up.id, data: 'Reading lists\n', range: { from: 0, to: 14 } },
      { type: 'output', id: up.id, data: 'again\n', range: { from: 0, to: 6 } }, // a resent range: dropped
      { type: 'output', id: up.id, data: 'Setting up\n', range: { from: 14, to: 25 } },
      { type: 'response', id: up.id, ok: true, result: upgradeOk },
      { type: 'output', id: up.id, data: 'late\n', range: { from: 25, to: 30 } }, // after its end: dropped
      { type: 'response', id: up.id, ok: false, error: { code: 'internal', message: 'second answer' } }, // dropped
    ]);
    expect(out.events.map((e) => e.type), JSON.stringify(out)).toEqual(['job', 'job.output', 'job.output', 'host', 'job']);
    expect(out.refused.map((r) => r.reason)).toEqual(['job is succeeded', 'job is succeeded']);
    expect(out.finished.map((f) => f.job.status)).toEqual(['succeeded']);
    const row = await db.query.jobs.findFirst({ where: eq(schema.jobs.id, up.id) });
    expect(row).toMatchObject({ status: 'succeeded', logOffset: 25, errorCode: null });
    expect(await readLog(db, up.id)).toBe('Reading lists\nSetting up\n');
    // and a later batch cannot finish it again
    const again = await applyRelayMessages(db, relayId, [{ type: 'response', id: up.id, ok: true, result: upgradeOk }]);
    expect(again.finished).toEqual([]);
  });
});
