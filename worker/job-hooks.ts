// What happens once jobs have finished: called ONCE per applied batch of relay responses
// with every job that finished in it. This is the one place for per-scan / per-job hooks
// (package sightings, notifications, snapshots, rollout steps): add a call below, taking
// the whole batch at once so that 1,000 scans cost a few statements, not 1,000.
import { notifyJobsFinished, outdatedImages, securityKey, type KnownAfterJobs } from './notify/events.ts';
import type { DockerScan, Scan } from './job-results.ts';
import type { Env } from './env.ts';
import type { Db, HostRow, JobRow } from './db/index.ts';
import { JOB_KINDS, type FollowUp } from './job-kinds.ts';
import { startDockerScans, startScans, type Announce } from './hosts.ts';
import { compactLogs, COMPRESS_MIN_CHARS } from './job-log.ts';

export interface FinishedJob {
  /** The job as it finished (terminal status). */
  job: JobRow;
  /** Its host's row as the job left it (null when the job did not change the row). */
  host: HostRow | null;
  /** The relay's validated result (by kind: OperationResult<JOB_KINDS[kind].operation>);
   * undefined when the relay answered with an error. */
  result: unknown;
}

/** Run the after-job hooks for a batch of finished jobs. Returns how many follow-up jobs
 * were queued (the caller dispatches them once; `announce` tells the browsers of them). */
export async function afterJobsFinished(env: Env, db: Db, finished: FinishedJob[], hostOf: (id: string) => Promise<HostRow | null>, announce?: Announce): Promise<number> {
  if (finished.length === 0) return 0;
  // notifications: what changed, announced once (never throws: a channel cannot fail a job)
  await notifyJobsFinished(env, finished.map((f) => f.job), knownAfter(finished));
  const queued = await startFollowUps(env, db, finished, hostOf, announce);
  // finished logs are kept compressed
  await compactLogs(db, finished.filter((f) => f.job.logBytes >= COMPRESS_MIN_CHARS).map((f) => f.job.id));
  return queued;
}

/** What the batch itself says of its hosts, as they stand after it (the last job of a host
 * wins): the host rows the jobs returned, the security updates each successful scan found —
 * which is what host_updates now holds for that host — and the outdated images each docker
 * scan of all a host's stacks found (what its stacks now hold). The notification hook need
 * not read them back (three queries a batch on every "Scan all"). */
export function knownAfter(finished: FinishedJob[]): KnownAfterJobs {
  const hosts = new Map<string, HostRow>();
  const security = new Map<string, string[]>();
  const images = new Map<string, string[]>();
  for (const { job, host, result } of finished) {
    if (host) hosts.set(host.id, host);
    if (job.status !== 'succeeded' || !result) continue;
    if (job.kind === 'scan') security.set(job.hostId, (result as Scan).updates.filter((u) => u.security).map(securityKey));
    if (job.kind === 'docker-scan' && !job.params?.stack) images.set(job.hostId, outdatedImages((result as DockerScan).stacks));
  }
  return { hosts, security, images };
}

/** The jobs that follow others (job-kinds.ts `after`): rescans after changes, docker scans
 * after host scans of Docker hosts — all of a batch queued in one go. */
async function startFollowUps(env: Env, db: Db, finished: FinishedJob[], hostOf: (id: string) => Promise<HostRow | null>, announce?: Announce): Promise<number> {
  const scans = new Map<string | null, HostRow[]>();
  const dockerScans: { host: HostRow; stack?: string; requestedBy: string | null }[] = [];
  for (const { job, host } of finished) {
    const next: FollowUp | null = JOB_KINDS[job.kind].after(job, host);
    if (!next) continue;
    const target = host ?? (await hostOf(job.hostId));
    if (!target) continue;
    if (next.kind === 'scan') scans.set(next.requestedBy, [...(scans.get(next.requestedBy) ?? []), target]);
    else dockerScans.push({ host: target, stack: next.stack, requestedBy: next.requestedBy });
  }
  let queued = 0;
  for (const [requestedBy, targets] of scans) queued += (await startScans(env, db, targets, requestedBy, { dispatch: false, announce })).created.length;
  if (dockerScans.length) queued += (await startDockerScans(env, db, dockerScans, announce)).length;
  return queued;
}
