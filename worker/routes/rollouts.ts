import { Hono } from 'hono';
import { asc, desc, eq, inArray } from 'drizzle-orm';
import { RolloutQuery } from '../../protocol/policy.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema, type RolloutHostRow } from '../db/index.ts';
import { notFound, readQuery } from '../lib/http.ts';
import { controlRollout, loadRollout, rolloutJson, rolloutRunner } from '../rollouts.ts';

const { rollouts, rolloutHosts } = schema;

/** Newest first; the history page pages no further than this. */
const LIST_LIMIT = 200;

// Rollouts: what policies did and are doing. Operators pause, resume and cancel them.
export const rolloutRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const { policyId } = readQuery(c, RolloutQuery);
    const db = openDb(c.env.DB);
    const rows = await db
      .select()
      .from(rollouts)
      .where(policyId ? eq(rollouts.policyId, policyId) : undefined)
      .orderBy(desc(rollouts.createdAt))
      .limit(LIST_LIMIT);
    const byRollout = new Map<string, RolloutHostRow[]>(rows.map((r) => [r.id, []]));
    const ids = rows.map((r) => r.id);
    for (let i = 0; i < ids.length; i += 90) {
      const hs = await db.select().from(rolloutHosts).where(inArray(rolloutHosts.rolloutId, ids.slice(i, i + 90))).orderBy(asc(rolloutHosts.position));
      for (const h of hs) byRollout.get(h.rolloutId)!.push(h);
    }
    return c.json(rows.map((r) => rolloutJson(r, byRollout.get(r.id)!)));
  })
  .get('/:id', async (c) => {
    const r = await loadRollout(openDb(c.env.DB), c.req.param('id'));
    if (!r) throw notFound('rollout');
    return c.json(r);
  })
  .post('/:id/:action{pause|resume|cancel}', async (c) => {
    const db = openDb(c.env.DB);
    const id = c.req.param('id');
    await controlRollout(db, id, c.req.param('action') as 'pause' | 'resume' | 'cancel');
    await rolloutRunner(c.env, id).kick();
    return c.json(await loadRollout(db, id));
  });
