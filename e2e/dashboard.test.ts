// The newcomer's path, end to end: `npm start`, the local relay connects by itself, a real
// Debian 12 host (a debootstrap root with real pending updates behind a real sshd, chrooted
// there: relay/test/debian-root.ts) is added as a host, probed and patched, and the dashboard
// in a real Chromium shows the relay connected and the host's OS. The patches go to a
// throw-away overlay of that root, so runs of this test never use up this machine's updates.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { ADMIN, startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startSshd, type Sshd } from '../relay/test/sshd.ts';
import { aptLine, aptOn } from '../relay/test/apt-local.ts';
import { overlayRoot, type OverlayRoot } from '../relay/test/debian-root.ts';

async function finished(app: RunningApp, jobId: string, timeoutMs = 300_000): Promise<any> {
  return until(async () => {
    const { body } = await app.api(`/api/jobs/${jobId}`);
    return ['succeeded', 'failed', 'lost', 'cancelled'].includes(body.status) && body;
  }, timeoutMs, `job ${jobId} finished`);
}

let root: OverlayRoot;
let apt: ReturnType<typeof aptOn>;
const osRelease = (): Record<string, string> => Object.fromEntries(
  readFileSync(`${root.dir}/etc/os-release`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1).replace(/^"(.*)"$/, '$1')];
    }),
);

// The relay must run on the Node the operator has (20+), not only on the project's Node 22.
const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p));

let app: RunningApp;
let sshd: Sshd;
let browser: Browser;

beforeAll(async () => {
  // The Debian host answers on loopback, the relay's own box, which the relay refuses to
  // change by default; the patch tests below patch it on purpose.
  app = await startApp({ PATCHMAN_MONITOR_ONLY: 'none', ...(systemNode ? { PATCHMAN_RELAY_NODE: systemNode } : {}) });
  browser = await launchBrowser();
  root = await overlayRoot();
  apt = aptOn(root.dir);
});

// on a failure, show the end of what npm start printed
afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-4000));
});

afterAll(async () => {
  await browser?.close();
  await sshd?.stop();
  await app?.stop();
  await root?.stop();
});

describe('npm start, end to end', () => {
  let relay: any;
  let hostId: string;

  it('serves the dashboard and the API on one origin', async () => {
    const health = await app.api('/api/health');
    expect(health).toEqual({ status: 200, body: { ok: true, version: '0.1.0' } });
    const page = await fetch(`${app.url}/hosts/some/deep/link`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div');
  });

  it('the local relay is paired and connected without any token copying', async () => {
    relay = await until(async () => {
      const { body } = await app.api('/api/relays');
      return body.find((r: any) => r.connected && r.publicKey);
    }, 60_000, 'relay connected');
    expect(relay.publicKey).toMatch(/^ssh-ed25519 /);
    if (systemNode) {
      const v = execFileSync(systemNode, ['--version'], { encoding: 'utf8' }).trim();
      expect(app.output()).toContain(`on Node ${v.slice(1)}`);
    }
  });

  it('scans a Debian host through a real sshd: its OS, and exactly the updates apt lists', async () => {
    sshd = await startSshd({ authorizedKeys: [relay.publicKey], chroot: root.dir });
    const add = await app.api('/api/hosts', { method: 'POST', json: { name: 'debian-host', address: '127.0.0.1', port: sshd.port, user: 'root' } });
    expect(add.status).toBe(201);
    // the relay's own box: monitor-only unless said otherwise
    expect(add.body.monitorOnly).toBe(true);
    hostId = add.body.id;
    const scan = await app.api(`/api/hosts/${hostId}/scan`, { method: 'POST' });
    expect(scan.status).toBe(202);
    const job = await until(async () => {
      const { body } = await app.api(`/api/jobs/${scan.body.jobId}`);
      return ['succeeded', 'failed', 'lost'].includes(body.status) && body;
    }, 60_000, 'scan finished');
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    const { body: host } = await app.api(`/api/hosts/${hostId}`);
    expect(host.status).toBe('online');
    expect(host.os).toMatchObject({ id: osRelease().ID, prettyName: osRelease().PRETTY_NAME });
    expect(host.kernel).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    expect(host.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    expect(host.packageManager).toBe('apt');
    expect(host.privilege).toBe('root');

    // What apt itself says right now (the scan refreshed the lists just before).
    const expected = apt.aptSimulation();
    const { body: updates } = await app.api(`/api/hosts/${hostId}/updates`);
    const got = new Map<string, any>(updates.map((u: any) => [u.name, u]));
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, e] of expected) {
      expect(got.get(name), name).toMatchObject({ currentVersion: e.current, newVersion: e.next, security: e.security });
    }
    expect(host.updatesCount).toBe(expected.size);
    expect(host.securityCount).toBe([...expected.values()].filter((e) => e.security).length);
    expect(host.rebootRequired).toBe(existsSync(`${root.dir}/run/reboot-required`) || host.rebootRequired);
    if (existsSync(`${root.dir}/run/reboot-required`)) expect(host.rebootReason).toContain('reboot-required');
    console.log(`debian host: ${expected.size} updates, ${host.securityCount} security, reboot ${host.rebootRequired ? 'required' : 'not required'}`);
  });

  it('patches one real package on the Debian host through the API: dpkg has the new version, the log holds apt\'s output, the rescan one update fewer', async () => {
    const { body: before } = await app.api(`/api/hosts/${hostId}`);
    const { body: updates } = await app.api(`/api/hosts/${hostId}/updates`);
    expect(updates.length).toBeGreaterThan(0);
    const [pkg] = apt.leafUpdates(updates.map((u: any) => u.name));
    const update = updates.find((u: any) => u.name === pkg);
    expect(apt.dpkgVersion(pkg)).toBe(update.currentVersion);

    // monitor-only (the default for the relay's own box) refuses; the operator turns it off
    const refused = await app.api(`/api/hosts/${hostId}/upgrade`, { method: 'POST', json: { confirm: true, packages: [pkg] } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('monitor-only');
    expect((await app.api(`/api/hosts/${hostId}`, { method: 'PATCH', json: { monitorOnly: false } })).status).toBe(200);

    const started = await app.api(`/api/hosts/${hostId}/upgrade`, { method: 'POST', json: { confirm: true, packages: [pkg] }, headers: { 'Idempotency-Key': `e2e-${pkg.replace(/[^A-Za-z0-9_.:-]/g, '_')}` } });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    // a retried request is the same job
    const retried = await app.api(`/api/hosts/${hostId}/upgrade`, { method: 'POST', json: { confirm: true, packages: [pkg] }, headers: { 'Idempotency-Key': `e2e-${pkg.replace(/[^A-Za-z0-9_.:-]/g, '_')}` } });
    expect(retried).toEqual({ status: 200, body: { jobId: started.body.jobId } });

    const job = await finished(app, started.body.jobId);
    expect(job.status, `${JSON.stringify(job.error)}\n${job.log}`).toBe('succeeded');
    expect(apt.dpkgVersion(pkg)).toBe(update.newVersion);
    expect(job.exitCode).toBe(0);
    expect(job.changes).toEqual([{ name: expect.stringMatching(new RegExp(`^${pkg.replace(/[+.]/g, '\\$&')}(:\\w+)?$`)), from: update.currentVersion, to: update.newVersion }]);
    expect(job.summary).toBe('1 package upgraded');
    expect(job.log).toMatch(aptLine('Unpacking', pkg));
    expect(job.log).toMatch(new RegExp(`Setting up ${pkg.replace(/[+.]/g, '\\$&')}(:\\w+)? \\(${update.newVersion.replace(/[+.~]/g, '\\$&')}\\)`));

    // the rescan follows by itself and counts one update fewer
    const rescan = await until(async () => {
      const { body } = await app.api(`/api/jobs?hostId=${hostId}&kind=scan&limit=1`);
      return body[0] && body[0].createdAt > job.createdAt && ['succeeded', 'failed'].includes(body[0].status) && body[0];
    }, 120_000, 'rescan after the upgrade');
    expect(rescan.status).toBe('succeeded');
    const { body: after } = await app.api(`/api/hosts/${hostId}`);
    expect(after.updatesCount).toBe(before.updatesCount - 1);
    const { body: history } = await app.api(`/api/jobs?hostId=${hostId}&kind=upgrade`);
    expect(history.map((j: any) => j.id)).toContain(job.id);
    console.log(`patched ${pkg} ${update.currentVersion} → ${update.newVersion} in ${job.durationMs} ms; ${after.updatesCount} updates left`);
  });

  it('patches a real package from the host page: confirmation, live log, then the job in History', async () => {
    const { body: updates } = await app.api(`/api/hosts/${hostId}/updates`);
    const [pkg] = apt.leafUpdates(updates.map((u: any) => u.name));
    const update = updates.find((u: any) => u.name === pkg);
    const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(`${app.url}/hosts/${hostId}`);
    await page.locator(`[data-testid="package-row"][data-package="${pkg}"] [data-testid="package-select"]`).check({ timeout: 20_000 });
    await page.locator('[data-testid="upgrade-selected"]').click();
    const dialog = page.locator('[data-testid="upgrade-confirm"]');
    await dialog.waitFor();
    // the confirmation names the host and exactly what will change
    expect(await dialog.innerText()).toContain('debian-host');
    expect(await dialog.locator('[data-testid="upgrade-confirm-package"]').count()).toBe(1);
    expect(await dialog.locator('[data-testid="upgrade-confirm-package"]').innerText()).toContain(update.newVersion);
    await page.locator('[data-testid="upgrade-confirm-button"]').click();

    const log = page.locator('[data-testid="live-log"]');
    await expect.poll(() => log.innerText(), { timeout: 120_000 }).toMatch(aptLine('Unpacking', pkg));
    await expect.poll(() => log.getAttribute('data-status'), { timeout: 180_000 }).toBe('succeeded');
    expect(await page.locator('[data-testid="live-log-outcome"]').innerText()).toMatch(/1 package upgraded/);
    expect(apt.dpkgVersion(pkg)).toBe(update.newVersion);
    await page.screenshot({ path: 'e2e/artifacts/patch-live-log.png', fullPage: true });

    await page.locator('[data-testid="nav-history"]').click();
    const row = page.locator('[data-testid="history-row"][data-kind="upgrade"][data-status="succeeded"]').first();
    await row.waitFor({ timeout: 20_000 });
    expect(await row.innerText()).toContain(pkg);
    await row.locator('[data-testid="history-toggle"]').click();
    await expect.poll(() => page.locator('[data-testid="history-log"]').first().innerText(), { timeout: 20_000 }).toMatch(aptLine('Setting up', pkg));
    await page.screenshot({ path: 'e2e/artifacts/history.png', fullPage: true });
    await page.close();
  });

  it('the dashboard shows the relay connected and the host with its OS, and updates live', async () => {
    const page = await app.page(browser, { viewport: { width: 1280, height: 800 } });
    await page.goto(app.url);
    await page.locator('[data-testid="relay-row"][data-connected="true"]').first().waitFor({ timeout: 20_000 });
    const row = page.locator('[data-testid="host-row"]', { hasText: 'debian-host' });
    await expect.poll(() => row.locator('[data-testid="host-os"]').innerText(), { timeout: 20_000 }).toContain(osRelease().PRETTY_NAME);

    // a host added elsewhere (the API) appears without a reload, through the live socket
    const other = await app.api('/api/hosts', { method: 'POST', json: { name: 'added-live', address: '192.0.2.55' } });
    expect(other.status).toBe(201);
    await page.locator('[data-testid="host-row"]', { hasText: 'added-live' }).waitFor({ timeout: 20_000 });

    mkdirSync('e2e/artifacts', { recursive: true });
    await page.screenshot({ path: 'e2e/artifacts/dashboard.png', fullPage: true });

    // a summary card filters the list: only the scanned host needs updates
    const expected = apt.aptSimulation().size;
    if (expected > 0) {
      await page.locator('[data-testid="summary-card"][data-filter="needs-updates"]').click();
      await expect.poll(() => page.locator('[data-testid="host-row"]').count(), { timeout: 10_000 }).toBe(1);
      await expect.poll(() => page.locator('[data-testid="host-row"]').first().innerText()).toContain('debian-host');
      expect(new URL(page.url()).searchParams.get('filter')).toBe('needs-updates');
      // and the host page lists every package
      await page.locator('[data-testid="host-row"] a', { hasText: 'debian-host' }).first().click();
      await expect.poll(() => page.locator('[data-testid="package-row"]').count(), { timeout: 10_000 }).toBe(expected);
      await page.screenshot({ path: 'e2e/artifacts/host.png', fullPage: true });
    }
    await page.close();
  });

  it('"Test connection" in the add-host dialog probes through the relay and names the real cause of a failure', async () => {
    const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(app.url);
    await page.locator('[data-testid="add-host-open"]').first().click();
    const form = page.locator('[data-testid="add-host-form"]');
    await form.locator('input[name="address"]').fill('127.0.0.1');
    await form.locator('input[name="port"]').fill(String(sshd.port));
    await page.locator('[data-testid="test-connection"]').click();
    const result = page.locator('[data-testid="test-result"]');
    await expect.poll(() => result.getAttribute('data-ok'), { timeout: 30_000 }).toBe('true');
    expect(await result.innerText()).toContain(osRelease().PRETTY_NAME);
    await page.screenshot({ path: 'e2e/artifacts/add-host.png' });

    // nothing listens on port 1: the cause is "unreachable", in plain words
    await form.locator('input[name="port"]').fill('1');
    await page.locator('[data-testid="test-connection"]').click();
    await expect.poll(() => result.getAttribute('data-code'), { timeout: 30_000 }).toBe('unreachable');
    await page.close();
  });

  it('no token, session or key ever reaches a log line (everything npm start, wrangler and the relay printed)', async () => {
    const out = app.output();
    expect(out.length).toBeGreaterThan(200);
    expect(out).not.toMatch(/pm[rst]_[A-Za-z0-9_-]{20,}/);
    expect(out).not.toMatch(/PRIVATE KEY/);
    expect(out).not.toContain(ADMIN.password);
    expect(out).not.toMatch(/pbkdf2-sha256\$/);
  });

  it('adding a host in the dashboard shows the API field error, then adds it and starts its first scan', async () => {
    const page = await app.page(browser, { viewport: { width: 1280, height: 800 } });
    await page.goto(app.url);
    const form = page.locator('[data-testid="add-host-form"]');
    await page.locator('[data-testid="add-host-open"]').first().click();
    await form.locator('input[name="address"]').fill('bad host;id');
    await form.locator('[data-testid="add-host-submit"]').click();
    await expect.poll(() => form.innerText(), { timeout: 10_000 }).toMatch(/host name or an IP address/);
    // (loopback, port 1: nothing listens, so its first scan fails fast and stays on this machine)
    await form.locator('input[name="address"]').fill('127.0.0.1');
    await form.locator('input[name="port"]').fill('1');
    await form.locator('input[name="name"]').fill('from-the-form');
    await form.locator('[data-testid="add-host-submit"]').click();
    await page.locator('[data-testid="host-row"]', { hasText: 'from-the-form' }).waitFor({ timeout: 20_000 });
    const { body } = await app.api('/api/hosts');
    const added = body.find((h: any) => h.name === 'from-the-form');
    expect(added).toBeTruthy();
    // nobody pressed Scan: the dashboard asked for the first scan with the host
    const scans = (await app.api(`/api/jobs?hostId=${added.id}&kind=scan`)).body;
    expect(scans).toHaveLength(1);
    await page.close();
  });
});
