// RelayHub under a stream of answers (relay-hub.ts): responses are applied at most once per
// APPLY_WINDOW_MS, at once when the stream pauses (APPLY_QUIET_MS), a job's output is never
// held back by that window, and a dispatch is one
// D1 round trip however many jobs it hands out. Against the real Worker in workerd (local
// D1) with a fake relay on a real WebSocket.
import { describe, expect, it } from 'vitest';
import { runInDurableObject } from 'cloudflare:test';
import { api, countingD1, createRelay, FakeRelay, testEnv, until } from './test/helpers.ts';
import { scanResult } from './test/fixtures.ts';
import { APPLY_QUIET_MS, relayHub, type RelayHub } from './relay-hub.ts';
import { GATHER_MS } from '../relay/outbox.ts';
import { openDb, schema } from './db/index.ts';
import { newId } from './lib/crypto.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hub = (relayId: string) => relayHub(testEnv, relayId) as unknown as DurableObjectStub<RelayHub>;

async function hostsOf(relayId: string, n: number, prefix: string): Promise<{ id: string }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const res = await api('/api/hosts', { method: 'POST', json: { relayId, name: `${prefix}${i}`, address: `198.51.100.${i + 1}` } });
    expect(res.status).toBe(201);
    out.push(await json(res));
  }
  return out;
}

/** The live socket (as a script opens it), with when each event came. */
async function liveEvents() {
  const res = await api('/api/live', { headers: { Upgrade: 'websocket' } });
  const ws = res.webSocket!;
  ws.accept();
  const events: { at: number; event: any }[] = [];
  ws.addEventListener('message', (e) => {
    events.push({ at: Date.now(), event: JSON.parse(String(e.data)) });
  });
  return { events, close: () => ws.close() };
}

/** The dashboard's live socket (`?batch=1`): one frame per broadcast, each kept. */
async function liveSocket() {
  const res = await api('/api/live?batch=1', { headers: { Upgrade: 'websocket' } });
  const ws = res.webSocket!;
  ws.accept();
  const frames: any[][] = [];
  ws.addEventListener('message', (e) => frames.push(JSON.parse(String(e.data))));
  return { frames, close: () => ws.close() };
}

describe('RelayHub: a stream of answers', { timeout: 60_000 }, () => {
  it("reads a relay's gathered frames as one stream: they come closer together than the pause that ends a batch", () => {
    // (with a margin for timers firing late on a busy relay)
    expect(APPLY_QUIET_MS).toBeGreaterThanOrEqual(GATHER_MS * 1.5);
  });

  it("a job's output goes through at once, taking the answers held with it; answers alone wait for the window", async () => {
    const { id: relayId, token } = await createRelay('window');
    const relay = await FakeRelay.connect(token);
    const hosts = await hostsOf(relayId, 3, 'w');
    const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds: hosts.map((h) => h.id) } }));
    for (let i = 0; i < 3; i++) await relay.next();
    // an upgrade this relay is running, whose output will come
    const upgrade = newId();
    await openDb(testEnv.DB)
      .insert(schema.jobs)
      .values({ id: upgrade, kind: 'upgrade', hostId: hosts[0].id, relayId, status: 'dispatched', createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 600_000 });
    const WINDOW = 1500; // long, so that "held" and "at once" cannot be mistaken for each other
    // (the pause that ends a wait as long, so that only the window and output count here)
    await runInDurableObject(hub(relayId), (h: RelayHub) => void ((h.applyWindowMs = WINDOW), (h.applyQuietMs = WINDOW)));
    const live = await liveEvents();
    const finished = (id: string) => live.events.find((e) => e.event.type === 'job' && e.event.job.id === id && e.event.job.status === 'succeeded')?.at;

    relay.send({ type: 'response', id: jobIds[0], ok: true, result: scanResult }); // applied at once: nothing came before it
    await until(async () => finished(jobIds[0]));
    const t1 = Date.now();
    relay.send({ type: 'response', id: jobIds[1], ok: true, result: scanResult }); // held: a batch went just now
    await sleep(200);
    expect(finished(jobIds[1])).toBeUndefined();
    relay.send({ type: 'output', id: upgrade, data: 'Unpacking openssl (3.0.17-1~deb12u3) ...\n' });
    const line = await until(async () => live.events.find((e) => e.event.type === 'job.output' && e.event.jobId === upgrade)?.at, 5000);
    expect(line - t1).toBeLessThan(WINDOW - 500);
    // the held answer went with it: in the same batch, whose write follows the line (a job's
    // output is published before the write, so that it waits for no D1 round trip)
    const held = await until(async () => finished(jobIds[1]), 5000);
    expect(held - line).toBeLessThan(300);

    const t2 = Date.now();
    relay.send({ type: 'response', id: jobIds[2], ok: true, result: scanResult }); // held again: answers alone wait
    const third = await until(async () => finished(jobIds[2]), 10_000);
    expect(third - t2).toBeGreaterThanOrEqual(WINDOW - 300);
    live.close();
  });

  it('under a stream, answers wait for the window; when the stream pauses they go at once, not at its end', async () => {
    const { id: relayId, token } = await createRelay('quiet');
    const relay = await FakeRelay.connect(token);
    const N = 25;
    const hosts = await hostsOf(relayId, N, 'q');
    const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds: hosts.map((h) => h.id) } }));
    const requests = [];
    for (let i = 0; i < N; i++) requests.push(await relay.next());
    const WINDOW = 2000;
    const QUIET = 150;
    await runInDurableObject(hub(relayId), (h: RelayHub) => void ((h.applyWindowMs = WINDOW), (h.applyQuietMs = QUIET)));
    const live = await liveEvents();
    const finished = (id: string) => live.events.find((e) => e.event.type === 'job' && e.event.job.id === id && e.event.job.status === 'succeeded')?.at;

    // one answer every 25 ms (pauses far shorter than QUIET) for about 600 ms
    const t0 = Date.now();
    for (const req of requests) {
      relay.send({ type: 'response', id: req.id, ok: true, result: scanResult });
      await sleep(25);
    }
    const tEnd = Date.now();
    expect(tEnd - t0).toBeLessThan(WINDOW / 2);
    // the first went at once; the rest were held while the stream went on…
    await until(async () => finished(jobIds[0]));
    const during = jobIds.slice(1).filter((id: string) => (finished(id) ?? Infinity) < tEnd - QUIET);
    expect(during).toEqual([]);
    // …and went when it paused, long before the window's end
    const last = await until(async () => finished(jobIds[N - 1]), 10_000);
    expect(last - tEnd).toBeLessThan(QUIET + 600);
    expect(last).toBeLessThan(t0 + WINDOW - 300);
    expect(jobIds.every((id: string) => finished(id))).toBe(true);
    live.close();
  });

  it('what comes while a batch is written waits for the stream to pause after it: not a batch of its own', async () => {
    const { id: relayId, token } = await createRelay('after');
    const relay = await FakeRelay.connect(token);
    const N = 18;
    const hosts = await hostsOf(relayId, N, 'p');
    await api('/api/scans', { method: 'POST', json: { hostIds: hosts.map((h) => h.id) } });
    const requests: { id: string }[] = [];
    for (let i = 0; i < N; i++) requests.push(await relay.next());
    const WRITE = 600; // the first batch is slowed to this, so that answers come during it
    const QUIET = 200;
    await runInDurableObject(hub(relayId), (h: RelayHub) => {
      h.applyWindowMs = 4000;
      h.applyQuietMs = QUIET;
      const apply = h.applyBatch.bind(h);
      const sizes: number[] = [];
      Object.assign(h, { batchSizes: sizes });
      h.applyBatch = async (id, messages) => {
        sizes.push(messages.length);
        if (sizes.length === 1) await sleep(WRITE);
        return apply(id, messages);
      };
    });
    const answer = (from: number, to: number) => {
      for (const req of requests.slice(from, to)) relay.send({ type: 'response', id: req.id, ok: true, result: scanResult });
    };
    answer(0, 1); // applied at once (nothing came before it), and slowly
    await sleep(100);
    answer(1, 4); // during that batch
    await sleep(WRITE); // it has ended; the stream goes on within its pause
    answer(4, N);
    const sizes = await until(async () => {
      const got = await runInDurableObject(hub(relayId), (h: RelayHub) => [...(h as unknown as { batchSizes: number[] }).batchSizes]);
      return got.reduce((a, b) => a + b, 0) === N && got;
    }, 10_000);
    expect(sizes).toEqual([1, N - 1]);
  });

  it("a batch's follow-ups are announced with it: the docker scans its scans queued, once each, in the same broadcast as those scans' ends", async () => {
    const { id: relayId, token } = await createRelay('follow');
    const relay = await FakeRelay.connect(token);
    const hosts = await hostsOf(relayId, 3, 'f');
    await api('/api/scans', { method: 'POST', json: { hostIds: hosts.map((h) => h.id) } });
    const requests = [];
    for (let i = 0; i < 3; i++) requests.push(await relay.next());
    const live = await liveSocket();
    for (const req of requests) relay.send({ type: 'response', id: req.id, ok: true, result: { ...scanResult, probe: { ...scanResult.probe, docker: true } } });
    for (let i = 0; i < 3; i++) expect((await relay.next(10_000)).op).toBe('docker.scan');
    const dockerScans = (f: any[]) => f.filter((e) => e.type === 'job' && e.job.kind === 'docker-scan');
    await until(async () => live.frames.flatMap(dockerScans).length >= 3, 5000);
    // each host's docker scan was queued and dispatched in the batch that ended its scan, and
    // announced in the same broadcast (the hub holds its live queue while a batch is applied),
    // once: in its last state, dispatched (live-coalesce.ts)
    for (const h of hosts) {
      const end = live.frames.find((f) => f.some((e) => e.type === 'job' && e.job.kind === 'scan' && e.job.hostId === h.id && e.job.status === 'succeeded'))!;
      expect(dockerScans(end).filter((e) => e.job.hostId === h.id).map((e) => e.job.status)).toEqual(['dispatched']);
    }
    expect(live.frames.flatMap(dockerScans).map((e) => e.job.hostId).sort()).toEqual(hosts.map((h) => h.id).sort());
    live.close();
  });

  it('announces the scans of POST /api/scans once, as dispatched, when their relay is connected; as queued when it is not', async () => {
    const up = await createRelay('announce-up');
    const relay = await FakeRelay.connect(up.token);
    const down = await createRelay('announce-down');
    const upHosts = await hostsOf(up.id, 3, 'u');
    const downHosts = await hostsOf(down.id, 2, 'w');
    const live = await liveSocket();
    const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds: [...upHosts, ...downHosts].map((h) => h.id) } }));
    expect(jobIds).toHaveLength(5);
    for (let i = 0; i < 3; i++) expect((await relay.next()).op).toBe('scan');
    const told = () => live.frames.flat().filter((e) => e.type === 'job' && jobIds.includes(e.job.id));
    await until(async () => told().length >= 5);
    await new Promise((r) => setTimeout(r, 200)); // (nothing more comes)
    const statusOf = (hostIds: string[]) => told().filter((e) => hostIds.includes(e.job.hostId)).map((e) => e.job.status);
    expect(statusOf(upHosts.map((h) => h.id))).toEqual(['dispatched', 'dispatched', 'dispatched']);
    expect(statusOf(downHosts.map((h) => h.id))).toEqual(['queued', 'queued']);
    live.close();
  });

  it('hands out many queued jobs in ONE D1 round trip (the claim and their hosts), each with its own host', async () => {
    const { id: relayId, token } = await createRelay('dispatch');
    const hosts = await hostsOf(relayId, 120, 'd'); // more than the 90 ids one statement may bind
    // queued while the relay is away
    const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds: hosts.map((h) => h.id) } }));
    expect(jobIds).toHaveLength(120);
    // the relay's hello dispatches them (that is how each job's host is known below); then they
    // are queued again and one dispatch is counted
    const relay = await FakeRelay.connect(token);
    const requests = await until(async () => relay.inbox.filter((m) => m.type === 'request').length === 120 && relay.inbox.filter((m) => m.type === 'request'));
    relay.inbox.length = 0;
    await testEnv.DB.prepare("UPDATE jobs SET status = 'queued', dispatched_at = NULL WHERE relay_id = ?").bind(relayId).run();
    const counted = countingD1(testEnv.DB);
    const sent = await runInDurableObject(hub(relayId), async (h: RelayHub) => {
      const db = h.db;
      h.db = openDb(counted.d1);
      try {
        return await h.dispatch();
      } finally {
        h.db = db;
      }
    });
    expect(sent).toBe(120);
    expect(counted.calls).toEqual(['batch']);
    const again = await until(async () => relay.inbox.filter((m) => m.type === 'request').length === 120 && relay.inbox.filter((m) => m.type === 'request'));
    const addressOf = new Map(requests.map((r: any) => [r.id, r.params.target.address]));
    for (const r of again) expect(r.params.target.address, r.id).toBe(addressOf.get(r.id));
    expect(new Set(again.map((r: any) => r.id))).toEqual(new Set(jobIds));
    // the alarm watches the earliest deadline without a D1 read
    const [alarm, deadline] = await runInDurableObject(hub(relayId), async (h: RelayHub, state) => [
      await state.storage.getAlarm(),
      ((await testEnv.DB.prepare('SELECT min(deadline_at) AS d FROM jobs WHERE relay_id = ?').bind(relayId).first()) as { d: number }).d,
    ]);
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(deadline);
  });
});
