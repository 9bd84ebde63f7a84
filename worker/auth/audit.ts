// The audit log: one row per request that tried to change something (and per sign-in),
// whether it succeeded or not. Never the body: it may hold a password.
import type { Context } from 'hono';
import { schema, type Db } from '../db/index.ts';
import type { AppEnv, Identity } from '../env.ts';
import { newId } from '../lib/crypto.ts';
import { clientAddress } from '../lib/local.ts';

/** `POST /api/hosts/abc/upgrade` → action `POST /api/hosts/:id/upgrade`, target `abc`. */
export function describeRequest(method: string, path: string): { action: string; target: string | null } {
  const parts = path.split('/');
  let target: string | null = null;
  // /api/<collection>/<id>[/<verb>]
  if (parts.length >= 4 && parts[3] && !['test'].includes(parts[3])) {
    target = parts[3];
    parts[3] = ':id';
  }
  return { action: `${method} ${parts.join('/')}`, target };
}

export async function recordAudit(
  c: Context<AppEnv>,
  db: Db,
  who: Pick<Identity, 'name' | 'kind'>,
  status: number,
  override?: { action?: string; target?: string | null },
): Promise<void> {
  const { action, target } = describeRequest(c.req.method, c.req.path);
  await db.insert(schema.audit).values({
    id: newId(),
    at: Date.now(),
    actor: who.name,
    actorType: who.kind,
    action: override?.action ?? action,
    target: override?.target !== undefined ? override.target : target,
    status,
    ip: clientAddress(c.env, c.req.raw),
    userAgent: c.req.header('User-Agent')?.slice(0, 200) ?? null,
  });
}
