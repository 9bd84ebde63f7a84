import { Hono } from 'hono';
import { and, eq, inArray, isNull } from 'drizzle-orm';
import { HostCreate } from '../../protocol/api.ts';
import type { Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { ApiError, notFound, readBody } from '../lib/http.ts';
import { newId } from '../lib/crypto.ts';
import { hostJson, jobJson } from '../lib/serialize.ts';
import { ACTIVE, createJob } from '../jobs.ts';
import { relayHub } from '../relay-hub.ts';
import { publish } from '../live-feed.ts';

const { hosts, relays, jobs } = schema;

export const hostRoutes = new Hono<{ Bindings: Env }>()
  .get('/', async (c) => {
    const rows = await openDb(c.env.DB).select().from(hosts).orderBy(hosts.name);
    return c.json(rows.map(hostJson));
  })
  .post('/', async (c) => {
    const body = await readBody(c, HostCreate);
    const db = openDb(c.env.DB);
    const active = await db.select({ id: relays.id }).from(relays).where(isNull(relays.revokedAt));
    let relayId = body.relayId;
    if (relayId === undefined) {
      if (active.length !== 1) {
        throw new ApiError(400, 'invalid', 'relayId: choose the relay that reaches this host', 'relayId');
      }
      relayId = active[0].id;
    } else if (!active.some((r) => r.id === relayId)) {
      throw new ApiError(400, 'invalid', 'relayId: no such relay', 'relayId');
    }
    const duplicate = await db.query.hosts.findFirst({
      where: and(eq(hosts.relayId, relayId), eq(hosts.address, body.address), eq(hosts.port, body.port), eq(hosts.user, body.user)),
    });
    if (duplicate) throw new ApiError(409, 'conflict', `${body.user}@${body.address}:${body.port} is already a host (${duplicate.name})`, 'address');
    const now = Date.now();
    const [row] = await db
      .insert(hosts)
      .values({
        id: newId(),
        name: body.name ?? body.address,
        address: body.address,
        port: body.port,
        user: body.user,
        relayId,
        tags: body.tags,
        monitorOnly: body.monitorOnly,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    const host = hostJson(row);
    await publish(c.env, { type: 'host', host });
    return c.json(host, 201);
  })
  .get('/:id', async (c) => {
    const row = await openDb(c.env.DB).query.hosts.findFirst({ where: eq(hosts.id, c.req.param('id')) });
    if (!row) throw notFound('host');
    return c.json(hostJson(row));
  })
  .delete('/:id', async (c) => {
    const id = c.req.param('id');
    const [row] = await openDb(c.env.DB).delete(hosts).where(eq(hosts.id, id)).returning();
    if (!row) throw notFound('host');
    await publish(c.env, { type: 'host.deleted', id });
    return c.body(null, 204);
  })
  .post('/:id/scan', async (c) => {
    const db = openDb(c.env.DB);
    const host = await db.query.hosts.findFirst({ where: eq(hosts.id, c.req.param('id')) });
    if (!host) throw notFound('host');
    if (!host.relayId) throw new ApiError(409, 'no-relay', 'this host has no relay assigned');
    // A scan already waiting or running for this host is reused rather than doubled.
    const running = await db.query.jobs.findFirst({
      where: and(eq(jobs.hostId, host.id), eq(jobs.kind, 'scan'), inArray(jobs.status, ACTIVE)),
    });
    if (running) return c.json({ jobId: running.id }, 202);
    const job = await createJob(db, host, 'scan', null);
    await publish(c.env, { type: 'job', job: jobJson(job) });
    await relayHub(c.env, host.relayId).dispatch();
    return c.json({ jobId: job.id }, 202);
  });
