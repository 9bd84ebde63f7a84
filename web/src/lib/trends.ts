// The trend and exposure API (protocol/trends.ts) for the dashboard and the host page, and
// the one place that turns points into chart columns.
import type { ActivityPoint, Exposure, HostTrends, TrendPoint, Trends } from '$protocol/trends.ts';
import { request } from './api.ts';

export { TREND_PERIODS, DEFAULT_TREND_DAYS } from '$protocol/trends.ts';
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
}

const secs = (iso: string) => Date.parse(iso) / 1000;

/** Pending, security and needs-reboot per day. */
export function stateChart(points: TrendPoint[]): ChartData {
  return {
    x: points.map((p) => secs(p.at)),
    series: [
      { label: 'Pending', color: '#38bdf8', values: points.map((p) => p.pending) },
      { label: 'Security', color: '#fb7185', values: points.map((p) => p.security) },
      { label: 'Need reboot', color: '#fcd34d', values: points.map((p) => p.needReboot) },
    ],
  };
}

/** Changes per day and how many failed. */
export function activityChart(points: ActivityPoint[]): ChartData {
  return {
    x: points.map((p) => secs(p.at)),
    series: [
      { label: 'Changes', color: '#818cf8', values: points.map((p) => p.jobs), bars: true },
      { label: 'Failed', color: '#f43f5e', values: points.map((p) => p.failed), bars: true },
    ],
  };
}

/** "3.5 d", "18 h", "—": a duration given in days. */
export function formatDays(days: number | null | undefined): string {
  if (days == null) return '—';
  if (days < 1) return `${Math.round(days * 24)} h`;
  return `${Math.round(days * 10) / 10} d`;
}
