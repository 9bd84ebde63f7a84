// A shared clock for relative times ("3 min ago") that re-renders them every 15 seconds.
let now = $state(Date.now());
let timer: ReturnType<typeof setInterval> | null = null;
let users = 0;

export const clock = {
  get now() {
    return now;
  },
};

/** Start ticking while at least one component uses the clock (call from an $effect). */
export function useClock(): () => void {
  users++;
  if (!timer) {
    now = Date.now();
    timer = setInterval(() => (now = Date.now()), 15_000);
  }
  return () => {
    users--;
    if (users === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });

export function relativeTime(iso: string | null | undefined, at = now): string {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'unknown';
  const seconds = Math.round((t - at) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return 'just now';
  for (const [unit, size] of UNITS) {
    if (abs >= size) return rtf.format(Math.round(seconds / size), unit);
  }
  return rtf.format(Math.round(seconds / 60), 'minute');
}

export function absoluteTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
