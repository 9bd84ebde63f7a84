// The trend and exposure API (protocol/trends.ts) for the dashboard and the host page, and
// the one place that turns points into chart columns.
import type { ActivityPoint, Exposure, HostTrends, TrendPoint, Trends } from '$protocol/trends.ts';
import { request } from './api.ts';

export { TREND_PERIODS, DEFAULT_TREND_DAYS } from '$protocol/trends.ts';
export { formatDays } from './days.ts';
export type { Exposure, HostTrends, Trends };

const enc = encodeURIComponent;

export const trendsApi = {
  fleet: (days: number) => request<Trends>('GET', `/api/trends?days=${days}`),
  host: (id: string, days: number) => request<HostTrends>('GET', `/api/hosts/${enc(id)}/trends?days=${days}`),
  exposure: (days: number) => request<Exposure>('GET', `/api/exposure?days=${days}`),
};

/** The exports the dashboard links to (same origin: the session cookie authenticates them). */
export const EXPORTS = [
  { href: '/api/export/hosts.csv', label: 'Hosts (CSV)' },
  { href: '/api/export/hosts.json', label: 'Hosts (JSON)' },
  { href: '/api/export/updates.csv', label: 'Pending updates (CSV)' },
  { href: '/api/export/updates.json', label: 'Pending updates (JSON)' },
] as const;

/** One line or bar series of a chart. */
export interface Series {
  label: string;
  color: string;
  values: (number | null)[];
  bars?: boolean;
}

export interface ChartData {
  /** Unix seconds, one per point. */
  x: number[];
  series: Series[];
  /** The period shown (unix seconds): the whole period, even where there are no points. */
  range: [number, number];
}

const DAY_S = 86_400;

/** The period's days (UTC, as the API counts them), half a day of margin either side for the bars. */
function period(days: number): [number, number] {
  const today = Math.floor(Date.now() / 1000 / DAY_S) * DAY_S;
  return [today - (days - 1) * DAY_S - DAY_S / 2, today + DAY_S / 2];
}

const secs = (iso: string) => Date.parse(iso) / 1000;

/** Pending, security and needs-reboot per day. */
export function stateChart(points: TrendPoint[], days: number): ChartData {
  return {
    range: period(days),
    x: points.map((p) => secs(p.at)),
    series: [
      { label: 'Pending', color: '#38bdf8', values: points.map((p) => p.pending) },
      { label: 'Security', color: '#fb7185', values: points.map((p) => p.security) },
      { label: 'Need reboot', color: '#fcd34d', values: points.map((p) => p.needReboot) },
    ],
  };
}

/** Changes per day and how many failed. */
export function activityChart(points: ActivityPoint[], days: number): ChartData {
  return {
    range: period(days),
    x: points.map((p) => secs(p.at)),
    series: [
      { label: 'Changes', color: '#818cf8', values: points.map((p) => p.jobs), bars: true },
      { label: 'Failed', color: '#f43f5e', values: points.map((p) => p.failed), bars: true },
    ],
  };
}
