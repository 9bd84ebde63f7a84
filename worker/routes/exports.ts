// GET /api/export/hosts.csv|.json and /api/export/updates.csv|.json: the host list and every
// pending update across the fleet, for a spreadsheet or a script (same auth as the API).
// CSV and JSON carry the same columns; the JSON keeps types (numbers, booleans, nulls).
import { Hono, type Context } from 'hono';
import { asc, desc, eq, and } from 'drizzle-orm';
import type { AppEnv } from '../env.ts';
import { openDb, schema, type Db } from '../db/index.ts';
import { csv, type Cell } from '../lib/csv.ts';
import { hostExposure } from '../trends.ts';

const { hosts, hostUpdates, relays, updateSightings } = schema;

const iso = (t: number | null) => (t == null ? null : new Date(t).toISOString());

/** The host list: one row per host, the columns in this order. */
async function hostRows(db: Db): Promise<Record<string, Cell>[]> {
  const now = Date.now();
  const [rows, exposure] = await Promise.all([
    db
      .select({ h: hosts, relay: relays.name })
      .from(hosts)
      .leftJoin(relays, eq(relays.id, hosts.relayId))
      .orderBy(asc(hosts.name)),
    hostExposure(db, now),
  ]);
  const oldest = new Map(exposure.map((e) => [e.hostId, e.oldestSecurityAgeDays]));
  return rows.map(({ h, relay }) => ({
    id: h.id,
    name: h.name,
    address: h.address,
    port: h.port,
    user: h.user,
    relay,
    tags: h.tags.join(' '),
    status: h.status,
    statusReason: h.statusReason,
    os: h.osPrettyName,
    kernel: h.kernel,
    arch: h.arch,
    packageManager: h.packageManager,
    monitorOnly: h.monitorOnly,
    pending: h.updatesCount,
    security: h.securityCount,
    rebootRequired: h.rebootRequired,
    oldestSecurityAgeDays: oldest.get(h.id) ?? null,
    lastScanAt: iso(h.lastScanAt),
  }));
}

/** Every pending update of every host, the hosts by name, security updates first. */
async function updateRows(db: Db): Promise<Record<string, Cell>[]> {
  const rows = await db
    .select({ u: hostUpdates, host: hosts.name, firstSeenAt: updateSightings.firstSeenAt })
    .from(hostUpdates)
    .innerJoin(hosts, eq(hosts.id, hostUpdates.hostId))
    .leftJoin(
      updateSightings,
      and(eq(updateSightings.hostId, hostUpdates.hostId), eq(updateSightings.name, hostUpdates.name), eq(updateSightings.newVersion, hostUpdates.newVersion)),
    )
    .orderBy(asc(hosts.name), desc(hostUpdates.security), asc(hostUpdates.name));
  return rows.map(({ u, host, firstSeenAt }) => ({
    hostId: u.hostId,
    host,
    package: u.name,
    arch: u.arch,
    currentVersion: u.currentVersion,
    newVersion: u.newVersion,
    repository: u.repository,
    security: u.security,
    firstSeenAt: iso(firstSeenAt),
  }));
}

function send(c: Context, name: string, format: string, rows: Record<string, Cell>[], header: readonly string[]): Response {
  const file = `patchman-${name}-${new Date().toISOString().slice(0, 10)}.${format}`;
  const body = format === 'csv' ? csv(header, rows.map((r) => header.map((k) => r[k]))) : JSON.stringify(rows);
  return c.body(body, 200, {
    'Content-Type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8',
    'Content-Disposition': `attachment; filename="${file}"`,
    'Cache-Control': 'no-store',
  });
}

export const HOST_COLUMNS = ['id', 'name', 'address', 'port', 'user', 'relay', 'tags', 'status', 'statusReason', 'os', 'kernel', 'arch', 'packageManager', 'monitorOnly', 'pending', 'security', 'rebootRequired', 'oldestSecurityAgeDays', 'lastScanAt'] as const;
export const UPDATE_COLUMNS = ['hostId', 'host', 'package', 'arch', 'currentVersion', 'newVersion', 'repository', 'security', 'firstSeenAt'] as const;

export const exportRoutes = new Hono<AppEnv>()
  .get('/hosts.csv', async (c) => send(c, 'hosts', 'csv', await hostRows(openDb(c.env.DB)), HOST_COLUMNS))
  .get('/hosts.json', async (c) => send(c, 'hosts', 'json', await hostRows(openDb(c.env.DB)), HOST_COLUMNS))
  .get('/updates.csv', async (c) => send(c, 'updates', 'csv', await updateRows(openDb(c.env.DB)), UPDATE_COLUMNS))
  .get('/updates.json', async (c) => send(c, 'updates', 'json', await updateRows(openDb(c.env.DB)), UPDATE_COLUMNS));
