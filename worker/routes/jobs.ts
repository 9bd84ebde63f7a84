import { Hono } from 'hono';
import { and, desc, eq, gte, lt } from 'drizzle-orm';
import { JobQuery, type JobDetail } from '../../protocol/api.ts';
import type { AppEnv, Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { notFound, readQuery } from '../lib/http.ts';
import { jobJson } from '../lib/serialize.ts';
import { readLog } from '../jobs.ts';
import { readChecked } from '../auth/checked-read.ts';

const { jobs } = schema;

// The job history: every scan, upgrade and reboot, newest first, with filters; one job with
// its whole (capped) log.
export const jobRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const { hostId, kind, status, since, before, limit } = readQuery(c, JobQuery);
    const [rows] = await readChecked(c, [
      openDb(c.env.DB)
        .select()
        .from(jobs)
        .where(
          and(
            hostId ? eq(jobs.hostId, hostId) : undefined,
            kind ? eq(jobs.kind, kind) : undefined,
            status ? eq(jobs.status, status) : undefined,
            since !== undefined ? gte(jobs.createdAt, since) : undefined,
            before !== undefined ? lt(jobs.createdAt, before) : undefined,
          ),
        )
        .orderBy(desc(jobs.createdAt))
        .limit(limit),
    ]);
    return c.json(rows.map(jobJson));
  })
  .get('/:id', async (c) => {
    const db = openDb(c.env.DB);
    const row = await db.query.jobs.findFirst({ where: eq(jobs.id, c.req.param('id')) });
    if (!row) throw notFound('job');
    return c.json({ ...jobJson(row), log: await readLog(db, row.id) } satisfies JobDetail);
  });
