// Docker Compose stacks end to end: `npm start` and its relay, a real sshd whose `docker` is
// the recorded-output stub (relay/docker/test-stub.ts), images in a real registry
// (Debian's docker-registry on loopback). Scanning the host finds its stacks and checks the
// registry without pulling; the Stacks page shows the newer image; Update runs pull then
// up -d with a live log, and the stack is up to date afterwards.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startApp, until, type RunningApp } from './app.ts';
import { launchBrowser } from './browser.ts';
import { startSshd, type Sshd } from '../relay/test/sshd.ts';
import { startRegistry, type TestRegistry } from '../relay/test/registry.ts';
import { buildScenario, createDockerStub, type Scenario, type StubHost } from '../relay/docker/test-stub.ts';

let app: RunningApp;
let sshd: Sshd;
let reg: TestRegistry;
let stub: StubHost;
let scenario: Scenario;
let browser: Browser;
let tmp: string;
let hostId: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-e2e-stacks-'));
  // the host is 127.0.0.1: let the relay change it (its own box is protected by default)
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1', PATCHMAN_MONITOR_ONLY: 'none' });
  const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
  reg = await startRegistry();
  stub = await createDockerStub(join(tmp, 'bin'));
  scenario = await buildScenario(stub, reg);
  sshd = await startSshd({ authorizedKeys: [relay.publicKey], env: { PATH: `${stub.dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` } });
  browser = await launchBrowser();
  mkdirSync('e2e/artifacts', { recursive: true });
});

afterEach(({ task }) => {
  if (task.result?.state === 'fail') console.log(app?.output().slice(-3000));
});

afterAll(async () => {
  await browser?.close();
  await sshd?.stop();
  await reg?.stop();
  await app?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const pullsOrUps = async () => (await stub.log()).filter((l) => /\] \[(pull|up)\]/.test(l));

describe('Docker Compose stacks', () => {
  it('scanning a Docker host finds its stacks and checks the registry, pulling nothing', async () => {
    const add = await app.api('/api/hosts', { method: 'POST', json: { name: 'docker-host', address: '127.0.0.1', port: sshd.port, user: 'root', monitorOnly: false } });
    expect(add.status).toBe(201);
    hostId = add.body.id;
    const scan = await app.api(`/api/hosts/${hostId}/scan`, { method: 'POST' });
    expect(scan.status).toBe(202);
    const stacks = await until(async () => {
      const { body } = await app.api(`/api/stacks?hostId=${hostId}`);
      return Array.isArray(body) && body.some((s: any) => s.name === 'potpie') && body;
    }, 120_000, 'stacks listed');
    const potpie = stacks.find((s: any) => s.name === 'potpie');
    expect(potpie.updatesCount).toBe(1);
    const neo4j = potpie.containers.find((c: any) => c.service === 'neo4j');
    expect(neo4j.check).toMatchObject({ status: 'update-available', remoteDigest: scenario.neo4jNew, localDigest: scenario.neo4jOld });
    expect(potpie.containers.find((c: any) => c.service === 'postgres').check.status).toBe('up-to-date');
    const example = stacks.find((s: any) => s.name === 'example');
    expect(example.containers.every((c: any) => c.check.status === 'not-checkable')).toBe(true);
    expect(await pullsOrUps()).toEqual([]); // the check changed nothing
  });

  it('the Stacks page shows the newer image; Update pulls then recreates, with a live log, and the stack is up to date after', async () => {
    const page = await app.page(browser, { viewport: { width: 1280, height: 900 } });
    await page.goto(`${app.url}/stacks`);
    const card = page.locator('[data-testid="stack-card"][data-stack="potpie"]');
    await expect.poll(() => card.getAttribute('data-updates'), { timeout: 30_000 }).toBe('1');
    await card.locator('[data-testid="stack-expand"]').click();
    await expect.poll(() => card.locator('[data-testid="stack-container"][data-service="neo4j"]').getAttribute('data-check'), { timeout: 10_000 }).toBe('update-available');
    await page.screenshot({ path: 'e2e/artifacts/stacks.png', fullPage: true });

    await card.locator('[data-testid="stack-update"]').click();
    const dialog = page.locator('[data-testid="stack-update-confirm"]');
    await dialog.waitFor();
    expect(await dialog.innerText()).toMatch(/docker compose pull/);
    expect(await dialog.locator('[data-testid="stack-update-confirm-container"]').count()).toBe(1);
    await page.locator('[data-testid="stack-update-confirm-button"]').click();

    const log = page.locator('[data-testid="live-log"]');
    await expect.poll(() => log.innerText(), { timeout: 60_000 }).toContain('neo4j Pulled');
    await expect.poll(() => log.getAttribute('data-status'), { timeout: 120_000 }).toBe('succeeded');
    await expect.poll(() => card.getAttribute('data-updates'), { timeout: 30_000 }).toBe('0');
    await page.screenshot({ path: 'e2e/artifacts/stack-updated.png', fullPage: true });

    const ran = await pullsOrUps();
    expect(ran).toHaveLength(2);
    expect(ran[0]).toMatch(/\[compose\] \[-p\] \[potpie\].*\[pull\]/);
    expect(ran[1]).toMatch(/\[compose\] \[-p\] \[potpie\].*\[up\] \[-d\]/);

    const { body: jobs } = await app.api(`/api/jobs?hostId=${hostId}&kind=stack-update`);
    expect(jobs[0]).toMatchObject({ status: 'succeeded', summary: '1 container updated' });
    await page.close();
  });
});
