// Host inventory rules shared by the API routes and the scheduler.
import { and, eq, gt, inArray, isNotNull, notExists, or, sql, type SQL } from 'drizzle-orm';
import type { HostFilter } from '../protocol/api.ts';
import { schema, type Db, type HostRow, type RelayRow } from './db/index.ts';
import { ACTIVE, createJob } from './jobs.ts';

const { hosts, jobs } = schema;

/** The relay's own box is monitor-only unless the operator says otherwise: patching or
 * rebooting the machine that runs the relay would cut the branch it sits on. */
export function isRelayBox(address: string, relay: Pick<RelayRow, 'hostname'> | undefined): boolean {
  const a = address.toLowerCase();
  if (a === 'localhost' || a === '127.0.0.1' || a === '::1') return true;
  const h = relay?.hostname?.toLowerCase();
  return !!h && (a === h || a.startsWith(`${h}.`));
}

export function filterCondition(filter: HostFilter | undefined): SQL | undefined {
  switch (filter) {
    case 'needs-updates':
      return gt(hosts.updatesCount, 0);
    case 'security':
      return gt(hosts.securityCount, 0);
    case 'needs-reboot':
      return eq(hosts.rebootRequired, true);
    case 'offline':
      return or(eq(hosts.status, 'offline'), eq(hosts.status, 'error'));
    default:
      return undefined;
  }
}

/** Queue a scan for each host that has none waiting or running; returns one job id per
 * host (the existing one where a scan was already under way), and the relays to nudge. */
export async function queueScans(db: Db, targets: HostRow[], requestedBy: string | null) {
  const ids = targets.map((h) => h.id);
  const running = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 90) {
    const rows = await db
      .select({ id: jobs.id, hostId: jobs.hostId })
      .from(jobs)
      .where(and(inArray(jobs.hostId, ids.slice(i, i + 90)), eq(jobs.kind, 'scan'), inArray(jobs.status, ACTIVE)));
    for (const r of rows) running.set(r.hostId, r.id);
  }
  const jobIds: string[] = [];
  const created = [];
  const relays = new Set<string>();
  for (const host of targets) {
    if (!host.relayId) continue;
    const existing = running.get(host.id);
    if (existing) {
      jobIds.push(existing);
      continue;
    }
    const job = await createJob(db, host, 'scan', requestedBy);
    created.push(job);
    jobIds.push(job.id);
    relays.add(host.relayId);
  }
  return { jobIds, created, relays: [...relays] };
}

/** Hosts with no scan (successful or not) started within the interval. */
export async function dueHosts(db: Db, intervalHours: number, now = Date.now()) {
  if (intervalHours <= 0) return [];
  const cutoff = now - intervalHours * 3_600_000;
  const recent = db
    .select({ one: sql`1` })
    .from(jobs)
    .where(and(eq(jobs.hostId, hosts.id), eq(jobs.kind, 'scan'), gt(jobs.createdAt, cutoff)));
  return db.select().from(hosts).where(and(isNotNull(hosts.relayId), notExists(recent)));
}
