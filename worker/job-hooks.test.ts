// The after-job hooks take what a batch of relay answers already says of its hosts instead of
// reading it back (job-hooks.ts knownAfter): the host rows the batch returned and the security
// updates its scans found must be exactly what D1 holds after the batch.
import { describe, expect, it } from 'vitest';
import { and, eq, inArray } from 'drizzle-orm';
import { api, countingD1, createRelay, testEnv } from './test/helpers.ts';
import { scanResult, scanWith } from './test/fixtures.ts';
import { openDb, schema } from './db/index.ts';
import { applyRelayMessages } from './relay-apply.ts';
import { knownAfter } from './job-hooks.ts';
import { factsForJobs, outdatedImages } from './notify/events.ts';
import { newId } from './lib/crypto.ts';

describe('knownAfter', () => {
  it("holds each host's row and security updates as D1 has them after the batch; the notification hook finds the same facts with it", async () => {
    const { id: relayId } = await createRelay('known');
    const db = openDb(testEnv.DB);
    const hostIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await api('/api/hosts', { method: 'POST', json: { relayId, name: `k${i}`, address: `192.0.2.${230 + i}` } });
      hostIds.push(((await res.json()) as { id: string }).id);
    }
    const job = async (hostId: string) => {
      const id = newId();
      await db.insert(schema.jobs).values({ id, kind: 'scan', hostId, relayId, status: 'dispatched', createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 60_000 });
      return id;
    };
    const security = scanResult.updates.filter((u) => u.security);
    expect(security.length).toBeGreaterThan(0);
    // host 0 twice in the batch (its second answer, with one security update less, is what stays); host 1 once
    const { finished } = await applyRelayMessages(db, relayId, [
      { type: 'response', id: await job(hostIds[0]), ok: true, result: scanResult },
      { type: 'response', id: await job(hostIds[1]), ok: true, result: scanResult },
      { type: 'response', id: await job(hostIds[0]), ok: true, result: scanWith({ updates: scanResult.updates.filter((u) => u !== security[0]) }) },
    ]);
    expect(finished).toHaveLength(3);
    const known = knownAfter(finished);
    for (const id of hostIds) {
      expect(known.hosts!.get(id)).toEqual(await db.query.hosts.findFirst({ where: eq(schema.hosts.id, id) }));
      const stored = await db.select().from(schema.hostUpdates).where(and(eq(schema.hostUpdates.hostId, id), eq(schema.hostUpdates.security, true)));
      expect([...new Set(known.security!.get(id))].sort()).toEqual([...new Set(stored.map((u) => `${u.name} ${u.newVersion}`))].sort());
    }
    expect(known.security!.get(hostIds[0])).toHaveLength(security.length - 1);

    // as when read back: a host's list is the one the batch left (host 0's second answer), announced once
    const facts = await factsForJobs(db, finished.map((f) => f.job), known);
    const announced = facts.filter((f) => f.event === 'security-updates').map((f) => [f.hostId, f.data.rank]);
    expect(announced).toEqual([
      [hostIds[0], security.length - 1],
      [hostIds[1], security.length],
    ]);
    // and the same batch's facts read from D1 alone (the states now written) say nothing new
    expect(await factsForJobs(db, finished.map((f) => f.job))).toEqual([]);
  });

  it("holds each host's outdated images as its stored stacks say after a docker scan; the notification hook announces the same", async () => {
    const { id: relayId } = await createRelay('known-images');
    const db = openDb(testEnv.DB);
    const res = await api('/api/hosts', { method: 'POST', json: { relayId, name: 'ki', address: '192.0.2.240' } });
    const hostId = ((await res.json()) as { id: string }).id;
    const digest = (c: string) => `sha256:${c.repeat(64)}`;
    const container = (name: string, status: string, remote: string | null) => ({
      name,
      service: name,
      state: 'running',
      image: `example/${name}:latest`,
      imageId: digest('1'),
      repoDigests: [],
      check: { status, reason: null, localDigest: digest('2'), remoteDigest: remote },
    });
    const stack = (name: string, containers: unknown[]) => ({ name, status: 'running(2)', workingDir: `/srv/${name}`, configFiles: [], containers });
    const job = async (params: Record<string, string> = {}) => {
      const id = newId();
      await db.insert(schema.jobs).values({ id, kind: 'docker-scan', hostId, relayId, status: 'dispatched', params, createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 60_000 });
      return id;
    };
    const { finished } = await applyRelayMessages(db, relayId, [
      {
        type: 'response',
        id: await job(),
        ok: true,
        result: { composeVersion: '2.29.7', warnings: [], stacks: [stack('web', [container('nginx', 'update-available', digest('3')), container('redis', 'up-to-date', digest('2'))]), stack('db', [container('pg', 'update-available', digest('4'))])] },
      },
    ]);
    const known = knownAfter(finished);
    const stored = await db.select().from(schema.stacks).where(eq(schema.stacks.hostId, hostId));
    expect([...known.images!.get(hostId)!].sort()).toEqual(outdatedImages(stored).sort());
    expect(known.images!.get(hostId)).toHaveLength(2);
    // a check of one stack says nothing of the others: not taken as the host's images
    const { finished: one } = await applyRelayMessages(db, relayId, [{ type: 'response', id: await job({ stack: 'web' }), ok: true, result: { composeVersion: '2.29.7', warnings: [], stacks: [] } }]);
    expect(knownAfter(one).images!.has(hostId)).toBe(false);

    const facts = await factsForJobs(db, finished.map((f) => f.job), known);
    expect(facts.filter((f) => f.event === 'images-outdated').map((f) => f.data.rank)).toEqual([2]);
  });

  it("a batch's new host states are written in one statement, however many hosts", async () => {
    const { id: relayId } = await createRelay('known-many');
    const db = openDb(testEnv.DB);
    const messages = [];
    for (let i = 0; i < 30; i++) {
      const res = await api('/api/hosts', { method: 'POST', json: { relayId, name: `km${i}`, address: `192.0.2.${100 + i}` } });
      const hostId = ((await res.json()) as { id: string }).id;
      const id = newId();
      await db.insert(schema.jobs).values({ id, kind: 'scan', hostId, relayId, status: 'dispatched', createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 60_000 });
      messages.push({ type: 'response' as const, id, ok: true as const, result: scanResult });
    }
    const { finished } = await applyRelayMessages(db, relayId, messages);
    const counted = countingD1(testEnv.DB);
    const facts = await factsForJobs(openDb(counted.d1), finished.map((f) => f.job), knownAfter(finished));
    // every host: its security updates and its reboot, new
    expect(facts.map((f) => f.event).sort()).toEqual([...Array(30).fill('reboot-required'), ...Array(30).fill('security-updates')]);
    // one read of the states, one write of them all
    expect(counted.calls).toEqual(['raw', 'batch']);
    expect(counted.batchSizes).toEqual([1]);
    const states = await db.select().from(schema.notifyState).where(inArray(schema.notifyState.key, finished.map((f) => `host:${f.job.hostId}`)));
    expect(states).toHaveLength(30);
    expect(states[0].value).toMatchObject({ sec: scanResult.updates.filter((u) => u.security).map((u) => `${u.name} ${u.newVersion}`).sort(), reboot: true });
  });
});
