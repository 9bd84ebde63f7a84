// The job model: a job row is created queued, sent to the host's relay by its RelayHub,
// and finished by the relay's response (or by a timeout / disconnect).
import * as v from 'valibot';
import { and, asc, eq, inArray, lt, notInArray, sql } from 'drizzle-orm';
import { Operations, type OperationName, type FromRelay } from '../protocol/relay.ts';
import { schema, type Db, type HostRow, type JobRow } from './db/index.ts';

const { jobs, hosts, hostUpdates, jobOutput } = schema;

type ResponseMsg = Extract<FromRelay, { type: 'response' }>;

/** How long the relay gets to answer each kind of job once it is dispatched. */
export const JOB_TIMEOUT_MS: Record<JobRow['kind'], number> = { scan: 10 * 60_000, upgrade: 60 * 60_000, reboot: 20 * 60_000 };
/** A queued job whose relay stays offline this long is failed as expired. */
export const QUEUE_EXPIRY_MS = 60 * 60_000;

export const ACTIVE: JobRow['status'][] = ['queued', 'dispatched', 'running'];

/** The relay operation each kind of job runs. */
export const JOB_OPERATION = { scan: 'scan', upgrade: 'upgrade', reboot: 'reboot' } as const satisfies Record<JobRow['kind'], OperationName>;

/** Jobs that change a host: one at a time per host (the jobs_one_change_per_host index),
 * refused for monitor-only hosts, followed by a rescan. */
export const CHANGES: JobRow['kind'][] = ['upgrade', 'reboot'];

/** Kinds that are safe to send again after a lost answer, because they change nothing. */
export const REPEATABLE: JobRow['kind'][] = ['scan'];

/** Kinds whose run outlives the relay's connection: when the relay drops, the job waits for
 * it to come back and re-attach (until its deadline, then it is lost). An upgrade re-sent
 * re-attaches to its run on the host (a run id starts at most once); a reboot re-sent only
 * waits for the host (`resume`), it never reboots twice. */
export const RESUMABLE: JobRow['kind'][] = ['upgrade', 'reboot'];

/** Most output kept per job (characters); the rest is dropped with a visible marker, and the
 * relay's last 16 KiB are appended at the end. */
export const LOG_CAP = 2 * 1024 * 1024;

/** The operation and parameters a job sends to the relay. */
export function requestFor(job: JobRow, host: HostRow): { op: OperationName; params: unknown } {
  const target = { address: host.address, port: host.port, user: host.user };
  switch (job.kind) {
    case 'scan':
      return { op: 'scan', params: { target, refresh: true } };
    case 'upgrade':
      return {
        op: 'upgrade',
        params: { target, runId: job.id, offset: job.logOffset, ...(job.params?.packages ? { packages: job.params.packages } : {}) },
      };
    case 'reboot':
      return { op: 'reboot', params: { target, runId: job.id, resume: job.resume, bootId: job.params?.bootId ?? null } };
  }
}

/** D1 allows 100 bound parameters per statement: 7 columns → 14 rows per insert. */
const UPDATE_ROWS_PER_INSERT = 14;

export async function finishJob(
  db: Db,
  id: string,
  status: 'succeeded' | 'failed' | 'lost' | 'cancelled',
  fields: { summary?: string; errorCode?: string; errorMessage?: string; exitCode?: number; changes?: JobRow['changes'] },
) {
  const [row] = await db
    .update(jobs)
    .set({ status, finishedAt: Date.now(), ...fields })
    .where(and(eq(jobs.id, id), inArray(jobs.status, ACTIVE)))
    .returning();
  return row ?? null;
}

/** Apply a relay's response to its job and host. Returns what changed, for live events. */
export async function applyResponse(db: Db, msg: ResponseMsg): Promise<{ job: JobRow | null; host: HostRow | null }> {
  const job = await db.query.jobs.findFirst({ where: eq(jobs.id, msg.id) });
  if (!job || !ACTIVE.includes(job.status)) return { job: null, host: null };

  if (!msg.ok) {
    const { code, message, exitCode } = msg.error;
    let host: HostRow | undefined;
    // A scan is how we learn whether a host is reachable; a failed change says nothing new
    // unless it could not even connect.
    if (job.kind === 'scan' || code === 'unreachable' || code === 'auth-refused' || code === 'host-key-changed') {
      const offline = code === 'unreachable' || code === 'timeout';
      const keyChanged = code === 'host-key-changed' && msg.error.hostKey ? { hostKey: msg.error.hostKey.pinned, hostKeyOffered: msg.error.hostKey.offered } : {};
      [host] = await db
        .update(hosts)
        .set({ status: offline ? 'offline' : 'error', statusReason: message, updatedAt: Date.now(), ...keyChanged })
        .where(eq(hosts.id, job.hostId))
        .returning();
    }
    const status = code === 'lost' || code === 'relay-disconnected' ? 'lost' : 'failed';
    const done = await finishJob(db, job.id, status, { errorCode: code, errorMessage: message, ...(exitCode !== undefined ? { exitCode } : {}) });
    return { job: done, host: host ?? null };
  }

  const op = JOB_OPERATION[job.kind];
  const parsed = v.safeParse(Operations[op].result, msg.result);
  if (!parsed.success) {
    const done = await finishJob(db, job.id, 'failed', {
      errorCode: 'internal',
      errorMessage: `the relay's result did not validate: ${parsed.issues[0].message}`,
    });
    return { job: done, host: null };
  }
  if (job.kind === 'upgrade') return applyUpgrade(db, job, parsed.output as Upgrade);
  if (job.kind === 'reboot') return applyReboot(db, job, parsed.output as Reboot);
  return applyScan(db, job, parsed.output as Scan);
}

async function applyScan(db: Db, job: JobRow, scan: Scan): Promise<{ job: JobRow | null; host: HostRow | null }> {
  const now = Date.now();
  const { probe } = scan;
  const security = scan.updates.filter((u) => u.security).length;
  const problem = hostProblem(scan);
  const statements = [
    db
      .update(hosts)
      .set({
        status: problem ? 'error' : 'online',
        statusReason: problem,
        osId: probe.os.id,
        osName: probe.os.name,
        osVersion: probe.os.version,
        osPrettyName: probe.os.prettyName,
        kernel: probe.kernel,
        arch: probe.arch,
        bootId: probe.bootId,
        bootedAt: Math.round(now - probe.uptimeSeconds * 1000),
        packageManager: scan.packageManager,
        packageManagers: probe.packageManagers,
        proxmox: probe.proxmox,
        docker: probe.docker,
        privilege: probe.privilege,
        updatesCount: scan.packageManager ? scan.updates.length : null,
        securityCount: scan.packageManager ? security : null,
        held: scan.held,
        scanWarnings: scan.warnings,
        rebootRequired: scan.reboot.required,
        rebootReason: scan.reboot.reason,
        lastScanAt: now,
        updatedAt: now,
        ...(scan.hostKey ? { hostKey: scan.hostKey, hostKeyOffered: null } : {}),
      })
      .where(eq(hosts.id, job.hostId)),
    db.delete(hostUpdates).where(eq(hostUpdates.hostId, job.hostId)),
  ];
  for (let i = 0; i < scan.updates.length; i += UPDATE_ROWS_PER_INSERT) {
    const chunk = scan.updates.slice(i, i + UPDATE_ROWS_PER_INSERT);
    statements.push(
      db
        .insert(hostUpdates)
        .values(chunk.map((u) => ({ hostId: job.hostId, ...u })))
        .onConflictDoNothing() as never,
    );
  }
  // one transaction: the host never shows half a package list
  await db.batch(statements as [any, ...any[]]);
  const host = await db.query.hosts.findFirst({ where: eq(hosts.id, job.hostId) });
  const done = await finishJob(db, job.id, 'succeeded', { exitCode: 0, summary: scanSummary(scan) });
  return { job: done, host: host ?? null };
}

type Scan = v.InferOutput<(typeof Operations)['scan']['result']>;
type Upgrade = v.InferOutput<(typeof Operations)['upgrade']['result']>;
type Reboot = v.InferOutput<(typeof Operations)['reboot']['result']>;

async function applyUpgrade(db: Db, job: JobRow, up: Upgrade): Promise<{ job: JobRow | null; host: HostRow | null }> {
  if (job.logTruncated && up.logTail) {
    await appendChunk(db, job.id, `\n[patchman: the last ${up.logTail.length} characters of the log]\n${up.logTail}`);
  }
  const [host] = await db
    .update(hosts)
    .set({ rebootRequired: up.reboot.required, rebootReason: up.reboot.reason, updatedAt: Date.now() })
    .where(eq(hosts.id, job.hostId))
    .returning();
  const done = await finishJob(db, job.id, 'succeeded', { exitCode: up.exitCode, summary: upgradeSummary(up), changes: up.changes });
  return { job: done, host: host ?? null };
}

async function applyReboot(db: Db, job: JobRow, r: Reboot): Promise<{ job: JobRow | null; host: HostRow | null }> {
  const now = Date.now();
  const [host] = await db
    .update(hosts)
    .set({ status: 'online', statusReason: null, bootId: r.bootIdAfter, kernel: r.kernel, bootedAt: now, updatedAt: now })
    .where(eq(hosts.id, job.hostId))
    .returning();
  const done = await finishJob(db, job.id, 'succeeded', { exitCode: 0, summary: `back after ${formatSeconds(r.downMs)} (kernel ${r.kernel})` });
  return { job: done, host: host ?? null };
}

function formatSeconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function upgradeSummary(up: Upgrade): string {
  const upgraded = up.changes.filter((c) => c.from !== null && c.to !== null).length;
  const installed = up.changes.filter((c) => c.from === null).length;
  const removed = up.changes.filter((c) => c.to === null).length;
  const parts = [`${upgraded} package${upgraded === 1 ? '' : 's'} upgraded`];
  if (installed) parts.push(`${installed} newly installed`);
  if (removed) parts.push(`${removed} removed`);
  if (up.reboot.required) parts.push('reboot required');
  return parts.join(', ');
}

/** Append one chunk of output to a job's log (sequence numbers in arrival order). */
export async function appendChunk(db: Db, jobId: string, data: string): Promise<void> {
  await db.run(
    sql`insert into job_output (job_id, seq, data) values (${jobId}, (select coalesce(max(seq), 0) + 1 from job_output where job_id = ${jobId}), ${data})`,
  );
}

type OutputMsg = Extract<FromRelay, { type: 'output' }>;

/**
 * Store a chunk of a running job's output. A chunk with a byte range is taken only if it
 * starts where the stored log ends (a re-attached relay may send a range again; a gap is
 * refilled when the request is re-sent with this offset). Past LOG_CAP the text is dropped,
 * once marked. Returns the job (now running) and the text to show live, or null.
 */
export async function storeOutput(db: Db, msg: OutputMsg): Promise<{ job: JobRow; started: boolean } | null> {
  const job = await db.query.jobs.findFirst({ where: eq(jobs.id, msg.id) });
  if (!job || !ACTIVE.includes(job.status)) return null;
  if (msg.range && msg.range.from !== job.logOffset) return null;
  let keep = msg.data;
  let truncated = job.logTruncated;
  if (!truncated && job.logBytes + keep.length > LOG_CAP) {
    keep =
      keep.slice(0, Math.max(0, LOG_CAP - job.logBytes)) +
      `\n[patchman: output truncated here — the log is capped at ${LOG_CAP / 1024 / 1024} MiB; its end is added when the job finishes]\n`;
    truncated = true;
  } else if (truncated) {
    keep = '';
  }
  const [row] = await db
    .update(jobs)
    .set({
      status: job.status === 'dispatched' ? 'running' : job.status,
      logOffset: msg.range ? msg.range.to : job.logOffset,
      logBytes: job.logBytes + keep.length,
      logTruncated: truncated,
    })
    .where(and(eq(jobs.id, job.id), eq(jobs.logOffset, job.logOffset), inArray(jobs.status, ACTIVE)))
    .returning();
  if (!row) return null;
  if (keep) await appendChunk(db, job.id, keep);
  return { job: row, started: job.status === 'dispatched' };
}

/** The whole stored log of a job. */
export async function readLog(db: Db, jobId: string): Promise<string> {
  const rows = await db.select({ data: jobOutput.data }).from(jobOutput).where(eq(jobOutput.jobId, jobId)).orderBy(asc(jobOutput.seq));
  return rows.map((r) => r.data).join('');
}

/** Why a reachable host still cannot be managed, or null. */
function hostProblem(scan: Scan): string | null {
  if (!scan.packageManager) return `unsupported OS: no supported package manager on ${scan.probe.os.prettyName || scan.probe.os.id}`;
  return null;
}

export function scanSummary(scan: Scan): string {
  if (!scan.packageManager) return 'unsupported OS';
  const security = scan.updates.filter((u) => u.security).length;
  const parts = [
    scan.updates.length === 0 ? 'up to date' : `${scan.updates.length} update${scan.updates.length === 1 ? '' : 's'}${security ? ` (${security} security)` : ''}`,
  ];
  if (scan.held.length) parts.push(`${scan.held.length} held back`);
  if (scan.reboot.required) parts.push('reboot required');
  return parts.join(', ');
}

/** Fail dispatched jobs past their deadline and queued jobs that waited too long. */
export async function expireJobs(db: Db, relayId: string | null, now = Date.now()) {
  const pastDeadline = and(inArray(jobs.status, ['dispatched', 'running']), lt(jobs.deadlineAt, now), relayId ? eq(jobs.relayId, relayId) : undefined);
  const overdue = await db
    .update(jobs)
    .set({ status: 'failed', finishedAt: now, errorCode: 'timeout', errorMessage: 'the relay did not answer in time' })
    .where(and(pastDeadline, notInArray(jobs.kind, RESUMABLE)))
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
    .where(and(pastDeadline, inArray(jobs.kind, RESUMABLE)))
    .returning();
  const expired = await db
    .update(jobs)
    .set({ status: 'failed', finishedAt: now, errorCode: 'relay-disconnected', errorMessage: 'expired in the queue: the relay stayed offline' })
    .where(and(eq(jobs.status, 'queued'), lt(jobs.createdAt, now - QUEUE_EXPIRY_MS), relayId ? eq(jobs.relayId, relayId) : undefined))
    .returning();
  return [...overdue, ...unknown, ...expired];
}
