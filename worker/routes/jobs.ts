import { Hono } from 'hono';
import * as v from 'valibot';
import { and, desc, eq } from 'drizzle-orm';
import { JobKind, JobStatus } from '../../protocol/api.ts';
import type { Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { notFound, readQuery } from '../lib/http.ts';
import { jobJson } from '../lib/serialize.ts';

const { jobs } = schema;

const JobQuery = v.object({
  hostId: v.optional(v.string()),
  kind: v.optional(JobKind),
  status: v.optional(JobStatus),
  limit: v.optional(v.pipe(v.string(), v.transform(Number), v.integer(), v.minValue(1), v.maxValue(500)), '100'),
});

export const jobRoutes = new Hono<{ Bindings: Env }>()
  .get('/', async (c) => {
    const { hostId, kind, status, limit } = readQuery(c, JobQuery);
    const rows = await openDb(c.env.DB)
      .select()
      .from(jobs)
      .where(and(hostId ? eq(jobs.hostId, hostId) : undefined, kind ? eq(jobs.kind, kind) : undefined, status ? eq(jobs.status, status) : undefined))
      .orderBy(desc(jobs.createdAt))
      .limit(limit);
    return c.json(rows.map(jobJson));
  })
  .get('/:id', async (c) => {
    const row = await openDb(c.env.DB).query.jobs.findFirst({ where: eq(jobs.id, c.req.param('id')) });
    if (!row) throw notFound('job');
    return c.json(jobJson(row));
  });
