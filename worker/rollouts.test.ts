// The rollout state machine in workerd (local D1, real RelayHub, a fake relay on a real
// WebSocket), advanced by hand with a controlled clock: canary then batches within the
// concurrency limit, halting at K failures, the window closing mid-rollout, cancel, pause and
// resume, reboots one at a time, and a restarted Worker that resumes from D1 without running a
// host twice. Then the schedule: DST in Europe/Berlin and America/New_York, one run per slot.
import { describe, expect, it } from 'vitest';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { and, eq, inArray } from 'drizzle-orm';
import { api, testEnv, until, type FakeRelay } from './test/helpers.ts';
import { scanWith } from './test/fixtures.ts';
import { createPolicy, fleet, json, upgradeResult } from './test/policy-fleet.ts';
import { openDb, schema } from './db/index.ts';
import { advanceRollout, rolloutRunner, startRollout } from './rollouts.ts';
import { dueSlot, runDuePolicies } from './policy-schedule.ts';
import { startChange } from './changes.ts';
import { ACTIVE } from './jobs.ts';

const db = () => openDb(testEnv.DB);
const { jobs, rolloutHosts, rollouts, policies } = schema;
const clean = scanWith({ updates: [], reboot: { required: false, reason: null } });

async function rolloutOf(body: Record<string, unknown>, opts: { now?: number; windowEndsAt?: number | null } = {}) {
  const p = await createPolicy(body);
  const row = await db().query.policies.findFirst({ where: eq(policies.id, p.id) });
  return startRollout(testEnv, db(), row!, { trigger: 'manual', requestedBy: 'test', now: opts.now ?? Date.now(), windowEndsAt: opts.windowEndsAt ?? null, runner: false });
}

const hostsOf = async (id: string) => db().select().from(rolloutHosts).where(eq(rolloutHosts.rolloutId, id)).orderBy(rolloutHosts.position);
const statusOf = async (id: string) => (await db().query.rollouts.findFirst({ where: eq(rollouts.id, id) }))!;
const jobsOf = async (id: string) => db().select().from(jobs).where(and(eq(jobs.rolloutId, id), eq(jobs.kind, 'upgrade')));

/** Receive exactly `n` upgrade requests and answer each (ok, or failed when `fail` says so);
 * then answer the rescan each one triggers, and wait until no job is left in flight. */
async function handleUpgrades(relay: FakeRelay, n: number, fail: (address: string) => boolean = () => false, scan: unknown = clean) {
  const reqs = [];
  for (let i = 0; i < n; i++) {
    const req = await relay.next(10_000);
    expect(req.op).toBe('upgrade');
    reqs.push(req);
  }
  for (const req of reqs) {
    if (fail(req.params.target.address)) relay.send({ type: 'response', id: req.id, ok: false, error: { code: 'command-failed', message: 'dpkg: error processing package openssl', exitCode: 100 } });
    else relay.send({ type: 'response', id: req.id, ok: true, result: upgradeResult([{ name: 'openssl', from: '3.0.15-1~deb12u1', to: '3.0.17-1~deb12u2' }]) });
  }
  for (let i = 0; i < n; i++) {
    const req = await relay.next(10_000);
    expect(req.op).toBe('scan');
    relay.send({ type: 'response', id: req.id, ok: true, result: scan });
  }
  await settled();
  return reqs;
}

async function settled() {
  await until(async () => (await db().select({ id: jobs.id }).from(jobs).where(inArray(jobs.status, ACTIVE))).length === 0, 10_000);
}

const noMoreRequests = (relay: FakeRelay) => expect(relay.inbox.filter((m) => m.type === 'request')).toEqual([]);

describe('rollouts, advanced by hand', { timeout: 60_000 }, () => {
  it('canary first, then batches, never more than `concurrency` hosts at a time, then done', async () => {
    const { relay } = await fleet(5);
    const r = await rolloutOf({ rollout: { canary: 1, batchSize: 3, concurrency: 2 } });
    expect(r.batches).toBe(3);
    expect((await hostsOf(r.id)).map((h) => [h.name, h.batch, h.status])).toEqual([
      ['web01', 0, 'waiting'],
      ['web02', 1, 'waiting'],
      ['web03', 1, 'waiting'],
      ['web04', 1, 'waiting'],
      ['web05', 2, 'waiting'],
    ]);
    const t0 = Date.now();
    const steps: string[][] = [];
    for (let i = 0; i < 10; i++) {
      const { active } = await advanceRollout(testEnv, db(), r.id, t0 + i * 1000);
      if (!active) break;
      const running = (await hostsOf(r.id)).filter((h) => h.status === 'running').map((h) => h.name);
      steps.push(running);
      expect(running.length).toBeLessThanOrEqual(2);
      await handleUpgrades(relay, running.length);
    }
    expect(steps).toEqual([['web01'], ['web02', 'web03'], ['web04'], ['web05']]);
    const done = await statusOf(r.id);
    expect(done).toMatchObject({ status: 'done', failures: 0, batch: 2 });
    expect(done.finishedAt).not.toBeNull();
    expect((await hostsOf(r.id)).every((h) => h.status === 'succeeded')).toBe(true);
    // each host step is an ordinary upgrade job, linked to the rollout, asked for exactly the policy's packages
    const js = await jobsOf(r.id);
    expect(js).toHaveLength(5);
    for (const j of js) expect(j).toMatchObject({ status: 'succeeded', requestedBy: 'policy web security', params: { packages: ['libssl3', 'openssl'] } });
    const view = await json(api(`/api/rollouts/${r.id}`));
    expect(view).toMatchObject({ status: 'done', policyName: 'web security', hosts: expect.arrayContaining([expect.objectContaining({ name: 'web01', batch: 0, status: 'succeeded', jobId: expect.any(String) })]) });
  });

  it('halts when failures reach K: the canary fails, no batch host starts', async () => {
    const { relay } = await fleet(4);
    const r = await rolloutOf({ rollout: { canary: 2, batchSize: 1, concurrency: 2, haltAfterFailures: 2 } });
    const t0 = Date.now();
    await advanceRollout(testEnv, db(), r.id, t0);
    await handleUpgrades(relay, 2, () => true);
    const { active } = await advanceRollout(testEnv, db(), r.id, t0 + 1000);
    expect(active).toBe(false);
    const halted = await statusOf(r.id);
    expect(halted).toMatchObject({ status: 'halted', failures: 2, reason: 'halted: 2 hosts failed (the policy halts after 2)' });
    expect(halted.finishedAt).not.toBeNull();
    expect((await hostsOf(r.id)).map((h) => [h.name, h.status])).toEqual([
      ['web01', 'failed'],
      ['web02', 'failed'],
      ['web03', 'not-started'],
      ['web04', 'not-started'],
    ]);
    expect((await hostsOf(r.id))[0].reason).toMatch(/upgrade failed \(exit 100\): dpkg: error processing package openssl/);
    await advanceRollout(testEnv, db(), r.id, t0 + 2000);
    noMoreRequests(relay);
    expect(await jobsOf(r.id)).toHaveLength(2);
    // the notification channels hear of the end once
    const ended = await db().select().from(schema.notifyEvents).where(eq(schema.notifyEvents.event, 'rollout-finished'));
    expect(ended.map((e) => e.data)).toEqual([expect.objectContaining({ name: 'web security', detail: 'halted: 0 patched, 2 failed, 2 skipped' })]);
  });

  it('the window closes mid-rollout: hosts not started by then are not started at all', async () => {
    const { relay } = await fleet(3);
    const t0 = Date.now();
    const r = await rolloutOf({ rollout: { canary: 1, batchSize: 1, concurrency: 1 } }, { now: t0, windowEndsAt: t0 + 60 * 60_000 });
    await advanceRollout(testEnv, db(), r.id, t0);
    await handleUpgrades(relay, 1);
    await advanceRollout(testEnv, db(), r.id, t0 + 30 * 60_000); // web02 starts inside the window
    await handleUpgrades(relay, 1);
    const { active } = await advanceRollout(testEnv, db(), r.id, t0 + 61 * 60_000);
    expect(active).toBe(false);
    expect(await statusOf(r.id)).toMatchObject({ status: 'window-closed', reason: expect.stringMatching(/^the window closed at/) });
    expect((await hostsOf(r.id)).map((h) => [h.name, h.status, h.reason])).toEqual([
      ['web01', 'succeeded', null],
      ['web02', 'succeeded', null],
      ['web03', 'not-started', 'the window closed before it started'],
    ]);
    noMoreRequests(relay);
  });

  it('cancel: no new hosts; the upgrade under way finishes and is reported', async () => {
    const { relay } = await fleet(3);
    const r = await rolloutOf({ rollout: { canary: 1, concurrency: 1 } });
    const t0 = Date.now();
    await advanceRollout(testEnv, db(), r.id, t0);
    const cancel = await api(`/api/rollouts/${r.id}/cancel`, { method: 'POST', json: {} });
    expect(cancel.status).toBe(200);
    expect((await json(cancel)).status).toBe('cancelled');
    expect((await api(`/api/rollouts/${r.id}/resume`, { method: 'POST', json: {} })).status).toBe(409);
    expect((await advanceRollout(testEnv, db(), r.id, t0 + 1000)).active).toBe(true); // web01 still running
    expect((await statusOf(r.id)).finishedAt).toBeNull();
    await handleUpgrades(relay, 1);
    expect((await advanceRollout(testEnv, db(), r.id, t0 + 2000)).active).toBe(false);
    const end = await statusOf(r.id);
    expect(end.status).toBe('cancelled');
    expect(end.finishedAt).not.toBeNull();
    expect((await hostsOf(r.id)).map((h) => [h.name, h.status])).toEqual([
      ['web01', 'succeeded'],
      ['web02', 'not-started'],
      ['web03', 'not-started'],
    ]);
    noMoreRequests(relay);
  });

  it('pause holds new hosts back (running ones finish); resume goes on', async () => {
    const { relay } = await fleet(3);
    const r = await rolloutOf({ rollout: { canary: 1, batchSize: 2, concurrency: 2 } });
    const t0 = Date.now();
    await advanceRollout(testEnv, db(), r.id, t0);
    expect((await api(`/api/rollouts/${r.id}/pause`, { method: 'POST', json: {} })).status).toBe(200);
    await handleUpgrades(relay, 1);
    expect((await advanceRollout(testEnv, db(), r.id, t0 + 1000)).active).toBe(true);
    expect(await statusOf(r.id)).toMatchObject({ status: 'paused' });
    expect((await hostsOf(r.id)).map((h) => h.status)).toEqual(['succeeded', 'waiting', 'waiting']);
    noMoreRequests(relay);
    expect((await api(`/api/rollouts/${r.id}/resume`, { method: 'POST', json: {} })).status).toBe(200);
    await advanceRollout(testEnv, db(), r.id, t0 + 2000);
    await handleUpgrades(relay, 2);
    await advanceRollout(testEnv, db(), r.id, t0 + 3000);
    expect(await statusOf(r.id)).toMatchObject({ status: 'done' });
  });

  it('between batches the upgraded hosts must be back: a failed rescan fails the host', async () => {
    const { relay } = await fleet(2);
    const r = await rolloutOf({ rollout: { canary: 1, concurrency: 1, haltAfterFailures: 1 } });
    const t0 = Date.now();
    await advanceRollout(testEnv, db(), r.id, t0);
    const up = await relay.next(10_000);
    relay.send({ type: 'response', id: up.id, ok: true, result: upgradeResult([]) });
    const scan = await relay.next(10_000);
    expect(scan.op).toBe('scan');
    relay.send({ type: 'response', id: scan.id, ok: false, error: { code: 'unreachable', message: 'connect ECONNREFUSED 192.0.2.10:22' } });
    await settled();
    await advanceRollout(testEnv, db(), r.id, t0 + 1000);
    expect(await statusOf(r.id)).toMatchObject({ status: 'halted', failures: 1 });
    expect((await hostsOf(r.id)).map((h) => [h.status, h.reason])).toEqual([
      ['failed', 'not back after the upgrade: connect ECONNREFUSED 192.0.2.10:22'],
      ['not-started', 'the rollout halted'],
    ]);
    noMoreRequests(relay);
  });

  it('a restarted Worker resumes from D1 and never runs a host twice', async () => {
    const { relay } = await fleet(2);
    const r = await rolloutOf({ rollout: { canary: 1, concurrency: 1 } });
    const t0 = Date.now();
    // The step before the restart created web01's job, then died before recording it.
    const web01 = (await hostsOf(r.id))[0];
    const host = await db().query.hosts.findFirst({ where: eq(schema.hosts.id, web01.hostId) });
    const { job } = await startChange(testEnv, db(), host!, { kind: 'upgrade', packages: ['libssl3', 'openssl'], idempotencyKey: `rollout:${r.id}:${host!.id}`, requestedBy: 'policy web security', rolloutId: r.id });
    // After the restart: every step starts from what D1 holds.
    await advanceRollout(testEnv, db(), r.id, t0);
    await advanceRollout(testEnv, db(), r.id, t0 + 1000);
    expect((await hostsOf(r.id))[0]).toMatchObject({ status: 'running', jobId: job.id });
    const [req] = await handleUpgrades(relay, 1);
    expect(req.id).toBe(job.id);
    await advanceRollout(testEnv, db(), r.id, t0 + 2000);
    await handleUpgrades(relay, 1);
    await advanceRollout(testEnv, db(), r.id, t0 + 3000);
    expect(await statusOf(r.id)).toMatchObject({ status: 'done' });
    const all = await jobsOf(r.id);
    expect(all.map((j) => j.hostId).sort()).toEqual((await hostsOf(r.id)).map((h) => h.hostId).sort());
    noMoreRequests(relay);
  });

  it("reboot 'if-required': hosts that need it are rebooted one at a time after their upgrade", async () => {
    const { relay } = await fleet(2);
    const r = await rolloutOf({ reboot: 'if-required', rollout: { canary: 0, concurrency: 2 } });
    const t0 = Date.now();
    await advanceRollout(testEnv, db(), r.id, t0);
    await handleUpgrades(relay, 2, () => false, scanWith({ updates: [], reboot: { required: true, reason: '/run/reboot-required' } }));
    await advanceRollout(testEnv, db(), r.id, t0 + 1000);
    expect((await hostsOf(r.id)).map((h) => h.status).sort()).toEqual(['reboot-waiting', 'rebooting']);
    for (let i = 0; i < 2; i++) {
      const req = await relay.next(10_000);
      expect(req.op).toBe('reboot');
      noMoreRequests(relay); // one at a time
      relay.send({ type: 'response', id: req.id, ok: true, result: { bootIdBefore: 'a', bootIdAfter: `b${i}`, downMs: 30_000, kernel: '6.1.0-41-amd64' } });
      // a rescan follows the reboot
      const scan = await relay.next(10_000);
      expect(scan.op).toBe('scan');
      relay.send({ type: 'response', id: scan.id, ok: true, result: clean });
      await settled();
      await advanceRollout(testEnv, db(), r.id, t0 + 2000 + i * 1000);
    }
    expect(await statusOf(r.id)).toMatchObject({ status: 'done' });
    expect((await hostsOf(r.id)).map((h) => [h.status, h.reason])).toEqual([
      ['succeeded', 'rebooted: back after 30 s (kernel 6.1.0-41-amd64)'],
      ['succeeded', 'rebooted: back after 30 s (kernel 6.1.0-41-amd64)'],
    ]);
  });

  it('the RolloutRunner drives a rollout started through the API on its alarm', async () => {
    const { relay } = await fleet(2);
    const p = await createPolicy({ rollout: { canary: 1, concurrency: 1 } });
    const { rolloutId } = await json(api(`/api/policies/${p.id}/run`, { method: 'POST', json: {} }));
    expect((await api(`/api/policies/${p.id}/run`, { method: 'POST', json: {} })).status).toBe(409);
    await handleUpgrades(relay, 1); // the runner started the canary at once
    const stub = rolloutRunner(testEnv, rolloutId);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await handleUpgrades(relay, 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await json(api(`/api/rollouts/${rolloutId}`))).status).toBe('done');
    // nothing left to do: no alarm armed
    expect(await runDurableObjectAlarm(stub)).toBe(false);
    const list = await json(api(`/api/rollouts?policyId=${p.id}`));
    expect(list.map((x: any) => x.id)).toEqual([rolloutId]);
  });
});

describe('schedules', { timeout: 30_000 }, () => {
  const policyRow = (cron: string, timeZone: string, createdAt: number, lastScheduledFor: number | null = null) =>
    ({ id: 'p', name: 'p', enabled: true, createdAt, updatedAt: createdAt, lastScheduledFor, spec: { schedule: { cron, timeZone, windowMinutes: 120 } } }) as any;
  const at = (s: string) => Date.parse(s);

  it('Europe/Berlin: Sundays 02:30 across both DST changes (the skipped hour runs at 03:00 CEST, the repeated one once)', () => {
    const p = policyRow('30 2 * * 0', 'Europe/Berlin', at('2026-03-01T00:00:00Z'));
    // winter: 02:30 CET = 01:30Z
    expect(dueSlot(p, at('2026-03-22T01:31:00Z'))).toBe(at('2026-03-22T01:30:00Z'));
    expect(dueSlot(p, at('2026-03-22T01:29:00Z'))).toBeNull();
    // spring forward on 29 March: 02:30 does not exist; it runs at 03:00 CEST = 01:00Z
    expect(dueSlot(p, at('2026-03-29T01:00:30Z'))).toBe(at('2026-03-29T01:00:00Z'));
    // summer: 02:30 CEST = 00:30Z
    expect(dueSlot(p, at('2026-04-05T00:31:00Z'))).toBe(at('2026-04-05T00:30:00Z'));
    // fall back on 25 October: 02:30 happens twice; it runs once, the first time (CEST, 00:30Z)
    const oct = policyRow('30 2 * * 0', 'Europe/Berlin', at('2026-10-01T00:00:00Z'));
    expect(dueSlot(oct, at('2026-10-25T00:31:00Z'))).toBe(at('2026-10-25T00:30:00Z'));
    const after = { ...oct, lastScheduledFor: at('2026-10-25T00:30:00Z') };
    expect(dueSlot(after, at('2026-10-25T01:31:00Z'))).toBeNull();
  });

  it('America/New_York: daily 02:30 and 01:30 across both DST changes', () => {
    const p = policyRow('30 2 * * *', 'America/New_York', at('2026-03-01T00:00:00Z'));
    expect(dueSlot(p, at('2026-03-07T07:31:00Z'))).toBe(at('2026-03-07T07:30:00Z')); // EST
    // 8 March: 02:00 → 03:00; 02:30 is skipped and runs at 03:00 EDT = 07:00Z
    expect(dueSlot({ ...p, lastScheduledFor: at('2026-03-07T07:30:00Z') }, at('2026-03-08T07:01:00Z'))).toBe(at('2026-03-08T07:00:00Z'));
    expect(dueSlot(p, at('2026-03-09T06:31:00Z'))).toBe(at('2026-03-09T06:30:00Z')); // EDT
    // 1 November: 01:30 happens twice; one run, at 01:30 EDT = 05:30Z
    const nov = policyRow('30 1 * * *', 'America/New_York', at('2026-10-31T12:00:00Z'));
    expect(dueSlot(nov, at('2026-11-01T05:31:00Z'))).toBe(at('2026-11-01T05:30:00Z'));
    expect(dueSlot({ ...nov, lastScheduledFor: at('2026-11-01T05:30:00Z') }, at('2026-11-01T06:31:00Z'))).toBeNull();
  });

  it('the cron starts a due policy once per slot, with the window counted from the slot', async () => {
    await fleet(1);
    const p = await createPolicy({ schedule: { cron: '30 2 * * 0', timeZone: 'Europe/Berlin', windowMinutes: 60 } });
    await db().update(policies).set({ createdAt: at('2026-03-01T00:00:00Z') }).where(eq(policies.id, p.id));
    const now = at('2026-03-22T01:33:00Z');
    const first = await runDuePolicies(testEnv, db(), now);
    expect(first.started).toHaveLength(1);
    const r = await statusOf(first.started[0]);
    expect(r).toMatchObject({ trigger: 'schedule', windowEndsAt: at('2026-03-22T02:30:00Z') });
    const audit = await json(api('/api/audit'));
    expect(audit.find((a: any) => a.target === r.id)).toMatchObject({ actor: 'schedule', actorType: 'system', action: expect.stringMatching(/started by its schedule; reboots: never — Nothing is rebooted/) });
    expect((await runDuePolicies(testEnv, db(), now + 60_000)).started).toEqual([]);
    // past the window: too late for this slot
    const q = await createPolicy({ name: 'late', schedule: { cron: '30 2 * * 0', timeZone: 'Europe/Berlin', windowMinutes: 60 } });
    await db().update(policies).set({ createdAt: at('2026-03-01T00:00:00Z') }).where(eq(policies.id, q.id));
    expect((await runDuePolicies(testEnv, db(), at('2026-03-22T02:31:00Z'))).started).toEqual([]);
  });
});
