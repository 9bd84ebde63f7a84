// Trends, exposure and the Homepage widget: the JSON shapes of /api/trends,
// /api/hosts/:id/trends, /api/exposure and /api/homepage (DESIGN.md, "second round").
import * as v from 'valibot';

/** The periods the dashboard offers; the API takes any whole number of days up to the max. */
export const TREND_PERIODS = [7, 30, 90] as const;
export const DEFAULT_TREND_DAYS = 30;
export const MAX_TREND_DAYS = 366;

/** `?days=`: a whole number of days, 1 … MAX_TREND_DAYS (default 30). */
export const TrendQuery = v.object({
  days: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,4}$/, 'must be a whole number of days'),
      v.transform(Number),
      v.minValue(1, 'must be at least 1'),
      v.maxValue(MAX_TREND_DAYS, `must be at most ${MAX_TREND_DAYS}`),
    ),
    String(DEFAULT_TREND_DAYS),
  ),
});

/** One UTC day: the state of the hosts scanned that day, as each one's last scan of the day found it. */
export const TrendPoint = v.object({
  /** The day's start (UTC), ISO. */
  at: v.string(),
  /** Hosts scanned successfully that day. */
  hosts: v.number(),
  pending: v.number(),
  security: v.number(),
  needReboot: v.number(),
  /** Hosts whose scan found a problem (status error). */
  errors: v.number(),
});
export type TrendPoint = v.InferOutput<typeof TrendPoint>;

/** Changes made per day: upgrades, reboots and stack updates, and how many of them failed. */
export const ActivityPoint = v.object({ at: v.string(), jobs: v.number(), failed: v.number() });
export type ActivityPoint = v.InferOutput<typeof ActivityPoint>;

export const Trends = v.object({
  days: v.number(),
  points: v.array(TrendPoint),
  activity: v.array(ActivityPoint),
});
export type Trends = v.InferOutput<typeof Trends>;

export const HostExposure = v.object({
  hostId: v.string(),
  name: v.string(),
  /** Age of the host's oldest security update that is still pending, or null: none pending. */
  oldestSecurityAgeDays: v.nullable(v.number()),
  /** When PatchMan first saw that update (ISO). */
  oldestSecurityFirstSeenAt: v.nullable(v.string()),
  /** Security updates pending on the host (as PatchMan's sightings count them). */
  openSecurity: v.number(),
});
export type HostExposure = v.InferOutput<typeof HostExposure>;

/** Time from first seen to installed, of the security updates installed in the period. */
export const TimeToPatch = v.object({
  /** Nulls when nothing was installed in the period. */
  median: v.nullable(v.number()),
  p90: v.nullable(v.number()),
  /** Security updates installed in the period. */
  count: v.number(),
});

export const Exposure = v.object({
  days: v.number(),
  /** Every host, the most exposed first (oldest pending security update). */
  hosts: v.array(HostExposure),
  timeToPatchDays: TimeToPatch,
});
export type Exposure = v.InferOutput<typeof Exposure>;

export const HostTrends = v.object({
  ...Trends.entries,
  exposure: v.object({ oldestSecurityAgeDays: v.nullable(v.number()), openSecurity: v.number() }),
});
export type HostTrends = v.InferOutput<typeof HostTrends>;

/** GET /api/homepage: flat numbers for a Homepage (gethomepage.dev) `customapi` widget. */
export const HomepageWidget = v.object({
  hosts: v.number(),
  online: v.number(),
  offline: v.number(),
  pending: v.number(),
  security: v.number(),
  securityHosts: v.number(),
  needReboot: v.number(),
  /** Oldest pending security update in the fleet, days (0 when none). */
  oldestSecurityAgeDays: v.number(),
  /** Median time to patch security updates over the last 30 days, days (0 when none). */
  timeToPatchMedianDays: v.number(),
});
export type HomepageWidget = v.InferOutput<typeof HomepageWidget>;
