// The RolloutRunner Durable Object: one per rollout (named by its id). While the rollout is
// live or has hosts in flight, its alarm fires every tick and advances the state machine kept
// in D1 (worker/rollouts.ts). The object itself stores only the rollout's id, so a redeployed
// or restarted Worker loses nothing: the next alarm (or the cron's safety net, `start` again)
// picks up from D1.
import { DurableObject } from 'cloudflare:workers';
import type { Env } from './env.ts';
import { openDb } from './db/index.ts';
import { advanceRollout, TICK_MS } from './rollouts.ts';

export class RolloutRunner extends DurableObject<Env> {
  /** Take charge of a rollout (idempotent) and advance it now. */
  async start(rolloutId: string): Promise<void> {
    await this.ctx.storage.put('rolloutId', rolloutId);
    await this.tick();
  }

  /** Advance now (after a pause, resume or cancel). */
  async kick(): Promise<void> {
    await this.tick();
  }

  async alarm(): Promise<void> {
    await this.tick();
  }

  private async tick(): Promise<void> {
    const id = await this.ctx.storage.get<string>('rolloutId');
    if (!id) return;
    const every = Number(this.env.ROLLOUT_TICK_MS) || TICK_MS;
    // One step at a time: an alarm and a kick never interleave their reads and writes.
    await this.ctx.blockConcurrencyWhile(async () => {
      let active = true;
      try {
        ({ active } = await advanceRollout(this.env, openDb(this.env.DB), id, Date.now()));
      } catch (err) {
        console.error('rollout step failed', id, err instanceof Error ? err.message : String(err));
      }
      if (active) await this.ctx.storage.setAlarm(Date.now() + every);
      else await this.ctx.storage.deleteAlarm();
    });
  }
}
