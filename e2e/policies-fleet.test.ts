// Patch policies end to end over a simulated fleet of 30 Debian hosts (real SSH, the real
// relay, the real Worker under `npm start`): a canary that fails halts the rollout before the
// first batch; a good run patches every host, batch after batch, never more than the
// concurrency limit at once — read from the jobs' own timestamps.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startFleet, type Fleet } from '../sim/fleet.ts';

const HOSTS = 30;
/** Three more hosts, tagged `ui`, for the browser test. */
const UI_HOSTS = 3;
let browser: Browser;
const CONCURRENCY = 4;
let app: RunningApp;
let fleet: Fleet;
const simState = mkdtempSync(join(tmpdir(), 'patchman-e2e-policies-'));
const ids = new Map<string, string>();

beforeAll(async () => {
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1', ROLLOUT_TICK_MS: '1000' });
  const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
  fleet = await startFleet({
    hosts: [
      ...Array.from({ length: HOSTS }, (_, i) => ({ name: `web-${String(i + 1).padStart(2, '0')}`, profile: 'debian12-security' as const })),
      ...Array.from({ length: UI_HOSTS }, (_, i) => ({ name: `ui-${i + 1}`, profile: 'debian12-security' as const })),
    ],
    authorizedKeys: [relay.publicKey],
    stateDir: simState,
    baseAddress: '127.68.0.1',
  });
  for (const h of fleet.hosts) {
    const res = await app.api('/api/hosts', { method: 'POST', json: { name: h.name, address: h.address, port: h.port, user: 'root', tags: [h.name.startsWith('ui-') ? 'ui' : 'web'], monitorOnly: false } });
    expect(res.status).toBe(201);
    ids.set(h.name, res.body.id);
  }
  await app.api('/api/scans', { method: 'POST', json: {} });
  await until(async () => {
    const { body } = await app.api('/api/hosts');
    return body.filter((h: any) => h.status === 'online' && h.securityCount > 0).length === HOSTS + UI_HOSTS;
  }, 180_000, 'every host scanned');
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

async function runToEnd(policyId: string, timeoutMs: number) {
  const run = await app.api(`/api/policies/${policyId}/run`, { method: 'POST', json: {} });
  expect(run.status).toBe(202);
  return until(async () => {
    const { body } = await app.api(`/api/rollouts/${run.body.rolloutId}`);
    return body.finishedAt && body;
  }, timeoutMs, 'rollout finished');
}

describe('policies over a simulated fleet of 30 hosts', () => {
  it('a failing canary halts the rollout before the first batch', async () => {
    await fleet.setFailure('web-01', 'dpkg-interrupted');
    const { body: policy } = await app.api('/api/policies', {
      method: 'POST',
      json: { name: 'web security', selector: { tags: ['web'] }, scope: 'security', rollout: { canary: 1, batchPercent: 25, concurrency: CONCURRENCY, haltAfterFailures: 1 } },
    });
    const r = await runToEnd(policy.id, 120_000);
    expect(r.status).toBe('halted');
    expect(r.reason).toMatch(/1 host failed/);
    const canary = r.hosts.find((h: any) => h.name === 'web-01');
    expect(canary).toMatchObject({ batch: 0, status: 'failed' });
    expect(canary.reason).toMatch(/interrupted/);
    expect(r.hosts.filter((h: any) => h.status === 'not-started')).toHaveLength(HOSTS - 1);
    expect(r.hosts.filter((h: any) => h.jobId)).toHaveLength(1);
    const { body: upgrades } = await app.api('/api/jobs?kind=upgrade');
    expect(upgrades).toHaveLength(1);
    await fleet.setFailure('web-01', null);
  });

  it('a good run patches every host in batches and never runs more than the concurrency limit at once', async () => {
    const { body: policy } = await app.api('/api/policies', {
      method: 'POST',
      json: { name: 'web all', selector: { tags: ['web'] }, scope: 'security', rollout: { canary: 2, batchSize: 10, concurrency: CONCURRENCY, haltAfterFailures: 2 } },
    });
    const preview = await app.api(`/api/policies/${policy.id}/preview`, { method: 'POST', json: {} });
    expect(preview.body.hosts.filter((h: any) => h.action === 'upgrade')).toHaveLength(HOSTS);
    const r = await runToEnd(policy.id, 600_000);
    expect(r.status, JSON.stringify(r.hosts.filter((h: any) => h.status !== 'succeeded'))).toBe('done');
    expect(r.hosts.every((h: any) => h.status === 'succeeded')).toBe(true);
    expect(new Set(r.hosts.map((h: any) => h.batch))).toEqual(new Set([0, 1, 2, 3]));

    const jobs = new Map<string, any>();
    for (const h of r.hosts) jobs.set(h.hostId, (await app.api(`/api/jobs/${h.jobId}`)).body);
    for (const j of jobs.values()) expect(j).toMatchObject({ kind: 'upgrade', status: 'succeeded', exitCode: 0, requestedBy: 'policy web all' });
    // never more than CONCURRENCY upgrades between their creation and their end
    const edges = [...jobs.values()].flatMap((j) => [
      [Date.parse(j.createdAt), 1],
      [Date.parse(j.finishedAt), -1],
    ]);
    edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let peak = 0;
    for (const [, d] of edges) peak = Math.max(peak, (now += d));
    expect(peak).toBeLessThanOrEqual(CONCURRENCY);
    expect(peak).toBeGreaterThan(1);
    // a batch starts only after every host of the one before has finished
    const byBatch = new Map<number, any[]>();
    for (const h of r.hosts) byBatch.set(h.batch, [...(byBatch.get(h.batch) ?? []), jobs.get(h.hostId)]);
    for (let b = 1; b < 4; b++) {
      const prevEnd = Math.max(...byBatch.get(b - 1)!.map((j) => Date.parse(j.finishedAt)));
      const start = Math.min(...byBatch.get(b)!.map((j) => Date.parse(j.createdAt)));
      expect(start).toBeGreaterThanOrEqual(prevEnd);
    }
    console.log(`30 hosts patched in ${(Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000} s, peak ${peak} upgrades at once (limit ${CONCURRENCY})`);
    // each host now has no security update left
    const { body: hosts } = await app.api('/api/hosts');
    expect(hosts.filter((h: any) => h.tags.includes('web') && h.securityCount === 0)).toHaveLength(HOSTS);
  });
});

describe('the Policies page', () => {
  it('create a policy, preview it, run it now, watch the rollout finish, and find its jobs in History', async () => {
    browser = await launchBrowser();
    const page = await app.page(browser, { viewport: { width: 1280, height: 1000 } });
    await page.goto(`${app.url}/policies`);
    await page.locator('[data-testid="policy-new"]').click();
    await page.locator('[data-testid="policy-name"]').fill('UI security');
    await page.locator('[data-testid="policy-tags"]').fill('ui');
    await page.locator('[data-testid="policy-include"]').fill('*');
    await page.locator('[data-testid="policy-scheduled"]').check();
    await page.locator('[data-testid="policy-cron"]').fill('30 2 * * 0');
    await page.locator('[data-testid="policy-zone"]').fill('Europe/Berlin');
    await expect.poll(() => page.locator('[data-testid="policy-next-runs"] span.rounded').count()).toBe(3);
    // a bad zone is caught while typing, a bad glob by the Worker (400 naming the field)
    await page.locator('[data-testid="policy-zone"]').fill('Mars/Olympus');
    await expect.poll(() => page.locator('[data-testid="policy-editor"]').innerText()).toContain('Time zone must be an IANA time zone');
    await page.locator('[data-testid="policy-zone"]').fill('Europe/Berlin');
    await page.locator('[data-testid="policy-include"]').fill('openssl;reboot');
    await page.locator('[data-testid="policy-save"]').click();
    await expect.poll(() => page.locator('[data-testid="policy-error"]').innerText()).toMatch(/^include\.0: must be a package glob/);
    await page.locator('[data-testid="policy-include"]').fill('');
    mkdirSync('e2e/artifacts', { recursive: true });
    await page.screenshot({ path: 'e2e/artifacts/policy-editor.png', fullPage: true });
    await page.locator('[data-testid="policy-save"]').click();

    const row = page.locator('[data-testid="policy-row"]', { hasText: 'UI security' });
    await row.waitFor();
    expect(await row.locator('[data-testid="policy-next-runs"]').innerText()).toMatch(/Europe\/Berlin, 120-minute window · next: /);
    await row.locator('[data-testid="policy-preview"]').click();
    const upgrading = row.locator('[data-testid="preview-host"][data-action="upgrade"]');
    await expect.poll(() => upgrading.count()).toBe(UI_HOSTS);
    expect(await row.locator('[data-testid="preview-package"]').count()).toBeGreaterThan(0);
    await page.screenshot({ path: 'e2e/artifacts/policy-preview.png', fullPage: true });

    await row.locator('[data-testid="policy-run"]').click();
    await page.waitForURL(/\/policies\/rollouts\//);
    await expect.poll(() => page.locator('[data-testid="rollout-status"]').innerText(), { timeout: 180_000 }).toBe('done');
    expect(await page.locator('[data-testid="rollout-host"][data-status="succeeded"]').count()).toBe(UI_HOSTS);
    await page.screenshot({ path: 'e2e/artifacts/policy-rollout.png', fullPage: true });

    await page.locator('[data-testid="rollout-job-link"]').first().click();
    await page.waitForURL(/\/history\?job=/);
    await page.goto(`${app.url}/history?kind=upgrade`);
    const rows = page.locator('[data-testid="history-row"]', { hasText: 'policy UI security' });
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(UI_HOSTS);
    await page.screenshot({ path: 'e2e/artifacts/policy-history.png' });
    await page.goto(`${app.url}/policies`);
    await page.locator('[data-testid="rollout-row"]').first().waitFor();
    await page.screenshot({ path: 'e2e/artifacts/policies.png', fullPage: true });
    await page.close();
  });
});
