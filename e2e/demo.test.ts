// `npm run demo` as a new user runs it (scripts/demo.ts, on free ports): the simulated fleet
// is added and scanned, its Docker stacks are checked, and it gets 90 days of history that
// ends in what the scans found — so the dashboard's trend charts have more than one point,
// the host list sorts by security exposure, and Stacks shows stacks with newer images.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContextOptions } from 'playwright-core';
import { freePort } from '../relay/test/sshd.ts';
import { launchBrowser } from './browser.ts';
import { until } from './app.ts';

const root = resolve(import.meta.dirname, '..');
const DEMO_ADMIN = { username: 'admin', password: 'patchman-demo-admin' };
const HOSTS = 11; // every profile once, and the machine that is switched off

let demo: ChildProcess;
let out = '';
let url: string;
let session: string;
let browser: Browser;
const state = mkdtempSync(join(tmpdir(), 'patchman-e2e-demo-'));

async function api(path: string) {
  const res = await fetch(url + path, { headers: { Cookie: `__Host-patchman_session=${session}` } });
  return (await res.json()) as any;
}

async function page(opts: BrowserContextOptions = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, ...opts });
  await context.addCookies([{ name: '__Host-patchman_session', value: session, url: url.replace('http:', 'https:'), httpOnly: true, secure: true, sameSite: 'Strict' }]);
  return context.newPage();
}

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  demo = spawn(process.execPath, [join(root, 'scripts', 'demo.ts')], {
    cwd: root,
    // npm test builds once before the suite
    env: { ...process.env, PORT: String(port), DEMO_SIM_PORT: String(await freePort()), PATCHMAN_STATE: state, PATCHMAN_SKIP_BUILD: '1', DEMO_HOSTS: String(HOSTS), DEMO_LATENCY_MS: '20' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout!.on('data', (c) => (out += c));
  demo.stderr!.on('data', (c) => (out += c));
  await until(async () => {
    if (demo.exitCode !== null) throw new Error(`the demo exited early:\n${out}`);
    return out.includes(`sign in as ${DEMO_ADMIN.username}`);
  }, 400_000, 'the demo to be ready');
  const login = await fetch(url + '/api/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(DEMO_ADMIN) });
  expect(login.status).toBe(200);
  session = /__Host-patchman_session=([^;]+)/.exec(login.headers.get('Set-Cookie') ?? '')![1];
  browser = await launchBrowser();
}, 420_000);

afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(out.slice(-4000));
});

afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    // the demo stops the app and the simulated hosts itself
    const exited = new Promise((r) => demo.once('exit', r));
    demo.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
  }
  rmSync(state, { recursive: true, force: true });
});

describe('npm run demo', { timeout: 120_000 }, () => {
  it('has 90 days of history that ends in what the scans found', async () => {
    expect(out).toMatch(/gave \d+ hosts 90 days of history/);
    const trend = await api('/api/trends?days=90');
    expect(trend.points).toHaveLength(90);
    const summary = await api('/api/summary');
    // today is the scans' own: the hosts as they are now
    expect(trend.points.at(-1)).toMatchObject({ hosts: HOSTS - 1, pending: summary.pendingPackages, security: summary.securityPackages, needReboot: summary.needReboot });
    expect(trend.activity.length).toBeGreaterThan(5);
    const exposure = await api('/api/exposure?days=90');
    expect(exposure.timeToPatchDays.count).toBeGreaterThan(0);
    const exposed = exposure.hosts.filter((h: any) => h.oldestSecurityAgeDays !== null);
    expect(exposed.length).toBeGreaterThan(1);
    expect(exposed[0].oldestSecurityAgeDays).toBeGreaterThan(0.5);
  });

  it('the dashboard draws the trend charts with more than one point', async () => {
    const p = await page();
    await p.goto(url + '/');
    await p.getByTestId('trends-panel').scrollIntoViewIfNeeded();
    await p.locator('[data-testid="fleet-chart"] canvas').waitFor({ timeout: 30_000 });
    await expect.poll(() => p.getByTestId('fleet-chart').getAttribute('data-drawn')).toBe('30');
    await expect.poll(async () => Number(await p.getByTestId('activity-chart').getAttribute('data-drawn'))).toBeGreaterThan(1);
    await p.context().close();
  });

  it('the host list sorts by security exposure, most exposed first, as /api/exposure has it', async () => {
    const exposure = await api('/api/exposure?days=30');
    const exposed = exposure.hosts.filter((h: any) => h.oldestSecurityAgeDays !== null);
    mkdirSync('e2e/artifacts', { recursive: true });
    for (const colorScheme of ['light', 'dark'] as const) {
      // tall enough for every row to be rendered (the list draws only what is on screen)
      const p = await page({ colorScheme, viewport: { width: 1400, height: 2400 } });
      await p.goto(url + '/');
      const rows = p.locator('[data-testid="host-row"]');
      await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(HOSTS);
      await p.getByTestId('sort-exposure').getByRole('button').click();
      await expect.poll(() => p.url()).toContain('sort=exposure');
      expect(await p.getByTestId('sort-exposure').getAttribute('aria-sort')).toBe('descending');
      const names = await rows.getByTestId('host-name').allTextContents();
      const ages = await rows.getByTestId('host-exposure').evaluateAll((els) => els.map((e) => e.getAttribute('data-age')));
      expect(names.slice(0, exposed.length)).toEqual(exposed.map((h: any) => h.name));
      // (the page counts to its own clock: a tenth of a day either way)
      ages.slice(0, exposed.length).forEach((a, i) => expect(Math.abs(Number(a) - exposed[i].oldestSecurityAgeDays)).toBeLessThanOrEqual(0.1));
      expect(ages.slice(exposed.length).every((a) => a === '')).toBe(true);
      expect(await rows.first().getByTestId('host-exposure').textContent()).toMatch(/oldest security fix\s+\d+(\.\d)? d/);
      await p.getByTestId('hosts-panel').screenshot({ path: `e2e/artifacts/hosts-exposure-${colorScheme}.png` });
      // a second click: the least exposed first
      await p.getByTestId('sort-exposure').getByRole('button').click();
      await expect.poll(() => p.url()).toContain('dir=asc');
      expect(await rows.last().getByTestId('host-name').textContent()).toBe(exposed[0].name);
      await p.context().close();
    }
    // a phone: cards instead of columns, the sort in a menu; the exposure line on each exposed card
    const phone = await page({ viewport: { width: 390, height: 2400 } });
    await phone.goto(url + '/');
    await phone.getByTestId('sort-select').selectOption('exposure:desc');
    await expect.poll(() => phone.url()).toContain('sort=exposure');
    const first = phone.locator('[data-testid="host-row"]').first();
    expect(await first.getByTestId('host-name').textContent()).toBe(exposed[0].name);
    expect(await first.getByTestId('host-exposure').isVisible()).toBe(true);
    await phone.getByTestId('hosts-panel').screenshot({ path: 'e2e/artifacts/hosts-exposure-phone.png' });
    await phone.context().close();
  });

  it('Stacks works: every Docker host’s stacks are checked, some with newer images, none failing', async () => {
    const stacks = await until(async () => {
      const body = await api('/api/stacks');
      return body.length > 0 && body;
    }, 60_000, 'stacks');
    expect(stacks.some((s: any) => s.updatesCount > 0)).toBe(true);
    expect(stacks.filter((s: any) => s.error !== null)).toEqual([]);
    const p = await page();
    await p.goto(url + '/stacks');
    await expect.poll(() => p.locator('[data-testid="stack-card"]').count(), { timeout: 20_000 }).toBe(stacks.length);
    await p.context().close();
  });
});
