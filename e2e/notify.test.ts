// Notifications end to end on the simulated fleet through the real app (npm start: workerd,
// the local relay, real sshd hosts): "Scan all" over 30 hosts sends exactly one
// security-updates message per channel with the right counts; a failed patch sends one
// failure message linking to its job; a LAN channel goes through the relay, and a target
// outside the relay's PATCHMAN_NOTIFY_ALLOW is refused by the relay even when the Worker asks.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startReceiver, type Receiver } from './http-receiver.ts';
import { startFleet, mixedFleet, PROFILES, type Fleet } from '../sim/fleet.ts';

let app: RunningApp;
let fleet: Fleet;
let browser: Browser | undefined;
let cloud: Receiver; // stands for Discord: the Worker delivers (loopback allowed under npm start)
let lan: Receiver; // a LAN ntfy the relay may reach
let forbidden: Receiver; // a LAN service the relay's allowlist does not name
const simState = mkdtempSync(join(tmpdir(), 'patchman-e2e-notify-'));
const hostIds = new Map<string, string>();

beforeAll(async () => {
  [cloud, lan, forbidden] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1', PATCHMAN_NOTIFY_ALLOW: new URL(lan.url).host });
});

afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-4000));
});

afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
  await app?.stop();
  await Promise.all([cloud?.close(), lan?.close(), forbidden?.close()]);
  rmSync(simState, { recursive: true, force: true });
});

const EVENTS = ['security-updates', 'job-failed', 'host-unreachable'];

describe('notifications on a simulated fleet', () => {
  it('channels: Discord from the Worker, ntfy on the LAN through the relay', async () => {
    const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
    const discord = await app.api('/api/notifications/channels', { method: 'POST', json: { name: 'Discord', type: 'discord', events: EVENTS, config: { url: `${cloud.url}/api/webhooks/1/tok3n` } } });
    expect(discord.status).toBe(201);
    const ntfy = await app.api('/api/notifications/channels', { method: 'POST', json: { name: 'LAN ntfy', type: 'ntfy', via: relay.id, events: EVENTS, config: { url: `${lan.url}/patchman`, token: 'tk_lan' } } });
    expect(ntfy.status).toBe(201);

    fleet = await startFleet({ hosts: mixedFleet(30), authorizedKeys: [relay.publicKey], stateDir: simState, baseAddress: '127.67.0.1' });
    for (const h of fleet.hosts) {
      const res = await app.api('/api/hosts', { method: 'POST', json: { name: h.name, address: h.address, port: h.port, user: 'root', monitorOnly: false } });
      expect(res.status).toBe(201);
      hostIds.set(h.name, res.body.id);
    }
  });

  it('"Scan all" over 30 hosts: exactly one security-updates message per channel, with the right counts', async () => {
    const withSecurity = fleet.hosts.filter((h) => PROFILES[h.profile].expected.security > 0);
    const total = withSecurity.reduce((n, h) => n + PROFILES[h.profile].expected.security, 0);
    expect(withSecurity.length).toBeGreaterThan(5);

    const scans = await app.api('/api/scans', { method: 'POST', json: {} });
    expect(scans.body.jobIds).toHaveLength(30);
    const [toDiscord] = await cloud.waitFor(1, '/api/webhooks/1/tok3n', 180_000);
    const [toNtfy] = await lan.waitFor(1, '/patchman', 60_000);
    // every scan is done by now (the window waits for them), and nothing else follows
    const jobs = (await app.api('/api/jobs?kind=scan')).body;
    expect((jobs.jobs ?? jobs).filter((j: any) => ['queued', 'dispatched', 'running'].includes(j.status))).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 15_000));
    expect(cloud.received).toHaveLength(1);
    expect(lan.received).toHaveLength(1);

    const embed = JSON.parse(toDiscord.body).embeds[0];
    expect(embed.title).toBe(`New security updates on ${withSecurity.length} hosts`);
    expect(embed.description).toContain(`${total} security updates pending on ${withSecurity.length} hosts`);
    expect(embed.url).toBe(`${app.url}/`);
    expect(toNtfy.headers).toMatchObject({ title: `New security updates on ${withSecurity.length} hosts`, authorization: 'Bearer tk_lan', click: `${app.url}/` });

    const log = (await app.api('/api/notifications/deliveries')).body;
    expect(log.map((d: any) => `${d.event} ${d.status}`)).toEqual(['security-updates sent', 'security-updates sent']);
    const channels = (await app.api('/api/notifications/channels')).body;
    expect(channels.every((c: any) => c.lastSentAt && !c.lastError)).toBe(true);
    expect(JSON.stringify(channels)).not.toContain('tok3n');
    expect(JSON.stringify(channels)).not.toContain('tk_lan');
  });

  it('a failed patch sends one failure message linking to its job', async () => {
    const victim = fleet.hosts.find((h) => PROFILES[h.profile].expected.packageManager === 'apt' && PROFILES[h.profile].expected.updates > 0)!;
    await fleet.setFailure(victim.name, 'lock-held');
    const up = await app.api(`/api/hosts/${hostIds.get(victim.name)}/upgrade`, { method: 'POST', json: { confirm: true } });
    expect(up.status).toBe(202);
    const jobId = up.body.jobId;
    const job = await until(async () => {
      const j = (await app.api(`/api/jobs/${jobId}`)).body;
      return j.status === 'failed' && j;
    }, 120_000, 'the upgrade to fail');
    expect(job.status).toBe('failed');
    const got = await cloud.waitFor(2, undefined, 90_000);
    const embed = JSON.parse(got[1].body).embeds[0];
    expect(embed.title).toBe('1 job failed');
    expect(embed.url).toBe(`${app.url}/history?job=${jobId}`);
    expect(embed.description).toContain(victim.name);
    await lan.waitFor(2, '/patchman', 30_000);
    await new Promise((r) => setTimeout(r, 12_000));
    expect(cloud.received).toHaveLength(2);
    expect(lan.received).toHaveLength(2);
    await fleet.setFailure(victim.name, null);
  });

  it('the relay refuses a target outside its allowlist even when the Worker asks', async () => {
    const relay = (await app.api('/api/relays')).body[0];
    const made = await app.api('/api/notifications/channels', { method: 'POST', json: { name: 'Sneaky', type: 'webhook', via: relay.id, events: ['job-failed'], config: { url: `${forbidden.url}/internal-admin` } } });
    expect(made.status).toBe(201); // the Worker cannot know the relay's allowlist…
    const test = await app.api(`/api/notifications/channels/${made.body.id}/test`, { method: 'POST' });
    expect(test.body.delivery.status).toBe('failed');
    expect(test.body.delivery.error).toContain("is not in this relay's PATCHMAN_NOTIFY_ALLOW");
    expect(forbidden.received).toHaveLength(0); // …the relay does
    expect(app.output()).toContain(`relay: refused notify.send HTTP to ${new URL(forbidden.url).host}: not in PATCHMAN_NOTIFY_ALLOW`);
    expect(app.output()).not.toContain('tk_lan');
    expect(app.output()).not.toContain('tok3n');
  });

  it('in the browser: add a channel, send a test, see it in the delivery log', async () => {
    browser = await launchBrowser();
    const page = await app.page(browser, { viewport: { width: 1280, height: 1000 } });
    await page.goto(`${app.url}/settings`);
    await page.locator('[data-testid="settings-notifications-link"]').click();
    await page.locator('[data-testid="channel-add"]').click();
    await page.locator('[data-testid="channel-name"]').fill('Browser hook');
    await page.locator('[data-testid="channel-type"]').selectOption('webhook');
    await page.locator('[data-testid="channel-field-url"]').fill(`${cloud.url}/from-browser/s3cr3t`);
    await page.locator('[data-testid="channel-field-secret"]').fill('browser-hmac');
    mkdirSync('e2e/artifacts', { recursive: true });
    await page.screenshot({ path: 'e2e/artifacts/notifications-form.png' });
    await page.locator('[data-testid="channel-save"]').click();
    const row = page.locator('[data-testid="channel-row"][data-channel-name="Browser hook"]');
    await row.waitFor({ timeout: 15_000 });
    await row.locator('[data-testid="channel-test"]').click();
    const logged = page.locator('[data-testid="delivery-row"][data-event="test"]');
    await expect.poll(() => logged.first().getAttribute('data-status'), { timeout: 20_000 }).toBe('sent');
    await expect.poll(() => row.locator('[data-testid="channel-last-sent"]').textContent()).not.toContain('never');
    const got = await cloud.waitFor(1, '/from-browser/s3cr3t', 10_000);
    expect(JSON.parse(got[0].body)).toMatchObject({ event: 'test', link: `${app.url}/settings/notifications` });
    // the secret URL is not in the page, not even in the form when editing
    expect(await page.content()).not.toContain('s3cr3t');
    mkdirSync('e2e/artifacts', { recursive: true });
    await page.screenshot({ path: 'e2e/artifacts/notifications.png', fullPage: true });
    await page.close();
  });
});
