import { Hono } from 'hono';
import { sql } from 'drizzle-orm';
import { SetupBody, type Me, type SetupState } from '../../protocol/api.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema, type Db } from '../db/index.ts';
import { ApiError, readBody } from '../lib/http.ts';
import { newId, sha256Hex } from '../lib/crypto.ts';
import { hashPassword } from '../auth/password.ts';
import { createSession } from '../auth/session.ts';
import { recordAudit } from '../auth/audit.ts';
import { checkCsrf } from '../auth/middleware.ts';
import { isLocal } from '../lib/local.ts';

const { users } = schema;

async function hasUsers(db: Db): Promise<boolean> {
  const row = await db.select({ n: sql<number>`count(*)` }).from(users).get();
  return (row?.n ?? 0) > 0;
}

/** Compare secrets by their hashes, so the time taken says nothing about the secret. */
async function sameSecret(a: string, b: string): Promise<boolean> {
  return (await sha256Hex(a)) === (await sha256Hex(b));
}

// First run: create the admin account. Only while there is no user at all; anywhere but on
// localhost only with the SETUP_SECRET the deployer set with `wrangler secret put`.
export const setupRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const needed = !(await hasUsers(openDb(c.env.DB)));
    return c.json({ needed, secretRequired: !isLocal(c.env, c.req.url), secretConfigured: !!c.env.SETUP_SECRET } satisfies SetupState);
  })
  .post('/', async (c) => {
    checkCsrf(c);
    const body = await readBody(c, SetupBody);
    const db = openDb(c.env.DB);
    if (await hasUsers(db)) throw new ApiError(409, 'already-set-up', 'PatchMan already has an admin; sign in instead');
    if (!isLocal(c.env, c.req.url)) {
      if (!c.env.SETUP_SECRET) {
        throw new ApiError(403, 'setup-secret-missing', 'set a setup secret first: npx wrangler secret put SETUP_SECRET, then enter it here');
      }
      if (!body.setupSecret || !(await sameSecret(body.setupSecret, c.env.SETUP_SECRET))) {
        await recordAudit(c, db, { name: body.username, kind: 'user' }, 403, { action: 'setup (wrong secret)', target: null });
        throw new ApiError(403, 'bad-setup-secret', 'setupSecret: that is not the setup secret', 'setupSecret');
      }
    }
    const id = newId();
    // The insert itself checks there is still no user (two racing setups: one wins).
    const inserted = await db.run(
      sql`insert into users (id, username, password_hash, role, created_at) select ${id}, ${body.username}, ${await hashPassword(body.password)}, 'admin', ${Date.now()} where not exists (select 1 from users)`,
    );
    if (!inserted.meta.changes) throw new ApiError(409, 'already-set-up', 'PatchMan already has an admin; sign in instead');
    await createSession(c, db, id);
    await recordAudit(c, db, { name: body.username, kind: 'user' }, 201, { action: 'setup (admin created)', target: id });
    return c.json({ user: { id, username: body.username, role: 'admin' }, via: 'user' } satisfies Me, 201);
  });
