import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { and, asc, desc, eq, isNull } from 'drizzle-orm';
import { AcceptHostKey, ConnectionTestBody, HostCreate, HostPatch, RebootRequest, UpgradeRequest, type ConnectionTestResult } from '../../protocol/api.ts';
import { ProbeResult } from '../../protocol/relay.ts';
import type { AppEnv, Env } from '../env.ts';
import { openDb, schema, type Db, type HostRow } from '../db/index.ts';
import { ApiError, notFound, readBody, readIdempotencyKey, readQuery } from '../lib/http.ts';
import { startChange } from '../changes.ts';
import { newId } from '../lib/crypto.ts';
import { hostJson } from '../lib/serialize.ts';
import { isRelayBox, startScans } from '../hosts.ts';
import { HostGroupsQuery, HostListQuery, HostMatchQuery } from '../../protocol/host-query.ts';
import { hostGroupsFrom, hostGroupsQuery, hostListQuery, hostPage, hostPageQueries, matchingIds } from '../host-query.ts';
import { readChecked } from '../auth/checked-read.ts';
import { askRelay } from '../relay-hub.ts';
import { publish } from '../live-feed.ts';
import { namesInWords } from '../auth/audit.ts';
import { GUEST_TARGET_FIELDS, followNode } from '../guests.ts';

const { hosts, relays, hostUpdates } = schema;

const PROBE_TIMEOUT_MS = 30_000;

async function activeRelays(db: Db) {
  return db.select().from(relays).where(isNull(relays.revokedAt));
}

/** The relay a host goes through: the one named, or the only one there is. */
async function chooseRelay(db: Db, relayId: string | undefined) {
  const active = await activeRelays(db);
  if (relayId === undefined) {
    if (active.length !== 1) throw new ApiError(400, 'invalid', 'relayId: choose the relay that reaches this host', 'relayId');
    return active[0];
  }
  const relay = active.find((r) => r.id === relayId);
  if (!relay) throw new ApiError(400, 'invalid', 'relayId: no such relay', 'relayId');
  return relay;
}

/** The host a request names; for a request that changes something, the audit log is told
 * its name (the id alone says nothing once the host is gone). */
async function findHost(db: Db, id: string, c?: Context<AppEnv>): Promise<HostRow> {
  const row = await db.query.hosts.findFirst({ where: eq(hosts.id, id) });
  if (!row) throw notFound('host');
  c?.set('audit', { target: row.id, detail: row.name });
  return row;
}

async function assertUniqueTarget(db: Db, t: { relayId: string | null; address: string; port: number; user: string }, except?: string) {
  const dup = await db.query.hosts.findFirst({
    where: and(
      t.relayId ? eq(hosts.relayId, t.relayId) : isNull(hosts.relayId),
      eq(hosts.address, t.address),
      eq(hosts.port, t.port),
      eq(hosts.user, t.user),
      // Proxmox guests share their node's target
      isNull(hosts.guestOf),
    ),
  });
  if (dup && dup.id !== except) {
    throw new ApiError(409, 'conflict', `${t.user}@${t.address}:${t.port} is already a host (${dup.name})`, 'address');
  }
}

/** Probe a target through its relay now and turn the outcome into plain words. */
type ConnectionTestFailure = Extract<ConnectionTestResult, { ok: false }>['error'];

async function testConnection(env: Env, relayId: string, target: { address: string; port: number; user: string }): Promise<ConnectionTestResult> {
  const answer = await askRelay(env, relayId, 'probe', { target }, PROBE_TIMEOUT_MS);
  if (!answer.ok) {
    if (answer.fromRelay) return { ok: false, error: answer.error as ConnectionTestFailure };
    const code = answer.error.code === 'timeout' || answer.error.code === 'relay-disconnected' ? answer.error.code : 'internal';
    return { ok: false, error: { code, message: answer.error.message } };
  }
  const parsed = v.safeParse(ProbeResult, answer.result);
  if (!parsed.success) return { ok: false, error: { code: 'internal', message: 'the relay answered with an invalid probe' } };
  const probe = parsed.output;
  const os = probe.os.prettyName || probe.os.id || 'this OS';
  if (probe.packageManagers.length === 0) {
    return { ok: false, error: { code: 'unsupported-os', message: `${os} has no package manager PatchMan supports` } };
  }
  if (probe.privilege === 'sudo-password' || probe.privilege === 'no-sudo') {
    const why = probe.privilege === 'no-sudo' ? 'there is no sudo' : 'sudo asks for a password';
    return {
      ok: false,
      error: { code: 'sudo-password', message: `connected to ${os}, but ${why} for ${target.user}: add the sudoers line for the package manager, or use root` },
    };
  }
  return { ok: true, probe, warnings: [] };
}

export const hostRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const q = readQuery(c, HostListQuery);
    const db = openDb(c.env.DB);
    // without `limit` the whole list, as scripts have always had it
    if (q.limit === undefined) return c.json((await readChecked(c, [hostListQuery(db, q)]))[0].map(hostJson));
    return c.json(hostPage(await readChecked(c, [...hostPageQueries(db, { ...q, limit: q.limit })])));
  })
  .get('/groups', async (c) => {
    const { by, ...match } = readQuery(c, HostGroupsQuery);
    const [rows] = await readChecked(c, [hostGroupsQuery(openDb(c.env.DB), by, match)]);
    return c.json({ by, groups: hostGroupsFrom(by, rows) });
  })
  .get('/ids', async (c) => {
    const ids = await matchingIds(openDb(c.env.DB), readQuery(c, HostMatchQuery));
    return c.json({ ids, total: ids.length });
  })
  .post('/', async (c) => {
    const { scan, ...body } = await readBody(c, HostCreate);
    const db = openDb(c.env.DB);
    const relay = await chooseRelay(db, body.relayId);
    await assertUniqueTarget(db, { relayId: relay.id, address: body.address, port: body.port, user: body.user });
    const now = Date.now();
    const [row] = await db
      .insert(hosts)
      .values({
        id: newId(),
        name: body.name ?? body.address,
        address: body.address,
        port: body.port,
        user: body.user,
        relayId: relay.id,
        tags: body.tags,
        monitorOnly: body.monitorOnly ?? isRelayBox(body.address, relay),
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    c.set('audit', { target: row.id, detail: `${row.name} (${row.user}@${row.address}:${row.port})` });
    const host = hostJson(row);
    await publish(c.env, { type: 'host', host });
    // A new host is looked at straight away: nobody should have to press Scan first.
    const scanJobId = scan ? (await startScans(c.env, db, [row], c.get('identity').name)).jobIds[0] ?? null : null;
    return c.json({ ...host, scanJobId }, 201);
  })
  .post('/test', async (c) => {
    const body = await readBody(c, ConnectionTestBody);
    const relay = await chooseRelay(openDb(c.env.DB), body.relayId);
    return c.json(await testConnection(c.env, relay.id, { address: body.address, port: body.port, user: body.user }));
  })
  .get('/:id', async (c) => c.json(hostJson(await findHost(openDb(c.env.DB), c.req.param('id')))))
  .patch('/:id', async (c) => {
    const db = openDb(c.env.DB);
    const host = await findHost(db, c.req.param('id'), c);
    const patch = await readBody(c, HostPatch);
    if (patch.relayId !== undefined) await chooseRelay(db, patch.relayId);
    const guestField = host.guestOf ? GUEST_TARGET_FIELDS.find((f) => patch[f] !== undefined) : undefined;
    if (guestField) throw new ApiError(400, 'invalid', `${guestField}: ${host.name} is a Proxmox guest reached through its node; change the node instead`, guestField);
    const next = { ...host, ...patch };
    if (!host.guestOf) await assertUniqueTarget(db, next, host.id);
    const targetChanged = next.address !== host.address || next.port !== host.port || next.user !== host.user || next.relayId !== host.relayId;
    const [row] = await db
      .update(hosts)
      .set({
        ...patch,
        updatedAt: Date.now(),
        // a different machine or login: what we knew no longer holds
        ...(targetChanged ? { status: 'unknown' as const, statusReason: null } : {}),
      })
      .where(eq(hosts.id, host.id))
      .returning();
    const json = hostJson(row);
    await publish(c.env, { type: 'host', host: json });
    if (targetChanged) await followNode(c.env, db, row);
    return c.json(json);
  })
  .delete('/:id', async (c) => {
    const id = c.req.param('id');
    // a Proxmox node's adopted guests go with it: they were reached only through it
    const [deleted, guests] = await openDb(c.env.DB).batch([
      openDb(c.env.DB).delete(hosts).where(eq(hosts.id, id)).returning(),
      openDb(c.env.DB).delete(hosts).where(eq(hosts.guestOf, id)).returning({ id: hosts.id, name: hosts.name }),
    ]);
    const row = deleted[0];
    if (!row) throw notFound('host');
    c.set('audit', { target: row.id, detail: guests.length ? `${row.name} and its guests ${namesInWords(guests.map((g) => g.name))}` : row.name });
    await publish(c.env, { type: 'host.deleted', id }, ...guests.map((g) => ({ type: 'host.deleted' as const, id: g.id })));
    return c.body(null, 204);
  })
  .get('/:id/updates', async (c) => {
    const db = openDb(c.env.DB);
    const id = c.req.param('id');
    // the host and its updates in one round trip, with the credential check
    const [host, rows] = await readChecked(c, [
      db.select({ id: hosts.id }).from(hosts).where(eq(hosts.id, id)),
      db.select().from(hostUpdates).where(eq(hostUpdates.hostId, id)).orderBy(desc(hostUpdates.security), asc(hostUpdates.name)),
    ]);
    if (host.length === 0) throw notFound('host');
    return c.json(rows.map(({ hostId: _, ...u }) => u));
  })
  .post('/:id/accept-host-key', async (c) => {
    const db = openDb(c.env.DB);
    const host = await findHost(db, c.req.param('id'), c);
    const { fingerprint } = await readBody(c, AcceptHostKey);
    if (!host.relayId) throw new ApiError(409, 'no-relay', 'this host has no relay assigned');
    if (fingerprint !== host.hostKeyOffered) {
      throw new ApiError(409, 'not-offered', `fingerprint: ${host.name} is not offering ${fingerprint}${host.hostKeyOffered ? ` (it offered ${host.hostKeyOffered})` : ''}`, 'fingerprint');
    }
    const answer = await askRelay(c.env, host.relayId, 'accept-host-key', { target: { address: host.address, port: host.port, user: host.user }, fingerprint }, PROBE_TIMEOUT_MS);
    if (!answer.ok) throw new ApiError(502, answer.error.code, `the relay could not confirm the new key: ${answer.error.message}`);
    const [row] = await db
      .update(hosts)
      .set({ hostKey: fingerprint, hostKeyOffered: null, status: 'unknown', statusReason: null, updatedAt: Date.now() })
      .where(eq(hosts.id, host.id))
      .returning();
    await publish(c.env, { type: 'host', host: hostJson(row) });
    const { jobIds } = await startScans(c.env, db, [row], c.get('identity').name);
    return c.json({ host: hostJson(row), jobId: jobIds[0] });
  })
  .post('/:id/test', async (c) => {
    const host = await findHost(openDb(c.env.DB), c.req.param('id'), c);
    if (!host.relayId) throw new ApiError(409, 'no-relay', 'this host has no relay assigned');
    return c.json(await testConnection(c.env, host.relayId, host));
  })
  .post('/:id/scan', async (c) => {
    const db = openDb(c.env.DB);
    const host = await findHost(db, c.req.param('id'), c);
    if (!host.relayId) throw new ApiError(409, 'no-relay', 'this host has no relay assigned');
    const { jobIds } = await startScans(c.env, db, [host], c.get('identity').name);
    return c.json({ jobId: jobIds[0] }, 202);
  })
  .post('/:id/upgrade', async (c) => {
    const db = openDb(c.env.DB);
    const host = await findHost(db, c.req.param('id'), c);
    const body = await readBody(c, UpgradeRequest);
    const key = readIdempotencyKey(c);
    const { job, created } = await startChange(c.env, db, host, { kind: 'upgrade', packages: body.packages, withoutSnapshot: body.snapshot === false, idempotencyKey: key, requestedBy: c.get('identity').name });
    return c.json({ jobId: job.id }, created ? 202 : 200);
  })
  .post('/:id/reboot', async (c) => {
    const db = openDb(c.env.DB);
    const host = await findHost(db, c.req.param('id'), c);
    await readBody(c, RebootRequest);
    const key = readIdempotencyKey(c);
    const { job, created } = await startChange(c.env, db, host, { kind: 'reboot', idempotencyKey: key, requestedBy: c.get('identity').name });
    return c.json({ jobId: job.id }, created ? 202 : 200);
  });
