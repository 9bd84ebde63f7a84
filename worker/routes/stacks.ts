import { Hono } from 'hono';
import { and, asc, eq } from 'drizzle-orm';
import { StackQuery, StackUpdateRequest } from '../../protocol/api.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema, type Db, type HostRow, type StackRow } from '../db/index.ts';
import { ApiError, notFound, readBody, readIdempotencyKey, readQuery } from '../lib/http.ts';
import { stackJson } from '../lib/serialize.ts';
import { startChange } from '../changes.ts';
import { startDockerScan } from '../hosts.ts';

const { stacks, hosts } = schema;

async function findStack(db: Db, id: string): Promise<{ stack: StackRow; host: HostRow }> {
  const [row] = await db.select({ stack: stacks, host: hosts }).from(stacks).innerJoin(hosts, eq(hosts.id, stacks.hostId)).where(eq(stacks.id, id));
  if (!row) throw notFound('stack');
  return row;
}

// Docker Compose stacks as each host's last docker scan found them; checking one again
// (read-only: registry HEAD requests) and updating one (`docker compose pull`, `up -d`).
export const stackRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const { hostId } = readQuery(c, StackQuery);
    const rows = await openDb(c.env.DB)
      .select({ stack: stacks, hostName: hosts.name })
      .from(stacks)
      .innerJoin(hosts, eq(hosts.id, stacks.hostId))
      .where(and(hostId ? eq(stacks.hostId, hostId) : undefined))
      .orderBy(asc(hosts.name), asc(stacks.hostId), asc(stacks.name));
    return c.json(rows.map((r) => stackJson(r.stack, r.hostName)));
  })
  .get('/:id', async (c) => {
    const { stack, host } = await findStack(openDb(c.env.DB), c.req.param('id'));
    return c.json(stackJson(stack, host.name));
  })
  .post('/:id/check', async (c) => {
    const db = openDb(c.env.DB);
    const { stack, host } = await findStack(db, c.req.param('id'));
    c.set('audit', { target: stack.id, detail: `${stack.name} on ${host.name}` });
    const started = await startDockerScan(c.env, db, host, c.get('identity').name, { stack: stack.name });
    if (!started) throw new ApiError(409, 'no-relay', `${host.name} has no relay assigned`);
    return c.json({ jobId: started.jobId }, 202);
  })
  .post('/:id/update', async (c) => {
    const db = openDb(c.env.DB);
    const { stack, host } = await findStack(db, c.req.param('id'));
    c.set('audit', { target: stack.id, detail: `${stack.name} on ${host.name}` });
    const body = await readBody(c, StackUpdateRequest);
    const key = readIdempotencyKey(c);
    const { job, created } = await startChange(c.env, db, host, {
      kind: 'stack-update',
      stack,
      services: body.services,
      idempotencyKey: key,
      requestedBy: c.get('identity').name,
    });
    return c.json({ jobId: job.id }, created ? 202 : 200);
  });
