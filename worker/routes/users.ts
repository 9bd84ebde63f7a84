import { Hono } from 'hono';
import { and, asc, eq, isNull, ne, sql } from 'drizzle-orm';
import { UserCreate, UserPatch } from '../../protocol/api.ts';
import { userJson } from '../lib/serialize.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema, type Db } from '../db/index.ts';
import { ApiError, notFound, readBody } from '../lib/http.ts';
import { newId } from '../lib/crypto.ts';
import { hashPassword } from '../auth/password.ts';
import { revokeTokensOf } from '../auth/token-owner.ts';
import { closeLive } from '../live-feed.ts';

const { users, sessions } = schema;

/** The last enabled admin cannot be demoted, disabled or deleted: someone must be able to
 * administer PatchMan. */
async function otherAdmins(db: Db, id: string): Promise<number> {
  const row = await db
    .select({ n: sql<number>`count(*)` })
    .from(users)
    .where(and(eq(users.role, 'admin'), isNull(users.disabledAt), ne(users.id, id)))
    .get();
  return row?.n ?? 0;
}

export const userRoutes = new Hono<AppEnv>()
  .get('/', async (c) => c.json((await openDb(c.env.DB).select().from(users).orderBy(asc(users.username))).map(userJson)))
  .post('/', async (c) => {
    const body = await readBody(c, UserCreate);
    const db = openDb(c.env.DB);
    if (await db.query.users.findFirst({ where: eq(users.username, body.username) })) {
      throw new ApiError(409, 'conflict', `username: ${body.username} already exists`, 'username');
    }
    const [row] = await db
      .insert(users)
      .values({ id: newId(), username: body.username, role: body.role, passwordHash: body.password ? await hashPassword(body.password) : null, createdAt: Date.now() })
      .returning();
    return c.json(userJson(row), 201);
  })
  .patch('/:id', async (c) => {
    const db = openDb(c.env.DB);
    const user = await db.query.users.findFirst({ where: eq(users.id, c.req.param('id')) });
    if (!user) throw notFound('user');
    const patch = await readBody(c, UserPatch);
    const losesAdmin = user.role === 'admin' && ((patch.role && patch.role !== 'admin') || patch.disabled === true);
    if (losesAdmin && (await otherAdmins(db, user.id)) === 0) throw new ApiError(409, 'last-admin', 'this is the last admin: make another admin first');
    const [row] = await db
      .update(users)
      .set({
        ...(patch.role ? { role: patch.role } : {}),
        ...(patch.password ? { passwordHash: await hashPassword(patch.password) } : {}),
        ...(patch.disabled !== undefined ? { disabledAt: patch.disabled ? Date.now() : null } : {}),
      })
      .where(eq(users.id, user.id))
      .returning();
    // A new password or a disabled account ends every session of that user.
    if (patch.password || patch.disabled) await db.delete(sessions).where(eq(sessions.userId, user.id));
    if (patch.disabled) await revokeTokensOf(db, user);
    // Live sockets were opened with the old rights: they end (the dashboard signs in again).
    if (patch.password || patch.disabled || (patch.role && patch.role !== user.role)) await closeLive(c.env, { userId: user.id }, 'account changed');
    return c.json(userJson(row));
  })
  .delete('/:id', async (c) => {
    const db = openDb(c.env.DB);
    const user = await db.query.users.findFirst({ where: eq(users.id, c.req.param('id')) });
    if (!user) throw notFound('user');
    if (user.role === 'admin' && (await otherAdmins(db, user.id)) === 0) throw new ApiError(409, 'last-admin', 'this is the last admin: make another admin first');
    await revokeTokensOf(db, user);
    await db.delete(users).where(eq(users.id, user.id));
    await closeLive(c.env, { userId: user.id }, 'account deleted');
    return c.body(null, 204);
  });
