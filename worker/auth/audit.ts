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
  // /api/<collection>/<id>[/<verb>]; /api/notifications/<collection>/<id>[/<verb>]
  const at = parts[2] === 'notifications' ? 4 : 3;
  if (parts.length >= at + 1 && parts[at] && !['test'].includes(parts[at])) {
    target = parts[at];
    parts[at] = ':id';
  }
  return { action: `${method} ${parts.join('/')}`, target };
}

/** Longest `detail` kept (a bulk action over 1,000 hosts is summed up, not listed whole). */
export const AUDIT_DETAIL_MAX = 500;

/** "web-1, web-2 and 3 more": names for the audit log, sorted, within AUDIT_DETAIL_MAX. */
export function namesInWords(names: string[]): string {
  if (names.length === 0) return 'no hosts';
  const shown: string[] = [];
  let len = 0;
  for (const n of names.toSorted((a, b) => a.localeCompare(b))) {
    if (len + n.length + 2 > AUDIT_DETAIL_MAX - 20) break;
    shown.push(n);
    len += n.length + 2;
  }
  const rest = names.length - shown.length;
  return rest ? `${shown.join(', ')} and ${rest} more` : shown.join(', ');
}

export async function recordAudit(
  c: Context<AppEnv>,
  db: Db,
  who: Pick<Identity, 'name' | 'kind'>,
  status: number,
  override?: { action?: string; target?: string | null },
): Promise<void> {
  const { action, target } = describeRequest(c.req.method, c.req.path);
  const note = c.get('audit');
  await db.insert(schema.audit).values({
    id: newId(),
    at: Date.now(),
    actor: who.name,
    actorType: who.kind,
    action: override?.action ?? action,
    target: override?.target !== undefined ? override.target : note?.target !== undefined ? note.target : target,
    detail: note?.detail ? note.detail.slice(0, AUDIT_DETAIL_MAX) : null,
    status,
    ip: clientAddress(c.env, c.req.raw),
    userAgent: c.req.header('User-Agent')?.slice(0, 200) ?? null,
  });
}
