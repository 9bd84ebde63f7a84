// A stranger's day one, in a real browser: `npm start` on an empty database, the first-run
// wizard creates the admin, finds the local relay connected, adds this machine (through a
// real sshd) with a connection test, and shows its first scan. Then the Help page's search,
// driven by keyboard.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { Browser, Page } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startSshd, type Sshd } from '../relay/test/sshd.ts';

let app: RunningApp;
let sshd: Sshd;
let browser: Browser;
let page: Page;
/** This machine's host name: what the first host ends up called. */
const DAY_ONE = hostname();

beforeAll(async () => {
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1' }, { setup: false });
  // The relay made its key on start; authorise it on this machine's test sshd.
  const publicKey = await until(async () => {
    try {
      return readFileSync(join(app.state, 'relay', 'id_ed25519.pub'), 'utf8').trim();
    } catch {
      return null;
    }
  }, 60_000, 'relay key');
  sshd = await startSshd({ authorizedKeys: [publicKey] });
  browser = await launchBrowser();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  mkdirSync('e2e/artifacts', { recursive: true });
});

afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-3000));
});

afterAll(async () => {
  await browser?.close();
  await sshd?.stop();
  await app?.stop();
});

const step = (name: string) => page.locator(`[data-testid="setup-step"][data-step="${name}"]`);

describe('the first-run wizard, from an empty database to a scanned host', () => {
  it('an unauthenticated API is closed, and the dashboard sends a stranger to the wizard', async () => {
    expect((await app.api('/api/hosts')).status).toBe(401);
    expect((await app.api('/api/setup')).body).toMatchObject({ needed: true, secretRequired: false });
    await page.goto(app.url);
    await page.waitForURL(/\/setup/, { timeout: 30_000 });
    await step('admin').waitFor();
    await page.screenshot({ path: 'e2e/artifacts/wizard-admin.png' });
  });

  it('creates the admin, sees the local relay connected, adds this machine and watches its first scan', async () => {
    const admin = step('admin');
    await admin.locator('input[name="username"]').fill('alice');
    await admin.locator('input[name="password"]').fill('a-very-long-password-7');
    await admin.locator('input[name="confirm"]').fill('a-very-long-password-7');
    await page.locator('[data-testid="setup-admin-submit"]').click();

    await step('relay').waitFor({ timeout: 20_000 });
    await page.locator('[data-testid="setup-relay-continue"]').click({ timeout: 60_000 });

    const host = step('host');
    await host.waitFor({ timeout: 20_000 });
    await host.locator('input[name="address"]').fill('127.0.0.1');
    await host.locator('input[name="port"]').fill(String(sshd.port));
    // no name typed: the host is called by the host name Test connection finds, not its address
    await page.locator('[data-testid="test-connection"]').click();
    await expect.poll(() => page.locator('[data-testid="test-result"]').getAttribute('data-ok'), { timeout: 60_000 }).toBe('true');
    expect(await host.locator('input[name="name"]').getAttribute('placeholder')).toContain(DAY_ONE);
    await page.screenshot({ path: 'e2e/artifacts/wizard-host.png', fullPage: true });
    await page.locator('[data-testid="setup-host-submit"]').click();
    await expect.poll(() => page.locator('[data-testid="setup-scan-result"]').getAttribute('data-status'), { timeout: 180_000 }).toBe('succeeded');
    await page.locator('[data-testid="setup-finish"]').click();
    await page.locator('[data-testid="host-row"]', { hasText: DAY_ONE }).waitFor({ timeout: 20_000 });

    // the admin exists, is signed in, and the wizard is over
    const me = await page.evaluate(async () => (await fetch('/api/auth/me')).json());
    expect(me).toMatchObject({ user: { username: 'alice', role: 'admin' } });
    expect((await app.api('/api/setup')).body.needed).toBe(false);
    const hosts = (await page.evaluate(async () => (await fetch('/api/hosts')).json())) as any[];
    expect(hosts.find((h: any) => h.name === DAY_ONE)).toMatchObject({ status: 'online', packageManager: 'apt' });
    await page.screenshot({ path: 'e2e/artifacts/wizard-done.png', fullPage: true });
  });

  it('signing out ends the session; the login page lets the admin back in', async () => {
    await page.locator('[data-testid="user-menu"]').click();
    await page.locator('[data-testid="logout"]').click();
    await page.waitForURL(/\/login/, { timeout: 20_000 });
    expect(await page.evaluate(async () => (await fetch('/api/hosts')).status)).toBe(401);
    // a fresh load of the sign-in page logs nothing in red (asking "who am I?" is not an error)
    const errors: string[] = [];
    const onConsole = (m: { type(): string; text(): string }) => void (m.type() === 'error' && errors.push(m.text()));
    page.on('console', onConsole);
    await page.reload();
    const form = page.locator('[data-testid="login-form"]');
    await form.waitFor({ timeout: 20_000 });
    await page.waitForLoadState('networkidle');
    // nor does opening the dashboard signed out, on its way to the sign-in page (its early
    // requests ask for the lists only once the session says someone is signed in)
    await page.goto(new URL('/', page.url()).href);
    await page.waitForURL(/\/login/, { timeout: 20_000 });
    await form.waitFor({ timeout: 20_000 });
    await page.waitForLoadState('networkidle');
    page.off('console', onConsole);
    expect(errors).toEqual([]);
    await form.locator('input[name="username"]').fill('alice');
    await form.locator('input[name="password"]').fill('wrong password here');
    await page.locator('[data-testid="login-submit"]').click();
    await expect.poll(() => page.locator('[data-testid="login-error"]').innerText(), { timeout: 10_000 }).toMatch(/wrong user name or password/);
    await form.locator('input[name="password"]').fill('a-very-long-password-7');
    await page.locator('[data-testid="login-submit"]').click();
    await page.locator('[data-testid="host-row"]', { hasText: DAY_ONE }).waitFor({ timeout: 20_000 });
  });
});

describe('Help & FAQ', () => {
  it('search highlights matches, and arrows, Enter and Escape work', async () => {
    await page.goto(`${app.url}/help`);
    const search = page.locator('[data-testid="help-search"]');
    await search.fill('sudo');
    await expect.poll(() => page.locator('[data-testid="help-match"]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    expect((await page.locator('[data-testid="help-match"]').first().innerText()).toLowerCase()).toBe('sudo');
    const results = page.locator('[data-testid="help-result"]');
    expect(await results.count()).toBeGreaterThan(0);
    await expect.poll(() => new URL(page.url()).searchParams.get('q'), { timeout: 10_000 }).toBe('sudo');

    // the arrows move the active result (aria-selected) one step at a time
    const activeIndex = () => results.evaluateAll((els) => els.findIndex((e) => e.getAttribute('aria-selected') === 'true'));
    expect(await results.count()).toBeGreaterThan(1);
    await search.press('ArrowDown');
    const first = await activeIndex();
    expect(first).toBeGreaterThanOrEqual(0);
    await search.press('ArrowDown');
    expect(await activeIndex()).toBe(first + 1);
    await search.press('ArrowUp');
    expect(await activeIndex()).toBe(first);
    expect(await page.locator('[data-testid="help-result"][aria-selected="true"]').count()).toBe(1);
    await page.screenshot({ path: 'e2e/artifacts/help-search.png', fullPage: true });

    await search.press('Enter');
    // Enter goes to that section: it is on screen
    const target = page.locator('[data-testid="help-section"]').filter({ has: page.locator('[data-testid="help-match"]') }).first();
    await expect.poll(() => target.isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(async () => page.evaluate<number>('window.scrollY'), { timeout: 10_000 }).toBeGreaterThan(0);

    await search.focus();
    await search.press('Escape');
    expect(await search.inputValue()).toBe('');
    expect(await page.locator('[data-testid="help-match"]').count()).toBe(0);

    await search.fill('zzqqxx-nothing');
    await page.locator('[data-testid="help-no-results"]').waitFor({ timeout: 10_000 });
  });
});
