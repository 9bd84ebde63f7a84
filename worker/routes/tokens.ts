import { Hono } from 'hono';
import { and, desc, eq, isNull } from 'drizzle-orm';
import { TokenCreate } from '../../protocol/api.ts';
import { tokenJson } from '../lib/serialize.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { notFound, readBody } from '../lib/http.ts';
import { newId, randomToken, sha256Hex } from '../lib/crypto.ts';
import { tokenOwnerFor } from '../auth/token-owner.ts';
import { closeLive } from '../live-feed.ts';

const { apiTokens } = schema;

// API tokens for scripts: `Authorization: Bearer pmt_…`, with a role; shown once.
export const tokenRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const rows = await openDb(c.env.DB).select().from(apiTokens).where(isNull(apiTokens.revokedAt)).orderBy(desc(apiTokens.createdAt));
    return c.json(rows.map(tokenJson));
  })
  .post('/', async (c) => {
    const body = await readBody(c, TokenCreate);
    const token = randomToken('pmt');
    const db = openDb(c.env.DB);
    const identity = c.get('identity');
    const [row] = await db
      .insert(apiTokens)
      .values({
        id: newId(),
        name: body.name,
        role: body.role,
        tokenHash: await sha256Hex(token),
        createdBy: identity.name,
        createdByUserId: await tokenOwnerFor(db, identity),
        createdAt: Date.now(),
      })
      .returning();
    return c.json({ token: tokenJson(row), secret: token }, 201);
  })
  .delete('/:id', async (c) => {
    const [row] = await openDb(c.env.DB)
      .update(apiTokens)
      .set({ revokedAt: Date.now() })
      .where(and(eq(apiTokens.id, c.req.param('id')), isNull(apiTokens.revokedAt)))
      .returning();
    if (!row) throw notFound('token');
    await closeLive(c.env, { tokenId: row.id }, 'token revoked');
    return c.body(null, 204);
  });
