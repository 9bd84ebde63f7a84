// Browser sessions: a random token in a `__Host-` cookie (HttpOnly, Secure, SameSite=Strict),
// only its SHA-256 in D1, with an idle and an absolute expiry.
import type { Context } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { eq } from 'drizzle-orm';
import { schema, type Db } from '../db/index.ts';
import { newId, randomToken, sha256Hex } from '../lib/crypto.ts';
import { clientAddress } from '../lib/local.ts';

const { sessions, users } = schema;

/** A session unused this long ends. */
export const SESSION_IDLE_MS = 12 * 3_600_000;
/** And none lives longer than this. */
export const SESSION_MAX_MS = 7 * 86_400_000;
/** lastSeenAt is written at most this often (each write is a D1 query). */
const TOUCH_EVERY_MS = 60_000;

/** `__Host-` requires Secure and a secure origin. Browsers treat http://localhost and
 * http://127.0.0.1 as secure, so the local `npm start` uses the same cookie. */
export const SESSION_COOKIE = '__Host-patchman_session';

export async function createSession(c: Context, db: Db, userId: string): Promise<void> {
  const token = randomToken('pms');
  const now = Date.now();
  await db.insert(sessions).values({
    id: newId(),
    tokenHash: await sha256Hex(token),
    userId,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + SESSION_MAX_MS,
    ip: clientAddress(c.env, c.req.raw),
    userAgent: c.req.header('User-Agent')?.slice(0, 200) ?? null,
  });
  setCookie(c, SESSION_COOKIE, token, { path: '/', httpOnly: true, secure: true, sameSite: 'Strict', maxAge: SESSION_MAX_MS / 1000 });
}

/** The session token the request's cookie carries, if it looks like one. */
export function sessionToken(c: Context): string | null {
  const token = getCookie(c, SESSION_COOKIE);
  return token?.startsWith('pms_') ? token : null;
}

/** The session with this token hash and its user, as one query that can join a D1 batch.
 * Only columns with distinct names: inside a batch drizzle reads rows by column name. */
export function sessionQuery(db: Db, tokenHash: string) {
  return db
    .select({
      sessionId: sessions.id,
      lastSeenAt: sessions.lastSeenAt,
      expiresAt: sessions.expiresAt,
      userId: sessions.userId,
      username: users.username,
      role: users.role,
      disabledAt: users.disabledAt,
    })
    .from(sessions)
    .innerJoin(users, eq(sessions.userId, users.id))
    .where(eq(sessions.tokenHash, tokenHash));
}

/** The live session sessionQuery found, or null. A session past its idle or absolute expiry,
 * or whose user is disabled, is deleted; lastSeenAt is written at most every minute. */
export async function sessionFrom(db: Db, rows: Awaited<ReturnType<typeof sessionQuery>>) {
  const row = rows[0];
  if (!row) return null;
  const now = Date.now();
  if (row.expiresAt <= now || row.lastSeenAt + SESSION_IDLE_MS <= now || row.disabledAt) {
    await db.delete(sessions).where(eq(sessions.id, row.sessionId));
    return null;
  }
  if (now - row.lastSeenAt > TOUCH_EVERY_MS) {
    await db.update(sessions).set({ lastSeenAt: now }).where(eq(sessions.id, row.sessionId));
  }
  return row;
}

export async function endSession(c: Context, db: Db, sessionId: string | undefined): Promise<void> {
  if (sessionId) await db.delete(sessions).where(eq(sessions.id, sessionId));
  deleteCookie(c, SESSION_COOKIE, { path: '/', secure: true });
}
