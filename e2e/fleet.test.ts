// A simulated fleet of every supported kind of host through the real app: Scan all from
// the dashboard, live progress, and the right counts and reboot states for each host.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startFleet, PROFILE_NAMES, type Fleet } from '../sim/fleet.ts';
import { PROFILES } from '../sim/profiles.ts';
import { simMachine } from '../sim/upgrade.ts';

/** Properties the compositor animates without a new layout or paint of the page. */
const COMPOSITED = new Set(['transform', 'opacity', 'rotate', 'scale', 'translate']);
/** Properties animated on colours only (cheap: no layout); allowed for a moment, as a button
 * changes state. */
const PAINT_ONLY = ['color', 'background-color', 'border-color', 'outline-color', 'text-decoration-color', 'fill', 'stroke', 'box-shadow'];

/** The page's running animations and transitions, and the properties each one changes
 * (colour-only ones left out). A string: e2e/ is compiled without the DOM's types. */
function animations(page: Page): Promise<{ name: string; properties: string[] }[]> {
  return page.evaluate(`(() => {
    const meta = new Set(['offset', 'computedOffset', 'easing', 'composite']);
    const paintOnly = ${JSON.stringify(PAINT_ONLY)};
    return document.getAnimations()
      .filter((a) => a.playState === 'running')
      .map((a) => ({
        name: a.animationName ?? a.transitionProperty ?? '',
        properties: [...new Set(a.effect.getKeyframes().flatMap((k) => Object.keys(k)))]
          .filter((p) => !meta.has(p))
          .map((p) => p.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()))
          .filter((p) => !paintOnly.some((c) => p.endsWith(c))),
      }))
      .filter((a) => a.properties.length > 0);
  })()`);
}

let app: RunningApp;
let fleet: Fleet;
let browser: Browser;
const simState = mkdtempSync(join(tmpdir(), 'patchman-e2e-fleet-'));

beforeAll(async () => {
  // npm test builds once before the suite; dashboard.test.ts covers npm start's own build
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1' });
  browser = await launchBrowser();
});

afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-4000));
});

afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
  await app?.stop();
  rmSync(simState, { recursive: true, force: true });
});

describe('a simulated fleet', () => {
  const added = new Map<string, { id: string; profile: (typeof PROFILE_NAMES)[number] | 'offline' }>();

  it('adds one host of every profile, plus one that is down', async () => {
    const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
    fleet = await startFleet({
      hosts: [...PROFILE_NAMES.map((profile) => ({ profile })), { name: 'down-1', profile: 'debian12-security', failure: 'refuse' as const }],
      authorizedKeys: [relay.publicKey],
      stateDir: simState,
      baseAddress: '127.66.0.1',
    });
    for (const h of fleet.hosts) {
      const res = await app.api('/api/hosts', { method: 'POST', json: { name: h.name, address: h.address, port: h.port, user: 'root', monitorOnly: false } });
      expect(res.status).toBe(201);
      added.set(h.name, { id: res.body.id, profile: h.failure === 'refuse' ? 'offline' : h.profile });
    }
  });

  it('"Scan all" in the dashboard shows live progress to the end', async () => {
    const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
    // the dashboard's live socket asks for frames as arrays of events (a fleet-wide scan is
    // thousands of events; each frame costs the browser more than an event in it)
    const liveFrames: number[] = [];
    page.on('websocket', (ws) => {
      if (!ws.url().includes('/api/live?batch=1')) return;
      ws.on('framereceived', (f) => {
        const data = JSON.parse(String(f.payload));
        liveFrames.push(Array.isArray(data) ? data.length : -1);
      });
    });
    await page.goto(app.url);
    await page.locator('[data-testid="host-row"]').nth(added.size - 1).waitFor({ timeout: 20_000 });
    await expect.poll(() => page.locator('[data-testid="live-indicator"]').getAttribute('data-state')).toBe('open');
    // At rest the page animates nothing: an animation that never ends (the "Live" dot used to
    // ping forever) keeps the browser drawing frames whenever anything else changes.
    await expect.poll(() => animations(page), { timeout: 10_000 }).toEqual([]);
    await page.locator('[data-testid="scan-all"]').click();
    const progress = page.locator('[data-testid="scan-progress"]');
    await expect.poll(() => progress.getAttribute('data-total'), { timeout: 20_000 }).toBe(String(added.size));
    // While it runs, nothing animates a property that lays the page out again each frame (the
    // progress bar eased its width): spinners and the bar move on the compositor.
    const seen = new Set<string>();
    while ((await progress.getAttribute('data-done')) !== String(added.size)) {
      for (const a of await animations(page)) for (const p of a.properties) seen.add(p);
      await page.waitForTimeout(100);
    }
    expect(seen.has('transform'), 'the progress bar and spinners were seen animating').toBe(true);
    expect([...seen].filter((p) => !COMPOSITED.has(p))).toEqual([]);
    await expect.poll(() => progress.getAttribute('data-failed')).toBe('1');
    expect(liveFrames.length).toBeGreaterThan(0);
    expect(liveFrames.every((n) => n > 0)).toBe(true);
    expect(Math.max(...liveFrames)).toBeGreaterThan(1);
    mkdirSync('e2e/artifacts', { recursive: true });
    await page.waitForTimeout(800); // let the progress bar's transition finish
    await page.screenshot({ path: 'e2e/artifacts/fleet.png' });
    await page.close();
  });

  it('each host shows the counts and reboot state of what it really runs', async () => {
    for (const [name, { id, profile }] of added) {
      const { body: host } = await app.api(`/api/hosts/${id}`);
      if (profile === 'offline') {
        expect(host.status, name).toBe('offline');
        expect(host.statusReason).toBeTruthy();
        continue;
      }
      const e = PROFILES[profile].expected;
      expect(host, name).toMatchObject({
        status: 'online',
        os: { id: e.os.id, prettyName: e.os.prettyName },
        packageManager: e.packageManager,
        updatesCount: e.updates,
        securityCount: e.security,
        rebootRequired: e.rebootRequired,
      });
      expect(host.held.length, name).toBe(e.held);
      expect(host.proxmox?.product ?? null, name).toBe(e.proxmox);
      if (e.rebootRequired) expect(host.rebootReason, name).toBeTruthy();
    }
  });

  it('the summary adds it up, and the "need reboot" card filters to exactly those hosts', async () => {
    const healthy = [...added.values()].filter((h) => h.profile !== 'offline').map((h) => PROFILES[h.profile as keyof typeof PROFILES].expected);
    const { body: summary } = await app.api('/api/summary');
    expect(summary).toMatchObject({
      hosts: added.size,
      online: healthy.length,
      offline: 1,
      pendingPackages: healthy.reduce((n, e) => n + e.updates, 0),
      securityPackages: healthy.reduce((n, e) => n + e.security, 0),
      needReboot: healthy.filter((e) => e.rebootRequired).length,
    });
    const rebootNames = [...added].filter(([, h]) => h.profile !== 'offline' && PROFILES[h.profile as keyof typeof PROFILES].expected.rebootRequired).map(([n]) => n);
    expect(rebootNames.length).toBeGreaterThan(0);

    const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(app.url);
    await page.locator('[data-testid="summary-card"][data-filter="needs-reboot"]').click();
    await expect.poll(async () => (await page.locator('[data-testid="host-row"]').allInnerTexts()).length, { timeout: 10_000 }).toBe(rebootNames.length);
    const shown = await page.locator('[data-testid="host-row"]').allInnerTexts();
    for (const n of rebootNames) expect(shown.some((t) => t.includes(n)), n).toBe(true);

    // one host is offline: the card says "Offline" and shows exactly that host, in words that agree
    const offlineName = [...added].find(([, h]) => h.profile === 'offline')![0];
    const card = page.locator('[data-testid="summary-card"][data-filter="offline"]');
    expect(await card.innerText()).toMatch(/Offline\s+1\s*\/\s*\d+/);
    await card.click();
    await expect.poll(async () => (await page.locator('[data-testid="host-row"]').allInnerTexts()).length, { timeout: 10_000 }).toBe(1);
    expect(await page.locator('[data-testid="host-row"]').innerText()).toContain(offlineName);
    expect(await page.locator('[data-testid="list-state"]').innerText()).toContain('Showing 1 host that is offline or failing');
    await page.close();
  });

  it('a single-host patch shows how far it has got: n of N packages, from apt\'s own output', async () => {
    const [name, { id }] = [...added].find(([, h]) => h.profile === 'debian12-security')!;
    const { body: host } = await app.api(`/api/hosts/${id}`);
    expect(host.updatesCount).toBeGreaterThan(1);
    // slow the simulated run down so the dashboard sees it part way
    simMachine(name).runMs = 8_000;
    const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(`${app.url}/hosts/${id}`);
    await page.locator('[data-testid="upgrade-all"]').click();
    await page.locator('[data-testid="upgrade-confirm-button"]').click();
    const progress = page.locator('[data-testid="live-log-progress"]');
    await expect.poll(() => progress.getAttribute('data-total'), { timeout: 60_000 }).toMatch(/^\d+$/);
    const total = Number(await progress.getAttribute('data-total'));
    expect(total).toBeGreaterThan(1);
    expect(await progress.innerText()).toMatch(new RegExp(`\\d+ of ${total} packages`));
    await page.screenshot({ path: 'e2e/artifacts/patch-progress.png' });
    await expect.poll(() => page.locator('[data-testid="live-log"]').getAttribute('data-status'), { timeout: 60_000 }).toBe('succeeded');
    await page.close();
  });

  it('Docker hosts: their Compose stacks are checked after the scan, with newer images found, and shown on the Stacks page', async () => {
    const dockerHosts = [...added].filter(([, h]) => h.profile !== 'offline' && PROFILES[h.profile as keyof typeof PROFILES].probe.docker);
    expect(dockerHosts.length).toBeGreaterThan(0);
    const stacks = await until(async () => {
      const { body } = await app.api('/api/stacks');
      return new Set(body.map((s: any) => s.hostId)).size === dockerHosts.length && body;
    }, 60_000, 'stacks of every docker host');
    for (const [name, { id }] of dockerHosts) {
      const mine = stacks.filter((s: any) => s.hostId === id);
      expect(mine.map((s: any) => s.name).sort(), name).toEqual(['app', 'monitoring', 'web']);
      expect(mine.find((s: any) => s.name === 'web').updatesCount, name).toBe(1);
      expect(mine.every((s: any) => s.error === null), name).toBe(true);
    }
    const { body: failed } = await app.api('/api/jobs?kind=docker-scan&status=failed');
    expect(failed).toEqual([]);
    const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(`${app.url}/stacks`);
    await expect.poll(() => page.locator('[data-testid="stack-card"]').count(), { timeout: 20_000 }).toBe(dockerHosts.length * 3);
    await page.screenshot({ path: 'e2e/artifacts/fleet-stacks.png' });
    await page.close();
  });

  it('host pages: package checkboxes only where single packages may be upgraded, else the reason', async () => {
    mkdirSync('e2e/artifacts', { recursive: true });
    const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
    const cases: [string, boolean, RegExp | null, string, RegExp][] = [
      ['rocky9', true, null, 'fedora', /with a full upgrade \(dnf -y upgrade\)/],
      ['leap15', true, null, 'suse', /with a full upgrade \(zypper update\)/],
      ['arch-reboot', false, /Arch does not support partial upgrades/, 'arch', /full system upgrade \(pacman -Syu\), the only kind this pacman host allows/],
      ['pve8-reboot', false, /Proxmox documents partial upgrades as unsupported/, 'debian', /apt-get dist-upgrade\), as Proxmox VE requires/],
      ['alpine320', false, /only as a whole \(apk upgrade\)/, 'alpine', /full system upgrade \(apk upgrade\), the only kind this apk host allows/],
    ];
    for (const [name, selectable, why, distro, command] of cases) {
      const id = [...added.values()].find((h) => h.profile === name)!.id;
      await page.goto(`${app.url}/hosts/${id}`);
      await page.locator('[data-testid="package-row"]').first().waitFor({ timeout: 20_000 });
      expect(await page.locator('[data-testid="host-distro"]').first().getAttribute('data-distro'), name).toBe(distro);
      expect(await page.locator('[data-testid="package-select"]').count(), name).toBe(selectable ? await page.locator('[data-testid="package-row"]').count() : 0);
      expect(await page.locator('[data-testid="upgrade-selected"]').count(), name).toBe(selectable ? 1 : 0);
      expect(await page.locator('[data-testid="upgrade-all"]').isEnabled(), name).toBe(true);
      if (why) expect(await page.locator('[data-testid="selective-note"]').innerText(), name).toMatch(why);
      else expect(await page.locator('[data-testid="selective-note"]').count(), name).toBe(0);
      await page.screenshot({ path: `e2e/artifacts/host-${name}.png` });
      // The confirmation names the command the descriptor gives for this host.
      await page.locator('[data-testid="upgrade-all"]').click();
      expect(await page.locator('[data-testid="upgrade-confirm-summary"]').innerText(), name).toMatch(command);
      await page.keyboard.press('Escape');
      await page.locator('[data-testid="upgrade-confirm-summary"]').waitFor({ state: 'hidden' });
    }
    // Help lists every package manager from the same descriptors.
    await page.goto(`${app.url}/help#full-or-selected`);
    const q = page.locator('[data-testid="help-question"][data-id="full-or-selected"]');
    await q.locator('summary').waitFor();
    if ((await q.getAttribute('open')) === null) await q.locator('summary').click();
    const text = await q.innerText();
    for (const line of [/dnf \(Fedora, RHEL, Rocky.*dnf -y upgrade/, /zypper \(openSUSE Leap.*zypper update/, /apk \(Alpine Linux\).*apk upgrade.*whole system only/]) expect(text).toMatch(line);
    await q.screenshot({ path: 'e2e/artifacts/help-full-or-selected.png' });
    await page.close();
  });
});
