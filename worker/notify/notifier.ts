// The Notifier Durable Object: one for the Worker. Its alarm flushes pending events into the
// outbox when their window closes, announces relays that stayed away, and sends what is
// due. Hooks only wake it (wakeAt); nothing here runs inside a scan or a patch.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../env.ts';
import { openDb } from '../db/index.ts';
import { deliverDue, flushEvents } from './outbox.ts';
import { factsForRelaysDown, recordFacts } from './events.ts';

/** One pass: relay-down checks, flush, deliver. Returns when to run again (null: nothing waits). */
export async function runNotifier(env: Env, now = Date.now()): Promise<number | null> {
  const db = openDb(env.DB);
  const relays = await factsForRelaysDown(env, db, now);
  if (relays.facts.length) await recordFacts(env, db, relays.facts, now, { wake: false });
  const flushAgain = await flushEvents(env, db, now);
  const deliverAgain = await deliverDue(env, db, Date.now());
  const times = [relays.nextCheck, flushAgain, deliverAgain].filter((t): t is number => t !== null);
  return times.length ? Math.min(...times) : null;
}

export class Notifier extends DurableObject<Env> {
  /** Run the alarm at `at` (or earlier, if one is already set earlier). */
  async wakeAt(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || at < current) await this.ctx.storage.setAlarm(Math.max(at, Date.now()));
  }

  async alarm(): Promise<void> {
    let next: number | null = null;
    try {
      next = await runNotifier(this.env);
    } catch (err) {
      console.warn(`notify: run failed: ${err instanceof Error ? err.message : String(err)}`);
      next = Date.now() + 60_000;
    }
    if (next !== null) await this.wakeAt(Math.max(next, Date.now() + 1_000));
  }
}
