// Rollouts: one run of a patch policy, as a state machine persisted in D1 (rollouts,
// rollout_hosts) and advanced by `advanceRollout`, which its RolloutRunner Durable Object calls
// on every alarm. Everything it needs is in D1, so a restarted Worker resumes where it was;
// each host step is an ordinary upgrade job carrying the rollout's id, and a host with such a
// job is adopted, never started a second time.
//
//   pending → running (canary batch 0, then batches 1…) → done
//                 ↕ paused            ↘ halted (K failures) | cancelled | window-closed
import { and, asc, desc, eq, gte, inArray, isNull } from 'drizzle-orm';
import { ROLLOUT_LIVE, type PolicySpec, type PreviewHost, type Rollout, type RolloutHostStatus, type RolloutStatus } from '../protocol/policy.ts';
import { schema, type Db, type HostRow, type JobRow, type PolicyRow, type RolloutHostRow, type RolloutRow } from './db/index.ts';
import type { Env } from './env.ts';
import { ApiError } from './lib/http.ts';
import { newId } from './lib/crypto.ts';
import { ACTIVE } from './jobs.ts';
import { startChange } from './changes.ts';
import { startScans } from './hosts.ts';
import { relayHub } from './relay-hub.ts';
import { planPolicy } from './policy-plan.ts';
import { notifyRolloutFinished } from './notify/events.ts';

const { rollouts, rolloutHosts, jobs, hosts } = schema;

/** How often a live rollout's runner looks at its jobs. */
export const TICK_MS = 5_000;
/** After an upgrade, how long to wait for the rescan that relay-hub queues before asking for one. */
export const RESCAN_GRACE_MS = 60_000;

/** A host in one of these is still being worked on. */
const IN_FLIGHT: RolloutHostStatus[] = ['running', 'rescanning', 'reboot-waiting', 'rebooting'];
const UNFINISHED: RolloutHostStatus[] = ['waiting', ...IN_FLIGHT];
const ROWS_PER_INSERT = 9; // 10 columns, 100 bound parameters

/** Split the hosts to upgrade into the canary (batch 0) and batches 1…. */
export function assignBatches(spec: PolicySpec, upgrade: PreviewHost[]): Map<string, number> {
  const { canary, batchSize, batchPercent } = spec.rollout;
  const named = Array.isArray(canary) ? new Set(canary) : null;
  const first = named ? upgrade.filter((h) => named.has(h.hostId)) : upgrade.slice(0, canary as number);
  const inCanary = new Set(first.map((h) => h.hostId));
  const rest = upgrade.filter((h) => !inCanary.has(h.hostId));
  const size = batchSize ?? (batchPercent ? Math.max(1, Math.ceil((upgrade.length * batchPercent) / 100)) : Math.max(1, rest.length));
  const out = new Map<string, number>();
  for (const h of first) out.set(h.hostId, 0);
  rest.forEach((h, i) => out.set(h.hostId, 1 + Math.floor(i / size)));
  return out;
}

/** Create a rollout of a policy (as the policy is now) and hand it to its runner. */
export async function startRollout(
  env: Env,
  db: Db,
  policy: PolicyRow,
  opts: {
    trigger: 'manual' | 'schedule';
    requestedBy: string | null;
    now: number;
    windowEndsAt: number | null;
    /** false: leave the runner alone (tests that advance the rollout by hand, with their own clock). */
    runner?: boolean;
  },
): Promise<RolloutRow> {
  const plan = await planPolicy(db, policy.spec, opts.now);
  const upgrade = plan.filter((h) => h.action === 'upgrade');
  const batchOf = assignBatches(policy.spec, upgrade);
  const batches = upgrade.length ? Math.max(...batchOf.values()) + 1 : 0;
  const id = newId();
  const [row] = await db
    .insert(rollouts)
    .values({
      id,
      policyId: policy.id,
      policyName: policy.name,
      spec: policy.spec,
      status: 'pending',
      batch: 0,
      batches,
      trigger: opts.trigger,
      requestedBy: opts.requestedBy,
      windowEndsAt: opts.windowEndsAt,
      createdAt: opts.now,
    })
    .returning();
  const values = plan.map((h, position) => ({
    rolloutId: id,
    hostId: h.hostId,
    name: h.name,
    position,
    batch: batchOf.get(h.hostId) ?? null,
    status: (h.action === 'upgrade' ? 'waiting' : 'skipped') as RolloutHostStatus,
    jobId: null,
    rebootJobId: null,
    reason: h.reason ?? null,
    packages: h.action === 'upgrade' && !h.full ? h.packages.map((p) => p.name) : null,
  }));
  const inserts = [];
  for (let i = 0; i < values.length; i += ROWS_PER_INSERT) inserts.push(db.insert(rolloutHosts).values(values.slice(i, i + ROWS_PER_INSERT)));
  if (inserts.length) await db.batch(inserts as [(typeof inserts)[0], ...typeof inserts]);
  if (opts.runner !== false) await rolloutRunner(env, id).start(id);
  return row;
}

/** The Durable Object that drives one rollout. */
export function rolloutRunner(env: Env, rolloutId: string) {
  return env.ROLLOUT_RUNNER.get(env.ROLLOUT_RUNNER.idFromName(rolloutId));
}

const isFinal = (s: RolloutHostStatus) => !UNFINISHED.includes(s);

/**
 * One step of a rollout at time `now`: follow its hosts' jobs, halt on too many failures, close
 * at the window's end, start the next hosts (canary first, one batch after another, at most
 * `concurrency` at a time), reboot one host at a time if the policy says so, and finish.
 * Returns whether the rollout still needs its runner (it is live or has hosts in flight).
 */
export async function advanceRollout(env: Env, db: Db, rolloutId: string, now: number): Promise<{ active: boolean }> {
  const r = await db.query.rollouts.findFirst({ where: eq(rollouts.id, rolloutId) });
  if (!r) return { active: false };
  const spec = r.spec;
  const list = await db.select().from(rolloutHosts).where(eq(rolloutHosts.rolloutId, r.id)).orderBy(asc(rolloutHosts.position));
  if (!ROLLOUT_LIVE.includes(r.status) && !list.some((h) => IN_FLIGHT.includes(h.status))) {
    if (r.finishedAt === null) {
      const ended = await db.update(rollouts).set({ finishedAt: now }).where(and(eq(rollouts.id, r.id), isNull(rollouts.finishedAt))).returning({ id: rollouts.id });
      if (ended.length) await announceEnd(env, r, r.status, list);
    }
    return { active: false };
  }

  const changed = new Set<RolloutHostRow>();
  const set = (h: RolloutHostRow, fields: Partial<RolloutHostRow>) => {
    Object.assign(h, fields);
    changed.add(h);
  };
  let status: RolloutStatus = r.status;
  let reason = r.reason;
  const fail = (h: RolloutHostRow, why: string) => set(h, { status: 'failed', reason: why });

  // 1. Follow the jobs of the hosts in flight.
  const jobIds = list.flatMap((h) => [h.jobId, h.rebootJobId]).filter((j): j is string => !!j);
  const jobById = new Map<string, JobRow>();
  for (let i = 0; i < jobIds.length; i += 90) {
    for (const j of await db.select().from(jobs).where(inArray(jobs.id, jobIds.slice(i, i + 90)))) jobById.set(j.id, j);
  }
  const hostIds = list.filter((h) => IN_FLIGHT.includes(h.status)).map((h) => h.hostId);
  const hostById = new Map<string, HostRow>();
  for (let i = 0; i < hostIds.length; i += 90) {
    for (const h of await db.select().from(hosts).where(inArray(hosts.id, hostIds.slice(i, i + 90)))) hostById.set(h.id, h);
  }
  const afterUpgrade = (h: RolloutHostRow) => {
    const host = hostById.get(h.hostId);
    if (spec.reboot === 'if-required' && host?.rebootRequired) set(h, { status: 'reboot-waiting' });
    else set(h, { status: 'succeeded', ...(host?.rebootRequired ? { reason: 'needs a reboot (the policy never reboots)' } : {}) });
  };
  for (const h of list) {
    if (h.status === 'running') {
      const job = h.jobId ? jobById.get(h.jobId) : undefined;
      if (!job) fail(h, 'its upgrade job is gone');
      else if (ACTIVE.includes(job.status)) continue;
      else if (job.status === 'succeeded' && job.exitCode === 0) {
        if (spec.rollout.rescanBetweenBatches) set(h, { status: 'rescanning' });
        else afterUpgrade(h);
      } else fail(h, `upgrade ${job.status}${job.exitCode ? ` (exit ${job.exitCode})` : ''}: ${job.errorMessage ?? job.summary ?? ''}`.trim());
    }
  }
  for (const h of list) {
    if (h.status !== 'rescanning') continue;
    const done = jobById.get(h.jobId!)?.finishedAt ?? now;
    const host = hostById.get(h.hostId);
    if (host && host.lastScanAt !== null && host.lastScanAt >= done && host.status === 'online') {
      afterUpgrade(h);
      continue;
    }
    const scansSince = await db
      .select()
      .from(jobs)
      .where(and(eq(jobs.hostId, h.hostId), eq(jobs.kind, 'scan'), gte(jobs.createdAt, done)))
      .orderBy(desc(jobs.createdAt));
    if (scansSince.some((j) => ACTIVE.includes(j.status))) continue;
    // a rescan ended and the host is still not online: it did not come back well
    if (scansSince.length) fail(h, `not back after the upgrade: ${host?.statusReason ?? scansSince[0].errorMessage ?? 'the rescan failed'}`);
    // the rescan that follows every change never came (e.g. the Worker restarted in between): ask once
    else if (host && now - done > RESCAN_GRACE_MS) await startScans(env, db, [host], `rollout ${r.policyName}`);
  }
  for (const h of list) {
    if (h.status !== 'rebooting') continue;
    const job = h.rebootJobId ? jobById.get(h.rebootJobId) : undefined;
    if (job && ACTIVE.includes(job.status)) continue;
    if (job?.status === 'succeeded') set(h, { status: 'succeeded', reason: `rebooted: ${job.summary ?? ''}` });
    else fail(h, `upgraded, but the reboot ${job?.status ?? 'vanished'}: ${job?.errorMessage ?? ''}`);
  }

  // 2. Halt, close or stop starting hosts.
  const live = () => ROLLOUT_LIVE.includes(status);
  const failures = list.filter((h) => h.status === 'failed').length;
  if (live() && failures >= spec.rollout.haltAfterFailures) {
    status = 'halted';
    reason = `halted: ${failures} host${failures === 1 ? '' : 's'} failed (the policy halts after ${spec.rollout.haltAfterFailures})`;
  }
  const windowOpen = r.windowEndsAt === null || now < r.windowEndsAt;
  if (live() && !windowOpen && list.some((h) => h.status === 'waiting' || h.status === 'reboot-waiting')) {
    status = 'window-closed';
    reason = `the window closed at ${new Date(r.windowEndsAt!).toISOString()} before every host was done`;
  }
  if (!live()) {
    const why = status === 'window-closed' ? 'the window closed before it started' : status === 'cancelled' ? 'the rollout was cancelled' : 'the rollout halted';
    for (const h of list) {
      if (h.status === 'waiting') set(h, { status: 'not-started', reason: why });
      if (h.status === 'reboot-waiting') set(h, { status: 'succeeded', reason: `upgraded; needs a reboot, not started: ${why}` });
    }
  }

  // 3. Reboots, one at a time, while the rollout runs and the window is open.
  const relays = new Set<string>();
  if (status === 'running' && !list.some((h) => h.status === 'rebooting')) {
    const next = list.find((h) => h.status === 'reboot-waiting');
    const host = next && hostById.get(next.hostId);
    if (next && host) {
      try {
        const { job } = await startChange(env, db, host, { kind: 'reboot', idempotencyKey: `rollout:${r.id}:${host.id}:reboot`, requestedBy: `policy ${r.policyName}`, rolloutId: r.id }, { dispatch: false });
        set(next, { status: 'rebooting', rebootJobId: job.id });
        relays.add(host.relayId!);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.code !== 'busy') set(next, { status: 'succeeded', reason: `upgraded; the reboot was refused: ${err.message}` });
      }
    }
  }

  // 4. Start hosts of the current batch, up to the concurrency limit.
  let batch = r.batch;
  if (status === 'pending' || status === 'running') {
    status = 'running';
    const open = list.filter((h) => !isFinal(h.status) && h.batch !== null);
    if (open.length) {
      batch = Math.min(...open.map((h) => h.batch!));
      let inFlight = list.filter((h) => IN_FLIGHT.includes(h.status)).length;
      const waiting = list.filter((h) => h.status === 'waiting' && h.batch === batch);
      for (const h of waiting) {
        if (inFlight >= spec.rollout.concurrency) break;
        const started = await startHost(env, db, r, h, now);
        set(h, started.fields);
        if (started.relayId) relays.add(started.relayId);
        if (started.fields.status === 'running') inFlight++;
      }
    }
  }
  await Promise.all([...relays].map((id) => relayHub(env, id).dispatch()));

  // 5. Finish.
  const unfinished = list.some((h) => !isFinal(h.status));
  if (status === 'running' && !unfinished) status = 'done';
  const finishedAt = !ROLLOUT_LIVE.includes(status) && !list.some((h) => IN_FLIGHT.includes(h.status)) ? (r.finishedAt ?? now) : null;

  const writes = [...changed].map((h) =>
    db
      .update(rolloutHosts)
      .set({ status: h.status, jobId: h.jobId, rebootJobId: h.rebootJobId, reason: h.reason, packages: h.packages })
      .where(and(eq(rolloutHosts.rolloutId, h.rolloutId), eq(rolloutHosts.hostId, h.hostId))),
  );
  writes.push(db.update(rollouts).set({ failures, batch, startedAt: r.startedAt ?? now }).where(eq(rollouts.id, r.id)) as never);
  // A pause or cancel that arrived while this step ran wins: the status only moves on from what was read.
  writes.push(
    db
      .update(rollouts)
      .set({ status, reason, finishedAt })
      .where(and(eq(rollouts.id, r.id), eq(rollouts.status, r.status)))
      .returning({ id: rollouts.id }) as never,
  );
  const results = (await db.batch(writes as [(typeof writes)[0], ...typeof writes])) as unknown[];
  if (finishedAt !== null && r.finishedAt === null && (results.at(-1) as unknown[]).length) await announceEnd(env, r, status, list);
  return { active: ROLLOUT_LIVE.includes(status) || list.some((h) => IN_FLIGHT.includes(h.status)) };
}

/** Tell the notification channels that a rollout ended (once: when its finishedAt is set). */
async function announceEnd(env: Env, r: RolloutRow, status: RolloutStatus, list: RolloutHostRow[]) {
  const count = (s: RolloutHostStatus) => list.filter((h) => h.status === s).length;
  await notifyRolloutFinished(env, { id: r.id, name: r.policyName, status, succeeded: count('succeeded'), failed: count('failed'), skipped: count('skipped') + count('not-started') });
}

/** Start one host's upgrade: adopt the job a previous step already created (a Worker that
 * stopped between creating the job and recording it), else plan the host again as it is now
 * and create the job. A host that is busy with another change waits for the next step. */
async function startHost(env: Env, db: Db, r: RolloutRow, h: RolloutHostRow, now: number): Promise<{ fields: Partial<RolloutHostRow>; relayId?: string }> {
  const prior = await db.query.jobs.findFirst({ where: and(eq(jobs.rolloutId, r.id), eq(jobs.hostId, h.hostId), eq(jobs.kind, 'upgrade')) });
  if (prior) return { fields: { status: 'running', jobId: prior.id } };
  const host = await db.query.hosts.findFirst({ where: eq(hosts.id, h.hostId) });
  if (!host) return { fields: { status: 'skipped', reason: 'the host was deleted' } };
  const [plan] = await planPolicy(db, r.spec, now, [host.id]);
  if (!plan || plan.action === 'skip') return { fields: { status: 'skipped', reason: plan?.reason ?? 'no longer selected by the policy' } };
  const packages = plan.full ? undefined : plan.packages.map((p) => p.name);
  const aptMode = plan.full && r.spec.aptMode === 'upgrade' && host.packageManager === 'apt' ? ('upgrade' as const) : undefined;
  try {
    const { job } = await startChange(
      env,
      db,
      host,
      { kind: 'upgrade', packages, aptMode, idempotencyKey: `rollout:${r.id}:${host.id}`, requestedBy: `policy ${r.policyName}`, rolloutId: r.id },
      { dispatch: false },
    );
    return { fields: { status: 'running', jobId: job.id, packages: packages ?? null }, relayId: host.relayId! };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.code === 'busy') return { fields: {} };
    return { fields: { status: 'skipped', reason: err.message } };
  }
}

/** Pause, resume or cancel (cancel: no new hosts; upgrades under way finish and are reported). */
export async function controlRollout(db: Db, id: string, action: 'pause' | 'resume' | 'cancel'): Promise<RolloutRow> {
  const r = await db.query.rollouts.findFirst({ where: eq(rollouts.id, id) });
  if (!r) throw new ApiError(404, 'not-found', 'rollout not found');
  const from: Record<typeof action, RolloutStatus[]> = { pause: ['pending', 'running'], resume: ['paused'], cancel: ['pending', 'running', 'paused'] };
  const to: Record<typeof action, RolloutStatus> = { pause: 'paused', resume: 'running', cancel: 'cancelled' };
  if (!from[action].includes(r.status)) throw new ApiError(409, 'conflict', `the rollout is ${r.status}; it cannot be ${action === 'pause' ? 'paused' : action === 'resume' ? 'resumed' : 'cancelled'}`);
  const [row] = await db
    .update(rollouts)
    .set({ status: to[action], ...(action === 'cancel' ? { reason: 'cancelled' } : {}) })
    .where(and(eq(rollouts.id, id), inArray(rollouts.status, from[action])))
    .returning();
  if (!row) throw new ApiError(409, 'conflict', 'the rollout changed meanwhile; try again');
  return row;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function rolloutJson(r: RolloutRow, list: RolloutHostRow[]): Rollout {
  return {
    id: r.id,
    policyId: r.policyId,
    policyName: r.policyName,
    status: r.status,
    phase: ROLLOUT_LIVE.includes(r.status) && r.startedAt !== null ? (r.batch === 0 ? 'canary' : 'batches') : null,
    batch: r.batch,
    batches: r.batches,
    trigger: r.trigger,
    requestedBy: r.requestedBy,
    reason: r.reason,
    reboot: r.spec.reboot,
    failures: r.failures,
    hosts: list.map((h) => ({
      hostId: h.hostId,
      name: h.name,
      batch: h.batch,
      status: h.status,
      ...(h.jobId ? { jobId: h.jobId } : {}),
      ...(h.rebootJobId ? { rebootJobId: h.rebootJobId } : {}),
      ...(h.reason ? { reason: h.reason } : {}),
      packages: h.packages ?? null,
    })),
    windowEndsAt: iso(r.windowEndsAt),
    createdAt: iso(r.createdAt)!,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
  };
}

export async function loadRollout(db: Db, id: string): Promise<Rollout | null> {
  const r = await db.query.rollouts.findFirst({ where: eq(rollouts.id, id) });
  if (!r) return null;
  const list = await db.select().from(rolloutHosts).where(eq(rolloutHosts.rolloutId, id)).orderBy(asc(rolloutHosts.position));
  return rolloutJson(r, list);
}
