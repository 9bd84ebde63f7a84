// Who is calling, remembered for a few seconds per isolate: reading a list is most of what
// the dashboard and scripts do, and the sign-in check was one of the two or three D1 round
// trips each such request made. Only reads use it. Anything that changes something (revoking
// a token, signing out, disabling or demoting a user, turning Access on) is checked against
// D1 as before, and empties the cache when it is done, so in this isolate a revoked token or
// session stops working at once. Another isolate may still answer READS with a credential
// revoked elsewhere for at most IDENTITY_CACHE_MS; it can never change anything with it.
import type { Identity } from '../env.ts';
import { sha256Hex } from '../lib/crypto.ts';
import { SESSION_COOKIE } from './session.ts';

/** How long an identity is reused for reads. */
export const IDENTITY_CACHE_MS = 5_000;
/** More entries than this (many callers at once) and the cache starts over. */
const MAX_ENTRIES = 1_000;

const cache = new Map<string, { identity: Identity; until: number }>();

/** The cache key of the credential a request carries: an API token or a session cookie
 * (hashed: the cache never holds a secret). Null for anything else (Cloudflare Access). */
export async function credentialKey(authorization: string | undefined, cookieHeader: string | undefined): Promise<string | null> {
  if (authorization?.startsWith('Bearer ')) return `t:${await sha256Hex(authorization.slice('Bearer '.length).trim())}`;
  if (authorization) return null;
  const cookie = cookieHeader
    ?.split(';')
    .map((p) => p.trim())
    .find((p) => p.startsWith(`${SESSION_COOKIE}=`));
  return cookie ? `s:${await sha256Hex(cookie.slice(SESSION_COOKIE.length + 1))}` : null;
}

export function cachedIdentity(key: string, now = Date.now()): Identity | null {
  const hit = cache.get(key);
  if (!hit) return null;
  if (hit.until > now) return hit.identity;
  cache.delete(key);
  return null;
}

export function rememberIdentity(key: string, identity: Identity, now = Date.now()): void {
  if (cache.size >= MAX_ENTRIES) cache.clear();
  cache.set(key, { identity, until: now + IDENTITY_CACHE_MS });
}

/** After anything that changes something: every credential is checked again. */
export function forgetIdentities(): void {
  cache.clear();
}
