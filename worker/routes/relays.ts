import { Hono } from 'hono';
import { and, eq, isNull } from 'drizzle-orm';
import { AcceptHostKey, RelayCreate } from '../../protocol/api.ts';
import type { AppEnv, Env } from '../env.ts';
import { openDb, schema, type RelayRow } from '../db/index.ts';
import { ApiError, readBody, notFound } from '../lib/http.ts';
import { newId, randomToken, sha256Hex } from '../lib/crypto.ts';
import { relayJson } from '../lib/serialize.ts';
import { relayHub } from '../relay-hub.ts';
import { publish } from '../live-feed.ts';
import { sshKeyFingerprint } from '../relay-key.ts';

const { relays } = schema;

/** A relay row with its live state, asked of its Durable Object. */
export async function relayWithStatus(env: Env, row: RelayRow) {
  const live = await relayHub(env, row.id)
    .status()
    .catch(() => ({ connected: false, lastSeenAt: null }));
  return relayJson(row, live);
}

export const relayRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const rows = await openDb(c.env.DB).select().from(relays).where(isNull(relays.revokedAt)).orderBy(relays.createdAt);
    return c.json(await Promise.all(rows.map((r) => relayWithStatus(c.env, r))));
  })
  .post('/', async (c) => {
    const body = await readBody(c, RelayCreate);
    const token = randomToken('pmr');
    const [row] = await openDb(c.env.DB)
      .insert(relays)
      .values({ id: newId(), name: body.name, tokenHash: await sha256Hex(token), createdAt: Date.now() })
      .returning();
    const relay = relayJson(row, { connected: false, lastSeenAt: null });
    await publish(c.env, { type: 'relay', relay });
    // The token is shown this once; only its hash is kept.
    return c.json({ relay, token }, 201);
  })
  .post('/:id/rotate', async (c) => {
    // A new token; the old one stops working at once and its socket is closed (the relay
    // reconnects once its token file is updated).
    const id = c.req.param('id');
    const token = randomToken('pmr');
    const [row] = await openDb(c.env.DB)
      .update(relays)
      .set({ tokenHash: await sha256Hex(token) })
      .where(and(eq(relays.id, id), isNull(relays.revokedAt)))
      .returning();
    if (!row) throw notFound('relay');
    await relayHub(c.env, id).disconnect('relay token rotated');
    return c.json({ relay: relayJson(row, { connected: false, lastSeenAt: row.lastSeenAt }), token });
  })
  .post('/:id/accept-key', async (c) => {
    // The key the relay offers becomes its key (admins then authorise it on their hosts).
    const { fingerprint } = await readBody(c, AcceptHostKey);
    const db = openDb(c.env.DB);
    const row = await db.query.relays.findFirst({ where: and(eq(relays.id, c.req.param('id')), isNull(relays.revokedAt)) });
    if (!row) throw notFound('relay');
    const offered = row.publicKeyOffered ? sshKeyFingerprint(row.publicKeyOffered) : null;
    if (!row.publicKeyOffered || fingerprint !== offered) {
      throw new ApiError(409, 'not-offered', `fingerprint: ${row.name} is not offering ${fingerprint}${offered ? ` (it offers ${offered})` : ''}`, 'fingerprint');
    }
    const [updated] = await db
      .update(relays)
      .set({ publicKey: row.publicKeyOffered, publicKeyOffered: null })
      .where(and(eq(relays.id, row.id), eq(relays.publicKeyOffered, row.publicKeyOffered)))
      .returning();
    if (!updated) throw new ApiError(409, 'not-offered', 'fingerprint: the relay offered another key meanwhile; look again', 'fingerprint');
    const relay = await relayWithStatus(c.env, updated);
    await publish(c.env, { type: 'relay', relay });
    return c.json(relay);
  })
  .delete('/:id', async (c) => {
    const id = c.req.param('id');
    const [row] = await openDb(c.env.DB)
      .update(relays)
      .set({ revokedAt: Date.now() })
      .where(eq(relays.id, id))
      .returning();
    if (!row) throw notFound('relay');
    await relayHub(c.env, id).disconnect('relay revoked');
    return c.body(null, 204);
  });
