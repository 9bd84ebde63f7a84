// The cron's part in notifications: the digest when due, and a nudge to the Notifier (a
// backstop in case an alarm was lost), and old delivery log rows deleted. Never throws into the rest of the scheduled run.
import { and, lt, ne } from 'drizzle-orm';
import type { Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { readSettings } from '../settings.ts';
import { maybeDigest } from './digest.ts';
import { kickNotifier } from './notifier-client.ts';

export async function notifyCron(env: Env, now = Date.now()): Promise<void> {
  try {
    const db = openDb(env.DB);
    await maybeDigest(env, db, now);
    await kickNotifier(env, now);
    // the delivery log is kept as long as the job history
    const { retentionDays } = await readSettings(db);
    const d = schema.notifyDeliveries;
    await db.delete(d).where(and(lt(d.createdAt, now - retentionDays * 86_400_000), ne(d.status, 'pending')));
  } catch (err) {
    console.warn(`notify: cron failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
