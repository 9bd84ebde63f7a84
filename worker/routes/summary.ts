import { Hono } from 'hono';
import { sql } from 'drizzle-orm';
import type { Summary } from '../../protocol/api.ts';
import type { AppEnv, Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { readChecked } from '../auth/checked-read.ts';

const { hosts } = schema;

// GET /api/summary: the dashboard's cards, counted in one query (sent with the credential check).
export const summaryRoutes = new Hono<AppEnv>().get('/', async (c) => {
  const [[row]] = await readChecked(c, [
    openDb(c.env.DB)
      .select({
        hosts: sql<number>`count(*)`,
        online: sql<number>`coalesce(sum(${hosts.status} = 'online'), 0)`,
        offline: sql<number>`coalesce(sum(${hosts.status} in ('offline', 'error')), 0)`,
        needUpdates: sql<number>`coalesce(sum(${hosts.updatesCount} > 0), 0)`,
        pendingPackages: sql<number>`coalesce(sum(${hosts.updatesCount}), 0)`,
        securityPackages: sql<number>`coalesce(sum(${hosts.securityCount}), 0)`,
        securityHosts: sql<number>`coalesce(sum(${hosts.securityCount} > 0), 0)`,
        needReboot: sql<number>`coalesce(sum(${hosts.rebootRequired} = 1), 0)`,
        stacksWithUpdates: sql<number>`(select count(*) from stacks where updates_count > 0)`,
      })
      .from(hosts),
  ]);
  return c.json(row satisfies Summary);
});
