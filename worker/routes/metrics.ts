// GET /metrics: Prometheus text format (version 0.0.4) with fleet and per-host gauges, for
// an API token (Authorization: Bearer pmt_…, any role). Outside /api, so it has its own
// auth: a scraper has no session and sends no CSRF headers; only a token is accepted.
import { Hono } from 'hono';
import { asc } from 'drizzle-orm';
import type { AppEnv } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { ApiError } from '../lib/http.ts';
import { identify } from '../auth/credential.ts';
import { DAY_MS, hostExposure, timeToPatch } from '../trends.ts';

const { hosts } = schema;

/** The period of the time-to-patch quantiles. */
export const METRICS_TTP_DAYS = 30;

const STATUSES = ['online', 'offline', 'error', 'unknown'] as const;

const esc = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
const labels = (l: Record<string, string>) => `{${Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`).join(',')}}`;

class Metrics {
  lines: string[] = [];
  gauge(name: string, help: string, samples: [Record<string, string> | null, number | null][]) {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [l, value] of samples) if (value !== null) this.lines.push(`${name}${l ? labels(l) : ''} ${value}`);
  }
}

export const metricsRoutes = new Hono<AppEnv>().get('/', async (c) => {
  const db = openDb(c.env.DB);
  if (!c.req.header('Authorization')?.startsWith('Bearer ')) {
    c.header('WWW-Authenticate', 'Bearer realm="patchman"');
    throw new ApiError(401, 'unauthenticated', '/metrics needs an API token: Authorization: Bearer pmt_…');
  }
  await identify(c, db);
  const now = Date.now();
  const [rows, exposure, ttp] = await Promise.all([
    db.select().from(hosts).orderBy(asc(hosts.name)),
    hostExposure(db, now),
    timeToPatch(db, METRICS_TTP_DAYS, now),
  ]);
  const oldest = new Map(exposure.map((e) => [e.hostId, e]));
  const sum = (f: (h: (typeof rows)[number]) => number | null | boolean) => rows.reduce((a, h) => a + Number(f(h) ?? 0), 0);
  const days = (d: number | null) => (d == null ? null : Math.round(d * DAY_MS) / 1000);
  const ageSeconds = (since: string | null) => (since == null ? 0 : Math.round((now - Date.parse(since)) / 1000));
  const m = new Metrics();

  m.gauge('patchman_hosts', 'Hosts PatchMan manages, by status.', STATUSES.map((s) => [{ status: s }, rows.filter((h) => h.status === s).length]));
  m.gauge('patchman_pending_updates', 'Pending package updates across the fleet.', [[null, sum((h) => h.updatesCount)]]);
  m.gauge('patchman_security_updates', 'Pending security updates across the fleet.', [[null, sum((h) => h.securityCount)]]);
  m.gauge('patchman_hosts_need_reboot', 'Hosts that need a reboot.', [[null, sum((h) => h.rebootRequired)]]);
  m.gauge('patchman_time_to_patch_seconds', `Time from first seen to installed of security updates installed in the last ${METRICS_TTP_DAYS} days.`, [
    [{ quantile: '0.5' }, days(ttp.median)],
    [{ quantile: '0.9' }, days(ttp.p90)],
  ]);
  m.gauge('patchman_security_updates_installed', `Security updates installed in the last ${METRICS_TTP_DAYS} days.`, [[null, ttp.count]]);

  const per = (h: (typeof rows)[number]) => ({ host_id: h.id, host: h.name });
  m.gauge('patchman_host_up', 'The host answered its last scan (1) or not (0).', rows.map((h) => [per(h), h.status === 'online' ? 1 : 0]));
  m.gauge('patchman_host_pending_updates', 'Pending package updates on the host (absent until scanned).', rows.map((h) => [per(h), h.updatesCount]));
  m.gauge('patchman_host_security_updates', 'Pending security updates on the host (absent until scanned).', rows.map((h) => [per(h), h.securityCount]));
  m.gauge('patchman_host_reboot_required', 'The host needs a reboot (1) or not (0).', rows.map((h) => [per(h), h.rebootRequired == null ? null : Number(h.rebootRequired)]));
  m.gauge('patchman_host_oldest_security_update_age_seconds', 'Age of the oldest pending security update on the host (0 when none).', rows.map((h) => [per(h), ageSeconds(oldest.get(h.id)?.oldestSecurityFirstSeenAt ?? null)]));
  m.gauge('patchman_host_last_scan_timestamp_seconds', 'When the host was last scanned successfully (Unix time).', rows.map((h) => [per(h), h.lastScanAt == null ? null : h.lastScanAt / 1000]));

  return c.body(m.lines.join('\n') + '\n', 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Cache-Control': 'no-store' });
});
