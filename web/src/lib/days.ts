// A duration in days as the dashboard shows it (kept free of imports: the browser tests use it too).

/** "3.5 d", "18 h", "—" (none): a duration given in days. */
export function formatDays(days: number | null | undefined): string {
  if (days == null) return '—';
  if (days < 1) return `${Math.round(days * 24)} h`;
  return `${Math.round(days * 10) / 10} d`;
}
