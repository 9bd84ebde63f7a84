// The job model: a job row is created queued, sent to the host's relay by its RelayHub,
// and finished by the relay's response (or by a timeout / disconnect).
import * as v from 'valibot';
import { and, eq, inArray, lt } from 'drizzle-orm';
import { Operations, type OperationName, type FromRelay } from '../protocol/relay.ts';
import { schema, type Db, type HostRow, type JobRow } from './db/index.ts';

const { jobs, hosts, hostUpdates } = schema;

type ResponseMsg = Extract<FromRelay, { type: 'response' }>;

/** How long the relay gets to answer each kind of job once it is dispatched. */
export const JOB_TIMEOUT_MS: Record<JobRow['kind'], number> = { scan: 10 * 60_000 };
/** A queued job whose relay stays offline this long is failed as expired. */
export const QUEUE_EXPIRY_MS = 60 * 60_000;

export const ACTIVE: JobRow['status'][] = ['queued', 'dispatched', 'running'];

/** The relay operation each kind of job runs. */
export const JOB_OPERATION = { scan: 'scan' } as const satisfies Record<JobRow['kind'], OperationName>;

/** The operation and parameters a job sends to the relay. */
export function requestFor(job: JobRow, host: HostRow): { op: OperationName; params: unknown } {
  const target = { address: host.address, port: host.port, user: host.user };
  return { op: JOB_OPERATION[job.kind], params: { target, refresh: true } };
}

/** D1 allows 100 bound parameters per statement: 7 columns → 14 rows per insert. */
const UPDATE_ROWS_PER_INSERT = 14;

export async function finishJob(
  db: Db,
  id: string,
  status: 'succeeded' | 'failed' | 'lost' | 'cancelled',
  fields: { summary?: string; errorCode?: string; errorMessage?: string; exitCode?: number },
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
  const now = Date.now();

  if (!msg.ok) {
    const offline = msg.error.code === 'unreachable' || msg.error.code === 'timeout';
    const [host] = await db
      .update(hosts)
      .set({ status: offline ? 'offline' : 'error', statusReason: msg.error.message, updatedAt: now })
      .where(eq(hosts.id, job.hostId))
      .returning();
    const done = await finishJob(db, job.id, 'failed', { errorCode: msg.error.code, errorMessage: msg.error.message });
    return { job: done, host: host ?? null };
  }

  const parsed = v.safeParse(Operations[JOB_OPERATION[job.kind]].result, msg.result);
  if (!parsed.success) {
    const done = await finishJob(db, job.id, 'failed', {
      errorCode: 'internal',
      errorMessage: `the relay's result did not validate: ${parsed.issues[0].message}`,
    });
    return { job: done, host: null };
  }
  const scan = parsed.output;
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
  const overdue = await db
    .update(jobs)
    .set({ status: 'failed', finishedAt: now, errorCode: 'timeout', errorMessage: 'the relay did not answer in time' })
    .where(
      and(
        inArray(jobs.status, ['dispatched', 'running']),
        lt(jobs.deadlineAt, now),
        relayId ? eq(jobs.relayId, relayId) : undefined,
      ),
    )
    .returning();
  const expired = await db
    .update(jobs)
    .set({ status: 'failed', finishedAt: now, errorCode: 'relay-disconnected', errorMessage: 'expired in the queue: the relay stayed offline' })
    .where(and(eq(jobs.status, 'queued'), lt(jobs.createdAt, now - QUEUE_EXPIRY_MS), relayId ? eq(jobs.relayId, relayId) : undefined))
    .returning();
  return [...overdue, ...expired];
}
