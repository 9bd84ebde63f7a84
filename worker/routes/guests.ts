// Proxmox guests: a node's guests as its last scan listed them, adopting one as a managed
// host reached through the node, and rolling a guest back to the snapshot an upgrade took.
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { and, asc, eq } from 'drizzle-orm';
import { AdoptRequest, RollbackRequest, VmidParam, type Guest } from '../../protocol/guests-api.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema, type Db, type HostRow, type JobRow } from '../db/index.ts';
import { ApiError, notFound, readBody, readIdempotencyKey } from '../lib/http.ts';
import { newId } from '../lib/crypto.ts';
import { hostJson } from '../lib/serialize.ts';
import { publish } from '../live-feed.ts';
import { startScans } from '../hosts.ts';
import { startChange } from '../changes.ts';
import { latestSnapshotUpgrade, rollbackSource } from '../guest-changes.ts';

const { hosts, jobs, proxmoxGuests } = schema;

async function findHost(db: Db, id: string): Promise<HostRow> {
  const row = await db.query.hosts.findFirst({ where: eq(hosts.id, id) });
  if (!row) throw notFound('host');
  return row;
}

function readVmid(c: Context<AppEnv>): number {
  const r = v.safeParse(VmidParam, c.req.param('vmid'));
  if (!r.success) throw new ApiError(400, 'invalid', `vmid: ${r.issues[0].message}`, 'vmid');
  return r.output;
}

const iso = (t: number) => new Date(t).toISOString();

function guestJson(g: typeof proxmoxGuests.$inferSelect, hostId: string | null): Guest {
  return {
    vmid: g.vmid,
    type: g.kind,
    name: g.name,
    status: g.status,
    node: g.node,
    snapshots: g.snapshots,
    snapshotReason: g.snapshotReason,
    reachable: g.reachable,
    reachReason: g.reachReason,
    ostype: g.ostype,
    hostId,
    seenAt: iso(g.seenAt),
  };
}

/** Why this guest cannot be adopted, or null. A container is reached with `pct exec` whether
 * it runs or not (a stopped one is reported, not started); a VM only through its guest agent. */
function adoptRefusal(g: typeof proxmoxGuests.$inferSelect): ApiError | null {
  if (g.kind === 'qemu' && !g.reachable) {
    return new ApiError(
      409,
      'not-reachable',
      `VM ${g.vmid} (${g.name}) cannot be reached through its node: ${g.reachReason ?? 'the QEMU guest agent is not answering'}. Enable the guest agent, or add the VM as an ordinary SSH host.`,
    );
  }
  return null;
}

/** Start a rollback of `host` to the snapshot `upgrade` took. */
async function startRollback(c: Context<AppEnv>, db: Db, host: HostRow, upgrade: JobRow) {
  const source = rollbackSource(upgrade, host);
  if ('refused' in source) throw new ApiError(409, 'no-snapshot', source.refused);
  c.set('audit', { target: host.id, detail: `${host.name}: roll back to ${source.snapshot} (taken by job ${upgrade.id})` });
  const { job, created } = await startChange(c.env, db, host, {
    kind: 'rollback',
    rollback: { snapshot: source.snapshot, jobId: upgrade.id },
    idempotencyKey: readIdempotencyKey(c),
    requestedBy: c.get('identity').name,
  });
  return c.json({ jobId: job.id, snapshot: source.snapshot }, created ? 202 : 200);
}

export const guestRoutes = new Hono<AppEnv>()
  .get('/hosts/:id/guests', async (c) => {
    const db = openDb(c.env.DB);
    const node = await findHost(db, c.req.param('id'));
    const [rows, adopted] = await db.batch([
      db.select().from(proxmoxGuests).where(eq(proxmoxGuests.nodeHostId, node.id)).orderBy(asc(proxmoxGuests.vmid)),
      db.select({ id: hosts.id, vmid: hosts.guestVmid }).from(hosts).where(eq(hosts.guestOf, node.id)),
    ]);
    const byVmid = new Map(adopted.map((h) => [h.vmid, h.id]));
    return c.json(rows.map((g) => guestJson(g, byVmid.get(g.vmid) ?? null)));
  })
  .post('/hosts/:id/guests/:vmid/adopt', async (c) => {
    const db = openDb(c.env.DB);
    const node = await findHost(db, c.req.param('id'));
    const vmid = readVmid(c);
    c.set('audit', { target: node.id, detail: `${node.name}: guest ${vmid}` });
    const body = await readBody(c, AdoptRequest);
    if (node.guestOf) throw new ApiError(409, 'not-a-node', `${node.name} is itself a guest, not a Proxmox VE node`);
    const guest = await db.query.proxmoxGuests.findFirst({ where: and(eq(proxmoxGuests.nodeHostId, node.id), eq(proxmoxGuests.vmid, vmid)) });
    if (!guest) throw new ApiError(404, 'not-found', `${node.name} lists no guest ${vmid} (scan the node first)`);
    const refused = adoptRefusal(guest);
    if (refused) throw refused;
    const kindWord = guest.kind === 'lxc' ? 'container' : 'VM';
    c.set('audit', { target: node.id, detail: `${node.name}: ${kindWord} ${vmid} (${guest.name})` });
    const existing = await db.query.hosts.findFirst({ where: and(eq(hosts.guestOf, node.id), eq(hosts.guestVmid, vmid)) });
    if (existing) throw new ApiError(409, 'conflict', `${kindWord} ${vmid} of ${node.name} is already a host (${existing.name})`);
    const now = Date.now();
    const inserted = await db
      .insert(hosts)
      .values({
        id: newId(),
        name: body.name ?? guest.name,
        // the node's SSH target and relay; every request names the guest
        address: node.address,
        port: node.port,
        user: node.user,
        relayId: node.relayId,
        tags: body.tags,
        monitorOnly: false,
        guestOf: node.id,
        guestKind: guest.kind,
        guestVmid: vmid,
        createdAt: now,
        updatedAt: now,
      })
      // two adoptions racing: the second finds the first (the hosts_guest index)
      .onConflictDoNothing()
      .returning();
    const row = inserted[0];
    if (!row) throw new ApiError(409, 'conflict', `${kindWord} ${vmid} of ${node.name} is already a host`);
    c.set('audit', { target: row.id, detail: `${row.name} (${kindWord} ${vmid} on ${node.name})` });
    const host = hostJson(row);
    await publish(c.env, { type: 'host', host });
    const scanJobId = body.scan && row.relayId ? ((await startScans(c.env, db, [row], c.get('identity').name)).jobIds[0] ?? null) : null;
    return c.json({ ...host, scanJobId }, 201);
  })
  .post('/jobs/:id/rollback', async (c) => {
    const db = openDb(c.env.DB);
    const upgrade = await db.query.jobs.findFirst({ where: eq(jobs.id, c.req.param('id')) });
    if (!upgrade) throw notFound('job');
    const host = await findHost(db, upgrade.hostId);
    c.set('audit', { target: host.id, detail: `${host.name}: job ${upgrade.id}` });
    await readBody(c, v.omit(RollbackRequest, ['jobId']));
    return startRollback(c, db, host, upgrade);
  })
  .post('/hosts/:id/rollback', async (c) => {
    const db = openDb(c.env.DB);
    const host = await findHost(db, c.req.param('id'));
    c.set('audit', { target: host.id, detail: host.name });
    const { jobId } = await readBody(c, RollbackRequest);
    const upgrade = jobId ? await db.query.jobs.findFirst({ where: and(eq(jobs.id, jobId), eq(jobs.hostId, host.id)) }) : await latestSnapshotUpgrade(db, host);
    if (!upgrade) throw jobId ? new ApiError(400, 'invalid', `jobId: no such job of ${host.name}`, 'jobId') : new ApiError(409, 'no-snapshot', `${host.name} has no upgrade that took a snapshot`);
    return startRollback(c, db, host, upgrade);
  });
