// Host inventory rules shared by the API routes and the scheduler.
import { and, eq, gt, inArray, isNotNull, notExists, or, sql, type SQL } from 'drizzle-orm';
import type { HostFilter, LiveEvent } from '../protocol/api.ts';
import { schema, type Db, type HostRow, type JobRow, type RelayRow } from './db/index.ts';
import { ACTIVE_STATUSES } from '../protocol/api.ts';
import type { Env } from './env.ts';
import { newId } from './lib/crypto.ts';
import { jobJson } from './lib/serialize.ts';
import { insertRows, jsonValues } from './lib/json-rows.ts';
import { publish } from './live-feed.ts';
import { relayHub } from './relay-hub.ts';

const { hosts, jobs } = schema;

/** The relay's own box is monitor-only unless the operator says otherwise: patching or
 * rebooting the machine that runs the relay would cut the branch it sits on. */
export function isRelayBox(address: string, relay: Pick<RelayRow, 'hostname'> | undefined): boolean {
  const a = address.toLowerCase();
  if (a === 'localhost' || a === '127.0.0.1' || a === '::1') return true;
  const h = relay?.hostname?.toLowerCase();
  return !!h && (a === h || a.startsWith(`${h}.`));
}

export function filterCondition(filter: HostFilter | undefined): SQL | undefined {
  switch (filter) {
    case 'needs-updates':
      return gt(hosts.updatesCount, 0);
    case 'security':
      return gt(hosts.securityCount, 0);
    case 'needs-reboot':
      return eq(hosts.rebootRequired, true);
    case 'offline':
      return or(eq(hosts.status, 'offline'), eq(hosts.status, 'error'));
    default:
      return undefined;
  }
}

/** How queued jobs are told to the browsers: published at once by default; a relay's hub
 * passes its own live queue, so that a batch's follow-ups go out with the batch. */
export type Announce = (events: LiveEvent[]) => void | Promise<void>;
const publishNow = (env: Env): Announce => (events) => publish(env, ...events);

/** Job rows per insert, as one JSON value (lib/json-rows.ts): a queued job's row is ~300 bytes. */
const JOB_ROWS_PER_INSERT = 200;

/** The jobs inserted, JOB_ROWS_PER_INSERT a statement, but for those an active job of their
 * host already covers (`covered(r)`: an expression of the new row r and the active job). */
function insertUncovered(db: Db, rows: (typeof jobs.$inferInsert)[], covered: (r: SQL) => SQL) {
  return insertRows(db, jobs, rows, {
    perStatement: JOB_ROWS_PER_INSERT,
    where: (r) => sql`not exists (select 1 from ${jobs} where ${jobs.hostId} = ${r}.host_id and ${inArray(jobs.status, [...ACTIVE_STATUSES])} and ${covered(r)})`,
    returning: true,
  });
}

/** What queueing a host's scan needs of it. */
export type ScanTarget = Pick<HostRow, 'id' | 'relayId'>;

/** Queue a scan for each host that has none waiting or running, tell the browsers, and
 * nudge the relays (unless the caller is the relay's own hub, which dispatches itself).
 * Returns one job id per host with a relay (the existing one where a scan was already under
 * way) and the jobs created. One D1 round trip: the scans under way, then the new ones. */
export async function startScans(env: Env, db: Db, targets: ScanTarget[], requestedBy: string | null, opts: { dispatch?: boolean; announce?: Announce } = {}) {
  const now = Date.now();
  const wanted = [...new Map(targets.filter((h) => h.relayId).map((h) => [h.id, h])).values()];
  if (wanted.length === 0) return { jobIds: [], created: [] };
  const fresh = wanted.map((host) => ({ id: newId(), kind: 'scan' as const, hostId: host.id, relayId: host.relayId, status: 'queued' as const, requestedBy, createdAt: now }));
  const [running, ...inserted] = await db.batch([
    db
      .select({ id: jobs.id, hostId: jobs.hostId })
      .from(jobs)
      .where(and(inArray(jobs.hostId, jsonValues(wanted.map((h) => h.id))), eq(jobs.kind, 'scan'), inArray(jobs.status, [...ACTIVE_STATUSES]))),
    ...insertUncovered(db, fresh, () => sql`${jobs.kind} = 'scan'`),
  ]);
  // a host's scan: the one under way, else the one just queued
  const scanOf = new Map([...fresh.map((f) => [f.hostId, f.id] as const), ...running.map((r) => [r.hostId, r.id] as const)]);
  const jobIds = targets.filter((h) => h.relayId).map((h) => scanOf.get(h.id)!);
  const created = (inserted as JobRow[][]).flat();
  const announce = opts.announce ?? publishNow(env);
  if (opts.dispatch === false) {
    await announce(created.map((job) => ({ type: 'job' as const, job: jobJson(job) })));
    return { jobIds, created };
  }
  // Each relay's hub announces what it dispatches (as dispatched); only what is still queued
  // after (its relay is not connected) is announced from here. Announcing every job queued,
  // then dispatched a moment later, was a third of the live events of "Scan all".
  const relays = [...new Set(created.map((j) => j.relayId).filter((r): r is string => r !== null))];
  const dispatched = await Promise.allSettled(relays.map((r) => relayHub(env, r).dispatch()));
  // (a hub that dispatched something took every queued job of its relay: ours among them)
  const unsure = new Set(relays.filter((_, i) => { const d = dispatched[i]; return d.status === 'rejected' || d.value === 0; }));
  const maybeQueued = created.filter((j) => j.relayId !== null && unsure.has(j.relayId)).map((j) => j.id);
  if (maybeQueued.length) {
    const still = await db.select().from(jobs).where(and(inArray(jobs.id, jsonValues(maybeQueued)), eq(jobs.status, 'queued')));
    await announce(still.map((job) => ({ type: 'job' as const, job: jobJson(job) })));
  }
  const failed = dispatched.find((d) => d.status === 'rejected');
  if (failed) throw failed.reason;
  return { jobIds, created };
}

/**
 * Queue a docker scan of a host: every Compose stack, or only `stack`. A scan that would
 * cover it already waiting or running (of the whole host, or of this stack) is reused.
 * Returns its job id and whether it is new.
 */
export async function startDockerScan(
  env: Env,
  db: Db,
  host: HostRow,
  requestedBy: string | null,
  opts: { stack?: string; dispatch?: boolean } = {},
): Promise<{ jobId: string; created: boolean } | null> {
  if (!host.relayId) return null;
  const active = await db
    .select({ id: jobs.id, params: jobs.params })
    .from(jobs)
    .where(and(eq(jobs.hostId, host.id), eq(jobs.kind, 'docker-scan'), inArray(jobs.status, [...ACTIVE_STATUSES])));
  const covering = active.find((j) => !j.params?.stack || j.params.stack === opts.stack);
  if (covering) return { jobId: covering.id, created: false };
  const [job] = await db
    .insert(jobs)
    .values({
      id: newId(),
      kind: 'docker-scan',
      hostId: host.id,
      relayId: host.relayId,
      status: 'queued',
      requestedBy,
      params: opts.stack ? { stack: opts.stack } : {},
      createdAt: Date.now(),
    })
    .returning();
  await publish(env, { type: 'job', job: jobJson(job) });
  if (opts.dispatch !== false) await relayHub(env, host.relayId).dispatch();
  return { jobId: job.id, created: true };
}

/** Hosts with no scan (successful or not) started within the interval. */
export async function dueHosts(db: Db, intervalHours: number, now = Date.now()) {
  if (intervalHours <= 0) return [];
  const cutoff = now - intervalHours * 3_600_000;
  const recent = db
    .select({ one: sql`1` })
    .from(jobs)
    .where(and(eq(jobs.hostId, hosts.id), eq(jobs.kind, 'scan'), gt(jobs.createdAt, cutoff)));
  return db.select().from(hosts).where(and(isNotNull(hosts.relayId), notExists(recent)));
}

/** Queue docker scans for many hosts at once (the follow-ups of a batch of host scans): one
 * statement that inserts those not covered by a docker scan already waiting or running (of
 * the whole host, or of the same stack), then one live event batch. Returns the jobs created. */
export async function startDockerScans(env: Env, db: Db, requests: { host: HostRow; stack?: string; requestedBy: string | null }[], announce: Announce = publishNow(env)) {
  const now = Date.now();
  const fresh = [];
  /** What this call queues, by host (a later request the same covers is dropped). */
  const queued = new Map<string, (string | undefined)[]>();
  for (const r of requests) {
    if (!r.host.relayId) continue;
    const covering = queued.get(r.host.id) ?? [];
    if (covering.some((stack) => !stack || stack === r.stack)) continue;
    queued.set(r.host.id, [...covering, r.stack]);
    fresh.push({
      id: newId(),
      kind: 'docker-scan' as const,
      hostId: r.host.id,
      relayId: r.host.relayId,
      status: 'queued' as const,
      requestedBy: r.requestedBy,
      params: r.stack ? { stack: r.stack } : {},
      createdAt: now,
    });
  }
  if (fresh.length === 0) return [];
  // covered by a docker scan of the whole host, or of the same stack
  const stackOf = (params: SQL) => sql`json_extract(${params}, '$.stack')`;
  const inserts = insertUncovered(db, fresh, (r) => sql`${jobs.kind} = 'docker-scan' and (${stackOf(sql`${jobs.params}`)} is null or ${stackOf(sql`${jobs.params}`)} is ${stackOf(sql`${r}.params`)})`);
  const created = ((await db.batch(inserts as [(typeof inserts)[0], ...typeof inserts])) as JobRow[][]).flat();
  await announce(created.map((job) => ({ type: 'job' as const, job: jobJson(job) })));
  return created;
}
