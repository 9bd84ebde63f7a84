// Ages in days as the API and the dashboard give them (kept free of imports: the dashboard's
// first page uses it without valibot).
export const DAY_MS = 86_400_000;

/** A duration in days, to a tenth (`oldestSecurityAgeDays`, time to patch). */
export const daysToTenth = (ms: number) => Math.round((ms / DAY_MS) * 10) / 10;

/** How many days ago `iso` was at `now`, to a tenth; null for null. */
export function daysSince(iso: string | null | undefined, now: number): number | null {
  return iso ? daysToTenth(now - Date.parse(iso)) : null;
}
