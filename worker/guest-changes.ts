// The rules for changing a Proxmox guest: an upgrade takes a snapshot first (named after its
// job, keeping the newest N PatchMan snapshots), unless its storage cannot snapshot — then it
// is refused until the operator explicitly goes on without one; a rollback restores the
// snapshot an upgrade of the same guest took.
import { and, desc, eq, inArray } from 'drizzle-orm';
import { snapshotNameForJob } from '../protocol/proxmox.ts';
import { schema, type Db, type HostRow, type JobRow } from './db/index.ts';
import { ApiError } from './lib/http.ts';
import { readSettings } from './settings.ts';

const { jobs, proxmoxGuests } = schema;

export type SnapshotParam = NonNullable<JobRow['params']>['snapshot'];

/** The guest row a node's last scan listed for this adopted host, if any. */
export async function guestRowOf(db: Db, host: HostRow) {
  if (!host.guestOf || host.guestVmid == null) return undefined;
  return db.query.proxmoxGuests.findFirst({ where: and(eq(proxmoxGuests.nodeHostId, host.guestOf), eq(proxmoxGuests.vmid, host.guestVmid)) });
}

/** The snapshot an upgrade of this host asks for: undefined for hosts that are not guests,
 * false when the operator went on without one. Throws 409 when the guest's storage cannot
 * snapshot and the operator has not said to go on without. */
export async function snapshotFor(db: Db, host: HostRow, jobId: string, withoutSnapshot: boolean): Promise<SnapshotParam | undefined> {
  if (!host.guestOf) return undefined;
  if (withoutSnapshot) return false;
  const guest = await guestRowOf(db, host);
  if (guest && !guest.snapshots) {
    throw new ApiError(
      409,
      'no-snapshot',
      `snapshot: ${host.name} cannot be snapshotted first (${guest.snapshotReason ?? 'its storage cannot take snapshots'}); send snapshot: false to upgrade it without one`,
      'snapshot',
    );
  }
  const { snapshotKeep } = await readSettings(db);
  return { name: snapshotNameForJob(jobId), description: `PatchMan job ${jobId} upgrade`, keep: snapshotKeep };
}

/** Guests among these hosts whose storage cannot snapshot, by host id, with why: a policy
 * skips them (it never goes on without a snapshot). */
export async function unsnapshottableGuests(db: Db, rows: HostRow[]): Promise<Map<string, string>> {
  const guests = rows.filter((h) => h.guestOf && h.guestVmid != null);
  const out = new Map<string, string>();
  const nodes = [...new Set(guests.map((h) => h.guestOf!))];
  const cannot = new Map<string, string>();
  for (let i = 0; i < nodes.length; i += 90) {
    const found = await db
      .select()
      .from(proxmoxGuests)
      .where(and(inArray(proxmoxGuests.nodeHostId, nodes.slice(i, i + 90)), eq(proxmoxGuests.snapshots, false)));
    for (const g of found) cannot.set(`${g.nodeHostId}/${g.vmid}`, g.snapshotReason ?? 'its storage cannot take snapshots');
  }
  for (const h of guests) {
    const why = cannot.get(`${h.guestOf}/${h.guestVmid}`);
    if (why) out.set(h.id, `a Proxmox guest that cannot be snapshotted first (${why}); a policy never upgrades a guest without its snapshot`);
  }
  return out;
}

/** The snapshot an upgrade job left that a rollback can restore, or why there is none. */
export function rollbackSource(job: JobRow, host: HostRow): { snapshot: string } | { refused: string } {
  if (job.kind !== 'upgrade') return { refused: `job ${job.id} is ${job.kind === 'rollback' ? 'a rollback' : `a ${job.kind}`}, not an upgrade` };
  if (!host.guestOf) return { refused: `${host.name} is not a Proxmox guest: there is no snapshot to roll back to` };
  const asked = job.params?.snapshot;
  if (!asked) return { refused: `the upgrade (job ${job.id}) took no snapshot first` };
  // the relay's report, or (an upgrade that failed after taking it) the guest's own list
  const listed = host.guestSnapshots?.some((s) => s.name === asked.name);
  if (job.snapshot?.taken && (listed || host.guestSnapshots == null)) return { snapshot: asked.name };
  if (listed) return { snapshot: asked.name };
  if (job.snapshot?.taken) return { refused: `snapshot ${asked.name} is no longer on ${host.name} (pruned or deleted)` };
  return { refused: `the upgrade (job ${job.id}) did not take its snapshot ${asked.name}` };
}

/** The newest upgrade of a host that asked for a snapshot (a host's "Roll back"). */
export async function latestSnapshotUpgrade(db: Db, host: HostRow): Promise<JobRow | undefined> {
  const rows = await db.select().from(jobs).where(and(eq(jobs.hostId, host.id), eq(jobs.kind, 'upgrade'))).orderBy(desc(jobs.createdAt)).limit(50);
  return rows.find((j) => j.params?.snapshot);
}
