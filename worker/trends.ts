// History of state: each host's day (written with every applied scan), the fleet's and one
// host's trend over N days, patch activity per day, and security exposure (oldest pending
// security update per host; time from first seen to installed, median and p90). The trend
// and activity queries read an index only; bench/trends.ts times them all at 1,000 hosts ×
// 90 days (bench/RESULTS.md).
import { lt, sql } from 'drizzle-orm';
import type { ActivityPoint, Exposure, HostExposure, TrendPoint } from '../protocol/trends.ts';
import { DAY_MS, daysToTenth } from '../protocol/days.ts';
import type { Db } from './db/index.ts';
import { jsonRows } from './lib/json-rows.ts';
import { schema } from './db/index.ts';

const { hostDays, fleetDays } = schema;

export { DAY_MS };
const HOUR_MS = 3_600_000;
/** The job kinds that change a host: what "patch activity" counts. */
const CHANGE_KINDS = sql`('upgrade', 'reboot', 'stack-update', 'rollback')`;

export const dayOf = (t: number) => Math.floor(t / DAY_MS);
const dayIso = (day: number) => new Date(day * DAY_MS).toISOString();

/** What a successful scan found, as far as trends care. */
export interface ScanState {
  packageManager: string | null;
  updates: { security: boolean }[];
  reboot: { required: boolean };
}

/** A scan's figures for its host's day. */
export interface ScanDay {
  hostId: string;
  /** When it was applied (its UTC day is the row). */
  at: number;
  pending: number;
  security: number;
  needReboot: number;
  error: number;
}

export function scanDayOf(hostId: string, scan: ScanState, problem: string | null, at: number): ScanDay {
  return {
    hostId,
    at,
    pending: scan.packageManager ? scan.updates.length : 0,
    security: scan.packageManager ? scan.updates.filter((u) => u.security).length : 0,
    needReboot: scan.reboot.required ? 1 : 0,
    error: problem ? 1 : 0,
  };
}

/** The statements that record a batch's scans in their hosts' days (the last scan of a host's
 * day wins; `scans` counts them all) and move the fleet's day by the differences: two
 * statements per day however many scans, the rows as one JSON value each (a statement per
 * scan made these two a third of a "Scan all"'s statements; issue 11). Returned, not run: the
 * caller batches them with the scans' own writes (one transaction), the fleet's first, while
 * the hosts' days are still the ones before this batch. */
export function recordScanDays(db: Db, scans: ScanDay[]) {
  const byDay = new Map<number, Map<string, { last: ScanDay; scans: number }>>();
  for (const s of scans) {
    const day = byDay.get(dayOf(s.at)) ?? new Map<string, { last: ScanDay; scans: number }>();
    byDay.set(dayOf(s.at), day);
    day.set(s.hostId, { last: s, scans: (day.get(s.hostId)?.scans ?? 0) + 1 });
  }
  return [...byDay].flatMap(([day, hosts]) => {
    const scanned = jsonRows(
      [...hosts.values()].map(({ last: l, scans: n }) => [l.hostId, l.pending, l.security, l.needReboot, l.error, n]),
      ['host_id', 'pending', 'security', 'need_reboot', 'error', 'scans'],
    );
    // columns in fleet_days' order: day, hosts, pending, security, need_reboot, errors
    const fleet = db
      .insert(fleetDays)
      .select(
        sql`select ${day}, sum(d.host_id is null), sum(s.pending - coalesce(d.pending, 0)), sum(s.security - coalesce(d.security, 0)),
          sum(s.need_reboot - coalesce(d.need_reboot, 0)), sum(s.error - coalesce(d.error, 0))
          from ${scanned} s left join host_days d on d.host_id = s.host_id and d.day = ${day} where true`,
      )
      .onConflictDoUpdate({
        target: fleetDays.day,
        set: {
          hosts: sql`${fleetDays.hosts} + excluded.hosts`,
          pending: sql`${fleetDays.pending} + excluded.pending`,
          security: sql`${fleetDays.security} + excluded.security`,
          needReboot: sql`${fleetDays.needReboot} + excluded.need_reboot`,
          errors: sql`${fleetDays.errors} + excluded.errors`,
        },
      });
    // columns in host_days' order: host_id, day, pending, security, need_reboot, error, scans
    const host = db
      .insert(hostDays)
      .select(sql`select s.host_id, ${day}, s.pending, s.security, s.need_reboot, s.error, s.scans from ${scanned} s where true`)
      .onConflictDoUpdate({
        target: [hostDays.hostId, hostDays.day],
        set: {
          pending: sql`excluded.pending`,
          security: sql`excluded.security`,
          needReboot: sql`excluded.need_reboot`,
          error: sql`excluded.error`,
          scans: sql`${hostDays.scans} + excluded.scans`,
        },
      });
    return [fleet, host];
  });
}

/** Retention: days that ended before `cutoff` go (the cron, with the job history). */
export async function pruneHostDays(db: Db, cutoff: number): Promise<number> {
  const [gone] = await db.batch([
    db.delete(hostDays).where(lt(hostDays.day, dayOf(cutoff))).returning({ day: hostDays.day }),
    db.delete(fleetDays).where(lt(fleetDays.day, dayOf(cutoff))),
  ]);
  return gone.length;
}

const firstDay = (days: number, now: number) => dayOf(now) - days + 1;

type DayRow = { day: number; hosts: number; pending: number; security: number; needReboot: number; errors: number };
const point = (r: DayRow): TrendPoint => ({
  at: dayIso(r.day),
  hosts: r.hosts,
  pending: r.pending,
  security: r.security,
  needReboot: r.needReboot,
  errors: r.errors,
});

/** The fleet per day over the last `days` days (today included); days nobody was scanned are absent. */
export async function fleetTrend(db: Db, days: number, now = Date.now()): Promise<TrendPoint[]> {
  const rows = await db.all<DayRow>(sql`
    select day, hosts, pending, security, need_reboot as needReboot, errors
    from fleet_days where day >= ${firstDay(days, now)} and hosts > 0 order by day`);
  return rows.map(point);
}

export async function hostTrend(db: Db, hostId: string, days: number, now = Date.now()): Promise<TrendPoint[]> {
  const rows = await db.all<DayRow>(sql`
    select day, 1 as hosts, pending, security, need_reboot as needReboot, error as errors
    from host_days where host_id = ${hostId} and day >= ${firstDay(days, now)} order by day`);
  return rows.map(point);
}

/** Upgrades, reboots and stack updates started per day, and how many failed (or were lost). */
export async function activity(db: Db, days: number, hostId: string | null, now = Date.now()): Promise<ActivityPoint[]> {
  const since = firstDay(days, now) * DAY_MS;
  // a bound number is a REAL in D1: integer division needs the literal
  const rows = await db.all<{ day: number; jobs: number; failed: number }>(sql`
    select created_at / ${sql.raw(String(DAY_MS))} as day, count(*) as jobs, sum(status in ('failed', 'lost')) as failed
    from jobs where kind in ${CHANGE_KINDS} and created_at >= ${since}
    ${hostId ? sql`and host_id = ${hostId}` : sql``}
    group by day order by day`);
  return rows.map((r) => ({ at: dayIso(r.day), jobs: r.jobs, failed: r.failed }));
}

type OpenRow = { hostId: string; name: string; oldest: number | null; open: number };

/** Per host: the oldest security update still pending (by first sighting) and how many are.
 * Pinned to the per-host index: with an index on (security, resolved_at, …) SQLite would
 * otherwise read every open security update once per host (measured: minutes at 1,000 hosts). */
export async function hostExposure(db: Db, now = Date.now(), hostId?: string): Promise<HostExposure[]> {
  const rows = await db.all<OpenRow>(sql`
    select h.id as hostId, h.name as name, min(s.first_seen_at) as oldest, count(s.host_id) as open
    from hosts h left join update_sightings s indexed by update_sightings_open
      on s.host_id = h.id and s.resolved_at is null and s.security = 1
    ${hostId ? sql`where h.id = ${hostId}` : sql``}
    group by h.id
    order by oldest is null, oldest, h.name`);
  return rows.map((r) => ({
    hostId: r.hostId,
    name: r.name,
    oldestSecurityAgeDays: r.oldest == null ? null : daysToTenth(now - r.oldest),
    oldestSecurityFirstSeenAt: r.oldest == null ? null : new Date(r.oldest).toISOString(),
    openSecurity: r.open,
  }));
}

/** Security updates installed in the period: median and 90th percentile of first seen →
 * installed, in days, to the hour. Median: the middle value (the mean of the two middle ones
 * for an even count); p90: nearest rank, the ⌈0.9·n⌉-th smallest. The database counts them
 * per whole hour (a histogram: no sort of every duration, ~3× cheaper at 20,000 updates);
 * the ranks are found here. */
export async function timeToPatch(db: Db, days: number, now = Date.now()): Promise<Exposure['timeToPatchDays']> {
  const since = now - days * DAY_MS;
  const hist = await db.all<{ h: number; n: number }>(sql`
    select (resolved_at - first_seen_at) / ${sql.raw(String(HOUR_MS))} as h, count(*) as n
    from update_sightings where security = 1 and resolved_at >= ${since}
    group by h order by h`);
  const n = hist.reduce((a, r) => a + r.n, 0);
  if (n === 0) return { median: null, p90: null, count: 0 };
  /** The k-th smallest duration (1-based), in hours. */
  const at = (k: number) => {
    let seen = 0;
    for (const r of hist) if ((seen += r.n) >= k) return r.h;
    return hist[hist.length - 1].h;
  };
  const median = (at(Math.floor((n + 1) / 2)) + at(Math.floor(n / 2) + 1)) / 2;
  return { median: daysToTenth(median * HOUR_MS), p90: daysToTenth(at(Math.ceil((9 * n) / 10)) * HOUR_MS), count: n };
}

export async function exposure(db: Db, days: number, now = Date.now()): Promise<Exposure> {
  const [hosts, ttp] = await Promise.all([hostExposure(db, now), timeToPatch(db, days, now)]);
  return { days, hosts, timeToPatchDays: ttp };
}
