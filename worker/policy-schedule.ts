// Policies in time: their next run times, and the cron trigger's part — start the rollouts of
// scheduled policies whose slot has come, and re-arm the runners of live rollouts (a safety
// net: each runner keeps its own alarm).
import { and, eq, inArray, isNull, or } from 'drizzle-orm';
import { nextRuns, ROLLOUT_LIVE, type Policy } from '../protocol/policy.ts';
import { schema, type Db, type PolicyRow } from './db/index.ts';
import type { Env } from './env.ts';
import { rolloutRunner, startRollout } from './rollouts.ts';
import { rebootWording } from './policy-plan.ts';
import { newId } from './lib/crypto.ts';

const { policies, rollouts, audit } = schema;

export function policyJson(p: PolicyRow, now: number): Policy {
  return {
    id: p.id,
    name: p.name,
    enabled: p.enabled,
    ...p.spec,
    nextRuns: p.enabled && p.spec.schedule ? nextRuns(p.spec.schedule.cron, p.spec.schedule.timeZone, 3, new Date(now)).map((d) => d.toISOString()) : [],
    createdAt: new Date(p.createdAt).toISOString(),
    updatedAt: new Date(p.updatedAt).toISOString(),
    lastRunAt: p.lastScheduledFor === null ? null : new Date(p.lastScheduledFor).toISOString(),
  };
}

/** The policy's live rollout, if one is under way. */
export async function liveRollout(db: Db, policyId: string) {
  return db.query.rollouts.findFirst({ where: and(eq(rollouts.policyId, policyId), inArray(rollouts.status, ROLLOUT_LIVE)) });
}

/** The latest slot of a schedule at or before `now` whose window is still open, or null. */
export function dueSlot(p: PolicyRow, now: number): number | null {
  const s = p.spec.schedule;
  if (!p.enabled || !s) return null;
  const windowMs = s.windowMinutes * 60_000;
  // slots strictly after the last one started (and never older than one window)
  const from = Math.max(p.lastScheduledFor ?? 0, now - windowMs, p.createdAt - 1);
  const [slot] = nextRuns(s.cron, s.timeZone, 1, new Date(from));
  if (!slot || slot.getTime() > now) return null;
  // a later slot may also have passed (a long outage): take the newest one due
  let t = slot.getTime();
  for (const d of nextRuns(s.cron, s.timeZone, 50, slot)) {
    if (d.getTime() > now) break;
    t = d.getTime();
  }
  return t;
}

/** Start every scheduled policy whose slot has come (once per slot), and re-arm live rollouts. */
export async function runDuePolicies(env: Env, db: Db, now: number): Promise<{ started: string[] }> {
  const started: string[] = [];
  for (const p of await db.select().from(policies).where(eq(policies.enabled, true))) {
    const slot = dueSlot(p, now);
    if (slot === null) continue;
    // claim the slot first: two cron runs never start it twice
    const [claimed] = await db
      .update(policies)
      .set({ lastScheduledFor: slot })
      .where(and(eq(policies.id, p.id), p.lastScheduledFor === null ? isNull(policies.lastScheduledFor) : eq(policies.lastScheduledFor, p.lastScheduledFor)))
      .returning();
    if (!claimed || (await liveRollout(db, p.id))) continue;
    const r = await startRollout(env, db, claimed, {
      trigger: 'schedule',
      requestedBy: 'schedule',
      now,
      windowEndsAt: slot + claimed.spec.schedule!.windowMinutes * 60_000,
    });
    started.push(r.id);
    await db.insert(audit).values({
      id: newId(),
      at: now,
      actor: 'schedule',
      actorType: 'system',
      action: `rollout of ${claimed.name} started by its schedule; reboots: ${claimed.spec.reboot} — ${rebootWording(claimed.spec)}`,
      target: r.id,
      status: 202,
    });
  }
  const live = await db
    .select({ id: rollouts.id })
    .from(rollouts)
    .where(or(inArray(rollouts.status, ROLLOUT_LIVE), isNull(rollouts.finishedAt)));
  await Promise.all(live.filter((r) => !started.includes(r.id)).map((r) => rolloutRunner(env, r.id).start(r.id)));
  return { started };
}
