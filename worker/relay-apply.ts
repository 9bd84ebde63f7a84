// Applying what a relay sent — output chunks and responses — in bulk: the messages that
// arrived together become ONE D1 batch (one transaction): each job's output appended and
// its offset moved, and the responses' writes pooled, a few statements for the whole batch
// whatever its size: package lists (written only when they changed since the last scan),
// days, host rows, stacks, then the jobs finished. The job model's
// guarantees hold inside a batch: messages are taken in arrival order, a job's output is
// stored before its response finishes it, a job finishes once (a second answer is dropped),
// and only the relay a job was sent to may report on it.
import { and, eq, inArray } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import { IN_FLIGHT_STATUSES, type LiveEvent } from '../protocol/api.ts';
import type { FromRelay } from '../protocol/relay.ts';
import { schema, type Db, type HostRow, type JobRow } from './db/index.ts';
import { ACTIVE, LOG_CAP, finishStatements, outcomeOf, type Finish } from './jobs.ts';
import { appendChunkStatement } from './job-log.ts';
import { HOST_SET_RULES, replaceStacksStatements, replaceUpdatesStatements, updatesDigest, type HostSet, type JobHost, type StackReport } from './job-results.ts';
import { pooledUpdates } from './lib/pooled-update.ts';
import { replaceGuestsStatements } from './guest-results.ts';
import type { ProxmoxGuest } from '../protocol/proxmox.ts';
import { jsonValues } from './lib/json-rows.ts';
import type { FinishedJob } from './job-hooks.ts';
import type { PackageUpdate } from '../protocol/relay.ts';
import { hostJson, jobJson } from './lib/serialize.ts';
import { recordScanDays, type ScanDay } from './trends.ts';

const { jobs, hosts } = schema;

export type RelayMessage = Extract<FromRelay, { type: 'output' | 'response' }>;

/** Most messages applied in one batch. A batch's statements grow with the shapes of its
 * answers, not their number (rows travel as JSON values: lib/json-rows.ts), so this only keeps
 * those values and one transaction's work bounded. At 100, "Scan all" of 1,000 hosts was cut
 * into a batch of 100 and one of the handful that came while it was written, every 300 ms. */
export const MAX_MESSAGES_PER_BATCH = 400;

/**
 * Issue 10, hole 1: a relay's output or response is accepted only for a job that was sent
 * to THIS relay and is still dispatched or running. Anything else — an unknown id, another
 * relay's job, a queued or finished job — is dropped (and logged by the caller).
 */
export function acceptsRelayMessage(job: JobRow | undefined, relayId: string): boolean {
  return refusalOf(job, relayId) === null;
}

/** Why a relay's message about this job is refused, or null (see acceptsRelayMessage). */
function refusalOf(job: JobRow | undefined, relayId: string): string | null {
  if (!job) return 'unknown job';
  if (job.relayId !== relayId) return 'job of another relay';
  if (!(IN_FLIGHT_STATUSES as readonly string[]).includes(job.status)) return `job is ${job.status}`;
  return null;
}

export interface AppliedBatch {
  /** Live events, in order. */
  events: LiveEvent[];
  /** Jobs finished by this batch, for the after-job hooks. */
  finished: FinishedJob[];
  /** Messages dropped by acceptsRelayMessage (id and why), for the log. */
  refused: { id: string; type: string; reason: string }[];
}

/** A job's output taken in this batch and not yet written. */
interface PendingOutput {
  /** The offset the stored row has now (the update's guard). */
  fromOffset: number;
  text: string;
}

/** Apply a batch of one relay's messages (in arrival order) in one D1 transaction.
 * `early` gets the live events of accepted output (and jobs it started) before the write,
 * so that a line reaches browsers without waiting for D1; `events` holds the rest. */
export async function applyRelayMessages(db: Db, relayId: string, messages: RelayMessage[], early?: (events: LiveEvent[]) => void): Promise<AppliedBatch> {
  const byId = new Map<string, JobRow>();
  /** The fingerprint of each host's stored package list. */
  const storedDigest = new Map<string, string | null>();
  /** What a result's apply may need of its host (JOB_KINDS `apply`), read here once. */
  const hostOf = new Map<string, JobHost>();
  const found = await db
    .select({ job: jobs, digest: hosts.updatesDigest, name: hosts.name, guestOf: hosts.guestOf })
    .from(jobs)
    .leftJoin(hosts, eq(hosts.id, jobs.hostId))
    .where(inArray(jobs.id, jsonValues([...new Set(messages.map((m) => m.id))])));
  for (const { job, digest, name, guestOf } of found) {
    byId.set(job.id, job);
    storedDigest.set(job.hostId, digest);
    if (name !== null) hostOf.set(job.hostId, { name, guestOf });
  }

  /** The output taken: each job's offset moved and its text appended. */
  const outputWrites: BatchItem<'sqlite'>[] = [];
  const events: LiveEvent[] = [];
  const refused: AppliedBatch['refused'] = [];
  const outputs = new Map<string, PendingOutput>();
  /** The responses taken, in order: their job, whether they changed its host row, and the
   * relay's result for the after-job hooks. */
  const responses: { jobId: string; hostId: string | null; result: unknown }[] = [];
  /** Each host's new values, the batch's responses merged in order (a later one wins). */
  const hostSets = new Map<string, HostSet>();
  const stackReports: { hostId: string; report: StackReport }[] = [];
  /** The last guest list per Proxmox VE node. */
  const guestLists = new Map<string, ProxmoxGuest[]>();
  const finishes: Finish[] = [];
  /** Other writes of the responses, in order. */
  const writes: BatchItem<'sqlite'>[] = [];
  /** The last package list per host (a later scan of the same host replaces an earlier one),
   * and its fingerprint. */
  const updateLists = new Map<string, { updates: PackageUpdate[]; digest: string }>();
  /** The scans' figures for their hosts' days, in arrival order. */
  const days: ScanDay[] = [];

  /** Write a job's pending output (before its response, or at the end). */
  const flushOutput = (job: JobRow) => {
    const out = outputs.get(job.id);
    if (!out) return;
    outputs.delete(job.id);
    outputWrites.push(
      db
        .update(jobs)
        .set({ status: job.status, logOffset: job.logOffset, logBytes: job.logBytes, logTruncated: job.logTruncated })
        .where(and(eq(jobs.id, job.id), eq(jobs.logOffset, out.fromOffset), inArray(jobs.status, ACTIVE))),
    );
    if (out.text) outputWrites.push(appendChunkStatement(db, job.id, out.text));
  };

  for (const m of messages) {
    const job = byId.get(m.id);
    if (!job || !acceptsRelayMessage(job, relayId)) {
      refused.push({ id: m.id, type: m.type, reason: refusalOf(job, relayId) ?? 'unknown job' });
      continue;
    }
    if (m.type === 'output') {
      // a range the stored log does not end at: a re-attached relay resending (or a gap,
      // refilled when the request is re-sent with the stored offset)
      if (m.range && m.range.from !== job.logOffset) continue;
      let keep = m.data;
      if (!job.logTruncated && job.logBytes + keep.length > LOG_CAP) {
        keep =
          keep.slice(0, Math.max(0, LOG_CAP - job.logBytes)) +
          `\n[patchman: output truncated here — the log is capped at ${LOG_CAP / 1024 / 1024} MiB; its end is added when the job finishes]\n`;
        job.logTruncated = true;
      } else if (job.logTruncated) {
        keep = '';
      }
      const out = outputs.get(job.id) ?? { fromOffset: job.logOffset, text: '' };
      out.text += keep;
      outputs.set(job.id, out);
      const started = job.status === 'dispatched';
      job.status = 'running';
      if (m.range) job.logOffset = m.range.to;
      job.logBytes += keep.length;
      if (started) events.push({ type: 'job', job: jobJson(job) });
      events.push({ type: 'job.output', jobId: job.id, hostId: job.hostId, data: m.data });
      continue;
    }
    flushOutput(job);
    const outcome = await outcomeOf(db, job, m, hostOf.get(job.hostId) ?? null);
    if (outcome.day) days.push(outcome.day);
    if (outcome.updates) {
      const digest = await updatesDigest(outcome.updates);
      updateLists.set(job.hostId, { updates: outcome.updates, digest });
      outcome.host = { ...outcome.host, updatesDigest: digest };
    }
    if (outcome.host) hostSets.set(job.hostId, { ...hostSets.get(job.hostId), ...outcome.host });
    if (outcome.stacks) stackReports.push({ hostId: job.hostId, report: outcome.stacks });
    if (outcome.guests) guestLists.set(job.hostId, outcome.guests);
    writes.push(...outcome.writes);
    finishes.push({ id: job.id, status: outcome.status, fields: outcome.finish });
    responses.push({ jobId: job.id, hostId: outcome.host ? job.hostId : null, result: outcome.result });
    // finished here: anything more about it in this batch is dropped
    job.status = outcome.status;
  }
  for (const id of [...outputs.keys()]) flushOutput(byId.get(id)!);
  // The pooled package lists and days go first: the host rows returned after them carry the
  // exposure the lists set. A list that is the one stored is not written again (nor are its
  // sightings: nothing in them changes) — most scans of a fleet find what the last one found.
  // Then the host rows, the output, stacks and other writes; the finishes last, after
  // everything their jobs wrote.
  const changedLists = [...updateLists].filter(([hostId, l]) => l.digest !== storedDigest.get(hostId));
  const pooled = [...replaceUpdatesStatements(db, changedLists.map(([hostId, l]) => ({ hostId, updates: l.updates }))), ...recordScanDays(db, days)];
  const hostUpdates = pooledUpdates(
    db,
    hosts,
    [...hostSets].map(([id, set]) => ({ id, set })),
    { rules: HOST_SET_RULES },
  );
  const finishing = finishStatements(db, finishes);
  const guestWrites = replaceGuestsStatements(db, [...guestLists].map(([nodeHostId, guests]) => ({ nodeHostId, guests })));
  const all = [...pooled, ...hostUpdates, ...outputWrites, ...replaceStacksStatements(db, stackReports), ...guestWrites, ...writes, ...finishing];

  const finished: FinishedJob[] = [];
  if (all.length === 0) return { events, finished, refused };
  if (early) early(events.splice(0));
  const results = (await db.batch(all as [BatchItem<'sqlite'>, ...BatchItem<'sqlite'>[]])) as unknown[];
  const returned = <T extends { id: string }>(from: number, count: number) =>
    new Map((results.slice(from, from + count) as T[][]).flat().map((r) => [r.id, r]));
  const hostRows = returned<HostRow>(pooled.length, hostUpdates.length);
  const jobRows = returned<JobRow>(all.length - finishing.length, finishing.length);
  for (const { jobId, hostId, result } of responses) {
    const job = jobRows.get(jobId);
    if (!job) continue; // finished meanwhile by someone else (cancelled, expired)
    const host = hostId === null ? null : (hostRows.get(hostId) ?? null);
    if (host) events.push({ type: 'host', host: hostJson(host) });
    events.push({ type: 'job', job: jobJson(job) });
    finished.push({ job, host, result });
  }
  return { events, finished, refused };
}
