// The job model: a job row is created queued, sent to the host's relay by its RelayHub,
// and finished by the relay's response (or by a timeout / disconnect).
import * as v from 'valibot';
import { and, asc, eq, inArray, lt, notInArray, sql } from 'drizzle-orm';
import { Operations, type OperationName, type FromRelay, type Stack } from '../protocol/relay.ts';
import { schema, type Db, type HostRow, type JobRow, type StackRow } from './db/index.ts';
import { newId } from './lib/crypto.ts';
import { relayMayReport } from './relay-trust.ts';

const { jobs, hosts, hostUpdates, jobOutput, stacks } = schema;

type ResponseMsg = Extract<FromRelay, { type: 'response' }>;

/** How long the relay gets to answer each kind of job once it is dispatched. */
export const JOB_TIMEOUT_MS: Record<JobRow['kind'], number> = {
  scan: 10 * 60_000,
  upgrade: 60 * 60_000,
  reboot: 20 * 60_000,
  'docker-scan': 10 * 60_000,
  'stack-update': 30 * 60_000,
};
/** A queued job whose relay stays offline this long is failed as expired. */
export const QUEUE_EXPIRY_MS = 60 * 60_000;

export const ACTIVE: JobRow['status'][] = ['queued', 'dispatched', 'running'];

/** The relay operation each kind of job runs. */
export const JOB_OPERATION = {
  scan: 'scan',
  upgrade: 'upgrade',
  reboot: 'reboot',
  'docker-scan': 'docker.scan',
  'stack-update': 'docker.update',
} as const satisfies Record<JobRow['kind'], OperationName>;

/** Jobs that change a host: one at a time per host (the jobs_one_change_per_host index),
 * refused for monitor-only hosts, followed by a rescan (a stack update: a check of its
 * stack, when its own result did not bring the stack back). */
export const CHANGES: JobRow['kind'][] = ['upgrade', 'reboot', 'stack-update'];

/** Kinds that are safe to send again after a lost answer, because they change nothing. */
export const REPEATABLE: JobRow['kind'][] = ['scan', 'docker-scan'];

/** Kinds whose run outlives the relay's connection: when the relay drops, the job waits for
 * it to come back and re-attach (until its deadline, then it is lost). An upgrade or stack
 * update re-sent re-attaches to its run on the host (a run id starts at most once); a
 * reboot re-sent only waits for the host (`resume`), it never reboots twice. */
export const RESUMABLE: JobRow['kind'][] = ['upgrade', 'reboot', 'stack-update'];

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
    case 'docker-scan':
      return { op: 'docker.scan', params: { target, ...(job.params?.stack ? { stack: job.params.stack } : {}) } };
    case 'stack-update':
      return {
        op: 'docker.update',
        params: {
          target,
          runId: job.id,
          stack: job.params?.stack,
          ...(job.params?.services ? { services: job.params.services } : {}),
          offset: job.logOffset,
        },
      };
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
export async function applyResponse(db: Db, msg: ResponseMsg, relayId: string): Promise<{ job: JobRow | null; host: HostRow | null }> {
  const job = await db.query.jobs.findFirst({ where: eq(jobs.id, msg.id) });
  if (!relayMayReport(job, relayId, 'response', msg.id)) return { job: null, host: null };

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
    // A failed check leaves the stacks as they were, saying why they were not checked again.
    if (job.kind === 'docker-scan') {
      await db
        .update(stacks)
        .set({ error: message })
        .where(and(eq(stacks.hostId, job.hostId), job.params?.stack ? eq(stacks.name, job.params.stack) : undefined));
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
  if (job.kind === 'docker-scan') return applyDockerScan(db, job, parsed.output as DockerScan);
  if (job.kind === 'stack-update') return applyStackUpdate(db, job, parsed.output as StackUpdate);
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
    // no Docker (any more): no stacks either
    ...(probe.docker ? [] : [db.delete(stacks).where(eq(stacks.hostId, job.hostId))]),
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
type DockerScan = v.InferOutput<(typeof Operations)['docker.scan']['result']>;
type StackUpdate = v.InferOutput<(typeof Operations)['docker.update']['result']>;

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

// ---- Docker Compose stacks ---------------------------------------------------------------

/** The row values a stack report becomes (counts from its containers' image checks). */
function stackValues(hostId: string, stack: Stack, now: number) {
  return {
    hostId,
    name: stack.name,
    status: stack.status,
    workingDir: stack.workingDir,
    configFiles: stack.configFiles,
    containers: stack.containers,
    updatesCount: stack.containers.filter((c) => c.check.status === 'update-available').length,
    uncheckableCount: stack.containers.filter((c) => c.check.status === 'not-checkable' || c.check.status === 'error').length,
    checkedAt: now,
    error: null,
  };
}

/** Insert or replace one stack of a host (its id stays: it is the stack's API id). */
function upsertStack(db: Db, hostId: string, stack: Stack, now: number) {
  const values = stackValues(hostId, stack, now);
  const { hostId: _h, name: _n, ...update } = values;
  return db
    .insert(stacks)
    .values({ id: newId(), ...values })
    .onConflictDoUpdate({ target: [stacks.hostId, stacks.name], set: update });
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Warnings of a docker scan go into its log, where the job's reader finds them. */
async function logWarnings(db: Db, job: JobRow, warnings: string[]) {
  if (warnings.length) await appendChunk(db, job.id, warnings.map((w) => `[patchman] warning: ${w}\n`).join(''));
}

async function applyDockerScan(db: Db, job: JobRow, scan: DockerScan): Promise<{ job: JobRow | null; host: HostRow | null }> {
  const now = Date.now();
  const only = job.params?.stack;
  const found = only ? scan.stacks.filter((s) => s.name === only) : scan.stacks;
  const names = new Set(found.map((s) => s.name));
  const existing = await db
    .select({ id: stacks.id, name: stacks.name })
    .from(stacks)
    .where(and(eq(stacks.hostId, job.hostId), only ? eq(stacks.name, only) : undefined));
  const gone = existing.filter((s) => !names.has(s.name)).map((s) => s.id);
  const statements: unknown[] = found.map((s) => upsertStack(db, job.hostId, s, now));
  for (let i = 0; i < gone.length; i += 90) statements.push(db.delete(stacks).where(inArray(stacks.id, gone.slice(i, i + 90))));
  // one transaction: the stacks never show half a scan
  if (statements.length) await db.batch(statements as [any, ...any[]]);
  await logWarnings(db, job, scan.warnings);
  const done = await finishJob(db, job.id, 'succeeded', { exitCode: 0, summary: dockerScanSummary(scan, only) });
  return { job: done, host: null };
}

export function dockerScanSummary(scan: DockerScan, only?: string): string {
  const warned = scan.warnings.length ? `, ${plural(scan.warnings.length, 'warning')}` : '';
  if (only) {
    const stack = scan.stacks.find((s) => s.name === only);
    if (!stack) return `${only}: no longer there${warned}`;
    const n = stack.containers.filter((c) => c.check.status === 'update-available').length;
    return `${only}: ${n ? `${plural(n, 'container')} with a newer image` : 'up to date'}${warned}`;
  }
  if (scan.stacks.length === 0) return `no Compose stacks${warned}`;
  const withUpdates = scan.stacks.filter((s) => s.containers.some((c) => c.check.status === 'update-available')).length;
  return `${plural(scan.stacks.length, 'stack')}, ${withUpdates ? `${withUpdates} with newer images` : 'all up to date'}${warned}`;
}

type Container = Stack['containers'][number];

/** The image a container runs, as far as the stack reports tell: the image id, else the
 * repo digest. */
const imageOf = (c: Container) => c.imageId ?? c.check.localDigest ?? null;

/** Containers whose image changed between two reports of a stack (matched by container
 * name, else by service): `from`/`to` are the image's repo digest (else its id). */
export function containerChanges(before: Container[], after: Container[]): { name: string; from: string | null; to: string | null }[] {
  const byName = new Map(before.map((c) => [c.name, c]));
  const byService = new Map(before.map((c) => [c.service, c]));
  const out: { name: string; from: string | null; to: string | null }[] = [];
  for (const c of after) {
    const prev = byName.get(c.name) ?? byService.get(c.service);
    if (!prev) continue;
    const a = imageOf(prev);
    const b = imageOf(c);
    if (a && b && a !== b) out.push({ name: c.name, from: prev.check.localDigest ?? a, to: c.check.localDigest ?? b });
  }
  return out;
}

async function applyStackUpdate(db: Db, job: JobRow, up: StackUpdate): Promise<{ job: JobRow | null; host: HostRow | null }> {
  if (job.logTruncated && up.logTail) {
    await appendChunk(db, job.id, `\n[patchman: the last ${up.logTail.length} characters of the log]\n${up.logTail}`);
  }
  const name = job.params?.stack ?? up.stack.name;
  const before: StackRow | undefined = await db.query.stacks.findFirst({ where: and(eq(stacks.hostId, job.hostId), eq(stacks.name, name)) });
  const changes = containerChanges(before?.containers ?? [], up.stack.containers);
  await upsertStack(db, job.hostId, { ...up.stack, name }, Date.now());
  const summary =
    (changes.length ? `${plural(changes.length, 'container')} updated` : up.exitCode === 0 ? 'already up to date' : 'no container updated') +
    (up.exitCode !== 0 ? `, docker compose exited with ${up.exitCode}` : '');
  const done = await finishJob(db, job.id, 'succeeded', { exitCode: up.exitCode, summary, changes });
  return { job: done, host: null };
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
export async function storeOutput(db: Db, msg: OutputMsg, relayId: string): Promise<{ job: JobRow; started: boolean } | null> {
  const job = await db.query.jobs.findFirst({ where: eq(jobs.id, msg.id) });
  if (!relayMayReport(job, relayId, 'output', msg.id)) return null;
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
  // One transaction: the offset moves only with its chunk stored. (Two statements lost the
  // chunk for good when the Worker died between them: the relay is asked to resume after it.)
  const update = db
    .update(jobs)
    .set({
      status: job.status === 'dispatched' ? 'running' : job.status,
      logOffset: msg.range ? msg.range.to : job.logOffset,
      logBytes: job.logBytes + keep.length,
      logTruncated: truncated,
    })
    .where(and(eq(jobs.id, job.id), eq(jobs.logOffset, job.logOffset), inArray(jobs.status, ACTIVE)))
    .returning();
  let row: JobRow | undefined;
  if (!keep) [row] = await update;
  else {
    // (changes() is what the update just before changed: none, and seq is null, the
    // insert fails and the batch rolls back — no chunk without its offset, nor the reverse)
    const seq = sql<number>`(select coalesce(max(seq), 0) + 1 from job_output where job_id = ${job.id}) + (case when changes() > 0 then 0 end)`;
    try {
      [[row]] = await db.batch([update, db.insert(jobOutput).values({ jobId: job.id, seq, data: keep })]);
    } catch (err) {
      console.warn(`job ${job.id}: output not stored (${err instanceof Error ? err.message : String(err)}); the relay re-sends it from offset ${job.logOffset}`);
      return null;
    }
  }
  if (!row) return null;
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
