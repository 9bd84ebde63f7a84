// The memory of pending updates across scans: when each (host, package, new version) was first
// seen pending, and when it stopped being pending (installed, or superseded by a newer
// version). Policy cooldowns read it ("only updates first seen N days ago"); so can reports.
import { sql } from 'drizzle-orm';
import type { Db } from './db/index.ts';

/**
 * The statements that bring a host's sightings in line with its pending updates, to run in the
 * same batch as (and after) a scan's writes to host_updates: every pending (name, new version)
 * not yet open becomes a sighting first seen now (or is reopened, keeping its first sighting),
 * and every open sighting no longer pending is resolved now. Works from host_updates itself, so
 * it binds two parameters however long the package list is.
 */
export function recordSightings(db: Db, hostId: string, now: number) {
  return [
    db.run(sql`
      insert into update_sightings (host_id, name, new_version, security, first_seen_at, resolved_at)
      select host_id, name, new_version, max(security), ${now}, null from host_updates where host_id = ${hostId} group by name, new_version
      on conflict (host_id, name, new_version) do update set resolved_at = null, security = excluded.security`),
    db.run(sql`
      update update_sightings set resolved_at = ${now}
      where host_id = ${hostId} and resolved_at is null
        and not exists (select 1 from host_updates u where u.host_id = update_sightings.host_id and u.name = update_sightings.name and u.new_version = update_sightings.new_version)`),
  ];
}
