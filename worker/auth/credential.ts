// Who is calling, in two steps: the D1 statements that read this request's credential, and
// the rules that judge what they read. Split so that a hot read can send the check in the
// same D1 batch as its own reads (worker/auth/checked-read.ts), while `identify` runs the
// very same statements and rules on their own. Every request still asks D1: a revoked token,
// a session signed out, a user disabled or demoted stops working at once in every isolate.
// (A per-isolate cache of identities was measured for issue 11 and not kept.)
import type { Context } from 'hono';
import type { BatchItem } from 'drizzle-orm/batch';
import { eq } from 'drizzle-orm';
import type { AppEnv, Identity } from '../env.ts';
import { schema, type Db } from '../db/index.ts';
import { ApiError } from '../lib/http.ts';
import { sha256Hex } from '../lib/crypto.ts';
import { settingsFrom, settingsQuery } from '../settings.ts';
import type { Settings } from '../../protocol/api.ts';
import { verifyAccessJwt } from './access.ts';
import { atLeast, requiredRole } from './policy.ts';
import { sessionFrom, sessionQuery, sessionToken } from './session.ts';
import { tokenFrom, tokenQuery } from './token-owner.ts';

const { apiTokens, users } = schema;

type Ctx = Context<AppEnv>;
export type Statement = BatchItem<'sqlite'>;

/** lastUsedAt of a token is written at most this often (each write is a D1 query). */
const TOKEN_TOUCH_EVERY_MS = 60_000;

/** The statements that read a request's credential, and the rules for their results (in the
 * same order). `judge` throws the 401/403 ApiError a bad credential gets. */
export interface CredentialCheck {
  /** No token and no session cookie: only an Access assertion could still identify the caller. */
  anonymous: boolean;
  statements: [Statement, ...Statement[]];
  judge(results: unknown[]): Promise<Identity>;
}

const badToken = () => new ApiError(401, 'unauthenticated', 'the API token is not valid (revoked, or never issued)');

/** What to ask D1 about this request's credential. A token that cannot be one is refused
 * here, before any query. */
export async function credentialCheck(c: Ctx, db: Db): Promise<CredentialCheck> {
  const auth = c.req.header('Authorization');
  if (auth?.startsWith('Bearer ')) {
    const token = auth.slice('Bearer '.length).trim();
    if (!token.startsWith('pmt_')) throw badToken();
    return {
      anonymous: false,
      statements: [tokenQuery(db, await sha256Hex(token))],
      judge: async ([rows]) => {
        const found = tokenFrom(rows as Awaited<ReturnType<typeof tokenQuery>>);
        if (!found || found.row.revokedAt || !found.role) throw badToken();
        const { row, role } = found;
        const now = Date.now();
        if (!row.lastUsedAt || now - row.lastUsedAt > TOKEN_TOUCH_EVERY_MS) await db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, row.id));
        return { kind: 'token', id: row.id, name: `token:${row.name}`, role };
      },
    };
  }
  // A browser: the settings say whether Cloudflare Access mode is on (then the Access
  // assertion counts, not the cookie); the session and its user are read alongside.
  const cookie = sessionToken(c);
  const session = cookie ? sessionQuery(db, await sha256Hex(cookie)) : null;
  return {
    anonymous: !session,
    statements: session ? [settingsQuery(db), session] : [settingsQuery(db)],
    judge: async ([settingRows, sessionRows]) => {
      const settings = settingsFrom(settingRows as Awaited<ReturnType<typeof settingsQuery>>);
      if (settings.accessEnabled) return accessIdentity(c, db, settings);
      const s = sessionRows ? await sessionFrom(db, sessionRows as Awaited<ReturnType<typeof sessionQuery>>) : null;
      if (!s) throw new ApiError(401, 'unauthenticated', 'sign in first');
      return { kind: 'user', id: s.userId, name: s.username, role: s.role, sessionId: s.sessionId };
    },
  };
}

/** Cloudflare Access mode: the verified assertion's user (its JWT needs crypto and maybe the
 * team's keys before D1 can be asked about the user, so this stays a query of its own). */
async function accessIdentity(c: Ctx, db: Db, settings: Settings): Promise<Identity> {
  const jwt = c.req.header('Cf-Access-Jwt-Assertion');
  if (!jwt) throw new ApiError(401, 'unauthenticated', 'Cloudflare Access mode: this request did not come through Access');
  const r = await verifyAccessJwt(jwt, { teamDomain: settings.accessTeamDomain, audience: settings.accessAudience });
  if (!r.ok) throw new ApiError(401, 'unauthenticated', `Cloudflare Access assertion refused: ${r.reason}`);
  const user = await db.query.users.findFirst({ where: eq(users.username, r.email) });
  if (!user || user.disabledAt) throw new ApiError(403, 'forbidden', `${r.email} passed Cloudflare Access but has no PatchMan account; an admin can add it`);
  return { kind: 'access', id: user.id, name: user.username, role: user.role };
}

/** Who is calling (one D1 round trip, plus the Access user in Access mode), or an ApiError
 * (401/403). */
export async function identify(c: Ctx, db: Db): Promise<Identity> {
  const check = await credentialCheck(c, db);
  return check.judge(await db.batch(check.statements));
}

/** Let the judged caller in: the 403 if their role is below what this request needs, else
 * they are this request's identity. */
export function admit(c: Ctx, identity: Identity): void {
  const refused = roleRefusal(identity, c.req.method, c.req.path);
  if (refused) throw refused;
  c.set('identity', identity);
}

/** The 403 for a caller whose role is below what this request needs, or null. */
export function roleRefusal(identity: Identity, method: string, path: string): ApiError | null {
  const needed = requiredRole(method, path);
  if (atLeast(identity.role, needed)) return null;
  return new ApiError(403, 'forbidden', `this needs the ${needed} role; ${identity.name} is ${identity.role === 'admin' ? 'an' : 'a'} ${identity.role}`);
}
