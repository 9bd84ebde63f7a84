// What a scan of a Proxmox VE node says about its guests, and what a guest's scan says about
// its snapshots, applied to D1 — each only where it was asked for: a guest list only from a
// scan of a PVE node reached directly, a snapshot list only from a scan of an adopted guest,
// an upgrade's snapshot only when that upgrade asked for one. Anything else is dropped and
// said so in the job's log (and the Worker's).
import { inArray } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import type { OperationResult } from '../protocol/relay.ts';
import type { ProxmoxGuest } from '../protocol/proxmox.ts';
import { schema, type Db, type HostRow, type JobRow } from './db/index.ts';
import { appendChunkStatement } from './job-log.ts';
import { insertRows, jsonValues } from './lib/json-rows.ts';
import { scanOutcome, upgradeOutcome, type JobHost, type Outcome, type Scan, type Upgrade } from './job-results.ts';

const { proxmoxGuests } = schema;

/** Guest rows per insert, as one JSON value (lib/json-rows.ts): a row is ~250 bytes. */
const GUEST_ROWS_PER_INSERT = 400;

/** Why a scan's guest list is refused for this host, or null. */
export function guestListRefusal(host: Pick<HostRow, 'guestOf' | 'name'>, scan: Pick<Scan, 'probe'>): string | null {
  if (host.guestOf) return `${host.name} is a guest, not a Proxmox VE node`;
  if (scan.probe.proxmox?.product !== 'pve') return `${host.name} is not a Proxmox VE node`;
  return null;
}

/** Why a scan's snapshot list is refused for this host, or null. */
export function snapshotListRefusal(host: Pick<HostRow, 'guestOf' | 'name'>): string | null {
  return host.guestOf ? null : `${host.name} is not a Proxmox guest`;
}

/** The statements that replace the guest lists of some nodes (one row per VMID of a node: the
 * first wins): one delete, then the rows of all of them, GUEST_ROWS_PER_INSERT to an insert.
 * relay-apply.ts pools a batch's lists (a statement or two per node was 270 of the 460
 * statements of a "Scan all" of the simulated fleet). */
export function replaceGuestsStatements(db: Db, lists: { nodeHostId: string; guests: ProxmoxGuest[] }[], now = Date.now()): BatchItem<'sqlite'>[] {
  if (lists.length === 0) return [];
  const rows = lists.flatMap(({ nodeHostId, guests }) => {
    const seen = new Set<number>();
    return guests.filter((g) => !seen.has(g.vmid) && seen.add(g.vmid)).map((g) => ({ nodeHostId, ...g, seenAt: now }));
  });
  return [
    db.delete(proxmoxGuests).where(inArray(proxmoxGuests.nodeHostId, jsonValues(lists.map((l) => l.nodeHostId)))),
    ...insertRows(db, proxmoxGuests, rows, { perStatement: GUEST_ROWS_PER_INSERT }),
  ];
}

function dropped(db: Db, job: JobRow, what: string, why: string): BatchItem<'sqlite'> {
  console.warn(`job ${job.id}: dropped the relay's ${what} (${why})`);
  return appendChunkStatement(db, job.id, `[patchman] ignored the relay's ${what}: ${why}\n`);
}

/** A scan's outcome with its guests or snapshots applied where they belong (judged by the
 * host as its batch read it: a read per scan here made a batch's PVE nodes and guests wait on
 * a D1 round trip each). */
export function scanWithGuestsOutcome(db: Db, job: JobRow, scan: Scan, host: JobHost | null): Outcome {
  const outcome = scanOutcome(db, job, scan);
  if (!scan.guests && !scan.snapshots) return outcome;
  if (!host) return outcome;
  if (scan.guests) {
    const refused = guestListRefusal(host, scan);
    if (refused) outcome.writes.push(dropped(db, job, 'guest list', refused));
    else outcome.guests = scan.guests;
  }
  if (scan.snapshots) {
    const refused = snapshotListRefusal(host);
    if (refused) outcome.writes.push(dropped(db, job, 'snapshot list', refused));
    else outcome.host = { ...outcome.host, guestSnapshots: scan.snapshots };
  }
  return outcome;
}

/** An upgrade's outcome: the snapshot it took is recorded only when it asked for that one. */
export function upgradeWithSnapshotOutcome(db: Db, job: JobRow, up: Upgrade): Outcome {
  const outcome = upgradeOutcome(db, job, up);
  if (!up.snapshot) return outcome;
  const asked = job.params?.snapshot;
  if (!asked || asked.name !== up.snapshot.name) {
    outcome.writes.push(dropped(db, job, 'snapshot report', asked ? `it names ${up.snapshot.name}, not ${asked.name}` : 'this upgrade asked for no snapshot'));
    return outcome;
  }
  outcome.finish.snapshot = up.snapshot;
  const taken = up.snapshot.taken ? `snapshot ${up.snapshot.name} taken first` : `snapshot ${up.snapshot.name} not taken`;
  outcome.finish.summary = `${taken}; ${outcome.finish.summary}`;
  return outcome;
}

export type Rollback = OperationResult<'guest.rollback'>;

export function rollbackOutcome(_db: Db, job: JobRow, r: Rollback): Outcome {
  const asked = job.params?.rollback?.snapshot;
  if (asked && r.snapshot !== asked) {
    return { writes: [], status: 'failed', finish: { errorCode: 'internal', errorMessage: `the relay rolled back to ${r.snapshot}, not the asked ${asked}` } };
  }
  return {
    host: { updatedAt: Date.now() },
    writes: [],
    status: 'succeeded',
    finish: { exitCode: 0, summary: `rolled back to ${r.snapshot}; the guest is ${r.status}` },
  };
}
