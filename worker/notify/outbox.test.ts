// The notification pipeline in workerd with D1: facts announced once (changes, not states),
// a flush window that waits for running scans and aggregates per channel, per-channel rate
// limit, exponential backoff and retry — delivering to a real HTTP receiver on loopback.
import { describe, expect, it, inject } from 'vitest';
import { eq } from 'drizzle-orm';
import { api, testEnv } from '../test/helpers.ts';
import { openDb, schema, type JobRow } from '../db/index.ts';
import { factsForJob, factsForJobs, recordFacts, factsForRelaysDown, notifyRelayGone, notifyRelayUp, notifyRolloutFinished } from './events.ts';
import { maybeDigest } from './digest.ts';
import { writeNotifySettings } from './settings.ts';
import { flushEvents, deliverDue, WINDOW_MIN_MS, WINDOW_MAX_MS, BACKOFF_BASE_MS, MAX_ATTEMPTS, RATE_WINDOW_MS } from './outbox.ts';
import type { PendingFact } from './message.ts';
import { SEND_TIMEOUT_MS } from './send.ts';

const receiver = inject('receiverUrl');
const db = () => openDb(testEnv.DB);
const received = async () => (await (await fetch(`${receiver}/__received`)).json()) as { path: string; body: string }[];
const reset = () => fetch(`${receiver}/__reset`, { method: 'POST' });

async function channel(path: string, extra: Record<string, unknown> = {}) {
  const res = await api('/api/notifications/channels', {
    method: 'POST',
    json: { name: path, type: 'webhook', events: ['security-updates', 'reboot-required', 'job-failed', 'host-unreachable', 'host-back', 'relay-down', 'relay-back'], config: { url: `${receiver}/${path}` }, ...extra },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string };
}

let n = 0;
async function host(tags: string[] = []) {
  const id = `h${++n}`;
  const now = Date.now();
  await db().insert(schema.hosts).values({ id, name: `web${n}`, address: `10.0.0.${n}`, tags, createdAt: now, updatedAt: now, status: 'online' });
  return id;
}

async function setSecurity(hostId: string, names: string[], rebootRequired = false) {
  await db().delete(schema.hostUpdates).where(eq(schema.hostUpdates.hostId, hostId));
  for (const name of names) await db().insert(schema.hostUpdates).values({ hostId, name, arch: 'amd64', currentVersion: '1', newVersion: '2', repository: 'Debian-Security', security: true });
  await db().update(schema.hosts).set({ securityCount: names.length, updatesCount: names.length, rebootRequired, rebootReason: rebootRequired ? '/run/reboot-required' : null }).where(eq(schema.hosts.id, hostId));
}

async function job(hostId: string, fields: Partial<JobRow>): Promise<JobRow> {
  const [row] = await db().insert(schema.jobs).values({ id: `j${++n}`, kind: 'scan', hostId, status: 'succeeded', createdAt: Date.now(), ...fields }).returning();
  return row;
}

const deliveries = () => db().select().from(schema.notifyDeliveries);

describe('notification events', () => {
  it('announces changes, not states: the same security updates are not sent twice', async () => {
    const h = await host();
    await setSecurity(h, ['openssl', 'libssl3'], true);
    const first = await factsForJob(db(), await job(h, {}));
    expect(first.map((f) => f.event).sort()).toEqual(['reboot-required', 'security-updates']);
    expect(first.find((f) => f.event === 'security-updates')!.data).toMatchObject({ rank: 2, detail: expect.stringContaining('2 new') });

    expect(await factsForJob(db(), await job(h, {}))).toEqual([]); // same facts: silence
    await setSecurity(h, ['openssl', 'libssl3', 'curl'], true);
    const third = await factsForJob(db(), await job(h, {}));
    expect(third).toHaveLength(1);
    expect(third[0].data.detail).toContain('1 new: curl');
  });

  it('host unreachable after N failed scans in a row, once; back once', async () => {
    const h = await host();
    const down = () => job(h, { status: 'failed', errorCode: 'unreachable', errorMessage: 'connection refused' });
    expect(await factsForJob(db(), await down())).toEqual([]); // 1 of 2
    expect((await factsForJob(db(), await down())).map((f) => f.event)).toEqual(['host-unreachable']);
    expect(await factsForJob(db(), await down())).toEqual([]);
    expect((await factsForJob(db(), await job(h, {}))).map((f) => f.event)).toEqual(['host-back']);
    expect(await factsForJob(db(), await job(h, {}))).toEqual([]);
  });

  it('a batch of finished jobs says what the same jobs one at a time would, in a few queries', async () => {
    const a = await host();
    const b = await host();
    await setSecurity(a, ['openssl'], false);
    await setSecurity(b, ['curl', 'libcurl4'], true);
    const down = { status: 'failed' as const, errorCode: 'unreachable', errorMessage: 'connection refused' };
    // a scanned twice in the batch (silence the second time), b announced, c down twice in a row
    const c = await host();
    const batch = [await job(a, {}), await job(b, {}), await job(a, {}), await job(c, down), await job(c, down)];
    const facts = await factsForJobs(db(), batch);
    expect(facts.map((f) => [f.event, f.hostId])).toEqual([
      ['security-updates', a],
      ['security-updates', b],
      ['reboot-required', b],
      ['host-unreachable', c],
    ]);
    // and the states it wrote are the ones the next job compares with
    expect(await factsForJobs(db(), [await job(a, {}), await job(b, {}), await job(c, {})])).toEqual([
      { event: 'host-back', hostId: c, data: expect.objectContaining({ detail: 'a scan reached it again' }) },
    ]);
  });

  it('a failed patch is a job-failed fact naming its job', async () => {
    const h = await host();
    const j = await job(h, { kind: 'upgrade', status: 'failed', errorCode: 'locked', errorMessage: 'another apt holds the lock' });
    const facts = await factsForJob(db(), j);
    expect(facts).toEqual([{ event: 'job-failed', hostId: h, data: expect.objectContaining({ jobId: j.id, detail: 'upgrade failed: another apt holds the lock' }) }]);
  });

  it('a changed host key is announced once per offered key', async () => {
    const h = await host();
    const offer = async (key: string) => {
      await db().update(schema.hosts).set({ hostKey: 'SHA256:old', hostKeyOffered: key }).where(eq(schema.hosts.id, h));
      return factsForJob(db(), await job(h, { status: 'failed', errorCode: 'host-key-changed', errorMessage: 'changed' }));
    };
    expect((await offer('SHA256:new1')).map((f) => f.event)).toEqual(['host-key-changed']);
    expect(await offer('SHA256:new1')).toEqual([]);
    expect((await offer('SHA256:new2'))[0].data.detail).toContain('SHA256:new2');
  });

  it('newer Docker images: announced per new image digest', async () => {
    const h = await host();
    const container = (name: string, remote: string) => ({
      name,
      service: name,
      state: 'running',
      image: `${name}:latest`,
      imageId: 'sha256:aa',
      repoDigests: [],
      check: { status: 'update-available' as const, reason: null, localDigest: 'sha256:old', remoteDigest: remote },
    });
    const stack = async (remote: string) => {
      await db().delete(schema.stacks).where(eq(schema.stacks.hostId, h));
      await db().insert(schema.stacks).values({ id: `s${++n}`, hostId: h, name: 'web', status: 'running(2)', containers: [container('nginx', remote), container('app', 'sha256:same')], checkedAt: 0 });
      return factsForJob(db(), await job(h, { kind: 'docker-scan' }));
    };
    const first = await stack('sha256:r1');
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ event: 'images-outdated', data: { detail: '2 containers with a newer image: web/app, web/nginx' } });
    expect(await stack('sha256:r1')).toEqual([]);
    expect((await stack('sha256:r2'))[0].data.detail).toBe('1 container with a newer image: web/nginx');
  });

  it('rollout-finished, for the policies: one call records one fact', async () => {
    await notifyRolloutFinished(testEnv, { id: 'ro1', name: 'nightly security', status: 'halted', succeeded: 3, failed: 2 });
    const [ev] = await db().select().from(schema.notifyEvents).where(eq(schema.notifyEvents.event, 'rollout-finished'));
    expect(ev.data).toMatchObject({ name: 'nightly security', detail: 'halted: 3 patched, 2 failed' });
  });

  it('the digest goes out at its hour, once per period', async () => {
    const h = await host();
    await setSecurity(h, ['openssl', 'curl']);
    await writeNotifySettings(db(), { digest: 'daily', digestHourUtc: 8 });
    const at8 = Date.UTC(2027, 0, 4, 8, 5);
    expect(await maybeDigest(testEnv, db(), Date.UTC(2027, 0, 4, 7, 55))).toBe(false);
    expect(await maybeDigest(testEnv, db(), at8)).toBe(true);
    expect(await maybeDigest(testEnv, db(), at8 + 5 * 60_000)).toBe(false); // the next cron run
    expect(await maybeDigest(testEnv, db(), at8 + 86_400_000 - 60_000)).toBe(true); // tomorrow, a minute early
    const [ev] = await db().select().from(schema.notifyEvents).where(eq(schema.notifyEvents.event, 'digest'));
    expect(ev.data.detail).toContain('2 pending updates, 2 of them security');
    expect(ev.data.detail).toContain('Most security updates: web');
  });

  it('a relay gone longer than the setting is announced once, and its return', async () => {
    const [relay] = await db().insert(schema.relays).values({ id: 'r1', name: 'lab relay', tokenHash: 'x', createdAt: 0 }).returning();
    const t0 = Date.now();
    await notifyRelayGone(testEnv, relay.id, t0);
    expect((await factsForRelaysDown(testEnv, db(), t0 + 60_000)).facts).toEqual([]);
    const due = await factsForRelaysDown(testEnv, db(), t0 + 10 * 60_000);
    expect(due.facts.map((f) => f.data.name)).toEqual(['lab relay']);
    expect((await factsForRelaysDown(testEnv, db(), t0 + 20 * 60_000)).facts).toEqual([]);
    await notifyRelayUp(testEnv, relay.id);
    const back = await db().select().from(schema.notifyEvents).where(eq(schema.notifyEvents.event, 'relay-back'));
    expect(back).toHaveLength(1);
  });
});

describe('the outbox', () => {
  it('"Scan all" over 30 hosts: the window waits for running scans, then one message per channel and event', async () => {
    await reset();
    const all = await channel('all');
    const tagged = await channel('tagged', { tags: ['prod'] });
    const critical = await channel('critical', { minSeverity: 'critical' });
    const facts: PendingFact[] = [];
    for (let i = 0; i < 30; i++) {
      const h = await host(i < 4 ? ['prod'] : []);
      facts.push({ event: 'security-updates', hostId: h, data: { name: `web${n}`, detail: `${i + 1} security updates`, rank: i + 1 } });
    }
    const t0 = Date.now() + 3_600_000; // far from the real clock (the Notifier's own alarm)
    await recordFacts(testEnv, db(), facts, t0, { wake: false });
    const running = await job(await host(), { status: 'running' });

    expect(await flushEvents(testEnv, db(), t0 + 1000)).toBe(t0 + WINDOW_MIN_MS);
    expect(await flushEvents(testEnv, db(), t0 + WINDOW_MIN_MS)).toBeGreaterThan(t0 + WINDOW_MIN_MS); // a scan still runs
    expect(await deliveries()).toHaveLength(0);
    await db().update(schema.jobs).set({ status: 'succeeded' }).where(eq(schema.jobs.id, running.id));
    await flushEvents(testEnv, db(), t0 + WINDOW_MIN_MS + 5000);

    const made = await deliveries();
    expect(made.map((d) => d.channelId).sort()).toEqual([all.id, tagged.id].sort()); // not the critical-only one
    expect(made.every((d) => d.event === 'security-updates')).toBe(true);
    const toAll = made.find((d) => d.channelId === all.id)!.message;
    expect(toAll).toMatchObject({ count: 30, title: 'New security updates on 30 hosts' });
    expect(toAll.text).toContain('465 security updates pending on 30 hosts'); // 1+…+30
    expect(toAll.items).toHaveLength(10);
    expect(toAll.items[0].detail).toBe('30 security updates'); // the worst first
    expect(made.find((d) => d.channelId === tagged.id)!.message.count).toBe(4);
    expect(critical.id).toBeTruthy();

    await deliverDue(testEnv, db(), t0 + WINDOW_MIN_MS + 6000);
    const got = await received();
    expect(got.filter((r) => r.path === '/all')).toHaveLength(1);
    expect(got.filter((r) => r.path === '/tagged')).toHaveLength(1);
    expect(JSON.parse(got.find((r) => r.path === '/all')!.body)).toMatchObject({ event: 'security-updates', count: 30 });
    expect(await db().select().from(schema.notifyEvents)).toHaveLength(0);
  });

  it('a window never waits longer than its maximum', async () => {
    await channel('max');
    const h = await host();
    const t0 = Date.now() + 7_200_000;
    await recordFacts(testEnv, db(), [{ event: 'job-failed', hostId: h, data: { name: 'web', detail: 'x', rank: 1 } }], t0, { wake: false });
    await job(h, { status: 'running' });
    await flushEvents(testEnv, db(), t0 + WINDOW_MAX_MS);
    expect(await deliveries()).toHaveLength(1);
  });

  it('retries a failing channel with exponential backoff, then gives up', async () => {
    const ch = await channel('status/503');
    const t0 = Date.now() + 3_600_000;
    await db().insert(schema.notifyDeliveries).values({ id: 'd1', channelId: ch.id, event: 'job-failed', message: { event: 'job-failed', severity: 'critical', title: 't', text: 'x', link: null, at: '', count: 1, items: [] }, createdAt: t0, nextAttemptAt: t0 });
    const row = async () => (await db().query.notifyDeliveries.findFirst({ where: eq(schema.notifyDeliveries.id, 'd1') }))!;
    let t = t0;
    for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
      await deliverDue(testEnv, db(), t);
      const d = await row();
      expect(d).toMatchObject({ status: 'pending', attempts: attempt, error: expect.stringMatching(/^HTTP 503/) });
      expect(d.nextAttemptAt! - t).toBe(BACKOFF_BASE_MS * 2 ** (attempt - 1));
      await deliverDue(testEnv, db(), d.nextAttemptAt! - 1); // not yet
      expect((await row()).attempts).toBe(attempt);
      t = d.nextAttemptAt!;
    }
    await deliverDue(testEnv, db(), t);
    expect(await row()).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS, nextAttemptAt: null });
  });

  it('a retry succeeds once the receiver answers', async () => {
    const ch = await channel('status/500');
    const t0 = Date.now() + 3_600_000;
    await db().insert(schema.notifyDeliveries).values({ id: 'd2', channelId: ch.id, event: 'job-failed', message: { event: 'job-failed', severity: 'critical', title: 't', text: 'x', link: null, at: '', count: 1, items: [] }, createdAt: t0, nextAttemptAt: t0 });
    await deliverDue(testEnv, db(), t0);
    const put = await api(`/api/notifications/channels/${ch.id}`, { method: 'PUT', json: { name: 'fixed', type: 'webhook', events: ['job-failed'], config: { url: `${receiver}/fixed` } } });
    expect(put.status).toBe(200);
    await deliverDue(testEnv, db(), t0 + BACKOFF_BASE_MS);
    expect(await db().query.notifyDeliveries.findFirst({ where: eq(schema.notifyDeliveries.id, 'd2') })).toMatchObject({ status: 'sent', attempts: 2, error: null });
  });

  it('a channel that hangs does not hold up the others', async () => {
    await reset();
    const hang = await channel('hang');
    const ok = await channel('quick');
    const t0 = Date.now() + 3_600_000;
    const msg = { event: 'job-failed' as const, severity: 'critical' as const, title: 't', text: 'x', link: null, at: '', count: 1, items: [] };
    await db().insert(schema.notifyDeliveries).values({ id: 'h1', channelId: hang.id, event: 'job-failed', message: msg, createdAt: t0, nextAttemptAt: t0 - 1 });
    await db().insert(schema.notifyDeliveries).values({ id: 'q1', channelId: ok.id, event: 'job-failed', message: msg, createdAt: t0, nextAttemptAt: t0 });
    const started = Date.now();
    const run = deliverDue(testEnv, db(), t0);
    for (;;) {
      if ((await received()).some((r) => r.path === '/quick')) break;
      expect(Date.now() - started, 'the quick channel waited for the hanging one').toBeLessThan(SEND_TIMEOUT_MS - 2000);
      await new Promise((r) => setTimeout(r, 100));
    }
    await run;
    expect(await db().query.notifyDeliveries.findFirst({ where: eq(schema.notifyDeliveries.id, 'h1') })).toMatchObject({ status: 'pending', attempts: 1, error: expect.stringContaining('timed out') });
  }, 40_000);

  it('rate limits each channel per hour', async () => {
    await reset();
    const ch = await channel('limited', { maxPerHour: 2 });
    const t0 = Date.now() + 3_600_000;
    for (const id of ['a', 'b', 'c']) {
      await db().insert(schema.notifyDeliveries).values({ id, channelId: ch.id, event: 'job-failed', message: { event: 'job-failed', severity: 'critical', title: id, text: 'x', link: null, at: '', count: 1, items: [] }, createdAt: t0, nextAttemptAt: t0 });
    }
    await deliverDue(testEnv, db(), t0);
    const rows = await deliveries();
    expect(rows.filter((d) => d.status === 'sent')).toHaveLength(2);
    const waiting = rows.find((d) => d.status === 'pending')!;
    expect(waiting.nextAttemptAt).toBe(t0 + RATE_WINDOW_MS);
    expect(waiting.error).toContain('rate limited');
    expect((await received()).filter((r) => r.path === '/limited')).toHaveLength(2);
    await deliverDue(testEnv, db(), t0 + RATE_WINDOW_MS);
    expect((await received()).filter((r) => r.path === '/limited')).toHaveLength(3);
  });
});
