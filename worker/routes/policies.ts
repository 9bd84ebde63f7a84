import { Hono } from 'hono';
import { asc, eq } from 'drizzle-orm';
import { PolicyBody, type PolicySpec } from '../../protocol/policy.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema, type Db } from '../db/index.ts';
import { ApiError, notFound, readBody } from '../lib/http.ts';
import { newId } from '../lib/crypto.ts';
import { recordAudit } from '../auth/audit.ts';
import { previewPolicy, rebootWording } from '../policy-plan.ts';
import { liveRollout, policyJson } from '../policy-schedule.ts';
import { startRollout } from '../rollouts.ts';

const { policies } = schema;

async function findPolicy(db: Db, id: string) {
  const p = await db.query.policies.findFirst({ where: eq(policies.id, id) });
  if (!p) throw notFound('policy');
  return p;
}

function split(body: PolicyBody): { name: string; enabled: boolean; spec: PolicySpec } {
  const { name, enabled, ...spec } = body;
  return { name, enabled, spec };
}

// Patch policies (admins edit; everyone reads and previews; operators run them). A run is a
// rollout (routes/rollouts.ts). A policy that reboots says so in the audit log as well.
export const policyRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const rows = await openDb(c.env.DB).select().from(policies).orderBy(asc(policies.name));
    const now = Date.now();
    return c.json(rows.map((p) => policyJson(p, now)));
  })
  .post('/', async (c) => {
    const body = await readBody(c, PolicyBody);
    const db = openDb(c.env.DB);
    const now = Date.now();
    const [row] = await db
      .insert(policies)
      .values({ id: newId(), ...split(body), createdAt: now, updatedAt: now })
      .returning();
    if (row.spec.reboot === 'if-required') await recordAudit(c, db, c.get('identity'), 201, { action: `policy ${row.name} may reboot: ${rebootWording(row.spec)}`, target: row.id });
    return c.json(policyJson(row, now), 201);
  })
  .get('/:id', async (c) => c.json(policyJson(await findPolicy(openDb(c.env.DB), c.req.param('id')), Date.now())))
  .put('/:id', async (c) => {
    const body = await readBody(c, PolicyBody);
    const db = openDb(c.env.DB);
    await findPolicy(db, c.req.param('id'));
    const now = Date.now();
    const [row] = await db
      .update(policies)
      .set({ ...split(body), updatedAt: now })
      .where(eq(policies.id, c.req.param('id')))
      .returning();
    if (row.spec.reboot === 'if-required') await recordAudit(c, db, c.get('identity'), 200, { action: `policy ${row.name} may reboot: ${rebootWording(row.spec)}`, target: row.id });
    return c.json(policyJson(row, now));
  })
  .delete('/:id', async (c) => {
    const db = openDb(c.env.DB);
    await findPolicy(db, c.req.param('id'));
    await db.delete(policies).where(eq(policies.id, c.req.param('id')));
    return c.body(null, 204);
  })
  .post('/:id/preview', async (c) => {
    const db = openDb(c.env.DB);
    const p = await findPolicy(db, c.req.param('id'));
    return c.json(await previewPolicy(db, p.spec, Date.now()));
  })
  .post('/:id/run', async (c) => {
    const db = openDb(c.env.DB);
    const p = await findPolicy(db, c.req.param('id'));
    const running = await liveRollout(db, p.id);
    if (running) throw new ApiError(409, 'busy', `a rollout of ${p.name} is already ${running.status} (${running.id}); cancel it or wait for it to finish`);
    const now = Date.now();
    // by hand: the same rollout, with the policy's window counted from now
    const windowEndsAt = p.spec.schedule ? now + p.spec.schedule.windowMinutes * 60_000 : null;
    const r = await startRollout(c.env, db, p, { trigger: 'manual', requestedBy: c.get('identity').name, now, windowEndsAt });
    await recordAudit(c, db, c.get('identity'), 202, { action: `rollout of ${p.name} started; reboots: ${p.spec.reboot} — ${rebootWording(p.spec)}`, target: r.id });
    return c.json({ rolloutId: r.id }, 202);
  });
