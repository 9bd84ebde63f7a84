// Login throttling per account and client address. The first failures are free (typos);
// after that each failure locks the pair for twice as long as the last, up to a cap. Keyed
// by account *and* address: an attacker locks out only their own address, never the real
// user elsewhere, and even their own lockout ends after the cap.
import { eq } from 'drizzle-orm';
import { schema, type Db } from '../db/index.ts';

const { loginThrottle } = schema;

export const FREE_FAILURES = 5;
export const FIRST_LOCK_MS = 30_000;
export const MAX_LOCK_MS = 15 * 60_000;
/** Failures older than this are forgotten. */
const FORGET_MS = 24 * 3_600_000;

export function throttleKey(username: string, ip: string | null): string {
  return `${username.toLowerCase()}|${ip ?? 'unknown'}`;
}

/** Milliseconds until this key may try again (0: now). */
export async function lockedFor(db: Db, key: string, now = Date.now()): Promise<number> {
  const row = await db.query.loginThrottle.findFirst({ where: eq(loginThrottle.key, key) });
  return row?.lockedUntil && row.lockedUntil > now ? row.lockedUntil - now : 0;
}

export function lockAfter(failures: number): number {
  if (failures < FREE_FAILURES) return 0;
  return Math.min(MAX_LOCK_MS, FIRST_LOCK_MS * 2 ** (failures - FREE_FAILURES));
}

export async function recordFailure(db: Db, key: string, now = Date.now()): Promise<number> {
  const row = await db.query.loginThrottle.findFirst({ where: eq(loginThrottle.key, key) });
  const failures = row && now - row.lastFailureAt < FORGET_MS ? row.failures + 1 : 1;
  const lock = lockAfter(failures);
  const values = { key, failures, lockedUntil: lock ? now + lock : null, lastFailureAt: now };
  await db.insert(loginThrottle).values(values).onConflictDoUpdate({ target: loginThrottle.key, set: values });
  return lock;
}

export async function clearFailures(db: Db, key: string): Promise<void> {
  await db.delete(loginThrottle).where(eq(loginThrottle.key, key));
}
