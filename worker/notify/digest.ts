// The daily or weekly digest (from the cron): the fleet's pending, security and reboot
// counts, the hosts with the most security updates, and what was patched since the last one.
import { and, desc, eq, gte, gt } from 'drizzle-orm';
import type { Env } from '../env.ts';
import { schema, type Db } from '../db/index.ts';
import { readNotifySettings } from './settings.ts';
import { readState, recordFacts, writeState } from './events.ts';

const { hosts, jobs } = schema;
const PERIOD_MS = { daily: 86_400_000, weekly: 7 * 86_400_000 } as const;

export async function digestText(db: Db, since: number): Promise<string> {
  const all = await db.select().from(hosts);
  const pending = all.reduce((n, h) => n + (h.updatesCount ?? 0), 0);
  const security = all.reduce((n, h) => n + (h.securityCount ?? 0), 0);
  const reboot = all.filter((h) => h.rebootRequired).length;
  const offline = all.filter((h) => h.status === 'offline').length;
  const worst = await db.select({ name: hosts.name, n: hosts.securityCount }).from(hosts).where(gt(hosts.securityCount, 0)).orderBy(desc(hosts.securityCount)).limit(5);
  const patched = await db
    .select({ summary: jobs.summary, hostId: jobs.hostId })
    .from(jobs)
    .where(and(eq(jobs.kind, 'upgrade'), eq(jobs.status, 'succeeded'), gte(jobs.finishedAt, since)));
  const lines = [
    `${all.length} hosts, ${offline} offline`,
    `${pending} pending updates, ${security} of them security`,
    `${reboot} hosts need a reboot`,
    worst.length ? `Most security updates: ${worst.map((w) => `${w.name} (${w.n})`).join(', ')}` : 'No security updates pending',
    `Patched since the last digest: ${patched.length} upgrade${patched.length === 1 ? '' : 's'}`,
  ];
  return lines.join('\n');
}

/** Send the digest if it is due (the configured hour, and a period since the last one). */
export async function maybeDigest(env: Env, db: Db, now: number): Promise<boolean> {
  const s = await readNotifySettings(db);
  if (s.digest === 'off' || new Date(now).getUTCHours() !== s.digestHourUtc) return false;
  const st = await readState<{ lastAt?: number }>(db, 'digest');
  const period = PERIOD_MS[s.digest];
  // (an hour of slack: the cron does not fire on the same minute every day)
  if (st.lastAt && now - st.lastAt < period - 3_600_000) return false;
  await writeState(db, 'digest', { lastAt: now });
  const text = await digestText(db, st.lastAt ?? now - period);
  await recordFacts(env, db, [{ event: 'digest', hostId: null, data: { name: 'fleet', detail: text, rank: 0 } }], now);
  return true;
}
