// The dashboard's hot reads check their credential in the same D1 batch as their own reads:
// one round trip (and one transaction) instead of two or three. Under `npm start` each D1
// round trip costs the single-threaded workerd about 1.3 ms of CPU (issue 11).
//
// The rule that keeps this safe: for a path in CHECKED_READS the middleware does not check
// the credential up front; the route calls readChecked, which judges the credential before it
// hands back any result. Whatever such a route answers without a successful readChecked (an
// early return, a 400, an error) is held back by the middleware until the usual check has
// passed (worker/auth/middleware.ts): a bad credential's 401 always wins.
import type { Context } from 'hono';
import type { BatchResponse } from 'drizzle-orm/batch';
import type { AppEnv } from '../env.ts';
import { openDb } from '../db/index.ts';
import { admit, credentialCheck, type Statement } from './credential.ts';

/** Pure reads (GET only) whose routes check the credential with readChecked. */
const CHECKED_READS: RegExp[] = [
  /^\/api\/summary$/,
  /^\/api\/hosts$/,
  /^\/api\/hosts\/groups$/,
  /^\/api\/hosts\/[^/]+\/updates$/,
  /^\/api\/jobs$/,
];

export function isCheckedRead(method: string, path: string): boolean {
  return method === 'GET' && CHECKED_READS.some((p) => p.test(path));
}

/** Run the route's statements in one D1 batch behind this request's credential check, judge
 * the credential first (the same 401/403 as ever), and only then return the route's results.
 * Where the middleware has already identified the caller, just the route's batch. With no
 * token and no session the caller is most likely refused: the route's reads are not spent on
 * that (only an Access assertion can pass there, and the reads follow). */
export async function readChecked<T extends [Statement, ...Statement[]]>(c: Context<AppEnv>, statements: T): Promise<BatchResponse<T>> {
  const db = openDb(c.env.DB);
  if (!c.get('identity')) {
    const check = await credentialCheck(c, db);
    const n = check.statements.length;
    const results: unknown[] = await db.batch(check.anonymous ? check.statements : [...check.statements, ...statements]);
    c.set('credentialJudged', true);
    admit(c, await check.judge(results.slice(0, n)));
    if (!check.anonymous) return results.slice(n) as BatchResponse<T>;
  }
  return db.batch(statements) as Promise<BatchResponse<T>>;
}
