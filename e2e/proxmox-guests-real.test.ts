// Issue 16's "Done when" with real apt: the test Proxmox node of relay/test/pve-node.ts (a
// real sshd whose pct/qm/pvesh are test doubles of Proxmox's CLI only; each container a real
// Debian 12 root with real pending security updates, snapshots copies of its overlay). An
// operator adopts three containers from the node's page without touching them, sees their
// pending updates, patches them with a snapshot taken first, and rolls one back: dpkg inside
// it has the old versions again, the other two keep the new ones. Needs root (as the relay's
// own pve-node tests do).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startPveNode, type PveNode } from '../relay/test/pve-node.ts';

let app: RunningApp;
let node: PveNode;
let browser: Browser;
let page: Page;
const CONTAINERS = [101, 102, 103];
const adopted = new Map<number, { id: string; pending: number }>();
const upgrades = new Map<number, any>();

beforeAll(async () => {
  mkdirSync('e2e/artifacts', { recursive: true });
  // the node listens on 127.0.0.1, the relay's own machine: let the relay change it (as the
  // other tests that patch on this machine do)
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1', PATCHMAN_MONITOR_ONLY: 'none' });
  browser = await launchBrowser();
  page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
}, 300_000);

afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-4000));
});

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  await node?.stop();
});

async function jobDone(id: string, timeoutMs = 600_000) {
  return until(async () => {
    const { body } = await app.api(`/api/jobs/${id}`);
    return ['succeeded', 'failed', 'lost', 'cancelled'].includes(body.status) && body;
  }, timeoutMs, `job ${id}`);
}

/** The installed version of a package in a guest's root, as dpkg records it. */
function installed(root: string, pkg: string): string | null {
  const status = readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8');
  const block = status.split('\n\n').find((b) => new RegExp(`^Package: ${pkg.replace(/[.+]/g, '\\$&')}$`, 'm').test(b) && /^Status: install ok installed$/m.test(b));
  return block ? (/^Version: (.+)$/m.exec(block)?.[1] ?? null) : null;
}

describe('Proxmox guests with real apt inside', { timeout: 900_000 }, () => {
  it('adopts three containers from the node page without touching them, and sees their real pending updates', async () => {
    const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
    node = await startPveNode({
      authorizedKeys: [relay.publicKey],
      guests: [
        ...CONTAINERS.map((vmid) => ({ vmid, kind: 'lxc' as const, name: `ct${vmid}`, status: 'running' as const, storage: 'local-lvm' as const })),
        { vmid: 104, kind: 'lxc', name: 'on-dir', status: 'running', storage: 'local' },
      ],
    });
    const res = await app.api('/api/hosts', { method: 'POST', json: { name: 'pve-test', address: '127.0.0.1', port: node.sshd.port, user: 'root', monitorOnly: false, scan: true } });
    expect(res.status).toBe(201);
    const nodeId = res.body.id;
    const scan = await jobDone(res.body.scanJobId);
    expect(scan.status, JSON.stringify(scan.error)).toBe('succeeded');

    await page.goto(`${app.url}/hosts/${nodeId}`);
    await expect.poll(() => page.locator('[data-testid="guest-row"]').count(), { timeout: 20_000 }).toBe(4);
    expect(await page.locator('[data-testid="guest-row"][data-vmid="104"] [data-testid="guest-snapshots"]').innerText()).toMatch(/cannot snapshot a container/);
    const before = await node.calls();
    for (const vmid of CONTAINERS) {
      const row = page.locator(`[data-testid="guest-row"][data-vmid="${vmid}"]`);
      await row.locator('[data-testid="guest-adopt"]').click();
      await expect.poll(() => row.getAttribute('data-adopted'), { timeout: 20_000 }).toBe('true');
    }
    // adopting changed nothing on the node: no snapshot, rollback or exec
    const during = (await node.calls()).slice(before.length);
    expect(during.filter((c) => /snapshot |rollback |delsnapshot /.test(c))).toEqual([]);

    const guests = await until(async () => {
      const { body } = await app.api(`/api/hosts?guestOf=${nodeId}`);
      return body.length === 3 && body.every((g: any) => g.lastScanAt) && body;
    }, 300_000, 'the three containers scanned');
    for (const g of guests) {
      expect(g.status, `${g.name}: ${g.statusReason}`).toBe('online');
      expect(g.updatesCount, g.name).toBeGreaterThan(0);
      expect(g.securityCount, g.name).toBeGreaterThan(0);
      adopted.set(g.guest.vmid, { id: g.id, pending: g.updatesCount });
    }
    await page.screenshot({ path: 'e2e/artifacts/pve-real-adopted.png', fullPage: true });
  });

  it('patches them with a snapshot taken first', async () => {
    const ids = CONTAINERS.map((v) => adopted.get(v)!.id);
    const { body } = await app.api('/api/upgrades', { method: 'POST', json: { confirm: true, hostIds: ids } });
    for (const [i, r] of body.results.entries()) {
      expect(r.jobId, JSON.stringify(r.error)).toBeTruthy();
      upgrades.set(CONTAINERS[i], await jobDone(r.jobId));
    }
    for (const [vmid, job] of upgrades) {
      expect(job.status, `${vmid}: ${JSON.stringify(job.error)}`).toBe('succeeded');
      expect(job.snapshot).toMatchObject({ taken: true });
      expect(job.changes.length).toBeGreaterThan(0);
      // the snapshot was taken before apt ran
      expect(job.log.indexOf(`taking snapshot ${job.snapshot.name}`)).toBeGreaterThanOrEqual(0);
      expect(job.log.indexOf(`taking snapshot ${job.snapshot.name}`)).toBeLessThan(job.log.indexOf('dist-upgrade'));
      const changed = job.changes.find((c: any) => c.from && c.to);
      expect(installed(node.rootOf(vmid), changed.name)).toBe(changed.to);
    }
    const calls = await node.calls();
    for (const vmid of CONTAINERS) expect(calls.some((c) => new RegExp(`pct snapshot ${vmid} '?patchman-`).test(c)), `${vmid}: ${calls.join('\n')}`).toBe(true);
    await until(async () => {
      const { body: hosts } = await app.api(`/api/hosts?reach=guest`);
      return hosts.every((h: any) => h.updatesCount < adopted.get(h.guest.vmid)!.pending);
    }, 300_000, 'the rescans after the upgrades');
  });

  it('rolls one back from its page: the old versions are back in it, the others keep the new ones', async () => {
    const vmid = CONTAINERS[0];
    const { id, pending } = adopted.get(vmid)!;
    await page.goto(`${app.url}/hosts/${id}`);
    await page.locator('[data-testid="rollback-open"]').click();
    await page.locator('[data-testid="rollback-confirm-loss"]').waitFor();
    await page.screenshot({ path: 'e2e/artifacts/pve-real-rollback-confirm.png' });
    await page.locator('[data-testid="rollback-confirm-button"]').click();
    const rb = await until(async () => (await app.api(`/api/jobs?hostId=${id}&kind=rollback`)).body[0], 20_000, 'the rollback job');
    const done = await jobDone(rb.id);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    const up = upgrades.get(vmid);
    expect(done.rollback).toEqual({ snapshot: up.snapshot.name, jobId: up.id });
    const changed = up.changes.find((c: any) => c.from && c.to);
    expect(installed(node.rootOf(vmid), changed.name)).toBe(changed.from);
    expect(installed(node.rootOf(CONTAINERS[1]), changed.name)).toBe(changed.to);
    await until(async () => (await app.api(`/api/hosts/${id}`)).body.updatesCount === pending, 300_000, 'its updates pending again');
  });
});
