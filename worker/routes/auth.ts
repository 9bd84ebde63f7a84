import { Hono } from 'hono';
import { eq } from 'drizzle-orm';
import { LoginBody, type Me, type SessionAnswer } from '../../protocol/api.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { ApiError, readBody } from '../lib/http.ts';
import { DUMMY_HASH, verifyPassword } from '../auth/password.ts';
import { createSession, endSession } from '../auth/session.ts';
import { clearFailures, lockedFor, recordFailure, throttleKey } from '../auth/throttle.ts';
import { recordAudit } from '../auth/audit.ts';
import { checkCsrf } from '../auth/middleware.ts';
import { identify } from '../auth/credential.ts';
import { readSettings } from '../settings.ts';
import { closeLive } from '../live-feed.ts';
import { clientAddress } from '../lib/local.ts';

const { users } = schema;

// POST /api/auth/login {username, password} → session cookie; POST /api/auth/logout;
// GET /api/auth/me (401 when nobody), GET /api/auth/session (200 {me: null} when nobody). Wrong name and wrong password are the same answer, at the same cost.
export const authRoutes = new Hono<AppEnv>()
  .post('/login', async (c) => {
    checkCsrf(c);
    const { username, password } = await readBody(c, LoginBody);
    const db = openDb(c.env.DB);
    if ((await readSettings(db)).accessEnabled) {
      throw new ApiError(409, 'access-mode', 'PatchMan is in Cloudflare Access mode: sign in through Access, not with a password');
    }
    const key = throttleKey(username, clientAddress(c.env, c.req.raw));
    const wait = await lockedFor(db, key);
    if (wait > 0) {
      c.header('Retry-After', String(Math.ceil(wait / 1000)));
      await recordAudit(c, db, { name: username, kind: 'user' }, 429, { action: 'login (throttled)', target: null });
      throw new ApiError(429, 'throttled', `too many failed sign-ins for ${username}; try again in ${Math.ceil(wait / 1000)} s`);
    }
    const user = await db.query.users.findFirst({ where: eq(users.username, username) });
    const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
    if (!user || !ok || user.disabledAt || !user.passwordHash) {
      const lock = await recordFailure(db, key);
      await recordAudit(c, db, { name: username, kind: 'user' }, 401, { action: 'login (failed)', target: null });
      if (lock > 0) c.header('Retry-After', String(Math.ceil(lock / 1000)));
      throw new ApiError(401, 'bad-credentials', 'wrong user name or password');
    }
    await clearFailures(db, key);
    await db.update(users).set({ lastLoginAt: Date.now() }).where(eq(users.id, user.id));
    await createSession(c, db, user.id);
    await recordAudit(c, db, { name: user.username, kind: 'user' }, 200, { action: 'login', target: null });
    return c.json({ user: { id: user.id, username: user.username, role: user.role }, via: 'user' } satisfies Me);
  })
  .post('/logout', async (c) => {
    const id = c.get('identity');
    await endSession(c, openDb(c.env.DB), id.sessionId);
    if (id.sessionId) await closeLive(c.env, { sessionId: id.sessionId }, 'signed out');
    return c.body(null, 204);
  })
  .get('/session', async (c) => {
    // public (see PUBLIC in the middleware): identify here, and say "nobody" with a 200
    try {
      const id = await identify(c, openDb(c.env.DB));
      return c.json({ me: { user: { id: id.id, username: id.name, role: id.role }, via: id.kind } } satisfies SessionAnswer);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return c.json({ me: null } satisfies SessionAnswer);
      if (err instanceof ApiError && err.status === 403) return c.json({ me: null, error: err.message } satisfies SessionAnswer);
      throw err;
    }
  })
  .get('/me', (c) => {
    const id = c.get('identity');
    return c.json({ user: { id: id.id, username: id.name, role: id.role }, via: id.kind } satisfies Me);
  });
