// Trends on the dashboard, end to end: a fleet with 90 days of 6-hourly history
// (sim/history.ts, written into the local D1 before `npm start`), the API's figures agree
// with the scans, and a real Chromium draws the charts (uPlot, loaded on demand) and shows
// the exposure figures and export links the API gives.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startApp, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { applyMigrations, localD1File, writeFleet, type FleetCounts } from '../sim/history.ts';
import { formatDays } from '../web/src/lib/days.ts';

const HOSTS = 40;
/** Issue 14: what the chart library may add, in gzip bytes. */
const CHART_BUDGET_GZIP = 25_000;
const DAYS = 90;

let app: RunningApp;
let browser: Browser;
let state: string;
let counts: FleetCounts;

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), 'patchman-e2e-trends-'));
  const persist = join(state, 'wrangler');
  applyMigrations(persist);
  counts = writeFleet(localD1File(persist), { hosts: HOSTS, days: DAYS, scanJobs: false });
  app = await startApp({ PATCHMAN_STATE: state });
  browser = await launchBrowser();
});

afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-4000));
});

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('trends with 90 days of history', () => {
  it('the API: one point per day, today as the hosts are now, exposure of every host', async () => {
    expect(counts.hosts).toHaveLength(HOSTS);
    const { body: trend } = await app.api('/api/trends?days=90');
    expect(trend.points).toHaveLength(DAYS);
    const today = trend.points.at(-1);
    const { body: summary } = await app.api('/api/summary');
    // the last scan of today is the host's current state
    expect(today).toMatchObject({ hosts: HOSTS, pending: summary.pendingPackages, security: summary.securityPackages, needReboot: summary.needReboot });
    expect(trend.activity.length).toBeGreaterThan(10);
    const { body: exposure } = await app.api('/api/exposure?days=30');
    expect(exposure.hosts).toHaveLength(HOSTS);
    expect(exposure.timeToPatchDays.count).toBeGreaterThan(0);
    expect(exposure.timeToPatchDays.p90).toBeGreaterThanOrEqual(exposure.timeToPatchDays.median);
  });

  it('the dashboard draws the fleet and activity charts, and shows time to patch and the most exposed hosts', async () => {
    const page = await app.page(browser, { viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(app.url + '/');
    const panel = page.getByTestId('trends-panel');
    await panel.scrollIntoViewIfNeeded();
    // uPlot draws into a canvas once its chunk has loaded
    await page.locator('[data-testid="fleet-chart"] canvas').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="activity-chart"] canvas').waitFor();
    const { body: month } = await app.api('/api/trends?days=30');
    // drawn: uPlot made its chart from the loaded points (not only from the empty first render)
    await expect.poll(() => page.getByTestId('fleet-chart').getAttribute('data-drawn')).toBe(String(month.points.length));
    await expect.poll(() => page.getByTestId('activity-chart').getAttribute('data-drawn')).toBe(String(month.activity.length));
    const last = month.points.at(-1);
    await expect.poll(() => page.getByTestId('fleet-chart').getAttribute('aria-label')).toContain(`Pending ${last.pending}, Security ${last.security}, Need reboot ${last.needReboot}`);

    const { body: exposure } = await app.api('/api/exposure?days=30');
    expect(await page.getByTestId('ttp-median').textContent()).toBe(formatDays(exposure.timeToPatchDays.median));
    expect(await page.getByTestId('ttp-p90').textContent()).toBe(formatDays(exposure.timeToPatchDays.p90));
    const worst = exposure.hosts[0];
    await expect.poll(() => page.getByTestId('exposed-host').first().textContent()).toContain(worst.name);
    expect(await page.getByTestId('exposed-age').first().textContent()).toBe(formatDays(worst.oldestSecurityAgeDays));
    expect(await page.getByTestId('export-link').evaluateAll((as) => as.map((a) => a.getAttribute('href')))).toEqual([
      '/api/export/hosts.csv',
      '/api/export/hosts.json',
      '/api/export/updates.csv',
      '/api/export/updates.json',
    ]);
    await panel.screenshot({ path: 'e2e/artifacts/trends-30.png' });

    // 90 days: the URL keeps the period, the chart redraws with 90 points
    await page.getByTestId('trend-period').filter({ hasText: '90 days' }).click();
    await expect.poll(() => page.getByTestId('fleet-chart').getAttribute('data-drawn')).toBe(String(DAYS));
    expect(page.url()).toContain('days=90');
    await page.screenshot({ path: 'e2e/artifacts/dashboard-trends.png', fullPage: true });
    expect(errors).toEqual([]);
  });

  it('the host page shows the host over time and its oldest pending security update', async () => {
    const { body: exposure } = await app.api('/api/exposure?days=30');
    const worst = exposure.hosts[0];
    const page = await app.page(browser, { viewport: { width: 1400, height: 1000 } });
    await page.goto(`${app.url}/hosts/${worst.hostId}`);
    await page.locator('[data-testid="host-chart"] canvas').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('host-exposure').textContent()).toContain(formatDays(worst.oldestSecurityAgeDays));
    await page.getByTestId('host-trend-period').filter({ hasText: '90 days' }).click();
    await expect.poll(() => page.getByTestId('host-chart').getAttribute('data-drawn')).toBe(String(DAYS));
    await page.getByTestId('host-trends').screenshot({ path: 'e2e/artifacts/host-trends.png' });
  });

  it('the chart library adds at most 25 kB gzip, and only pages that draw charts fetch it', async () => {
    /** What a page fetched of uPlot (its code and its stylesheet), gzip bytes each. */
    const uplotOn = async (path: string) => {
      const page = await app.page(browser, { viewport: { width: 1400, height: 1000 } });
      const bodies: Promise<{ url: string; body: Buffer }>[] = [];
      page.on('response', (r) => void (/\.(js|css)$/.test(r.url()) && bodies.push(r.body().then((body) => ({ url: r.url(), body })))));
      await page.goto(app.url + path);
      await page.waitForLoadState('networkidle');
      if (path === '/') await page.locator('[data-testid="fleet-chart"] canvas').waitFor({ timeout: 30_000 });
      const all = await Promise.all(bodies);
      await page.close();
      // uPlot's code (its legend's class name is in it) and uPlot's own stylesheet. (The
      // dashboard's few lines of chart styles are in the first screen's CSS, with the rest of
      // its components' styles: they are the app's, not the library.)
      const library = (f: { url: string; body: Buffer }) => /uPlot\.[\w-]+\.css$/.test(f.url) || (f.url.endsWith('.js') && /u-legend/.test(f.body.toString('latin1')));
      return all.filter(library).map((f) => ({ url: f.url, gzip: gzipSync(f.body).length }));
    };
    const dashboard = await uplotOn('/');
    expect(dashboard.some((f) => f.url.endsWith('.js')) && dashboard.some((f) => /uPlot\.[\w-]+\.css$/.test(f.url))).toBe(true);
    expect(dashboard.reduce((a, f) => a + f.gzip, 0)).toBeLessThanOrEqual(CHART_BUDGET_GZIP);
    for (const path of ['/history', '/settings', '/stacks']) expect(await uplotOn(path), path).toEqual([]);
  });

  it('the exports download with the session cookie, the same numbers as the API', async () => {
    const page = await app.page(browser);
    await page.goto(app.url + '/');
    const csv = await page.evaluate(async () => (await fetch('/api/export/hosts.csv')).text());
    const lines = csv.trim().split('\r\n');
    expect(lines).toHaveLength(HOSTS + 1);
    const header = lines[0].split(',');
    const pending = header.indexOf('pending');
    const total = lines.slice(1).reduce((a, l) => a + Number(l.split(',')[pending]), 0);
    const { body: summary } = await app.api('/api/summary');
    expect(total).toBe(summary.pendingPackages);
  });
});
