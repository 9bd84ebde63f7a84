// Starting a change (upgrade, reboot or stack update) on a host: every rule the Worker
// enforces before a job reaches a relay. Monitor-only hosts refuse; one change per host at a
// time (a unique index, so two racing requests cannot both win); a repeated Idempotency-Key
// returns the first job; selective upgrades only where the package manager allows them; a
// stack update only for services the stack has.
import { and, eq, inArray } from 'drizzle-orm';
import { schema, type Db, type HostRow, type JobRow, type StackRow } from './db/index.ts';
import type { Env } from './env.ts';
import { ApiError } from './lib/http.ts';
import { newId } from './lib/crypto.ts';
import { jobJson } from './lib/serialize.ts';
import { publish } from './live-feed.ts';
import { relayHub } from './relay-hub.ts';
import { ACTIVE_STATUSES } from '../protocol/api.ts';
import { CHANGE_KINDS } from './job-kinds.ts';
import { fullUpgradeOnly } from '../protocol/upgrade-rules.ts';
import { snapshotFor } from './guest-changes.ts';

const { jobs, hostUpdates } = schema;


export interface ChangeRequest {
  kind: 'upgrade' | 'reboot' | 'stack-update' | 'rollback';
  packages?: string[];
  /** For a stack update: the stack (as the last docker scan found it) and the services to
   * update (undefined = the whole stack). */
  stack?: StackRow;
  services?: string[];
  idempotencyKey: string | null;
  requestedBy: string | null;
  /** apt whole-system upgrades: `upgrade` instead of `dist-upgrade` (a policy's aptMode). */
  aptMode?: 'upgrade';
  /** The policy rollout this change is a host step of. */
  rolloutId?: string;
  /** A Proxmox guest's upgrade: go on without the snapshot it otherwise takes first. */
  withoutSnapshot?: boolean;
  /** A rollback: the snapshot to restore and the upgrade job that took it (guest-changes.ts). */
  rollback?: { snapshot: string; jobId: string };
}

const VERB: Record<ChangeRequest['kind'], string> = { upgrade: 'upgraded', reboot: 'rebooted', 'stack-update': 'changed', rollback: 'rolled back' };

/** Why this host cannot take this change, as an ApiError (409/400), or null. */
export async function refusal(db: Db, host: HostRow, req: ChangeRequest): Promise<ApiError | null> {
  const verb = VERB[req.kind];
  if (host.monitorOnly) {
    return new ApiError(409, 'monitor-only', `${host.name} is monitor-only: PatchMan scans it but never changes it. Turn monitor-only off in Edit host to allow it to be ${verb}.`);
  }
  if (!host.relayId) return new ApiError(409, 'no-relay', `${host.name} has no relay assigned`);
  if (host.hostKeyOffered) {
    return new ApiError(409, 'host-key-changed', `${host.name} offered a different SSH host key (${host.hostKeyOffered}); an admin must accept it on the host page before it can be ${verb}.`);
  }
  if (req.kind === 'reboot' && host.guestOf) {
    return new ApiError(409, 'guest', `${host.name} is a Proxmox guest reached through its node: PatchMan does not reboot guests. Restart it in Proxmox.`);
  }
  if (req.kind === 'upgrade' && req.packages) {
    const whole = fullUpgradeOnly(host);
    if (whole) return new ApiError(409, 'full-upgrade-only', whole, 'packages');
    // Only pending updates: --only-upgrade would skip the rest silently.
    const pending = new Set<string>();
    const names = [...new Set(req.packages.map((p) => p.replace(/:.*$/, '')))];
    for (let i = 0; i < names.length; i += 90) {
      const rows = await db
        .select({ name: hostUpdates.name })
        .from(hostUpdates)
        .where(and(eq(hostUpdates.hostId, host.id), inArray(hostUpdates.name, names.slice(i, i + 90))));
      for (const r of rows) pending.add(r.name);
    }
    const missing = names.filter((n) => !pending.has(n));
    if (missing.length) {
      return new ApiError(400, 'invalid', `packages: not a pending update on ${host.name}: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ' …' : ''} (scan the host first)`, 'packages');
    }
  }
  if (req.kind === 'stack-update') {
    if (!req.stack || req.stack.hostId !== host.id) return new ApiError(404, 'not-found', 'stack not found');
    if (req.services) {
      const known = new Set(req.stack.containers.map((c) => c.service));
      const missing = [...new Set(req.services)].filter((s) => !known.has(s));
      if (missing.length) {
        return new ApiError(
          400,
          'invalid',
          `services: not a service of ${req.stack.name} on ${host.name}: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ' …' : ''} (check the stack first)`,
          'services',
        );
      }
    }
  }
  return null;
}

/** What a change job records as asked (`params`). */
function paramsOf(host: HostRow, req: ChangeRequest): NonNullable<JobRow['params']> {
  switch (req.kind) {
    case 'upgrade':
      return req.packages ? { packages: req.packages } : req.aptMode ? { aptMode: req.aptMode } : {};
    case 'reboot':
      return { bootId: host.bootId };
    case 'stack-update':
      return { stack: req.stack!.name, ...(req.services ? { services: [...new Set(req.services)] } : {}) };
    case 'rollback':
      return { rollback: req.rollback! };
  }
}

const KIND_NAME: Record<JobRow['kind'], string> = { scan: 'a scan', upgrade: 'an upgrade', reboot: 'a reboot', 'docker-scan': 'a stack check', 'stack-update': 'a stack update', rollback: 'a rollback' };

function isUnique(err: unknown, what: string): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if (String((e as Error).message ?? e).includes(`UNIQUE constraint failed: ${what}`)) return true;
  }
  return false;
}

async function busyError(db: Db, host: HostRow): Promise<ApiError> {
  const running = await db.query.jobs.findFirst({
    where: and(eq(jobs.hostId, host.id), inArray(jobs.kind, CHANGE_KINDS), inArray(jobs.status, [...ACTIVE_STATUSES])),
  });
  const what = running
    ? `${KIND_NAME[running.kind]}${running.params?.stack ? ` of ${running.params.stack}` : ''} (job ${running.id}) is ${running.status}`
    : 'another change is under way';
  return new ApiError(409, 'busy', `${host.name} is busy: ${what}. One change at a time per host.`);
}

/** The job a repeated Idempotency-Key refers to (or a 409 when the key was used for
 * something else). */
async function replay(db: Db, key: string, host: HostRow, req: ChangeRequest): Promise<JobRow | null> {
  const prior = await db.query.jobs.findFirst({ where: eq(jobs.idempotencyKey, key) });
  if (!prior) return null;
  if (prior.hostId !== host.id || prior.kind !== req.kind || (req.kind === 'stack-update' && prior.params?.stack !== req.stack?.name)) {
    throw new ApiError(409, 'idempotency-key-reused', 'this Idempotency-Key was already used for a different request', 'Idempotency-Key');
  }
  return prior;
}

/**
 * Create the job (queued) and hand it to the host's relay. Returns the job and whether it is
 * new (false: the same Idempotency-Key was seen before). Throws ApiError for refusals.
 */
export async function startChange(env: Env, db: Db, host: HostRow, req: ChangeRequest, opts: { dispatch?: boolean } = {}): Promise<{ job: JobRow; created: boolean }> {
  if (req.idempotencyKey) {
    const prior = await replay(db, req.idempotencyKey, host, req);
    if (prior) return { job: prior, created: false };
  }
  const refused = await refusal(db, host, req);
  if (refused) throw refused;
  const id = newId();
  const params = paramsOf(host, req);
  if (req.kind === 'upgrade') {
    const snapshot = await snapshotFor(db, host, id, req.withoutSnapshot ?? false);
    if (snapshot !== undefined) params.snapshot = snapshot;
  }
  let job: JobRow;
  try {
    [job] = await db
      .insert(jobs)
      .values({
        id,
        kind: req.kind,
        hostId: host.id,
        relayId: host.relayId,
        status: 'queued',
        requestedBy: req.requestedBy,
        params,
        idempotencyKey: req.idempotencyKey,
        rolloutId: req.rolloutId ?? null,
        createdAt: Date.now(),
      })
      .returning();
  } catch (err) {
    if (req.idempotencyKey && isUnique(err, 'jobs.idempotency_key')) {
      const prior = await replay(db, req.idempotencyKey, host, req);
      if (prior) return { job: prior, created: false };
    }
    if (isUnique(err, 'jobs.host_id')) throw await busyError(db, host);
    throw err;
  }
  await publish(env, { type: 'job', job: jobJson(job) });
  if (opts.dispatch !== false) await relayHub(env, host.relayId!).dispatch();
  return { job, created: true };
}
