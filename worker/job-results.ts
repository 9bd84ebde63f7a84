// How each kind of job's result changes D1: pure builders of an Outcome (the host row's
// new values, the statements to run, how the job finishes). The caller runs them with the
// job's finish in one transaction (jobs.ts: applyOutcome), for one response or many.
import type * as v from 'valibot';
import { and, eq, getTableColumns, inArray, sql, type SQL } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import type { OperationResult, PackageUpdate, RelayError as RelayErrorSchema, Stack } from '../protocol/relay.ts';
import type { ProxmoxGuest } from '../protocol/proxmox.ts';
import { schema, type Db, type HostRow, type JobRow, type StackRow } from './db/index.ts';
import { newId } from './lib/crypto.ts';
import { scanDayOf, type ScanDay } from './trends.ts';
import { appendChunkStatement } from './job-log.ts';
import { insertRows } from './lib/json-rows.ts';
import { recordSightings } from './sightings.ts';

const { hosts, hostUpdates, stacks } = schema;

export type Scan = OperationResult<'scan'>;
export type Upgrade = OperationResult<'upgrade'>;
export type Reboot = OperationResult<'reboot'>;
export type DockerScan = OperationResult<'docker.scan'>;
export type StackUpdate = OperationResult<'docker.update'>;
export type RelayError = v.InferOutput<typeof RelayErrorSchema>;

export type FinishFields = { summary?: string; errorCode?: string; errorMessage?: string; exitCode?: number; changes?: JobRow['changes']; snapshot?: JobRow['snapshot'] };
/** New values of a host row, as data: relay-apply.ts pools the rows of a batch into one
 * statement (lib/pooled-update.ts). `name` is the name the host gives itself, taken only by
 * the rule in HOST_SET_RULES. */
/** What a result's apply may know of its job's host without reading it: read with the batch's
 * jobs (relay-apply.ts). */
export type JobHost = Pick<HostRow, 'name' | 'guestOf'>;

export type HostSet = Partial<Omit<typeof hosts.$inferInsert, 'id'>>;

/** How a HostSet's values are taken: a host added without a name is called by its address
 * until its first scan finds its host name; after that its name is the operator's. */
export const HOST_SET_RULES = {
  name: (value: SQL) => sql`case when ${hosts.name} = ${hosts.address} and ${hosts.lastScanAt} is null then ${value} else ${hosts.name} end`,
};

/** A host's Compose stacks as a job found them: all of them, or only the one named `only`
 * (absent from `found`: it is gone). relay-apply.ts pools the reports of a batch
 * (replaceStacksStatements). */
export interface StackReport {
  found: Stack[];
  only?: string;
}

/** What applying one response does. */
export interface Outcome {
  /** New values of the job's host row (its updated row is returned for live events). */
  host?: HostSet;
  /** The host's stacks, replacing what is stored (pooled like `updates`). */
  stacks?: StackReport;
  /** Further statements (log lines, guests), in the same transaction, after the pooled host
   * rows and stacks and before the jobs' finishes. */
  writes: BatchItem<'sqlite'>[];
  /** The host's pending updates, replacing its list (kept as data so that the statements for
   * many scans can be pooled: relay-apply.ts builds them). */
  updates?: PackageUpdate[];
  /** A Proxmox VE node's guests, replacing its list (pooled like `updates`). */
  guests?: ProxmoxGuest[];
  /** The scan's figures for its host's day (pooled like `updates`: relay-apply.ts writes the
   * days of a whole batch in two statements). */
  day?: ScanDay;
  status: 'succeeded' | 'failed' | 'lost';
  finish: FinishFields;
  /** The relay's validated result (absent for an error answer), for the after-job hooks. */
  result?: unknown;
}

/** Update rows per insert, as one JSON value (lib/json-rows.ts): 400 rows of ~200 bytes stay
 * far below D1's 2 MB a value. */
export const UPDATE_ROWS_PER_INSERT = 400;
/** Ids per `in (...)` list, under the same limit. */
export const IDS_PER_STATEMENT = 90;

/** A package list's fingerprint, kept on its host row (`hosts.updates_digest`): a scan whose
 * list is the one stored leaves host_updates and the sightings as they are. */
export async function updatesDigest(updates: PackageUpdate[]): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(updates.map((u) => [u.name, u.arch, u.currentVersion, u.newVersion, u.repository, u.security])));
  return [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Replace the pending-update lists of some hosts: one delete per 90 hosts, then the rows
 * of all of them, 400 to an insert, then their sightings. */
export function replaceUpdatesStatements(db: Db, lists: { hostId: string; updates: PackageUpdate[] }[]): BatchItem<'sqlite'>[] {
  const out: BatchItem<'sqlite'>[] = [];
  const ids = lists.map((l) => l.hostId);
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) out.push(db.delete(hostUpdates).where(inArray(hostUpdates.hostId, ids.slice(i, i + IDS_PER_STATEMENT))));
  // in host_updates' column order
  const rows = lists.flatMap((l) => l.updates.map((u) => ({ hostId: l.hostId, ...u })));
  out.push(...insertRows(db, hostUpdates, rows, { perStatement: UPDATE_ROWS_PER_INSERT, onConflict: 'ignore' }));
  out.push(...recordSightings(db, ids, Date.now()));
  return out;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

// ---- failures ----------------------------------------------------------------------------

/** Errors that say the host could not even be reached (so its status changes). */
const CONNECTION_ERRORS = new Set(['unreachable', 'auth-refused', 'host-key-changed']);

/** A relay's error answer. A scan (`reportsReachability`) is how we learn whether a host is
 * reachable; a failed change says nothing new unless it could not even connect. */
export function failureOutcome(job: JobRow, error: RelayError, reportsReachability: boolean): Outcome {
  const { code, message, exitCode } = error;
  let host: HostSet | undefined;
  if (reportsReachability || CONNECTION_ERRORS.has(code)) {
    const offline = code === 'unreachable' || code === 'timeout';
    const keyChanged = code === 'host-key-changed' && error.hostKey ? { hostKey: error.hostKey.pinned, hostKeyOffered: error.hostKey.offered } : {};
    host = { status: offline ? 'offline' : 'error', statusReason: message, updatedAt: Date.now(), ...keyChanged };
  }
  return {
    host,
    writes: [],
    status: code === 'lost' || code === 'relay-disconnected' ? 'lost' : 'failed',
    finish: { errorCode: code, errorMessage: message, ...(exitCode !== undefined ? { exitCode } : {}) },
  };
}

/** A failed docker scan leaves the stacks as they were, saying why they were not checked again. */
export function dockerScanFailureWrites(db: Db, job: JobRow, error: RelayError): BatchItem<'sqlite'>[] {
  return [
    db
      .update(stacks)
      .set({ error: error.message })
      .where(and(eq(stacks.hostId, job.hostId), job.params?.stack ? eq(stacks.name, job.params.stack) : undefined)),
  ];
}

// ---- scan ---------------------------------------------------------------------------------

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

/** What a host may call itself and become named after (the host's word, so checked). */
const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62})$/;

/** The host's new package list replaces the old one in the same transaction: the host never
 * shows half a list. */
export function scanOutcome(db: Db, job: JobRow, scan: Scan): Outcome {
  const now = Date.now();
  const { probe } = scan;
  const security = scan.updates.filter((u) => u.security).length;
  const problem = hostProblem(scan);
  return {
    updates: scan.updates,
    // no Docker (any more): no stacks either
    ...(probe.docker ? {} : { stacks: { found: [] } }),
    day: scanDayOf(job.hostId, scan, problem, now),
    host: {
      // (taken only by a host still called by its address: HOST_SET_RULES)
      ...(HOSTNAME.test(probe.hostname) ? { name: probe.hostname } : {}),
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
    },
    writes: [],
    status: 'succeeded',
    finish: { exitCode: 0, summary: scanSummary(scan) },
  };
}

// ---- upgrade and reboot -----------------------------------------------------------------

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

/** A truncated log gets the run's last characters appended at the end. */
function logTailWrites(db: Db, job: JobRow, logTail: string | undefined): BatchItem<'sqlite'>[] {
  if (!job.logTruncated || !logTail) return [];
  return [appendChunkStatement(db, job.id, `\n[patchman: the last ${logTail.length} characters of the log]\n${logTail}`)];
}

export function upgradeOutcome(db: Db, job: JobRow, up: Upgrade): Outcome {
  return {
    host: { rebootRequired: up.reboot.required, rebootReason: up.reboot.reason, updatedAt: Date.now() },
    writes: logTailWrites(db, job, up.logTail),
    status: 'succeeded',
    finish: { exitCode: up.exitCode, summary: upgradeSummary(up), changes: up.changes },
  };
}

function formatSeconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function rebootOutcome(_db: Db, _job: JobRow, r: Reboot): Outcome {
  const now = Date.now();
  return {
    host: { status: 'online', statusReason: null, bootId: r.bootIdAfter, kernel: r.kernel, bootedAt: now, updatedAt: now },
    writes: [],
    status: 'succeeded',
    finish: { exitCode: 0, summary: `back after ${formatSeconds(r.downMs)} (kernel ${r.kernel})` },
  };
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

/** Stacks per upsert: a stack's row carries its containers as JSON, a few kB at most. */
const STACK_ROWS_PER_INSERT = 100;

/** The statements that make the stored stacks what a batch's reports say, in report order (a
 * later report of a host replaces an earlier one; one of a single stack changes that stack):
 * one delete of the stacks no longer there, then the stacks found, inserted or replaced (a
 * stack's id stays: it is its API id). */
export function replaceStacksStatements(db: Db, reports: { hostId: string; report: StackReport }[], now = Date.now()): BatchItem<'sqlite'>[] {
  /** Per host: whether the plan covers all its stacks, and each stack named (null: gone). */
  const plans = new Map<string, { all: boolean; stacks: Map<string, Stack | null> }>();
  for (const { hostId, report } of reports) {
    if (report.only === undefined) {
      plans.set(hostId, { all: true, stacks: new Map(report.found.map((s) => [s.name, s])) });
      continue;
    }
    const plan = plans.get(hostId) ?? { all: false, stacks: new Map() };
    plan.stacks.set(report.only, report.found.find((s) => s.name === report.only) ?? null);
    plans.set(hostId, plan);
  }
  if (plans.size === 0) return [];
  // The stacks no longer there: of hosts reported whole, those not named; of the others, those
  // named gone. Both by (host, name) pairs against the stacks' index (a test per stack against
  // every report of the batch was 10–25 ms a statement).
  const whole = [...plans].filter(([, p]) => p.all);
  const named = (keep: boolean) => [...plans].flatMap(([hostId, p]) => [...p.stacks].filter(([, s]) => (s !== null) === keep).map(([name]) => [hostId, name]));
  const dropped = named(false).filter(([hostId]) => !plans.get(hostId)!.all);
  const pairs = (list: string[][]) => sql`(select json_extract(value, '$[0]'), json_extract(value, '$[1]') from json_each(${JSON.stringify(list)}))`;
  const out: BatchItem<'sqlite'>[] = [];
  if (whole.length) {
    out.push(
      db.delete(stacks).where(sql`${stacks.hostId} in (select value from json_each(${JSON.stringify(whole.map(([h]) => h))})) and (${stacks.hostId}, ${stacks.name}) not in ${pairs(named(true))}`),
    );
  }
  if (dropped.length) out.push(db.delete(stacks).where(sql`(${stacks.hostId}, ${stacks.name}) in ${pairs(dropped)}`));
  const found = [...plans].flatMap(([hostId, p]) =>
    [...p.stacks.values()].filter((s): s is Stack => s !== null).map((s) => ({ id: newId(), ...stackValues(hostId, s, now) })),
  );
  // everything but the stack's identity (id, host, name) is replaced
  const replace = Object.keys(getTableColumns(stacks)).filter((key) => !['id', 'hostId', 'name'].includes(key));
  out.push(...insertRows(db, stacks, found, { perStatement: STACK_ROWS_PER_INSERT, onConflict: { target: [stacks.hostId, stacks.name], replace } }));
  return out;
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

/** The stacks a docker scan found replace the host's (or the one stack's) in one
 * transaction: they never show half a scan. Warnings go into its log, where the job's
 * reader finds them. */
export function dockerScanOutcome(db: Db, job: JobRow, scan: DockerScan): Outcome {
  const only = job.params?.stack;
  const writes: BatchItem<'sqlite'>[] = [];
  if (scan.warnings.length) writes.push(appendChunkStatement(db, job.id, scan.warnings.map((w) => `[patchman] warning: ${w}\n`).join('')));
  return { stacks: { found: scan.stacks, only }, writes, status: 'succeeded', finish: { exitCode: 0, summary: dockerScanSummary(scan, only) } };
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

export async function stackUpdateOutcome(db: Db, job: JobRow, up: StackUpdate): Promise<Outcome> {
  const name = job.params?.stack ?? up.stack.name;
  const before: StackRow | undefined = await db.query.stacks.findFirst({ where: and(eq(stacks.hostId, job.hostId), eq(stacks.name, name)) });
  const changes = containerChanges(before?.containers ?? [], up.stack.containers);
  const summary =
    (changes.length ? `${plural(changes.length, 'container')} updated` : up.exitCode === 0 ? 'already up to date' : 'no container updated') +
    (up.exitCode !== 0 ? `, docker compose exited with ${up.exitCode}` : '');
  return {
    stacks: { found: [{ ...up.stack, name }], only: name },
    writes: logTailWrites(db, job, up.logTail),
    status: 'succeeded',
    finish: { exitCode: up.exitCode, summary, changes },
  };
}

