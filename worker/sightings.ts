// The memory of pending updates across scans: when each (host, package, new version) was first
// seen pending, and when it stopped being pending (installed, or superseded by a newer
// version). Policy cooldowns read it ("only updates first seen N days ago"); so can reports.
import { and, eq, isNull, notExists, sql } from 'drizzle-orm';
import { schema, type Db } from './db/index.ts';

const { hostUpdates, updateSightings } = schema;

/**
 * The statements that bring a host's sightings in line with its pending updates, to run in the
 * same batch as (and after) a scan's writes to host_updates: every pending (name, new version)
 * becomes a sighting first seen now (one seen before keeps its first sighting, and is reopened
 * if it had been resolved), and every open sighting no longer pending is resolved now. Works
 * from host_updates itself, so it binds a few parameters however long the package list is.
 */
export function recordSightings(db: Db, hostId: string, now: number) {
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
          .where(eq(hostUpdates.hostId, hostId))
          .groupBy(hostUpdates.name, hostUpdates.newVersion),
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
          eq(updateSightings.hostId, hostId),
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
  ];
}
