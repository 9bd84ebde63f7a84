// Relay results applied in bulk (relay-apply.ts, RelayHub.drain): many responses that arrive
// together, against the real Worker in workerd (local D1) with a fake relay on a real
// WebSocket; and the batch rules (order per job, one terminal state, only the job's own
// relay) on applyRelayMessages directly.
import { describe, expect, it } from 'vitest';
import { eq, inArray } from 'drizzle-orm';
import { api, countingD1, createRelay, FakeRelay, testEnv, until } from './test/helpers.ts';
import { probeResult, scanResult, scanWith } from './test/fixtures.ts';
import { openDb, schema } from './db/index.ts';
import { readLog } from './job-log.ts';
import { acceptsRelayMessage, applyRelayMessages } from './relay-apply.ts';
import { finishStatements } from './jobs.ts';
import { newId } from './lib/crypto.ts';
import { jsonValues } from './lib/json-rows.ts';
import type { PackageUpdate } from '../protocol/relay.ts';

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

describe('package lists: written when they change, in few statements', () => {
  async function scanOnce(db: ReturnType<typeof openDb>, relayId: string, hostId: string, updates: PackageUpdate[]) {
    const id = newId();
    await db.insert(schema.jobs).values({ id, kind: 'scan', hostId, relayId, status: 'dispatched', createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 60_000 });
    const out = await applyRelayMessages(db, relayId, [{ type: 'response', id, ok: true, result: scanWith({ updates }) }]);
    expect(out.finished.map((f) => f.job.status)).toEqual(['succeeded']);
    return out.finished[0].host!;
  }
  const stored = async (db: ReturnType<typeof openDb>, hostId: string) =>
    (await db.select().from(schema.hostUpdates).where(eq(schema.hostUpdates.hostId, hostId))).map((u) => `${u.name} ${u.newVersion} ${u.currentVersion} ${u.security}`).sort();

  it('a scan that finds the stored list leaves host_updates and the sightings alone; a changed list replaces it', async () => {
    const { id: relayId } = await createRelay('digest');
    const host = await addHost(relayId, { name: 'dg', address: '192.0.2.210' });
    const db = openDb(testEnv.DB);
    const list = updatesFor(1, 5).map((u, k) => ({ ...u, security: k === 0 }));
    const first = await scanOnce(db, relayId, host.id, list);
    expect(first.updatesDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(await stored(db, host.id)).toHaveLength(5);
    const sightings = await db.select().from(schema.updateSightings).where(eq(schema.updateSightings.hostId, host.id));
    expect(sightings).toHaveLength(5);

    // mark the stored list so that a rewrite would show: the same list again must not touch it
    await db.update(schema.hostUpdates).set({ repository: 'marked' }).where(eq(schema.hostUpdates.hostId, host.id));
    const second = await scanOnce(db, relayId, host.id, list);
    expect(second.updatesDigest).toBe(first.updatesDigest);
    expect(second.updatesCount).toBe(5);
    expect(second.oldestSecurityAt).toBe(first.oldestSecurityAt);
    const after = await db.select().from(schema.hostUpdates).where(eq(schema.hostUpdates.hostId, host.id));
    expect(after.map((u) => u.repository)).toEqual(Array(5).fill('marked'));

    // one package newer: the list is replaced and its sightings follow
    const changed = list.map((u, k) => (k === 4 ? { ...u, newVersion: '9.9' } : u));
    const third = await scanOnce(db, relayId, host.id, changed);
    expect(third.updatesDigest).not.toBe(first.updatesDigest);
    const rows = await db.select().from(schema.hostUpdates).where(eq(schema.hostUpdates.hostId, host.id));
    expect(rows.map((u) => u.repository).every((r) => r !== 'marked')).toBe(true);
    expect(rows.find((u) => u.name === list[4].name)!.newVersion).toBe('9.9');
    const open = await db.select().from(schema.updateSightings).where(eq(schema.updateSightings.hostId, host.id));
    expect(open.filter((s) => s.resolvedAt === null).map((s) => `${s.name} ${s.newVersion}`).sort()).toEqual(changed.map((u) => `${u.name} ${u.newVersion}`).sort());

    // a host whose digest is unknown (null: written by something else) gets its list written
    await db.update(schema.hosts).set({ updatesDigest: null }).where(eq(schema.hosts.id, host.id));
    await db.delete(schema.hostUpdates).where(eq(schema.hostUpdates.hostId, host.id));
    await scanOnce(db, relayId, host.id, changed);
    expect(await stored(db, host.id)).toHaveLength(5);
  });

  it('stores long lists exactly (rows travel as one JSON value per 400): quotes, unicode, nulls, booleans', async () => {
    const { id: relayId } = await createRelay('long');
    const host = await addHost(relayId, { name: 'lg', address: '192.0.2.211' });
    const db = openDb(testEnv.DB);
    const list = updatesFor(2, 1_000).map((u, k) => ({
      ...u,
      name: k === 3 ? `it's "quoted" \\ ünï ${k}` : u.name,
      currentVersion: k % 2 ? null : `1:${k}.0~deb12u1`,
      security: k % 3 === 0,
      repository: `Debian-Security:12/oldstable-security ${k}`,
    }));
    const host1 = await scanOnce(db, relayId, host.id, list);
    expect(host1.updatesCount).toBe(1_000);
    const rows = await db.select().from(schema.hostUpdates).where(eq(schema.hostUpdates.hostId, host.id));
    expect(rows).toHaveLength(1_000);
    const byName = new Map(rows.map((r) => [r.name, r]));
    for (const u of list) expect(byName.get(u.name), u.name).toEqual({ hostId: host.id, ...u });
  });
});

describe("scans' days: a batch's pooled into two statements", () => {
  it("keeps each host's last figures of the day, counts its scans, and moves the fleet's day by the differences", async () => {
    const { id: relayId } = await createRelay('days');
    const db = openDb(testEnv.DB);
    const hosts = [];
    for (let i = 0; i < 3; i++) hosts.push(await addHost(relayId, { name: `day${i}`, address: `192.0.2.${220 + i}` }));
    const job = async (hostId: string) => {
      const id = newId();
      await db.insert(schema.jobs).values({ id, kind: 'scan', hostId, relayId, status: 'dispatched', createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 60_000 });
      return id;
    };
    const respond = (id: string, pending: number, security: number, reboot = false) =>
      ({ type: 'response', id, ok: true, result: scanWith({ updates: updatesFor(pending, pending).map((u, k) => ({ ...u, security: k < security })), reboot: { required: reboot, reason: reboot ? 'kernel' : null } }) }) as const;
    const today = Math.floor(Date.now() / 86_400_000);
    type Day = { hosts: number; pending: number; security: number; needReboot: number; errors: number };
    const fleetOf = async () =>
      (await testEnv.DB.prepare('SELECT hosts, pending, security, need_reboot AS needReboot, errors FROM fleet_days WHERE day = ?').bind(today).first<Day>()) ?? { hosts: 0, pending: 0, security: 0, needReboot: 0, errors: 0 };
    const sumOfHosts = async () =>
      testEnv.DB.prepare('SELECT count(*) AS hosts, sum(pending) AS pending, sum(security) AS security, sum(need_reboot) AS needReboot, sum(error) AS errors FROM host_days WHERE day = ?').bind(today).first<Day>();
    const before = await fleetOf();

    // one batch: host 0 twice (its second scan wins), hosts 1 and 2 once
    const first = await applyRelayMessages(db, relayId, [
      respond(await job(hosts[0].id), 4, 1),
      respond(await job(hosts[1].id), 2, 2, true),
      respond(await job(hosts[0].id), 3, 0),
      respond(await job(hosts[2].id), 1, 1),
    ]);
    expect(first.finished).toHaveLength(4);
    const day0 = await db.select().from(schema.hostDays).where(eq(schema.hostDays.hostId, hosts[0].id));
    expect(day0).toEqual([{ hostId: hosts[0].id, day: today, pending: 3, security: 0, needReboot: 0, error: 0, scans: 2 }]);
    const after1 = await fleetOf();
    expect({ hosts: after1.hosts - before.hosts, pending: after1.pending - before.pending, security: after1.security - before.security, needReboot: after1.needReboot - before.needReboot })
      .toEqual({ hosts: 3, pending: 6, security: 3, needReboot: 1 });

    // a later batch the same day: host 1 again, fewer updates; the fleet follows the difference
    await applyRelayMessages(db, relayId, [respond(await job(hosts[1].id), 1, 0)]);
    const after2 = await fleetOf();
    expect({ hosts: after2.hosts - before.hosts, pending: after2.pending - before.pending, security: after2.security - before.security, needReboot: after2.needReboot - before.needReboot })
      .toEqual({ hosts: 3, pending: 5, security: 1, needReboot: 0 });
    // and the fleet's day is the sum of its hosts' days (whatever other tests wrote today too)
    expect(await fleetOf()).toEqual(await sumOfHosts());
    const day1 = await db.select().from(schema.hostDays).where(eq(schema.hostDays.hostId, hosts[1].id));
    expect(day1[0]).toMatchObject({ pending: 1, security: 0, needReboot: 0, scans: 2 });
  });
});

describe("a batch's responses pooled: a few statements, whatever the batch's size", () => {
  const digest = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`;
  const stack = (name: string, containers = 1, tag = 'a') => ({
    name,
    status: `running(${containers})`,
    workingDir: `/srv/${name}`,
    configFiles: [`/srv/${name}/compose.yaml`],
    containers: Array.from({ length: containers }, (_, k) => ({
      name: `${name}-svc${k}-1`,
      service: `svc${k}`,
      state: 'running',
      image: `example/${name}${k}:latest`,
      imageId: digest(tag),
      repoDigests: [],
      check: { status: k === 0 ? 'update-available' : 'up-to-date', reason: null, localDigest: digest(tag), remoteDigest: digest(k === 0 ? 'f' : tag) },
    })),
  });
  const dockerScan = (stacks: unknown[]) => ({ composeVersion: '2.29.7', stacks, warnings: [] });

  /** n hosts; for each: a scan answered (every fourth fails: unreachable; every third runs
   * Docker) and, for Docker hosts, a docker scan of stacks `s0..s2`. */
  async function fleetBatch(tag: string, n: number) {
    const { id: relayId } = await createRelay(`pool-${tag}`);
    const db = openDb(testEnv.DB);
    const counted = countingD1(testEnv.DB);
    const cdb = openDb(counted.d1);
    const hosts = [];
    for (let i = 0; i < n; i++) {
      // every fifth host was added by address only and was never scanned: it takes the name its scan finds
      const address = `198.51.100.${i + 1}`; // (each batch its own relay: targets are unique per relay)
      hosts.push(await addHost(relayId, i % 5 === 0 ? { address } : { name: `${tag}-${i}`, address }));
    }
    const job = async (hostId: string, kind: 'scan' | 'docker-scan', params: Record<string, string> = {}) => {
      const id = newId();
      await db.insert(schema.jobs).values({ id, kind, hostId, relayId, status: 'dispatched', params, createdAt: Date.now(), dispatchedAt: Date.now(), deadlineAt: Date.now() + 60_000 });
      return id;
    };
    const messages = [];
    for (let i = 0; i < n; i++) {
      const id = await job(hosts[i].id, 'scan');
      if (i % 4 === 3) {
        messages.push({ type: 'response' as const, id, ok: false as const, error: { code: 'unreachable' as const, message: `no route to host ${i}` } });
        continue;
      }
      const docker = i % 3 === 0;
      messages.push({
        type: 'response' as const,
        id,
        ok: true as const,
        result: scanWith({
          probe: { ...probeResult, hostname: `self-${tag}-${i}`, kernel: `6.1.0-${i}-amd64`, docker },
          updates: updatesFor(i, i % 3),
          held: i % 2 ? [{ name: `held-${i}`, reason: 'phased' }] : [],
          reboot: { required: i % 2 === 0, reason: i % 2 === 0 ? `kernel ${i}` : null },
          warnings: i === 1 ? [`it's "quoted" ünï`] : [],
        }),
      });
      if (docker) messages.push({ type: 'response' as const, id: await job(hosts[i].id, 'docker-scan'), ok: true as const, result: dockerScan([stack('s0'), stack('s1', 2), stack('s2', 3)]) });
    }
    const out = await applyRelayMessages(cdb, relayId, messages);
    return { db, relayId, hosts, messages, out, counted, job };
  }

  it('host rows, stacks and finishes of 8 or 100 hosts take the same statements; each row gets its own answer', async () => {
    const small = await fleetBatch('small', 8);
    const large = await fleetBatch('large', 100);
    expect(large.out.finished).toHaveLength(large.messages.length);
    expect(large.messages.length).toBeGreaterThan(90); // more ids than one statement may bind
    // one D1 round trip to read the jobs (their ids as one JSON value), one batch to write
    expect(large.counted.calls).toEqual(['raw', 'batch']);
    expect(small.counted.calls).toEqual(['raw', 'batch']);
    // the batch grows with the shapes of the answers, not their number (the package lists apart:
    // one insert per 400 rows, and the sightings)
    expect(large.counted.batchSizes[0]).toBe(small.counted.batchSizes[0]);
    expect(large.counted.batchSizes[0]).toBeLessThan(20);

    const { db, hosts, out } = large;
    for (let i = 0; i < hosts.length; i++) {
      const row = await db.query.hosts.findFirst({ where: eq(schema.hosts.id, hosts[i].id) });
      if (i % 4 === 3) {
        expect(row, `host ${i}`).toMatchObject({ status: 'offline', statusReason: `no route to host ${i}`, name: i % 5 === 0 ? hosts[i].address : `large-${i}`, lastScanAt: null });
        continue;
      }
      expect(row, `host ${i}`).toMatchObject({
        name: i % 5 === 0 ? `self-large-${i}` : `large-${i}`,
        status: 'online',
        statusReason: null,
        kernel: `6.1.0-${i}-amd64`,
        docker: i % 3 === 0,
        updatesCount: i % 3,
        held: i % 2 ? [{ name: `held-${i}`, reason: 'phased' }] : [],
        scanWarnings: i === 1 ? [`it's "quoted" ünï`] : [],
        rebootRequired: i % 2 === 0,
        rebootReason: i % 2 === 0 ? `kernel ${i}` : null,
        packageManagers: ['apt'],
        proxmox: null,
      });
      expect(typeof row!.lastScanAt).toBe('number');
    }
    // each job finished once, with its own summary or cause
    const jobs = await db.select().from(schema.jobs).where(inArray(schema.jobs.id, jsonValues(large.messages.map((m) => m.id))));
    const byId = new Map(jobs.map((j) => [j.id, j]));
    for (const m of large.messages) {
      const j = byId.get(m.id)!;
      if (!m.ok) expect(j).toMatchObject({ status: 'failed', errorCode: 'unreachable', errorMessage: m.error.message });
      else expect(j).toMatchObject({ status: 'succeeded', exitCode: 0, errorCode: null });
      expect(j.finishedAt).not.toBeNull();
    }
    // (host 0: its scan, then its docker scan; host 1: its scan)
    expect(byId.get(large.messages[1].id)!.summary).toBe('3 stacks, 3 with newer images');
    expect(byId.get(large.messages[2].id)!.summary).toBe('1 update, 1 held back');
    // the live events: each response's host (if it changed it) and job, in the responses' order
    const jobEvents = out.events.filter((e) => e.type === 'job').map((e) => (e as { job: { id: string } }).job.id);
    expect(jobEvents).toEqual(large.messages.map((m) => m.id));
    // stacks: each Docker host has its three, the others none
    for (let i = 0; i < hosts.length; i++) {
      const rows = await db.select().from(schema.stacks).where(eq(schema.stacks.hostId, hosts[i].id));
      const want = i % 4 !== 3 && i % 3 === 0 ? ['s0', 's1', 's2'] : [];
      expect(rows.map((r) => r.name).sort(), `host ${i}`).toEqual(want);
      for (const r of rows) expect(r).toMatchObject({ updatesCount: 1, uncheckableCount: 0, error: null, configFiles: [`/srv/${r.name}/compose.yaml`] });
    }
  });

  it("PVE nodes' guest lists and guests' snapshots are judged by the host the batch read with its jobs: no read per host", async () => {
    const { id: relayId } = await createRelay('pool-guests');
    const db = openDb(testEnv.DB);
    const now = Date.now();
    const hostIds: string[] = [];
    // three PVE nodes and three of their guests (adopted: guestOf set)
    for (let i = 0; i < 6; i++) {
      const id = newId();
      const node = i < 3;
      await db.insert(schema.hosts).values({
        id, name: node ? `pve${i}` : `ct${i}`, address: `203.0.113.${i + 1}`, relayId, createdAt: now, updatedAt: now,
        ...(node ? {} : { guestOf: hostIds[i - 3], guestKind: 'lxc' as const, guestVmid: 100 + i }),
      });
      hostIds.push(id);
    }
    const guest = (vmid: number) => ({ vmid, kind: 'lxc' as const, name: `ct${vmid}`, status: 'running', node: 'pve', snapshots: true, snapshotReason: null, reachable: true, reachReason: null, ostype: 'debian' });
    const snapshot = { name: 'patchman-1', description: 'before upgrade', time: 1764800000, patchman: true };
    const pveProbe = { ...probeResult, proxmox: { product: 'pve' as const, version: '8.4.1' } };
    const messages = [];
    for (let i = 0; i < 6; i++) {
      const id = newId();
      await db.insert(schema.jobs).values({ id, kind: 'scan', hostId: hostIds[i], relayId, status: 'dispatched', createdAt: now, dispatchedAt: now, deadlineAt: now + 60_000 });
      const result =
        i < 3
          ? scanWith({ probe: pveProbe, guests: [guest(100 + i), guest(200 + i)] })
          : // a guest reporting a guest list (refused: it is not a node) and its snapshots (kept)
            scanWith({ probe: pveProbe, guests: [guest(900)], snapshots: [snapshot] });
      messages.push({ type: 'response' as const, id, ok: true as const, result });
    }
    const counted = countingD1(testEnv.DB);
    const out = await applyRelayMessages(openDb(counted.d1), relayId, messages);
    expect(out.finished).toHaveLength(6);
    expect(counted.calls).toEqual(['raw', 'batch']);
    for (let i = 0; i < 3; i++) {
      const rows = await db.select().from(schema.proxmoxGuests).where(eq(schema.proxmoxGuests.nodeHostId, hostIds[i]));
      expect(rows.map((r) => r.vmid).sort()).toEqual([100 + i, 200 + i]);
    }
    for (let i = 3; i < 6; i++) {
      expect(await db.select().from(schema.proxmoxGuests).where(eq(schema.proxmoxGuests.nodeHostId, hostIds[i]))).toEqual([]);
      expect((await db.query.hosts.findFirst({ where: eq(schema.hosts.id, hostIds[i]) }))!.guestSnapshots).toEqual([snapshot]);
      expect(await readLog(db, messages[i].id)).toContain(`ignored the relay's guest list: ct${i} is a guest, not a Proxmox VE node`);
    }
  });

  it("a batch's guest lists cost the same statements for two PVE nodes as for eight", async () => {
    const { id: relayId } = await createRelay('pool-guest-lists');
    const db = openDb(testEnv.DB);
    const pveProbe = { ...probeResult, proxmox: { product: 'pve' as const, version: '8.4.1' } };
    const guest = (vmid: number) => ({ vmid, kind: 'qemu' as const, name: `vm${vmid}`, status: 'running', node: 'pve', snapshots: true, snapshotReason: null, reachable: true, reachReason: null, ostype: 'l26' });
    /** Scans of n fresh PVE nodes, three guests each, applied as one batch: its size. */
    const batchOf = async (n: number, prefix: string, net: number) => {
      const now = Date.now();
      const messages = [];
      const nodes: string[] = [];
      for (let i = 0; i < n; i++) {
        const hostId = newId();
        nodes.push(hostId);
        await db.insert(schema.hosts).values({ id: hostId, name: `${prefix}${i}`, address: `203.0.${net}.${i + 1}`, relayId, createdAt: now, updatedAt: now });
        const id = newId();
        await db.insert(schema.jobs).values({ id, kind: 'scan', hostId, relayId, status: 'dispatched', createdAt: now, dispatchedAt: now, deadlineAt: now + 60_000 });
        messages.push({ type: 'response' as const, id, ok: true as const, result: scanWith({ probe: pveProbe, guests: [guest(100), guest(101 + i), guest(200)] }) });
      }
      const counted = countingD1(testEnv.DB);
      expect((await applyRelayMessages(openDb(counted.d1), relayId, messages)).finished).toHaveLength(n);
      for (const [i, node] of nodes.entries()) {
        const rows = await db.select().from(schema.proxmoxGuests).where(eq(schema.proxmoxGuests.nodeHostId, node));
        expect(rows.map((r) => r.vmid).sort()).toEqual([100, 101 + i, 200]);
      }
      return counted.batchSizes;
    };
    expect(await batchOf(8, 'many', 114)).toEqual(await batchOf(2, 'few', 115));
  });

  it('stacks follow the reports of a batch in order: ids kept, the gone deleted, a single stack checked alone, a host without Docker left none', async () => {
    const { db, relayId, hosts, job } = await fleetBatch('stk', 4);
    const docker = hosts[0].id; // i = 0: Docker, three stacks
    const idsBefore = new Map((await db.select().from(schema.stacks).where(eq(schema.stacks.hostId, docker))).map((r) => [r.name, r.id]));
    expect([...idsBefore.keys()].sort()).toEqual(['s0', 's1', 's2']);
    const other = await addHost(relayId, { name: 'stk-other', address: '198.51.102.1' });
    const out = await applyRelayMessages(db, relayId, [
      // everything: s2 is gone, s3 is new, s0 changed
      { type: 'response', id: await job(docker, 'docker-scan'), ok: true, result: dockerScan([stack('s0', 2, 'b'), stack('s1', 2), stack('s3')]) },
      // then s1 checked alone: it is gone now
      { type: 'response', id: await job(docker, 'docker-scan', { stack: 's1' }), ok: true, result: dockerScan([]) },
      // and s0 checked alone again, as the last word of the batch
      { type: 'response', id: await job(docker, 'docker-scan', { stack: 's0' }), ok: true, result: dockerScan([stack('s0', 1, 'c')]) },
      // another host's stacks are not touched by any of it
      { type: 'response', id: await job(other.id, 'docker-scan'), ok: true, result: dockerScan([stack('s1')]) },
    ]);
    expect(out.finished.map((f) => f.job.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    const rows = await db.select().from(schema.stacks).where(eq(schema.stacks.hostId, docker));
    expect(rows.map((r) => r.name).sort()).toEqual(['s0', 's3']);
    const s0 = rows.find((r) => r.name === 's0')!;
    expect(s0.id).toBe(idsBefore.get('s0'));
    expect(s0.containers.map((c) => c.imageId)).toEqual([digest('c')]);
    expect(await db.select({ name: schema.stacks.name }).from(schema.stacks).where(eq(schema.stacks.hostId, other.id))).toEqual([{ name: 's1' }]);

    // a scan that no longer finds Docker forgets the host's stacks
    await applyRelayMessages(db, relayId, [{ type: 'response', id: await job(docker, 'scan'), ok: true, result: scanWith({ probe: { ...probeResult, docker: false } }) }]);
    expect(await db.select().from(schema.stacks).where(eq(schema.stacks.hostId, docker))).toEqual([]);
  });

  it('a finish leaves a job that ended meanwhile as it ended (one terminal state), and finishes the others', async () => {
    const { db, hosts, job } = await fleetBatch('race', 2);
    const a = await job(hosts[0].id, 'scan');
    const b = await job(hosts[1].id, 'scan');
    await db.update(schema.jobs).set({ status: 'cancelled', finishedAt: 1 }).where(eq(schema.jobs.id, a));
    const statements = finishStatements(db, [
      { id: a, status: 'succeeded', fields: { exitCode: 0, summary: 'up to date' } },
      { id: b, status: 'failed', fields: { errorCode: 'internal', errorMessage: 'broken' } },
    ]);
    const results = (await db.batch(statements as [(typeof statements)[0], ...typeof statements])) as { id: string }[][];
    expect(results.flat().map((r) => r.id)).toEqual([b]);
    expect(await db.query.jobs.findFirst({ where: eq(schema.jobs.id, a) })).toMatchObject({ status: 'cancelled', finishedAt: 1, summary: null });
    expect(await db.query.jobs.findFirst({ where: eq(schema.jobs.id, b) })).toMatchObject({ status: 'failed', errorCode: 'internal', errorMessage: 'broken', exitCode: null });
  });
});
