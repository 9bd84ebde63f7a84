// Who holds each browser live socket, and whether they still may. The upgrade is checked
// (same origin only); the holder is kept on the socket; the socket is closed at once when the
// holder's session ends, their user is disabled, deleted or changes role, or their token is
// revoked, and every LIVE_RECHECK_MS the LiveFeed checks all of them again (expiry).
import type { Context } from 'hono';
import { eq } from 'drizzle-orm';
import type { AppEnv, Identity } from './env.ts';
import { schema, type Db } from './db/index.ts';
import { ApiError } from './lib/http.ts';
import { SESSION_IDLE_MS } from './auth/session.ts';
import { effectiveTokenRole, tokenOwnerFor } from './auth/token-owner.ts';
import type { Role } from './auth/policy.ts';

const { sessions, users, apiTokens } = schema;

/** How often the live feed checks again that each socket's holder may still read. */
export const LIVE_RECHECK_MS = 60_000;

/** Close code for a socket whose right to read ended (the dashboard signs in again). */
export const LIVE_AUTH_ENDED = 4401;

/** The holder of a live socket, kept on it (survives hibernation). */
export interface LiveHolder {
  kind: Identity['kind'];
  role: Role;
  /** The user (for a token: the user it answers to, if any). */
  userId: string | null;
  sessionId?: string;
  tokenId?: string;
}

/** Which sockets to close: any that match every given field. */
export type LiveMatch = { userId?: string; sessionId?: string; tokenId?: string };

/** A browser always sends Origin with a WebSocket upgrade: it must be ours. A script with an
 * API token may leave it out, but not name another origin. */
export function checkLiveOrigin(c: Context<AppEnv>, identity: Identity): void {
  const origin = c.req.header('Origin');
  if (!origin && identity.kind === 'token') return;
  if (origin !== new URL(c.req.url).origin) {
    throw new ApiError(403, 'cross-site', origin ? `live updates for ${origin.slice(0, 100)} are refused` : 'live updates need an Origin header');
  }
}

export async function holderOf(db: Db, identity: Identity): Promise<LiveHolder> {
  if (identity.kind === 'token') return { kind: 'token', role: identity.role, userId: await tokenOwnerFor(db, identity), tokenId: identity.id };
  return { kind: identity.kind, role: identity.role, userId: identity.id, ...(identity.sessionId ? { sessionId: identity.sessionId } : {}) };
}

export function matches(h: LiveHolder, m: LiveMatch): boolean {
  const given = Object.entries(m).filter(([, v]) => v !== undefined);
  return given.length > 0 && given.every(([k, v]) => h[k as keyof LiveHolder] === v);
}

/** May this holder still read, with the role it had when the socket opened? */
export async function stillAllowed(db: Db, h: LiveHolder, now = Date.now()): Promise<boolean> {
  if (h.kind === 'token') {
    const row = h.tokenId ? await db.query.apiTokens.findFirst({ where: eq(apiTokens.id, h.tokenId) }) : undefined;
    if (!row || row.revokedAt) return false;
    return (await effectiveTokenRole(db, row)) === h.role;
  }
  const user = h.userId ? await db.query.users.findFirst({ where: eq(users.id, h.userId) }) : undefined;
  if (!user || user.disabledAt || user.role !== h.role) return false;
  if (h.kind !== 'user') return true;
  const s = h.sessionId ? await db.query.sessions.findFirst({ where: eq(sessions.id, h.sessionId) }) : undefined;
  return !!s && s.expiresAt > now && s.lastSeenAt + SESSION_IDLE_MS > now;
}
