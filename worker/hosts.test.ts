// Queueing scans and docker scans for many hosts at once (hosts.ts startScans,
// startDockerScans): one D1 round trip whatever their number, and what a scan already waiting
// or running covers is not queued again — against the real Worker in workerd (local D1).
import { describe, expect, it } from 'vitest';
import { inArray } from 'drizzle-orm';
import { api, countingD1, createRelay, testEnv } from './test/helpers.ts';
import { openDb, schema, type HostRow } from './db/index.ts';
import { startDockerScans, startScans } from './hosts.ts';
import { newId } from './lib/crypto.ts';

/** n hosts on the relay, added through the API: `<prefix><i>` at `<net>.<i>`. */
async function addHosts(relayId: string, n: number, prefix: string, net: string): Promise<HostRow[]> {
  const hosts: HostRow[] = [];
  for (let i = 0; i < n; i++) {
    const res = await api('/api/hosts', { method: 'POST', json: { relayId, name: `${prefix}${i}`, address: `${net}.${i}` } });
    expect(res.status).toBe(201);
    hosts.push((await res.json()) as HostRow);
  }
  return hosts;
}

describe('startDockerScans', () => {
  it('queues in one D1 round trip what no active docker scan covers: a whole-host scan covers its stacks, one stack covers only itself', async () => {
    const { id: relayId } = await createRelay('docker-many');
    const db = openDb(testEnv.DB);
    const hosts = await addHosts(relayId, 4, 'dm', '203.0.113');
    const active = (hostId: string, status: 'queued' | 'running' | 'succeeded', stack?: string) =>
      db.insert(schema.jobs).values({ id: newId(), kind: 'docker-scan', hostId, relayId, status, params: stack ? { stack } : {}, createdAt: Date.now() });
    await active(hosts[0].id, 'running'); // the whole host: covers everything asked of it
    await active(hosts[1].id, 'queued', 'web'); // one stack: covers only a request for that stack
    await active(hosts[2].id, 'succeeded'); // finished: covers nothing

    const counted = countingD1(testEnv.DB);
    const created = await startDockerScans(testEnv, openDb(counted.d1), [
      { host: hosts[0], requestedBy: null },
      { host: hosts[0], stack: 'web', requestedBy: null },
      { host: hosts[1], stack: 'web', requestedBy: null },
      { host: hosts[1], requestedBy: null },
      { host: hosts[2], requestedBy: null },
      { host: hosts[3], stack: 'db', requestedBy: 'someone' },
      { host: hosts[3], stack: 'db', requestedBy: 'someone' }, // asked twice: queued once
    ]);
    expect(counted.calls).toHaveLength(1);
    const byHost = created.map((j) => [hosts.findIndex((h) => h.id === j.hostId), j.params?.stack ?? null, j.status, j.requestedBy]);
    expect(byHost).toEqual([
      [1, null, 'queued', null],
      [2, null, 'queued', null],
      [3, 'db', 'queued', 'someone'],
    ]);
    const stored = await db.select().from(schema.jobs).where(inArray(schema.jobs.id, created.map((j) => j.id)));
    expect(stored.map((j) => ({ kind: j.kind, relayId: j.relayId, logBytes: j.logBytes, logTruncated: j.logTruncated, resume: j.resume }))).toEqual(
      Array(3).fill({ kind: 'docker-scan', relayId, logBytes: 0, logTruncated: false, resume: false }),
    );
  });
});

describe('startScans', () => {
  it('queues the scans of 250 hosts in one D1 round trip, reusing the scan already under way of a host', async () => {
    const { id: relayId } = await createRelay('scan-many');
    const db = openDb(testEnv.DB);
    const hosts = await addHosts(relayId, 250, 'sm', '203.0.114');
    const underWay = newId();
    await db.insert(schema.jobs).values({ id: underWay, kind: 'scan', hostId: hosts[7].id, relayId, status: 'running', createdAt: Date.now() });
    await db.insert(schema.jobs).values({ id: newId(), kind: 'scan', hostId: hosts[8].id, relayId, status: 'failed', createdAt: Date.now() });

    const counted = countingD1(testEnv.DB);
    const { jobIds, created } = await startScans(testEnv, openDb(counted.d1), [...hosts, hosts[3]], 'someone', { dispatch: false });
    expect(counted.calls).toEqual(['batch']);
    expect(jobIds).toHaveLength(251);
    expect(jobIds[7]).toBe(underWay);
    expect(jobIds[250]).toBe(jobIds[3]); // asked twice: one scan
    expect(created).toHaveLength(249);
    expect(new Set(created.map((j) => j.id))).toEqual(new Set(jobIds.filter((id) => id !== underWay)));
    expect(created.every((j) => j.kind === 'scan' && j.status === 'queued' && j.requestedBy === 'someone' && j.relayId === relayId && j.logBytes === 0)).toBe(true);
    expect(created.map((j) => j.hostId)).toEqual(hosts.filter((_, i) => i !== 7).map((h) => h.id));
  });
});
