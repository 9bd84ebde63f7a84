import type { Env } from './env.ts';
import { openDb } from './db/index.ts';
import { expireJobs } from './jobs.ts';
import { jobJson } from './lib/serialize.ts';
import { publish } from './live-feed.ts';

/** Cron trigger: fail jobs nobody will answer any more. */
export async function runScheduled(env: Env, now = Date.now()): Promise<void> {
  const failed = await expireJobs(openDb(env.DB), null, now);
  await publish(env, ...failed.map((job) => ({ type: 'job' as const, job: jobJson(job) })));
}
