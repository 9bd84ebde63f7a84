// Every /api request passes here: who is calling (Access assertion, API token or session
// cookie), may they (the role policy), is it a cross-site request (CSRF), and, for anything
// that changes something, an audit record of what happened.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.ts';
import { openDb } from '../db/index.ts';
import { ApiError } from '../lib/http.ts';
import { recordAudit } from './audit.ts';
import { admit, identify, roleRefusal } from './credential.ts';
import { isCheckedRead } from './checked-read.ts';

/** Paths that work without signing in: the health check, first-run setup, logging in, asking
 * whether one is signed in (it identifies the caller itself). */
const PUBLIC = [/^\/api\/health$/, /^\/api\/setup$/, /^\/api\/auth\/login$/, /^\/api\/auth\/session$/];

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

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
  if (isCheckedRead(c.req.method, path)) {
    // The route checks the credential in its own D1 batch (worker/auth/checked-read.ts). If it
    // answered without that check (an early return, a 400, an error), check now: the answer
    // leaves only for a verified caller, and a bad credential's 401 replaces it. (A check that
    // ran and refused, its error the answer, is not asked of D1 again.)
    await next();
    if (!c.get('identity') && !(c.get('credentialJudged') && c.error)) admit(c, await identify(c, db));
    return;
  }
  // Every request checks its credential against D1 (credential.ts): a revoked token, a
  // session signed out, a user disabled or demoted stops working at once in every isolate.
  const identity = await identify(c, db);
  c.set('identity', identity);
  const mutating = !SAFE_METHODS.has(c.req.method);
  if (mutating && identity.kind !== 'token') checkCsrf(c);
  const refused = roleRefusal(identity, c.req.method, path);
  if (refused) {
    if (mutating) await recordAudit(c, db, identity, 403);
    throw refused;
  }
  await next();
  if (mutating) await recordAudit(c, db, identity, c.res.status);
};
