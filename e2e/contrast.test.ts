// Light and dark, and readable in both: every page of the dashboard, with a small simulated
// fleet on it, in headless Chromium with the system set to light and to dark, checked by
// axe-core's color-contrast rule (WCAG AA: 4.5:1 for text, 3:1 for large text).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startFleet, type Fleet } from '../sim/fleet.ts';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let app: RunningApp;
let fleet: Fleet;
let browser: Browser;
let hostId = '';
/** A Proxmox VE node with guests (one adopted): its Guests panel and the guest badge. */
let nodeId = '';
const simState = mkdtempSync(join(tmpdir(), 'patchman-e2e-contrast-'));

beforeAll(async () => {
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1' });
  browser = await launchBrowser();
  const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
  fleet = await startFleet({
    hosts: [{ profile: 'debian12-security' }, { profile: 'arch-reboot' }, { profile: 'pve8-guests' }, { name: 'down-1', profile: 'debian12-security', failure: 'refuse' }],
    authorizedKeys: [relay.publicKey],
    stateDir: simState,
    baseAddress: '127.67.0.1',
  });
  for (const h of fleet.hosts) {
    const res = await app.api('/api/hosts', { method: 'POST', json: { name: h.name, address: h.address, port: h.port, monitorOnly: false, scan: true } });
    hostId ||= res.body.id;
    if (h.profile === 'pve8-guests') nodeId = res.body.id;
  }
  await until(async () => (await app.api('/api/jobs?kind=scan')).body.every((j: any) => ['succeeded', 'failed'].includes(j.status)) || null, 60_000, 'scans');
  if ((await app.api(`/api/hosts/${nodeId}/guests/101/adopt`, { method: 'POST', json: {} })).status !== 201) throw new Error('adopting a guest failed');
  // a policy with a rollout, so the Policies page shows its list and history
  const policy = await app.api('/api/policies', { method: 'POST', json: { name: 'web security', selector: { tags: ['none'] }, schedule: { cron: '30 2 * * 0', timeZone: 'Europe/Berlin', windowMinutes: 120 }, reboot: 'if-required' } });
  await app.api(`/api/policies/${policy.body.id}/run`, { method: 'POST', json: {} });
  mkdirSync('e2e/artifacts', { recursive: true });
});

afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-3000));
});

afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
  await app?.stop();
  rmSync(simState, { recursive: true, force: true });
});

interface Violation {
  page: string;
  html: string;
  summary: string;
}

async function contrastViolations(page: Page, where: string): Promise<Violation[]> {
  // (evaluated through the debugger protocol: the page's CSP rightly refuses inline scripts)
  await page.evaluate(AXE);
  const result = (await page.evaluate(async () => {
    const g = globalThis as any;
    const r = await g.axe.run(g.document, { runOnly: { type: 'rule', values: ['color-contrast'] }, resultTypes: ['violations'] });
    return r.violations.flatMap((v: any) => v.nodes.map((n: any) => ({ html: n.html.slice(0, 160), summary: n.failureSummary?.split('\n').slice(1).join(' ').slice(0, 200) })));
  })) as Omit<Violation, 'page'>[];
  return result.map((v) => ({ page: where, ...v }));
}

const PAGES = ['/', '/hosts/:id', '/hosts/:node', '/history', '/stacks', '/settings', '/help', '/audit', '/policies'];

describe('contrast (WCAG AA) in both themes', () => {
  for (const scheme of ['dark', 'light'] as const) {
    it(`every page has readable text with the system in ${scheme} mode`, async () => {
      const page = await app.page(browser, { viewport: { width: 1280, height: 900 }, colorScheme: scheme });
      const found: Violation[] = [];
      for (const path of PAGES) {
        await page.goto(app.url + path.replace(':id', hostId).replace(':node', nodeId));
        await page.locator('main').first().waitFor({ timeout: 20_000 });
        await page.waitForLoadState('networkidle');
        await page.waitForTimeout(300);
        expect(await page.locator('html').getAttribute('data-theme')).toBe(scheme);
        found.push(...(await contrastViolations(page, path)));
        if (path === '/' || path === '/hosts/:id') await page.screenshot({ path: `e2e/artifacts/theme-${scheme}${path === '/' ? '' : '-host'}.png`, fullPage: false });
      }
      // the sign-in page, signed out
      const anon = await (await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: scheme })).newPage();
      await anon.goto(`${app.url}/login`);
      await anon.locator('[data-testid="login-form"]').waitFor({ timeout: 20_000 });
      found.push(...(await contrastViolations(anon, '/login')));
      await anon.context().close();
      await page.context().close();
      expect(found, JSON.stringify(found, null, 1)).toEqual([]);
    });
  }

  it('the toggle overrides the system, and the choice survives a reload', async () => {
    const page = await app.page(browser, { viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    await page.goto(app.url);
    const toggle = page.locator('[data-testid="theme-toggle"]');
    await toggle.waitFor({ timeout: 20_000 });
    expect(await toggle.getAttribute('data-choice')).toBe('system');
    await toggle.click(); // → light
    await expect.poll(() => page.locator('html').getAttribute('data-theme')).toBe('light');
    const bg = await page.evaluate(() => { const g = globalThis as any; return g.getComputedStyle(g.document.body).backgroundColor as string; });
    await page.reload();
    await toggle.waitFor({ timeout: 20_000 });
    expect(await toggle.getAttribute('data-choice')).toBe('light');
    expect(await page.locator('html').getAttribute('data-theme')).toBe('light');
    expect(await page.evaluate(() => { const g = globalThis as any; return g.getComputedStyle(g.document.body).backgroundColor as string; })).toBe(bg);
    await toggle.click(); // → dark
    await expect.poll(() => page.locator('html').getAttribute('data-theme')).toBe('dark');
    expect(await page.evaluate(() => { const g = globalThis as any; return g.getComputedStyle(g.document.body).backgroundColor as string; })).not.toBe(bg);
    await page.context().close();
  });
});
