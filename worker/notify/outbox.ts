// The outbox: pending events are flushed into one delivery per channel and event name once
// the window closes, and deliveries are sent with retries (exponential backoff) and a
// per-channel hourly limit. Runs in the Notifier's alarm (and the cron, as a backstop).
import { and, asc, count, eq, gt, inArray, lte, min } from 'drizzle-orm';
import { SEVERITY_RANK, EVENT_SEVERITY, type NotifyEvent, type NotifyMessage } from '../../protocol/notify.ts';
import type { Env } from '../env.ts';
import { schema, type Db, type NotifyChannelRow, type NotifyDeliveryRow } from '../db/index.ts';
import { newId } from '../lib/crypto.ts';
import { buildMessage, type PendingFact } from './message.ts';
import { readNotifySettings, publicBase } from './settings.ts';
import { sendToChannel } from './send.ts';

const { notifyEvents, notifyDeliveries, notifyChannels, jobs, hosts } = schema;

/** Events are collected at least this long before a flush… */
export const WINDOW_MIN_MS = 10_000;
/** …and until no scan is running any more, but never longer than this. */
export const WINDOW_MAX_MS = 10 * 60_000;
/** While scans still run, look again this often. */
export const WINDOW_RECHECK_MS = 5_000;
export const MAX_ATTEMPTS = 6;
export const BACKOFF_BASE_MS = 30_000;
export const BACKOFF_MAX_MS = 60 * 60_000;
export const RATE_WINDOW_MS = 60 * 60_000;
/** A delivery being sent is leased this long (a crash mid-send retries it after). */
const LEASE_MS = 60_000;
const BATCH = 25;

export const backoffMs = (attempts: number) => Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1), BACKOFF_MAX_MS);

/** Does this channel want this fact? Events, minimum severity, and host tags. */
export function wants(ch: NotifyChannelRow, event: NotifyEvent, hostTags: string[] | null): boolean {
  if (!ch.enabled || !ch.events.includes(event)) return false;
  if (SEVERITY_RANK[EVENT_SEVERITY[event]] < SEVERITY_RANK[ch.minSeverity]) return false;
  if (ch.tags.length === 0 || hostTags === null) return true;
  return hostTags.some((t) => ch.tags.includes(t));
}

/** Flush the pending events if their window has closed. Returns when to look again (null:
 * nothing pending). */
export async function flushEvents(env: Env, db: Db, now: number): Promise<number | null> {
  const [{ oldest }] = await db.select({ oldest: min(notifyEvents.createdAt) }).from(notifyEvents);
  if (oldest === null) return null;
  if (now < oldest + WINDOW_MIN_MS) return oldest + WINDOW_MIN_MS;
  if (now < oldest + WINDOW_MAX_MS) {
    const [{ n }] = await db.select({ n: count() }).from(jobs).where(and(inArray(jobs.kind, ['scan', 'docker-scan']), inArray(jobs.status, ['queued', 'dispatched', 'running'])));
    if (n > 0) return Math.min(now + WINDOW_RECHECK_MS, oldest + WINDOW_MAX_MS);
  }
  const rows = await db.select().from(notifyEvents).where(lte(notifyEvents.createdAt, now)).orderBy(asc(notifyEvents.createdAt));
  for (let i = 0; i < rows.length; i += 90) await db.delete(notifyEvents).where(inArray(notifyEvents.id, rows.slice(i, i + 90).map((r) => r.id)));
  const channels = await db.select().from(notifyChannels).where(eq(notifyChannels.enabled, true));
  if (channels.length === 0 || rows.length === 0) return null;

  const hostIds = [...new Set(rows.map((r) => r.hostId).filter((x): x is string => !!x))];
  const tagsOf = new Map<string, string[]>();
  for (let i = 0; i < hostIds.length; i += 90) {
    for (const h of await db.select({ id: hosts.id, tags: hosts.tags }).from(hosts).where(inArray(hosts.id, hostIds.slice(i, i + 90)))) tagsOf.set(h.id, h.tags);
  }
  const base = publicBase(env, await readNotifySettings(db));
  const byEvent = new Map<NotifyEvent, PendingFact[]>();
  for (const r of rows) {
    const list = byEvent.get(r.event as NotifyEvent) ?? [];
    list.push({ event: r.event as NotifyEvent, hostId: r.hostId, data: r.data });
    byEvent.set(r.event as NotifyEvent, list);
  }
  const values: (typeof notifyDeliveries.$inferInsert)[] = [];
  for (const ch of channels) {
    for (const [event, facts] of byEvent) {
      const mine = facts.filter((f) => wants(ch, event, f.hostId ? (tagsOf.get(f.hostId) ?? []) : null));
      if (mine.length === 0) continue;
      values.push({ id: newId(), channelId: ch.id, event, status: 'pending', message: buildMessage(event, mine, base, now), createdAt: now, nextAttemptAt: now });
    }
  }
  for (const v of values) await db.insert(notifyDeliveries).values(v);
  return values.length ? now : null;
}

/** Record how one attempt went, on the delivery and its channel. */
async function recordAttempt(db: Db, id: string, ch: NotifyChannelRow, attempts: number, outcome: { ok: true } | { ok: false; error: string }, now: number, retry: boolean) {
  if (outcome.ok) {
    await db.update(notifyDeliveries).set({ status: 'sent', attempts, sentAt: now, error: null, nextAttemptAt: null }).where(eq(notifyDeliveries.id, id));
    await db.update(notifyChannels).set({ lastSentAt: now }).where(eq(notifyChannels.id, ch.id));
    return;
  }
  const giveUp = !retry || attempts >= MAX_ATTEMPTS;
  await db
    .update(notifyDeliveries)
    .set({ status: giveUp ? 'failed' : 'pending', attempts, error: outcome.error, nextAttemptAt: giveUp ? null : now + backoffMs(attempts) })
    .where(eq(notifyDeliveries.id, id));
  await db.update(notifyChannels).set({ lastError: outcome.error, lastErrorAt: now }).where(eq(notifyChannels.id, ch.id));
}

/** Send the deliveries that are due. Returns when the next one is due (null: none). */
export async function deliverDue(env: Env, db: Db, now: number): Promise<number | null> {
  const due = await db
    .select()
    .from(notifyDeliveries)
    .where(and(eq(notifyDeliveries.status, 'pending'), lte(notifyDeliveries.nextAttemptAt, now)))
    .orderBy(asc(notifyDeliveries.nextAttemptAt))
    .limit(BATCH);
  // channels are served side by side: one that hangs (up to the send timeout) does not hold
  // up the others; each channel's own deliveries go in order
  const byChannel = new Map<string, typeof due>();
  for (const d of due) byChannel.set(d.channelId, [...(byChannel.get(d.channelId) ?? []), d]);
  await Promise.all([...byChannel].map(([channelId, list]) => deliverForChannel(env, db, channelId, list, now)));
  const [{ next }] = await db.select({ next: min(notifyDeliveries.nextAttemptAt) }).from(notifyDeliveries).where(eq(notifyDeliveries.status, 'pending'));
  return next;
}

async function deliverForChannel(env: Env, db: Db, channelId: string, list: NotifyDeliveryRow[], now: number): Promise<void> {
  const ch = await db.query.notifyChannels.findFirst({ where: eq(notifyChannels.id, channelId) });
  if (!ch) return; // deleted: its deliveries went with it
  for (const d of list) {
    if (!ch.enabled) {
      await db.update(notifyDeliveries).set({ status: 'failed', error: 'the channel is disabled', nextAttemptAt: null }).where(eq(notifyDeliveries.id, d.id));
      continue;
    }
    // the per-channel limit: past it, wait until the oldest message of the hour ages out
    const [{ n, first }] = await db
      .select({ n: count(), first: min(notifyDeliveries.sentAt) })
      .from(notifyDeliveries)
      .where(and(eq(notifyDeliveries.channelId, ch.id), eq(notifyDeliveries.status, 'sent'), gt(notifyDeliveries.sentAt, now - RATE_WINDOW_MS)));
    if (n >= ch.maxPerHour) {
      await db.update(notifyDeliveries).set({ nextAttemptAt: (first ?? now) + RATE_WINDOW_MS, error: `rate limited: ${ch.maxPerHour} messages per hour` }).where(eq(notifyDeliveries.id, d.id));
      continue;
    }
    // claim it (the cron and the alarm may both be here)
    const [claimed] = await db
      .update(notifyDeliveries)
      .set({ nextAttemptAt: now + LEASE_MS })
      .where(and(eq(notifyDeliveries.id, d.id), eq(notifyDeliveries.status, 'pending'), eq(notifyDeliveries.nextAttemptAt, d.nextAttemptAt!)))
      .returning();
    if (!claimed) continue;
    const outcome = await sendToChannel(env, ch, d.message);
    await recordAttempt(db, d.id, ch, d.attempts + 1, outcome, now, true);
  }
}

/** "Send test": now, once, no retry; logged like any delivery. */
export async function sendTest(env: Env, db: Db, ch: NotifyChannelRow, message: NotifyMessage) {
  const now = Date.now();
  const id = newId();
  await db.insert(notifyDeliveries).values({ id, channelId: ch.id, event: 'test', status: 'pending', message, createdAt: now, nextAttemptAt: null });
  const outcome = await sendToChannel(env, ch, message);
  await recordAttempt(db, id, ch, 1, outcome, Date.now(), false);
  return (await db.query.notifyDeliveries.findFirst({ where: eq(notifyDeliveries.id, id) }))!;
}
