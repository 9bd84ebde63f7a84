// Where PatchMan notices things worth telling: each hook compares what just happened with
// what was last announced (notify_state) and records only changes as pending events. The
// hooks never throw and never wait on a channel: delivery happens later, in the Notifier.
import { and, eq, inArray } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import type { NotifyEvent } from '../../protocol/notify.ts';
import type { Env } from '../env.ts';
import { openDb, schema, type Db, type HostRow, type JobRow } from '../db/index.ts';
import { newId } from '../lib/crypto.ts';
import { insertRows } from '../lib/json-rows.ts';
import { readNotifySettings } from './settings.ts';
import { kickNotifier } from './notifier-client.ts';
import type { PendingFact } from './message.ts';

const { notifyEvents, notifyState, hosts, hostUpdates, stacks } = schema;

/** Kinds of job whose failure (and, optionally, success) is announced. */
const ANNOUNCED_JOBS: JobRow['kind'][] = ['upgrade', 'reboot', 'stack-update', 'rollback'];
const OFFLINE_CODES = new Set(['unreachable', 'timeout']);

interface HostState {
  /** `name newVersion` of the security updates last announced. */
  sec?: string[];
  reboot?: boolean;
  /** Failed scans in a row (unreachable), and whether that was announced. */
  down?: number;
  downAnnounced?: boolean;
  hostKeyOffered?: string | null;
  /** `stack/container remoteDigest` of newer images last announced. */
  images?: string[];
}
interface RelayState {
  downSince?: number | null;
  announced?: boolean;
}

export async function readState<T>(db: Db, key: string): Promise<T> {
  const row = await db.query.notifyState.findFirst({ where: eq(notifyState.key, key) });
  return (row?.value ?? {}) as T;
}

export async function writeState(db: Db, key: string, value: object): Promise<void> {
  const now = Date.now();
  await db
    .insert(notifyState)
    .values({ key, value: value as Record<string, unknown>, updatedAt: now })
    .onConflictDoUpdate({ target: notifyState.key, set: { value: value as Record<string, unknown>, updatedAt: now } });
}

/** Rows per insert of facts or host states: each a JSON value of a few hundred bytes (a
 * host's security updates), so 200 stay far below D1's 2 MB a value. */
const ROWS_PER_INSERT = 200;

/** Record facts as pending events (the Notifier flushes them after a short window). */
export async function recordFacts(env: Env, db: Db, facts: PendingFact[], now = Date.now(), opts: { wake?: boolean } = {}): Promise<void> {
  if (facts.length === 0) return;
  const inserts = insertRows(
    db,
    notifyEvents,
    facts.map((f) => ({ id: newId(), event: f.event, hostId: f.hostId, data: f.data, createdAt: now })),
    { perStatement: ROWS_PER_INSERT },
  );
  await db.batch(inserts as [BatchItem<'sqlite'>, ...BatchItem<'sqlite'>[]]);
  if (opts.wake !== false) await kickNotifier(env, now);
}

const fact = (event: NotifyEvent, host: HostRow | null, data: Omit<PendingFact['data'], 'name'> & { name?: string }): PendingFact => ({
  event,
  hostId: host?.id ?? null,
  data: { name: data.name ?? host?.name ?? '?', ...data },
});

/** Ids per IN list (D1 binds at most 100 parameters a statement). */
const IDS_PER_QUERY = 90;

function chunks<T>(xs: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += IDS_PER_QUERY) out.push(xs.slice(i, i + IDS_PER_QUERY));
  return out;
}

/** What a finished job says that was not said before. */
export async function factsForJob(db: Db, job: JobRow): Promise<PendingFact[]> {
  return factsForJobs(db, [job]);
}

/** How a security update is remembered in notify_state (`sec`) and compared. */
export const securityKey = (u: { name: string; newVersion: string }) => `${u.name} ${u.newVersion}`;

/** What the caller of a batch already knows as it stands after the batch, so that it is not
 * read back: host rows by id, and the security updates (`name newVersion`) a host's scan
 * found, by host id. */
export interface KnownAfterJobs {
  hosts?: Map<string, HostRow>;
  security?: Map<string, string[]>;
  /** The outdated images (outdatedImages) a host's docker scan of all its stacks found. */
  images?: Map<string, string[]>;
}

/** How a container with a newer image is remembered in notify_state (`images`) and compared:
 * `stack/container remoteDigest`, for each of a host's stacks. */
export const outdatedImages = (stacks: { name: string; containers: { name: string; check: { status: string; remoteDigest?: string | null } }[] }[]) =>
  stacks.flatMap((st) => st.containers.filter((c) => c.check.status === 'update-available').map((c) => `${st.name}/${c.name} ${c.check.remoteDigest ?? ''}`));

/**
 * What a batch of finished jobs says that was not said before, in arrival order (a host with
 * two jobs in the batch sees the state the first one left). Everything the comparison needs
 * is read in a few queries for the whole batch (less what `known` holds) and the changed
 * states are written in one D1 batch: a job at a time cost five round trips per scan
 * response, which made "Scan all" of 1,000 hosts wait on the Worker (issue 11).
 */
export async function factsForJobs(db: Db, jobs: JobRow[], known: KnownAfterJobs = {}): Promise<PendingFact[]> {
  if (jobs.length === 0) return [];
  const allHostIds = [...new Set(jobs.map((j) => j.hostId))];
  const hostIds = allHostIds.filter((id) => !known.hosts?.has(id));
  const scanned = [...new Set(jobs.filter((j) => j.kind === 'scan' && j.status === 'succeeded').map((j) => j.hostId))].filter((id) => !known.security?.has(id));
  const stackChecked = [...new Set(jobs.filter((j) => j.kind === 'docker-scan' && j.status === 'succeeded' && !j.params?.stack).map((j) => j.hostId))].filter((id) => !known.images?.has(id));
  const hostRows = new Map<string, HostRow>(known.hosts);
  const states = new Map<string, HostState>();
  const security = new Map<string, string[]>(known.security);
  const images = new Map<string, string[]>(known.images);
  for (const ids of chunks(hostIds)) {
    for (const h of await db.select().from(hosts).where(inArray(hosts.id, ids))) hostRows.set(h.id, h);
  }
  for (const ids of chunks(allHostIds)) {
    for (const r of await db.select().from(notifyState).where(inArray(notifyState.key, ids.map((id) => `host:${id}`)))) states.set(r.key, r.value as HostState);
  }
  for (const ids of chunks(scanned)) {
    const rows = await db
      .select({ hostId: hostUpdates.hostId, name: hostUpdates.name, newVersion: hostUpdates.newVersion })
      .from(hostUpdates)
      .where(and(inArray(hostUpdates.hostId, ids), eq(hostUpdates.security, true)));
    for (const r of rows) {
      const list = security.get(r.hostId) ?? [];
      list.push(securityKey(r));
      security.set(r.hostId, list);
    }
  }
  for (const ids of chunks(stackChecked)) {
    for (const st of await db.select({ hostId: stacks.hostId, name: stacks.name, containers: stacks.containers }).from(stacks).where(inArray(stacks.hostId, ids))) {
      images.set(st.hostId, (images.get(st.hostId) ?? []).concat(outdatedImages([st])));
    }
  }
  const offline = jobs.some((j) => j.kind === 'scan' && j.status === 'failed' && OFFLINE_CODES.has(j.errorCode ?? ''));
  const { unreachableAfterScans } = offline ? await readNotifySettings(db) : { unreachableAfterScans: 0 };

  const facts: PendingFact[] = [];
  const changed = new Set<string>();
  for (const job of jobs) {
    const host = hostRows.get(job.hostId);
    if (!host) continue;
    const key = `host:${host.id}`;
    const state = states.get(key) ?? {};
    const next: HostState = { ...state };

    if (job.kind === 'scan' && job.status === 'succeeded') {
      const current = [...new Set(security.get(host.id) ?? [])].sort();
      const known = new Set(state.sec ?? []);
      const fresh = current.filter((k) => !known.has(k));
      if (fresh.length) {
        const names = fresh.map((k) => k.split(' ')[0]);
        const list = names.slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '');
        facts.push(fact('security-updates', host, { detail: `${current.length} security updates (${fresh.length} new: ${list})`, rank: current.length }));
      }
      next.sec = current;
      if (host.rebootRequired && !state.reboot) facts.push(fact('reboot-required', host, { detail: host.rebootReason ?? 'reboot required', rank: 1 }));
      next.reboot = !!host.rebootRequired;
      if (state.downAnnounced) facts.push(fact('host-back', host, { detail: 'a scan reached it again', rank: 0 }));
      next.down = 0;
      next.downAnnounced = false;
      next.hostKeyOffered = null;
    }

    if (job.kind === 'scan' && job.status === 'failed' && OFFLINE_CODES.has(job.errorCode ?? '')) {
      next.down = (state.down ?? 0) + 1;
      if (next.down >= unreachableAfterScans && !state.downAnnounced) {
        facts.push(fact('host-unreachable', host, { detail: `${next.down} scans in a row failed: ${job.errorMessage ?? job.errorCode}`, rank: next.down, jobId: job.id }));
        next.downAnnounced = true;
      }
    }

    if (job.errorCode === 'host-key-changed' && host.hostKeyOffered && host.hostKeyOffered !== state.hostKeyOffered) {
      facts.push(fact('host-key-changed', host, { detail: `it now offers ${host.hostKeyOffered} (pinned ${host.hostKey ?? 'unknown'})`, rank: 2 }));
      next.hostKeyOffered = host.hostKeyOffered;
    }

    if (ANNOUNCED_JOBS.includes(job.kind) && (job.status === 'failed' || job.status === 'lost')) {
      const why = job.errorMessage ?? job.errorCode ?? (job.exitCode ? `exit status ${job.exitCode}` : 'failed');
      facts.push(fact('job-failed', host, { detail: `${job.kind} ${job.status}: ${why}`.slice(0, 300), jobId: job.id, rank: 2 }));
    }
    if (ANNOUNCED_JOBS.includes(job.kind) && job.status === 'succeeded') {
      facts.push(fact('job-succeeded', host, { detail: `${job.kind}: ${job.summary ?? 'done'}`.slice(0, 300), jobId: job.id, rank: 0 }));
    }

    if (job.kind === 'docker-scan' && job.status === 'succeeded' && !job.params?.stack) {
      const current = [...(images.get(host.id) ?? [])].sort();
      const known = new Set(state.images ?? []);
      const fresh = current.filter((k) => !known.has(k));
      if (fresh.length) {
        const names = fresh.map((k) => k.split(' ')[0]);
        facts.push(fact('images-outdated', host, { detail: `${names.length} container${names.length === 1 ? '' : 's'} with a newer image: ${names.slice(0, 5).join(', ')}`, rank: current.length }));
      }
      next.images = current;
    }

    if (JSON.stringify(next) !== JSON.stringify(state)) {
      states.set(key, next);
      changed.add(key);
    }
  }
  const now = Date.now();
  const writes = insertRows(
    db,
    notifyState,
    [...changed].map((key) => ({ key, value: states.get(key), updatedAt: now })),
    { perStatement: ROWS_PER_INSERT, onConflict: { target: notifyState.key, replace: ['value', 'updatedAt'] } },
  );
  if (writes.length) await db.batch(writes as [BatchItem<'sqlite'>, ...BatchItem<'sqlite'>[]]);
  return facts;
}

function logFailure(what: string, err: unknown) {
  console.warn(`notify: ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
}

// ---- the hooks (one call each from the existing code) -------------------------------------

/** Jobs finished, a batch at a time: those a relay's answers finished (job-hooks.ts), and
 * those that ended without an answer (past their deadline, expired in the queue). */
export async function notifyJobsFinished(env: Env, jobs: JobRow[], known: KnownAfterJobs = {}): Promise<void> {
  if (jobs.length === 0) return;
  try {
    const db = openDb(env.DB);
    await recordFacts(env, db, await factsForJobs(db, jobs, known));
  } catch (err) {
    logFailure('job hook', err);
  }
}

/** A relay's socket closed (relay-hub.ts relayGone): announced if it stays away. */
export async function notifyRelayGone(env: Env, relayId: string, now = Date.now()): Promise<void> {
  try {
    const db = openDb(env.DB);
    const state = await readState<RelayState>(db, `relay:${relayId}`);
    if (state.downSince) return;
    await writeState(db, `relay:${relayId}`, { downSince: now, announced: false });
    const { relayDownMinutes } = await readNotifySettings(db);
    await kickNotifier(env, now + relayDownMinutes * 60_000);
  } catch (err) {
    logFailure('relay-gone hook', err);
  }
}

/** A relay said hello: back, if its absence was announced. */
export async function notifyRelayUp(env: Env, relayId: string): Promise<void> {
  try {
    const db = openDb(env.DB);
    const state = await readState<RelayState>(db, `relay:${relayId}`);
    if (!state.downSince) return;
    await writeState(db, `relay:${relayId}`, { downSince: null, announced: false });
    if (state.announced) {
      const relay = await db.query.relays.findFirst({ where: eq(schema.relays.id, relayId) });
      await recordFacts(env, db, [{ event: 'relay-back', hostId: null, data: { name: relay?.name ?? relayId, detail: 'connected again', relayId, rank: 0 } }]);
    }
  } catch (err) {
    logFailure('relay-up hook', err);
  }
}

/** Relays gone longer than the setting and not yet announced → relay-down (the Notifier). */
export async function factsForRelaysDown(env: Env, db: Db, now: number): Promise<{ facts: PendingFact[]; nextCheck: number | null }> {
  const { relayDownMinutes } = await readNotifySettings(db);
  const rows = (await db.select().from(notifyState)).filter((r) => r.key.startsWith('relay:'));
  const facts: PendingFact[] = [];
  let nextCheck: number | null = null;
  for (const r of rows) {
    const st = r.value as RelayState;
    if (!st.downSince || st.announced) continue;
    const due = st.downSince + relayDownMinutes * 60_000;
    if (due > now) {
      nextCheck = Math.min(nextCheck ?? due, due);
      continue;
    }
    const relayId = r.key.slice('relay:'.length);
    const relay = await db.query.relays.findFirst({ where: eq(schema.relays.id, relayId) });
    if (!relay || relay.revokedAt) continue;
    await writeState(db, r.key, { ...st, announced: true });
    const minutes = Math.round((now - st.downSince) / 60_000);
    facts.push({ event: 'relay-down', hostId: null, data: { name: relay.name, detail: `disconnected for ${minutes} min: its hosts are not scanned or patched`, relayId, rank: minutes } });
  }
  return { facts, nextCheck };
}

/** For the policies' rollouts: one call when a rollout ends (done, halted, cancelled or its
 * window closed). */
export async function notifyRolloutFinished(
  env: Env,
  rollout: { id: string; name: string; status: string; succeeded: number; failed: number; skipped?: number },
): Promise<void> {
  try {
    const db = openDb(env.DB);
    const detail = `${rollout.status}: ${rollout.succeeded} patched, ${rollout.failed} failed${rollout.skipped ? `, ${rollout.skipped} skipped` : ''}`;
    await recordFacts(env, db, [{ event: 'rollout-finished', hostId: null, data: { name: rollout.name, detail, rank: rollout.failed } }]);
  } catch (err) {
    logFailure('rollout hook', err);
  }
}

