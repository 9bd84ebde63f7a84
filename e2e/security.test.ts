// Against `npm start` and a real Chromium: every response carries the security headers, the
// dashboard loads under its strict Content-Security-Policy with no violation at all, and a
// relay that presents another SSH key only offers it, until an admin accepts it in
// Settings → Relays. And `npm start` restarts its relay when it dies.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { Browser, Page } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { COMMON_HEADERS, DASHBOARD_CSP_HEADER } from '../protocol/security-headers.ts';
import { PROTOCOL_VERSION } from '../protocol/relay.ts';

let app: RunningApp;
let browser: Browser;

beforeAll(async () => {
  app = await startApp();
  browser = await launchBrowser();
});
afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-4000));
});
afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

/** A page that records every CSP violation (and console complaint about one). */
async function watchedPage(): Promise<{ page: Page; violations: string[] }> {
  const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  await page.exposeFunction('__cspViolation', (v: string) => violations.push(v));
  // (a string: it runs in the page, whose types this Node project does not have)
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(e.violatedDirective + ' ' + e.blockedURI))`);
  return { page, violations };
}

/** A relay on a real WebSocket that says hello with `publicKey`. */
async function helloWith(token: string, publicKey: string): Promise<WebSocket> {
  const ws = new WebSocket(app.url.replace('http:', 'ws:') + '/relay/connect', { headers: { Authorization: `Bearer ${token}` } });
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  const welcome = new Promise((resolve) => ws.once('message', resolve));
  ws.send(JSON.stringify({ type: 'hello', v: PROTOCOL_VERSION, version: '0.1.0-e2e', publicKey, hostname: 'relaybox' }));
  await welcome;
  return ws;
}
const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7kq9r2x0lQm8Y3o3VqkHkz0y8i7c5l4t6Wm1bC0aDe patchman-relay@a';
const KEY_B = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAxG4Z8zyoJnXmaADFdQMwTaSHPGiOcdgpCSwNR4sZOF someone@elsewhere';

describe('security headers and CSP, end to end', () => {
  it('static files, the SPA fallback and the API carry the security headers', async () => {
    const index = await fetch(app.url + '/');
    const html = await index.text();
    const asset = /src="(\/_app\/[^"]+\.js)"|href="(\/_app\/[^"]+\.js)"/.exec(html);
    const paths = ['/', '/settings', '/favicon.svg', asset![1] ?? asset![2]];
    for (const path of paths) {
      const res = await fetch(app.url + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('Content-Security-Policy'), path).toBe(DASHBOARD_CSP_HEADER);
      for (const [k, v] of Object.entries(COMMON_HEADERS)) expect(res.headers.get(k), `${path} ${k}`).toBe(v);
    }
    // the page's own policy: scripts from this origin and the one bootstrap script by its hash
    const meta = /<meta http-equiv="content-security-policy" content="([^"]+)"/.exec(html)![1];
    expect(meta).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(meta).not.toMatch(/script-src[^;]*unsafe-inline/);
    const api = await fetch(app.url + '/api/health');
    expect(api.headers.get('Content-Security-Policy')).toContain("frame-ancestors 'none'");
    expect(api.headers.get('X-Content-Type-Options')).toBe('nosniff');
    // plain HTTP on this machine: no HSTS from the Worker
    expect(api.headers.get('Strict-Transport-Security')).toBeNull();
    // and over loopback the API's JSON is not gzipped on the one workerd thread (local-encoding.ts)
    const token = (await app.api('/api/tokens', { method: 'POST', json: { name: 'encoding', role: 'viewer' } })).body.secret;
    const list = await fetch(app.url + '/api/hosts', { headers: { Authorization: `Bearer ${token}`, 'Accept-Encoding': 'gzip, br' } });
    expect(list.status).toBe(200);
    expect(list.headers.get('Content-Encoding')).toBe('identity');
    expect(Array.isArray(await list.json())).toBe(true);
  });

  it('the dashboard loads and works with zero CSP violations', async () => {
    const { page, violations } = await watchedPage();
    for (const path of ['/', '/settings', '/history', '/stacks', '/help']) {
      await page.goto(app.url + path);
      await page.locator('nav').first().waitFor({ timeout: 30_000 });
      await page.waitForLoadState('networkidle');
    }
    // the live socket connected (connect-src 'self', and /api/live's same-origin check)
    await page.goto(app.url + '/settings');
    await page.locator('[data-testid="live-indicator"][data-state="open"]').first().waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="relay-row"][data-connected="true"]').first().waitFor({ timeout: 30_000 });
    expect(violations).toEqual([]);
    // and the watch works: an injected inline script is refused and seen
    await page.evaluate(`(() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1'; document.body.appendChild(s); })()`);
    await until(async () => violations.length > 0, 10_000, 'the injected script refused');
    expect(violations.join('\n')).toMatch(/script-src/);
    expect(await page.evaluate('window.__ran')).toBeUndefined();
    await page.context().close();
  });

  it('a relay presenting another SSH key only offers it; an admin accepts it in Settings → Relays', async () => {
    const { status, body } = await app.api('/api/relays', { method: 'POST', json: { name: 'rekeyed' } });
    expect(status).toBe(201);
    (await helloWith(body.token, KEY_A)).close();
    const rogue = await helloWith(body.token, KEY_B);
    const listed = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.id === body.relay.id && r.publicKeyOffered), 10_000, 'key offered');
    expect(listed.publicKey).toBe(KEY_A);

    const { page, violations } = await watchedPage();
    // the dashboard's relay card warns too (no accept button there)
    await page.goto(app.url + '/');
    const card = page.locator(`[data-testid="relay-row"][data-relay-id="${body.relay.id}"]`);
    await card.locator('[data-testid="relay-key-offered"]').waitFor({ timeout: 30_000 });
    expect(await card.locator('[data-testid="relay-accept-key"]').count()).toBe(0);
    await page.goto(app.url + '/settings');
    const row = page.locator(`[data-testid="relay-row"][data-relay-id="${body.relay.id}"]`);
    await row.locator('[data-testid="relay-key-offered"]').waitFor({ timeout: 30_000 });
    expect(await row.locator('[data-testid="relay-key-offered-fingerprint"]').textContent()).toBe(listed.publicKeyOfferedFingerprint);
    expect(await row.locator('[data-testid="relay-public-key"]').textContent()).toBe(KEY_A);
    await row.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(process.env.PATCHMAN_SCREENSHOTS ?? tmpdir(), 'relay-key-offered.png'), fullPage: false });
    await row.locator('[data-testid="relay-accept-key"]').click();
    await page.locator('[data-testid="relay-accept-key-confirm"]').waitFor();
    await page.screenshot({ path: join(process.env.PATCHMAN_SCREENSHOTS ?? tmpdir(), 'relay-key-accept.png') });
    await page.locator('[data-testid="relay-accept-key-confirm-button"]').click();
    await row.locator('[data-testid="relay-key-offered"]').waitFor({ state: 'detached', timeout: 15_000 });
    expect(await row.locator('[data-testid="relay-public-key"]').textContent()).toBe(KEY_B);
    expect((await app.api('/api/relays')).body.find((r: any) => r.id === body.relay.id)).toMatchObject({ publicKey: KEY_B, publicKeyOffered: null });
    expect(violations).toEqual([]);
    rogue.close();
    await page.context().close();
  });
});

/** The pid of this app's relay process (its environment names this app's state dir). */
function relayPid(): number | null {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (!cmd.includes('patchman-relay.cjs')) continue;
      if (readFileSync(`/proc/${d}/environ`, 'utf8').split('\0').includes(`PATCHMAN_DATA_DIR=${join(app.state, 'relay')}`)) return Number(d);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return null;
}

describe('npm start keeps its relay running', () => {
  it('a relay killed with SIGKILL is started again and reconnects', async () => {
    const connected = async () => (await app.api('/api/relays')).body.find((r: any) => r.id === 'local')?.connected === true;
    await until(connected, 60_000, 'local relay connected');
    const pid = relayPid();
    expect(pid).not.toBeNull();
    process.kill(pid!, 'SIGKILL');
    await until(async () => !(await connected()), 30_000, 'relay seen gone');
    await until(connected, 90_000, 'relay back');
    const again = relayPid();
    expect(again).not.toBeNull();
    expect(again).not.toBe(pid);
    expect(app.output()).toMatch(/\[patchman\] relay exited \(SIGKILL\); restarting in [\d.]+ s/);
    // the Worker is still the same one: the app did not stop
    expect((await app.api('/api/health')).status).toBe(200);
  });
});
