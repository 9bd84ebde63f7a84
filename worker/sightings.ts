// The memory of pending updates across scans: when each (host, package, new version) was first
// seen pending, and when it stopped being pending (installed, or superseded by a newer
// version). Policy cooldowns read it ("only updates first seen N days ago"); so can reports.
import { and, eq, inArray, isNull, notExists, sql } from 'drizzle-orm';
import { schema, type Db } from './db/index.ts';

const { hosts, hostUpdates, updateSightings } = schema;

/** Host ids per statement (D1 binds at most 100 parameters). */
const HOSTS_PER_STATEMENT = 90;

/**
 * The statements that bring some hosts' sightings in line with their pending updates, to run
 * in the same batch as (and after) the scan writes that replaced their host_updates: every
 * pending (name, new version) becomes a sighting first seen now (one seen before keeps its
 * first sighting, and is reopened if it had been resolved), and every open sighting no longer
 * pending is resolved now; then each host's row takes the first sighting of its oldest
 * security update still pending (`hosts.oldest_security_at`, what the host list sorts by
 * exposure on). Works from host_updates itself: three statements per 90 hosts, however long
 * the package lists are.
 */
export function recordSightings(db: Db, hostIds: string[], now: number) {
  const out = [];
  for (let i = 0; i < hostIds.length; i += HOSTS_PER_STATEMENT) out.push(...sightingsOf(db, hostIds.slice(i, i + HOSTS_PER_STATEMENT), now));
  return out;
}

function sightingsOf(db: Db, hostIds: string[], now: number) {
  return [
    db
      .insert(updateSightings)
      .select(
        db
          .select({
            hostId: hostUpdates.hostId,
            name: hostUpdates.name,
            newVersion: hostUpdates.newVersion,
            security: sql<boolean>`max(${hostUpdates.security})`.as('security'),
            firstSeenAt: sql<number>`${now}`.as('first_seen_at'),
            resolvedAt: sql<number | null>`null`.as('resolved_at'),
          })
          .from(hostUpdates)
          .where(inArray(hostUpdates.hostId, hostIds))
          .groupBy(hostUpdates.hostId, hostUpdates.name, hostUpdates.newVersion),
      )
      .onConflictDoUpdate({
        target: [updateSightings.hostId, updateSightings.name, updateSightings.newVersion],
        set: { resolvedAt: null, security: sql`excluded.security` },
      }),
    db
      .update(updateSightings)
      .set({ resolvedAt: now })
      .where(
        and(
          inArray(updateSightings.hostId, hostIds),
          isNull(updateSightings.resolvedAt),
          notExists(
            db
              .select({ one: sql`1` })
              .from(hostUpdates)
              .where(
                and(
                  eq(hostUpdates.hostId, updateSightings.hostId),
                  eq(hostUpdates.name, updateSightings.name),
                  eq(hostUpdates.newVersion, updateSightings.newVersion),
                ),
              ),
          ),
        ),
      ),
    db.update(hosts).set({ oldestSecurityAt: oldestOpenSecurity }).where(inArray(hosts.id, hostIds)),
  ];
}

/** A host's oldest security update still pending: the first sighting of it (null: none).
 * One seek in the per-host index per host. */
const oldestOpenSecurity = sql<number | null>`(select min(s.first_seen_at) from update_sightings s
  where s.host_id = ${hosts.id} and s.resolved_at is null and s.security = 1)`;
