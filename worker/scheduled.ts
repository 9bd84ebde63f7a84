import { and, inArray, lt } from 'drizzle-orm';
import type { LiveEvent } from '../protocol/api.ts';
import type { Env } from './env.ts';
import { openDb, schema } from './db/index.ts';
import { expireJobs } from './jobs.ts';
import { compactLogs, uncompactedLogs } from './job-log.ts';
import { dueHosts, startScans } from './hosts.ts';
import { readSettings } from './settings.ts';
import { jobJson } from './lib/serialize.ts';
import { publish } from './live-feed.ts';
import { runDuePolicies } from './policy-schedule.ts';
import { notifyCron } from './notify/cron.ts';
import { notifyJobsFinished } from './notify/events.ts';
import { pruneHostDays } from './trends.ts';

const { jobs } = schema;

/** Cron trigger: fail jobs nobody will answer, scan the hosts that are due, and delete
 * history older than the retention setting. */
export async function runScheduled(env: Env, now = Date.now()) {
  const db = openDb(env.DB);
  const settings = await readSettings(db);
  const failed = await expireJobs(db, null, now);
  await publish(env, ...failed.map((job): LiveEvent => ({ type: 'job', job: jobJson(job) })));
  await notifyJobsFinished(env, failed);

  const due = await dueHosts(db, settings.scanIntervalHours, now);
  const { created } = await startScans(env, db, due, 'schedule');

  const policies = await runDuePolicies(env, db, now);

  const cutoff = now - settings.retentionDays * 86_400_000;
  const deleted = await db
    .delete(jobs)
    .where(and(lt(jobs.createdAt, cutoff), inArray(jobs.status, ['succeeded', 'failed', 'cancelled', 'lost'])))
    .returning({ id: jobs.id });
  await notifyCron(env, now);

  // logs of jobs that ended without a response (timed out, lost) are compressed here
  const compact = await uncompactedLogs(db);
  await compactLogs(db, compact);
  const daysDeleted = await pruneHostDays(db, cutoff);

  return { expired: failed.length, scansQueued: created.length, jobsDeleted: deleted.length, logsCompressed: compact.length, daysDeleted, rolloutsStarted: policies.started.length };
}
