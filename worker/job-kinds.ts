// The kinds of job: one entry each, everything the Worker needs to know about a kind in one
// place — the relay operation it runs and its parameters, its time limit, whether it changes
// the host, what happens to it when its relay reconnects, how its result is applied, and
// what follows it. A new kind (e.g. a rollout step) is a new entry here.
import { PACKAGE_FAILURE_CODES } from '../protocol/package-managers.ts';
import { ACTIVE_STATUSES, type JobKind } from '../protocol/api.ts';
import type { OperationName, OperationResult } from '../protocol/relay.ts';
import type { BatchItem } from 'drizzle-orm/batch';
import { schema, type Db, type HostRow, type JobRow } from './db/index.ts';
import {
  dockerScanFailureWrites,
  dockerScanOutcome,
  rebootOutcome,
  stackUpdateOutcome,
  type JobHost,
  type Outcome,
  type RelayError,
} from './job-results.ts';
import { rollbackOutcome, scanWithGuestsOutcome, upgradeWithSnapshotOutcome } from './guest-results.ts';

/**
 * What a job still in flight becomes when its relay reconnects (or drops):
 * - `repeatable`: it changes nothing, so it is simply sent again;
 * - `resumable`: its run outlives the relay's connection; it waits for the relay to come
 *   back (until its deadline, then it is lost) and is re-sent with `resume` set: the relay
 *   re-attaches to the run on the host (a run id starts at most once) and never starts it
 *   anew;
 * - `lost`: what happened can no longer be known.
 */
export type Reconnect = 'repeatable' | 'resumable' | 'lost';

/** A job started because another one ended. */
export type FollowUp = { kind: 'scan'; requestedBy: string | null } | { kind: 'docker-scan'; stack?: string; requestedBy: string | null };

interface KindSpec<Op extends OperationName> {
  operation: Op;
  /** How long the relay gets to answer once the job is dispatched. */
  timeoutMs: number;
  /** One at a time per host (the jobs_one_change_per_host index), refused for monitor-only
   * hosts, and the host is looked at again afterwards. */
  changesHost: boolean;
  reconnect: Reconnect;
  /** Every failure of this kind says something about the host's reachability (a scan is how
   * we learn it); other kinds change the host's status only on connection errors. */
  reportsReachability: boolean;
  /** The operation's parameters (without the SSH target). */
  params(job: JobRow): Record<string, unknown>;
  /** How a successful (validated) result is applied; `host` is the job's host as the batch
   * read it with its jobs (null: deleted meanwhile). */
  apply(db: Db, job: JobRow, result: OperationResult<Op>, host: JobHost | null): Outcome | Promise<Outcome>;
  /** Extra writes when the relay answered with an error. */
  failureWrites?(db: Db, job: JobRow, error: RelayError): BatchItem<'sqlite'>[];
  /** What is started once the job has finished (the host row as the job left it). */
  after(job: JobRow, host: HostRow | null): FollowUp | null;
}

/** Failures after which a change did not touch the host, so no rescan follows. */
const NOTHING_CHANGED = new Set([
  'monitor-only',
  'invalid-request',
  'unknown-operation',
  'unsupported-os',
  'sudo-password',
  'not-started',
  'unreachable',
  'auth-refused',
  'host-key-changed',
  'locked',
  'dpkg-interrupted',
  // a package manager's own failures in neutral words (lock-held, …: protocol/package-managers.ts)
  ...PACKAGE_FAILURE_CODES,
]);

/** Did a finished change possibly touch its host? */
const mayHaveChanged = (job: JobRow) => !NOTHING_CHANGED.has(job.errorCode ?? '');

/** After a change, look again: the package list, the reboot flag, the kernel. */
const rescan = (job: JobRow): FollowUp | null => (mayHaveChanged(job) ? { kind: 'scan', requestedBy: job.requestedBy ?? `after ${job.kind}` } : null);

const MINUTE = 60_000;

export const JOB_KINDS: { [K in JobKind]: KindSpec<OperationName> } = {
  scan: spec({
    operation: 'scan',
    timeoutMs: 10 * MINUTE,
    changesHost: false,
    reconnect: 'repeatable',
    reportsReachability: true,
    params: () => ({ refresh: true }),
    apply: scanWithGuestsOutcome,
    // A host with Docker: look at its Compose stacks too.
    after: (job, host) => (job.status === 'succeeded' && host?.docker ? { kind: 'docker-scan', requestedBy: job.requestedBy } : null),
  }),
  upgrade: spec({
    operation: 'upgrade',
    timeoutMs: 60 * MINUTE,
    changesHost: true,
    reconnect: 'resumable',
    reportsReachability: false,
    params: (job) => ({
      runId: job.id,
      offset: job.logOffset,
      ...(job.params?.packages ? { packages: job.params.packages } : {}),
      ...(job.params?.aptMode ? { aptMode: job.params.aptMode } : {}),
      ...(job.params?.snapshot ? { snapshot: job.params.snapshot } : {}),
    }),
    apply: upgradeWithSnapshotOutcome,
    after: rescan,
  }),
  reboot: spec({
    operation: 'reboot',
    timeoutMs: 20 * MINUTE,
    changesHost: true,
    reconnect: 'resumable',
    reportsReachability: false,
    params: (job) => ({ runId: job.id, resume: job.resume, bootId: job.params?.bootId ?? null }),
    apply: rebootOutcome,
    after: rescan,
  }),
  'docker-scan': spec({
    operation: 'docker.scan',
    timeoutMs: 10 * MINUTE,
    changesHost: false,
    reconnect: 'repeatable',
    reportsReachability: false,
    params: (job) => (job.params?.stack ? { stack: job.params.stack } : {}),
    apply: dockerScanOutcome,
    failureWrites: dockerScanFailureWrites,
    after: () => null,
  }),
  'stack-update': spec({
    operation: 'docker.update',
    timeoutMs: 30 * MINUTE,
    changesHost: true,
    reconnect: 'resumable',
    reportsReachability: false,
    params: (job) => ({
      runId: job.id,
      stack: job.params?.stack,
      ...(job.params?.services ? { services: job.params.services } : {}),
      offset: job.logOffset,
    }),
    apply: stackUpdateOutcome,
    // A stack update that ended well brought the stack back, checked again; otherwise look.
    after: (job) =>
      job.status !== 'succeeded' && mayHaveChanged(job)
        ? { kind: 'docker-scan', stack: job.params?.stack, requestedBy: job.requestedBy ?? 'after stack-update' }
        : null,
  }),
  rollback: spec({
    operation: 'guest.rollback',
    timeoutMs: 20 * MINUTE,
    changesHost: true,
    // re-sent with the same run id after a reconnect: the relay rolls back once per run
    reconnect: 'resumable',
    reportsReachability: false,
    params: (job) => ({ runId: job.id, snapshot: job.params?.rollback?.snapshot }),
    apply: rollbackOutcome,
    after: rescan,
  }),
};

/** (ties each entry's `apply` to its own operation's result type) */
function spec<Op extends OperationName>(s: KindSpec<Op>): KindSpec<OperationName> {
  return s as unknown as KindSpec<OperationName>;
}

const kinds = Object.keys(JOB_KINDS) as JobKind[];
const where = (test: (s: KindSpec<OperationName>) => boolean) => kinds.filter((k) => test(JOB_KINDS[k]));

/** Kinds that change a host (derived from the table). */
export const CHANGE_KINDS = where((s) => s.changesHost);
export const REPEATABLE_KINDS = where((s) => s.reconnect === 'repeatable');
export const RESUMABLE_KINDS = where((s) => s.reconnect === 'resumable');

/** The host columns a request needs: dispatch reads these, not whole host rows (each of the
 * 1,000 a "Scan all" hands out was ~40 columns through D1). */
const { hosts } = schema;
export const REQUEST_TARGET_COLUMNS = { id: hosts.id, address: hosts.address, port: hosts.port, user: hosts.user, guestOf: hosts.guestOf, guestKind: hosts.guestKind, guestVmid: hosts.guestVmid };
export type RequestTarget = Pick<HostRow, keyof typeof REQUEST_TARGET_COLUMNS>;

/** The request a job sends to its relay. */
export function requestFor(job: JobRow, host: RequestTarget): { op: OperationName; params: unknown; timeoutMs: number } {
  const kind = JOB_KINDS[job.kind];
  // an adopted Proxmox guest: the node's SSH target (kept on the row), naming the guest
  const guest = host.guestOf && host.guestKind && host.guestVmid != null ? { guest: { kind: host.guestKind, vmid: host.guestVmid } } : {};
  const target = { address: host.address, port: host.port, user: host.user, ...guest };
  return { op: kind.operation, params: { target, ...kind.params(job) }, timeoutMs: kind.timeoutMs };
}

/** (re-exported so Worker code imports job facts from one module) */
export { ACTIVE_STATUSES };
