// The cron's part in notifications: the digest when due, and a nudge to the Notifier (a
// backstop in case an alarm was lost). Never throws into the rest of the scheduled run.
import type { Env } from '../env.ts';
import { openDb } from '../db/index.ts';
import { maybeDigest } from './digest.ts';
import { kickNotifier } from './notifier-client.ts';

export async function notifyCron(env: Env, now = Date.now()): Promise<void> {
  try {
    await maybeDigest(env, openDb(env.DB), now);
    await kickNotifier(env, now);
  } catch (err) {
    console.warn(`notify: cron failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
