// Issue 16's "Done when", in a real browser against the real app and relay: on a Proxmox VE
// node with containers (the simulated node of sim/proxmox.ts: its pvesh/pct/qm answer in
// the CLI's formats, each guest a simulated Debian machine), an operator adopts three
// containers without touching them, sees their pending updates, patches them with a
// snapshot taken first, and rolls one back — its updates are pending again.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startFleet, PROFILES, type Fleet } from '../sim/fleet.ts';

let app: RunningApp;
let fleet: Fleet;
let browser: Browser;
let page: Page;
const simState = mkdtempSync(join(tmpdir(), 'patchman-e2e-pve-'));
const shot = (name: string, fullPage = true) => page.screenshot({ path: `e2e/artifacts/${name}.png`, fullPage });
const PENDING = PROFILES['debian12-security'].expected.updates;

let nodeId = '';
const adopted = new Map<string, string>(); // name → host id

beforeAll(async () => {
  mkdirSync('e2e/artifacts', { recursive: true });
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1' });
  browser = await launchBrowser();
  page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
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

async function jobDone(id: string, timeoutMs = 90_000) {
  return until(async () => {
    const { body } = await app.api(`/api/jobs/${id}`);
    return ['succeeded', 'failed', 'lost', 'cancelled'].includes(body.status) && body;
  }, timeoutMs, `job ${id}`);
}

describe('Proxmox guests through their node', () => {
  it("a node's scan lists its guests; the host page shows them with what can be done with each", async () => {
    const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
    fleet = await startFleet({ hosts: [{ name: 'pvelab-1', profile: 'pve8-guests' }], authorizedKeys: [relay.publicKey], stateDir: simState, baseAddress: '127.68.0.1' });
    const h = fleet.hosts[0];
    const res = await app.api('/api/hosts', { method: 'POST', json: { name: 'pvelab-1', address: h.address, port: h.port, user: 'root', scan: true } });
    expect(res.status).toBe(201);
    nodeId = res.body.id;
    expect((await jobDone(res.body.scanJobId)).status).toBe('succeeded');

    await page.goto(`${app.url}/hosts/${nodeId}`);
    const rows = page.locator('[data-testid="guest-row"]');
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(7);
    const row = (vmid: number) => page.locator(`[data-testid="guest-row"][data-vmid="${vmid}"]`);
    expect(await row(105).locator('[data-testid="guest-snapshots"]').innerText()).toMatch(/storage 'local' \(dir\) cannot snapshot a container/);
    expect(await row(104).locator('[data-testid="guest-status"]').innerText()).toBe('stopped');
    expect(await row(202).locator('[data-testid="guest-reachable"]').innerText()).toMatch(/guest agent is not enabled/);
    expect(await row(202).locator('[data-testid="guest-adopt"]').count()).toBe(0);
    expect(await row(202).locator('[data-testid="guest-adopt-blocked"]').count()).toBe(1);
    await page.locator('[data-testid="guests-panel"]').scrollIntoViewIfNeeded();
    await shot('pve-node-guests');
  });

  it('adopts three containers without touching them, and sees their pending updates', async () => {
    for (const vmid of [101, 102, 103]) {
      const row = page.locator(`[data-testid="guest-row"][data-vmid="${vmid}"]`);
      await row.locator('[data-testid="guest-adopt"]').click();
      await expect.poll(() => row.getAttribute('data-adopted'), { timeout: 20_000 }).toBe('true');
    }
    await shot('pve-node-guests-adopted');
    const guests = await until(async () => {
      const { body } = await app.api('/api/hosts?reach=guest');
      return body.length === 3 && body.every((g: any) => g.updatesCount !== null) && body;
    }, 60_000, 'the adopted guests scanned');
    for (const g of guests) {
      expect(g, g.name).toMatchObject({ status: 'online', updatesCount: PENDING, guest: { nodeId, type: 'lxc' } });
      expect(g.address).toBe(fleet.hosts[0].address);
      adopted.set(g.name, g.id);
    }
    expect([...adopted.keys()].sort()).toEqual(['dns', 'mqtt', 'proxy']);

    // the host list tells them apart and filters them
    await page.goto(app.url);
    await page.locator('[data-testid="guest-filter"]').click();
    await expect.poll(() => page.locator('[data-testid="host-row"]').count(), { timeout: 10_000 }).toBe(3);
    expect(await page.locator('[data-testid="host-guest-badge"]').count()).toBe(3);
    expect(await page.locator('[data-testid="host-guest-badge"]').first().innerText()).toMatch(/container 10\d · via pvelab-1/);
    await shot('hosts-guests-filter');
  });

  it('patches them together, each with a snapshot taken first', async () => {
    for (const box of await page.locator('[data-testid="host-select"]').all()) await box.check();
    await page.locator('[data-testid="patch-selected"]').click();
    const note = page.locator('[data-testid="bulk-confirm-snapshots"]');
    await note.waitFor({ timeout: 10_000 });
    expect(await note.innerText()).toMatch(/3 Proxmox guests: a snapshot of each is taken first/);
    await shot('bulk-confirm-guests', false);
    await page.locator('[data-testid="bulk-confirm-button"]').click();

    let seen: any[] = [];
    const upgrades = await until(async () => {
      const all = (seen = (await app.api('/api/jobs?kind=upgrade')).body);
      return all.length === 3 && all.every((j: any) => j.status === 'succeeded') && all;
    }, 120_000, 'three upgrades').catch((err) => {
      throw new Error(`${err.message}: ${JSON.stringify(seen.map((j) => [j.status, j.summary, j.error]))}`);
    });
    for (const j of upgrades) {
      expect(j.snapshot, j.id).toMatchObject({ taken: true, pruned: [] });
      expect(j.snapshot.name).toMatch(/^patchman-/);
      expect(j.summary).toMatch(/^snapshot patchman-\S+ taken first; \d+ packages? upgraded/);
    }
    await until(async () => {
      const { body } = await app.api('/api/hosts?reach=guest');
      return body.every((g: any) => g.updatesCount === 0 && g.snapshots?.some((s: any) => s.patchman));
    }, 60_000, 'the guests rescanned, up to date, with their snapshot');
  });

  it("History offers Roll back on a guest's upgrade that took a snapshot", async () => {
    const id = adopted.get('mqtt')!;
    const [up] = (await app.api(`/api/jobs?hostId=${id}&kind=upgrade`)).body;
    await page.goto(`${app.url}/history?host=${id}&job=${up.id}`);
    const button = page.locator('[data-testid="history-rollback"]');
    await button.first().waitFor({ timeout: 10_000 });
    expect(await button.first().innerText()).toContain(up.snapshot.name);
    await shot('history-rollback', false);
  });

  it('rolls one back after a confirmation that says what is lost: its updates are pending again', async () => {
    const id = adopted.get('dns')!;
    await page.goto(`${app.url}/hosts/${id}`);
    await page.locator('[data-testid="guest-snapshot"]').first().waitFor({ timeout: 10_000 });
    await page.locator('[data-testid="rollback-open"]').click();
    const loss = page.locator('[data-testid="rollback-confirm-loss"]');
    await loss.waitFor();
    expect(await loss.innerText()).toMatch(/Everything written inside the guest since the snapshot was taken is lost, including this upgrade's changes to \d+ packages/);
    await shot('rollback-confirm', false);
    await page.locator('[data-testid="rollback-confirm-button"]').click();
    const rb = await until(async () => (await app.api(`/api/jobs?hostId=${id}&kind=rollback`)).body[0], 10_000, 'the rollback job');
    const done = await jobDone(rb.id);
    expect(done).toMatchObject({ status: 'succeeded', rollback: { snapshot: expect.stringMatching(/^patchman-/) } });
    expect(done.summary).toMatch(/^rolled back to patchman-\S+; the guest is running$/);
    await until(async () => (await app.api(`/api/hosts/${id}`)).body.updatesCount === PENDING, 60_000, 'the rolled-back guest rescanned');
    // the other two keep their upgrade
    expect((await app.api(`/api/hosts/${adopted.get('proxy')}`)).body.updatesCount).toBe(0);
    const audit = (await app.api('/api/audit')).body.find((a: any) => a.action === 'POST /api/jobs/:id/rollback');
    expect(audit).toMatchObject({ status: 202, target: id, detail: expect.stringMatching(/^dns: roll back to patchman-/) });
    // only the jobs asked for and their scans: no Docker check inside these guests
    const kinds = (await app.api(`/api/jobs?hostId=${id}`)).body.map((j: any) => `${j.kind}:${j.status}`);
    expect(kinds.filter((k: string) => !k.endsWith(':succeeded'))).toEqual([]);
    await page.waitForTimeout(500);
    await shot('guest-after-rollback', false);
  });

  it("where the guest's storage cannot snapshot, the confirmation says so and asks to go on without one", async () => {
    const res = await app.api(`/api/hosts/${nodeId}/guests/105/adopt`, { method: 'POST', json: {} });
    expect(res.status).toBe(201);
    expect((await jobDone(res.body.scanJobId)).status).toBe('succeeded');
    await page.goto(`${app.url}/hosts/${res.body.id}`);
    await page.locator('[data-testid="upgrade-all"]').click();
    const note = page.locator('[data-testid="upgrade-confirm-snapshot"]');
    await expect.poll(() => note.getAttribute('data-plan'), { timeout: 10_000 }).toBe('impossible');
    expect(await note.innerText()).toMatch(/No snapshot can be taken first: rootfs on storage 'local' \(dir\) cannot snapshot a container/);
    const confirm = page.locator('[data-testid="upgrade-confirm-button"]');
    expect(await confirm.isDisabled()).toBe(true);
    await page.locator('[data-testid="upgrade-without-snapshot"]').check();
    expect(await confirm.isDisabled()).toBe(false);
    await shot('upgrade-confirm-no-snapshot', false);
    await confirm.click();
    const up = await until(async () => (await app.api(`/api/jobs?hostId=${res.body.id}&kind=upgrade`)).body[0], 10_000, 'the upgrade');
    expect(await jobDone(up.id)).toMatchObject({ status: 'succeeded', withoutSnapshot: true, snapshot: null });
  });

  it('keeps the snapshot setting in Settings', async () => {
    await page.goto(`${app.url}/settings`);
    const input = page.locator('#set-snapshotKeep');
    await input.waitFor({ timeout: 10_000 });
    expect(await input.inputValue()).toBe('3');
    await input.scrollIntoViewIfNeeded();
    await shot('settings-snapshot-keep');
  });
});
