// The job model: a job row is created queued, sent to the host's relay by its RelayHub,
// and finished by the relay's response (or by a timeout / disconnect). What differs between
// kinds of job is in job-kinds.ts.
import * as v from 'valibot';
import { and, eq, inArray, lt, notInArray } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import { ACTIVE_STATUSES, IN_FLIGHT_STATUSES } from '../protocol/api.ts';
import { Operations, type FromRelay } from '../protocol/relay.ts';
import { schema, type Db, type HostRow, type JobRow } from './db/index.ts';
import { JOB_KINDS, RESUMABLE_KINDS } from './job-kinds.ts';
import { failureOutcome, type FinishFields, type JobHost, type Outcome } from './job-results.ts';
import { pooledUpdates } from './lib/pooled-update.ts';

export { appendChunk, readLog, LOG_CAP } from './job-log.ts';

const { jobs, hosts } = schema;

type ResponseMsg = Extract<FromRelay, { type: 'response' }>;


/** A queued job whose relay stays offline this long is failed as expired. */
export const QUEUE_EXPIRY_MS = 60 * 60_000;

export const ACTIVE: JobRow['status'][] = [...ACTIVE_STATUSES];

/** A job's finish: its terminal status and what it says (relay-apply.ts pools a batch's). */
export interface Finish {
  id: string;
  status: 'succeeded' | 'failed' | 'lost' | 'cancelled';
  fields: FinishFields;
}

/** The statements that finish jobs that have not finished yet (one terminal state: a job
 * finished meanwhile, e.g. cancelled, is left as it is and not returned), returning the
 * finished rows: one per kind of answer, not one per job. */
export function finishStatements(db: Db, finishes: Finish[], now = Date.now()): BatchItem<'sqlite'>[] {
  return pooledUpdates(
    db,
    jobs,
    finishes.map((f) => ({ id: f.id, set: { status: f.status, finishedAt: now, ...f.fields } })),
    { guard: inArray(jobs.status, ACTIVE) },
  );
}

/** What a response should do to its job and host (reads D1 only where a kind needs to). */
export async function outcomeOf(db: Db, job: JobRow, msg: ResponseMsg, host: JobHost | null): Promise<Outcome> {
  const kind = JOB_KINDS[job.kind];
  if (!msg.ok) {
    const outcome = failureOutcome(job, msg.error, kind.reportsReachability);
    return { ...outcome, writes: [...(kind.failureWrites?.(db, job, msg.error) ?? []), ...outcome.writes] };
  }
  const parsed = v.safeParse(Operations[kind.operation].result, msg.result);
  if (!parsed.success) {
    return { writes: [], status: 'failed', finish: { errorCode: 'internal', errorMessage: `the relay's result did not validate: ${parsed.issues[0].message}` } };
  }
  return { ...(await kind.apply(db, job, parsed.output as never, host)), result: parsed.output };
}

/** Fail dispatched jobs past their deadline and queued jobs that waited too long. */
export async function expireJobs(db: Db, relayId: string | null, now = Date.now()) {
  const pastDeadline = and(inArray(jobs.status, [...IN_FLIGHT_STATUSES]), lt(jobs.deadlineAt, now), relayId ? eq(jobs.relayId, relayId) : undefined);
  const overdue = await db
    .update(jobs)
    .set({ status: 'failed', finishedAt: now, errorCode: 'timeout', errorMessage: 'the relay did not answer in time' })
    .where(and(pastDeadline, notInArray(jobs.kind, RESUMABLE_KINDS)))
    .returning();
  // A change whose relay never reported back: it may have run, or not.
  const unknown = await db
    .update(jobs)
    .set({
      status: 'lost',
      finishedAt: now,
      errorCode: 'lost',
      errorMessage: 'the relay did not report how it ended before the deadline; what it changed on the host is unknown — rescan the host',
    })
    .where(and(pastDeadline, inArray(jobs.kind, RESUMABLE_KINDS)))
    .returning();
  const expired = await db
    .update(jobs)
    .set({ status: 'failed', finishedAt: now, errorCode: 'relay-disconnected', errorMessage: 'expired in the queue: the relay stayed offline' })
    .where(and(eq(jobs.status, 'queued'), lt(jobs.createdAt, now - QUEUE_EXPIRY_MS), relayId ? eq(jobs.relayId, relayId) : undefined))
    .returning();
  return [...overdue, ...unknown, ...expired];
}
