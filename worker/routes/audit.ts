import { Hono } from 'hono';
import { and, desc, eq, lt } from 'drizzle-orm';
import { AuditQuery } from '../../protocol/api.ts';
import { auditJson } from '../lib/serialize.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { readQuery } from '../lib/http.ts';

const { audit } = schema;

// GET /api/audit: every attempt to change something, newest first.
export const auditRoutes = new Hono<AppEnv>().get('/', async (c) => {
  const { before, actor, limit } = readQuery(c, AuditQuery);
  const rows = await openDb(c.env.DB)
    .select()
    .from(audit)
    .where(and(before !== undefined ? lt(audit.at, before) : undefined, actor ? eq(audit.actor, actor) : undefined))
    .orderBy(desc(audit.at))
    .limit(limit);
  return c.json(rows.map(auditJson));
});
