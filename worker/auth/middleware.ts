// Every /api request passes here: who is calling (Access assertion, API token or session
// cookie), may they (the role policy), is it a cross-site request (CSRF), and, for anything
// that changes something, an audit record of what happened.
import type { MiddlewareHandler } from 'hono';
import { eq } from 'drizzle-orm';
import type { AppEnv, Identity } from '../env.ts';
import { openDb, schema, type Db } from '../db/index.ts';
import { ApiError } from '../lib/http.ts';
import { sha256Hex } from '../lib/crypto.ts';
import { readSettings } from '../settings.ts';
import { verifyAccessJwt } from './access.ts';
import { atLeast, requiredRole } from './policy.ts';
import { sessionUser } from './session.ts';
import { recordAudit } from './audit.ts';
import { tokenByHash } from './token-owner.ts';

const { apiTokens, users } = schema;

/** Paths that work without signing in: the health check, first-run setup, logging in, asking
 * whether one is signed in (it identifies the caller itself). */
const PUBLIC = [/^\/api\/health$/, /^\/api\/setup$/, /^\/api\/auth\/login$/, /^\/api\/auth\/session$/];

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

async function fromToken(db: Db, header: string): Promise<Identity | null> {
  const token = header.slice('Bearer '.length).trim();
  if (!token.startsWith('pmt_')) return null;
  const found = await tokenByHash(db, await sha256Hex(token));
  if (!found || found.row.revokedAt || !found.role) return null;
  const { row, role } = found;
  const now = Date.now();
  if (!row.lastUsedAt || now - row.lastUsedAt > 60_000) await db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, row.id));
  return { kind: 'token', id: row.id, name: `token:${row.name}`, role };
}

/** Who is calling, or an ApiError (401/403). */
export async function identify(c: Parameters<MiddlewareHandler<AppEnv>>[0], db: Db): Promise<Identity> {
  const auth = c.req.header('Authorization');
  if (auth?.startsWith('Bearer ')) {
    const id = await fromToken(db, auth);
    if (!id) throw new ApiError(401, 'unauthenticated', 'the API token is not valid (revoked, or never issued)');
    return id;
  }
  const settings = await readSettings(db);
  if (settings.accessEnabled) {
    const jwt = c.req.header('Cf-Access-Jwt-Assertion');
    if (!jwt) throw new ApiError(401, 'unauthenticated', 'Cloudflare Access mode: this request did not come through Access');
    const r = await verifyAccessJwt(jwt, { teamDomain: settings.accessTeamDomain, audience: settings.accessAudience });
    if (!r.ok) throw new ApiError(401, 'unauthenticated', `Cloudflare Access assertion refused: ${r.reason}`);
    const user = await db.query.users.findFirst({ where: eq(users.username, r.email) });
    if (!user || user.disabledAt) throw new ApiError(403, 'forbidden', `${r.email} passed Cloudflare Access but has no PatchMan account; an admin can add it`);
    return { kind: 'access', id: user.id, name: user.username, role: user.role };
  }
  const s = await sessionUser(c, db);
  if (!s) throw new ApiError(401, 'unauthenticated', 'sign in first');
  return { kind: 'user', id: s.user.id, name: s.user.username, role: s.user.role, sessionId: s.sessionId };
}

/** Cross-site requests carry the browser's cookie but not its intent: refuse them. A
 * browser says where a request comes from (Sec-Fetch-Site, Origin); a JSON content type
 * cannot be sent cross-site without a CORS preflight, which this API never answers. */
export function checkCsrf(c: Parameters<MiddlewareHandler<AppEnv>>[0]): void {
  const site = c.req.header('Sec-Fetch-Site');
  if (site && site !== 'same-origin' && site !== 'none') throw new ApiError(403, 'cross-site', 'cross-site requests are refused');
  const origin = c.req.header('Origin');
  if (origin && origin !== new URL(c.req.url).origin) throw new ApiError(403, 'cross-site', `requests from ${origin.slice(0, 100)} are refused`);
  const type = c.req.header('Content-Type') ?? '';
  if (!/^application\/json\b/i.test(type)) throw new ApiError(415, 'json-required', 'requests that change something must be sent as Content-Type: application/json');
}

export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const path = c.req.path;
  if (PUBLIC.some((p) => p.test(path))) return next();
  const db = openDb(c.env.DB);
  // Every request checks its credential against D1 (one query): a revoked token, a session
  // signed out, a user disabled or demoted stops working at once in every isolate. (A
  // per-isolate cache of identities was measured for issue 11 and not kept: another isolate
  // would have answered reads with a revoked credential for seconds.)
  const identity = await identify(c, db);
  c.set('identity', identity);
  const mutating = !SAFE_METHODS.has(c.req.method);
  if (mutating && identity.kind !== 'token') checkCsrf(c);
  const needed = requiredRole(c.req.method, path);
  if (!atLeast(identity.role, needed)) {
    if (mutating) await recordAudit(c, db, identity, 403);
    throw new ApiError(403, 'forbidden', `this needs the ${needed} role; ${identity.name} is ${identity.role === 'admin' ? 'an' : 'a'} ${identity.role}`);
  }
  await next();
  if (mutating) await recordAudit(c, db, identity, c.res.status);
};
