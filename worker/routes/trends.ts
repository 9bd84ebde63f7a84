// GET /api/trends, /api/hosts/:id/trends, /api/exposure, /api/homepage: the fleet over time
// and its security exposure (worker/trends.ts), for the dashboard, scripts and Homepage.
import { Hono, type MiddlewareHandler } from 'hono';
import { sql } from 'drizzle-orm';
import { TrendQuery, type HomepageWidget, type HostTrends, type Trends } from '../../protocol/trends.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { daysToTenth } from '../../protocol/days.ts';
import { notFound, readQuery } from '../lib/http.ts';
import { activity, exposure, fleetTrend, hostExposure, hostTrend, timeToPatch } from '../trends.ts';

const { hosts } = schema;

/** What Homepage's widget shows as "time to patch": the last 30 days. */
const HOMEPAGE_TTP_DAYS = 30;

/** How long the handler took inside the Worker (its D1 queries, mostly): browsers' devtools
 * show it, and bench/trends.ts reports it beside the round trip. */
const serverTiming: MiddlewareHandler<AppEnv> = async (c, next) => {
  const start = Date.now();
  await next();
  c.res.headers.set('Server-Timing', `app;dur=${Date.now() - start}`);
};

// Mounted at /api: the middleware is registered per path, never for /api/* as a whole.
export const trendRoutes = new Hono<AppEnv>()
  .use('/trends', serverTiming)
  .use('/hosts/:id/trends', serverTiming)
  .use('/exposure', serverTiming)
  .use('/homepage', serverTiming)
  .get('/trends', async (c) => {
    const { days } = readQuery(c, TrendQuery);
    const db = openDb(c.env.DB);
    const [points, act] = await Promise.all([fleetTrend(db, days), activity(db, days, null)]);
    return c.json({ days, points, activity: act } satisfies Trends);
  })
  .get('/hosts/:id/trends', async (c) => {
    const { days } = readQuery(c, TrendQuery);
    const db = openDb(c.env.DB);
    const id = c.req.param('id');
    const [points, act, [exp]] = await Promise.all([hostTrend(db, id, days), activity(db, days, id), hostExposure(db, Date.now(), id)]);
    if (!exp) throw notFound('host');
    const body = { days, points, activity: act, exposure: { oldestSecurityAgeDays: exp.oldestSecurityAgeDays, openSecurity: exp.openSecurity } };
    return c.json(body satisfies HostTrends);
  })
  .get('/exposure', async (c) => {
    const { days } = readQuery(c, TrendQuery);
    return c.json(await exposure(openDb(c.env.DB), days));
  })
  .get('/homepage', async (c) => {
    const db = openDb(c.env.DB);
    const now = Date.now();
    const [[row], ttp, [oldest]] = await Promise.all([
      db
        .select({
          hosts: sql<number>`count(*)`,
          online: sql<number>`coalesce(sum(${hosts.status} = 'online'), 0)`,
          offline: sql<number>`coalesce(sum(${hosts.status} in ('offline', 'error')), 0)`,
          pending: sql<number>`coalesce(sum(${hosts.updatesCount}), 0)`,
          security: sql<number>`coalesce(sum(${hosts.securityCount}), 0)`,
          securityHosts: sql<number>`coalesce(sum(${hosts.securityCount} > 0), 0)`,
          needReboot: sql<number>`coalesce(sum(${hosts.rebootRequired} = 1), 0)`,
        })
        .from(hosts),
      timeToPatch(db, HOMEPAGE_TTP_DAYS, now),
      db.all<{ oldest: number | null }>(sql`select min(first_seen_at) as oldest from update_sightings where resolved_at is null and security = 1`),
    ]);
    const oldestDays = oldest?.oldest == null ? 0 : daysToTenth(now - oldest.oldest);
    return c.json({ ...row, oldestSecurityAgeDays: oldestDays, timeToPatchMedianDays: ttp.median ?? 0 } satisfies HomepageWidget);
  });

