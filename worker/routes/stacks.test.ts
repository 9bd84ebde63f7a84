// Docker Compose stacks: found by a docker scan after a host scan, checked again, updated, and
// what is refused, against the real Worker in workerd (local D1) with a fake relay on a real
// WebSocket: what reaches the relay (params exactly), how answers become stacks and history,
// and what survives a relay restart.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, testEnv, until } from '../test/helpers.ts';
import { probeResult, scanWith } from '../test/fixtures.ts';
import { isActiveStatus } from '../../protocol/api.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

const TARGET = { address: '192.0.2.40', port: 22, user: 'root' };
const dockerProbe = { ...probeResult, docker: true };
const dockerHostScan = scanWith({ probe: dockerProbe });

const digest = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`;

function container(name: string, service: string, image: string, check: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name,
    service,
    state: 'running',
    image,
    imageId: digest(name.length.toString(16)),
    repoDigests: check.localDigest ? [`${image.split(':')[0]}@${check.localDigest}`] : [],
    check: { status: 'up-to-date', reason: null, localDigest: null, remoteDigest: null, ...check },
    ...extra,
  };
}

const jellyfin = container('media-jellyfin-1', 'jellyfin', 'jellyfin/jellyfin:latest', { status: 'update-available', localDigest: digest('a'), remoteDigest: digest('b') }, { imageId: digest('1') });
const sonarr = container('media-sonarr-1', 'sonarr', 'lscr.io/linuxserver/sonarr:latest', { status: 'update-available', localDigest: digest('c'), remoteDigest: digest('d') }, { imageId: digest('2') });
const redis = container('media-redis-1', 'redis', 'redis:7', { status: 'up-to-date', localDigest: digest('e'), remoteDigest: digest('e') }, { imageId: digest('3') });
const traefik = container('proxy-traefik-1', 'traefik', 'traefik@sha256:' + 'f'.repeat(64), { status: 'not-checkable', reason: 'pinned by digest: it never changes under its tag' });
const app = container('proxy-app-1', 'app', 'proxy-app', { status: 'not-checkable', reason: 'built locally: no registry to ask' }, { imageId: digest('4') });

const media = { name: 'media', status: 'running(3)', workingDir: '/srv/media', configFiles: ['/srv/media/compose.yaml'], containers: [jellyfin, sonarr, redis] };
const proxy = { name: 'proxy', status: 'running(2)', workingDir: '/srv/proxy', configFiles: ['/srv/proxy/compose.yml', '/srv/proxy/compose.override.yml'], containers: [traefik, app] };
const dockerScan = (stacks: unknown[], warnings: string[] = []) => ({ composeVersion: '2.29.7', stacks, warnings });

/** After `docker compose pull && up -d`: jellyfin and sonarr run new images. */
const mediaUpdated = {
  ...media,
  containers: [
    { ...jellyfin, imageId: digest('5'), repoDigests: [`jellyfin/jellyfin@${digest('b')}`], check: { ...jellyfin.check, status: 'up-to-date', localDigest: digest('b') } },
    { ...sonarr, imageId: digest('6'), repoDigests: [`lscr.io/linuxserver/sonarr@${digest('d')}`], check: { ...sonarr.check, status: 'up-to-date', localDigest: digest('d') } },
    redis,
  ],
};

const updateResult = (stack: unknown, extra: Record<string, unknown> = {}) => ({
  exitCode: 0,
  stack,
  logBytes: 40,
  logTail: 'Container media-jellyfin-1  Started\n',
  durationMs: 8200,
  ...extra,
});

async function addHost(relayId: string, body: Record<string, unknown>) {
  const res = await api('/api/hosts', { method: 'POST', json: { relayId, ...body } });
  expect(res.status).toBe(201);
  return json(res);
}

async function finished(jobId: string) {
  return until(async () => {
    const j = await json(api(`/api/jobs/${jobId}`));
    return !isActiveStatus(j.status) && j;
  });
}

/** Scan a Docker host: the host scan, then the docker scan it queues, answered with `stacks`. */
async function scanDockerHost(relay: FakeRelay, hostId: string, stacks: unknown[] = [media, proxy], warnings: string[] = []) {
  const { jobId } = await json(api(`/api/hosts/${hostId}/scan`, { method: 'POST' }));
  const req = await relay.next();
  expect(req).toMatchObject({ id: jobId, op: 'scan' });
  relay.send({ type: 'response', id: jobId, ok: true, result: dockerHostScan });
  const docker = await relay.next();
  expect(docker.op).toBe('docker.scan');
  relay.send({ type: 'response', id: docker.id, ok: true, result: dockerScan(stacks, warnings) });
  return finished(docker.id);
}

async function setup(hostBody: Record<string, unknown> = {}) {
  const { id: relayId, token } = await createRelay();
  const relay = await FakeRelay.connect(token);
  const host = await addHost(relayId, { name: 'nas', address: TARGET.address, ...hostBody });
  await scanDockerHost(relay, host.id);
  const stacks = await json(api(`/api/stacks?hostId=${host.id}`));
  const byName = Object.fromEntries(stacks.map((s: any) => [s.name, s]));
  return { relayId, token, relay, host, media: byName.media, proxy: byName.proxy };
}

const update = (stackId: string, body: unknown, key?: string) =>
  api(`/api/stacks/${stackId}/update`, { method: 'POST', json: body, headers: key ? { 'Idempotency-Key': key } : {} });

async function jobCount(): Promise<number> {
  return (await testEnv.DB.prepare('SELECT count(*) AS n FROM jobs').first<{ n: number }>())!.n;
}

describe('docker scans', () => {
  it('a host scan that finds Docker queues a docker scan; its result fills GET /api/stacks', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const host = await addHost(relayId, { name: 'nas', address: TARGET.address });

    const { jobId } = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: true, result: dockerHostScan });
    const req = await relay.next();
    expect(req).toMatchObject({ type: 'request', op: 'docker.scan', timeoutMs: 10 * 60_000 });
    expect(req.params).toEqual({ target: TARGET });
    expect(await json(api('/api/stacks'))).toEqual([]);

    relay.send({ type: 'response', id: req.id, ok: true, result: dockerScan([media, proxy], ['registry.example.com: 401 for proxy-app']) });
    const job = await finished(req.id);
    expect(job).toMatchObject({ kind: 'docker-scan', status: 'succeeded', stack: null, packages: null, summary: '2 stacks, 1 with newer images, 1 warning' });
    expect(job.log).toContain('[patchman] warning: registry.example.com: 401 for proxy-app');

    const stacks = await json(api(`/api/stacks?hostId=${host.id}`));
    expect(stacks.map((s: any) => s.name)).toEqual(['media', 'proxy']);
    expect(stacks[0]).toMatchObject({
      hostId: host.id,
      hostName: 'nas',
      name: 'media',
      status: 'running(3)',
      workingDir: '/srv/media',
      configFiles: ['/srv/media/compose.yaml'],
      updatesCount: 2,
      uncheckableCount: 0,
      error: null,
    });
    expect(stacks[0].containers).toEqual(media.containers);
    expect(stacks[1]).toMatchObject({ updatesCount: 0, uncheckableCount: 2 });
    expect(Date.parse(stacks[0].checkedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(await json(api(`/api/stacks/${stacks[1].id}`))).toEqual(stacks[1]);
    expect((await api('/api/stacks/nope')).status).toBe(404);
    expect((await api('/api/stacks?hostId=a;b')).status).toBe(400);
    expect((await json(api('/api/summary'))).stacksWithUpdates).toBe(1);
    expect((await json(api('/api/jobs?kind=docker-scan'))).map((j: any) => j.id)).toEqual([req.id]);
  });

  it('a host without Docker gets no docker scan; a scan that no longer finds Docker forgets its stacks', async () => {
    const { relay, host } = await setup();
    const { jobId } = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: true, result: scanWith({ probe: { ...probeResult, docker: false } }) });
    await finished(jobId);
    await new Promise((r) => setTimeout(r, 300));
    expect(relay.inbox).toEqual([]);
    expect(await json(api('/api/stacks'))).toEqual([]);
  });

  it('a later scan replaces the stacks: the ids stay, stacks that disappeared are deleted', async () => {
    const { relay, host, media: m } = await setup();
    await scanDockerHost(relay, host.id, [mediaUpdated]);
    const stacks = await json(api(`/api/stacks?hostId=${host.id}`));
    expect(stacks.map((s: any) => [s.id, s.name, s.updatesCount])).toEqual([[m.id, 'media', 0]]);
    expect((await json(api('/api/summary'))).stacksWithUpdates).toBe(0);
  });

  it('does not queue a second docker scan while one is waiting or running', async () => {
    const { relay, host, media: m, proxy: p } = await setup();
    const first = await api(`/api/stacks/${m.id}/check`, { method: 'POST' });
    expect(first.status).toBe(202);
    const { jobId } = await json(first);
    const again = await json(api(`/api/stacks/${m.id}/check`, { method: 'POST' }));
    expect(again.jobId).toBe(jobId);
    await relay.next();
    // a host scan meanwhile: the docker scan under way covers this stack only, so a full one is queued
    const { jobId: scanId } = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: scanId, ok: true, result: dockerHostScan });
    const full = await relay.next();
    expect(full.params).toEqual({ target: TARGET });
    // … and while that one runs, checking another stack reuses it
    expect((await json(api(`/api/stacks/${p.id}/check`, { method: 'POST' }))).jobId).toBe(full.id);
    expect((await json(api('/api/jobs?kind=docker-scan'))).length).toBe(3);
  });
});

describe('POST /api/stacks/:id/check', () => {
  it('sends a docker scan limited to the stack; its result replaces that stack only', async () => {
    const { relay, host, media: m, proxy: p } = await setup();
    const res = await api(`/api/stacks/${p.id}/check`, { method: 'POST' });
    expect(res.status).toBe(202);
    const { jobId } = await json(res);
    const req = await relay.next();
    expect(req).toMatchObject({ id: jobId, op: 'docker.scan' });
    expect(req.params).toEqual({ target: TARGET, stack: 'proxy' });

    const fixed = { ...proxy, status: 'running(1)', containers: [app] };
    // the relay answers with the one stack; another it happens to mention is not touched
    relay.send({ type: 'response', id: jobId, ok: true, result: dockerScan([fixed, { ...media, containers: [] }]) });
    const job = await finished(jobId);
    expect(job).toMatchObject({ kind: 'docker-scan', status: 'succeeded', stack: 'proxy', summary: 'proxy: up to date' });
    const after = await json(api(`/api/stacks?hostId=${host.id}`));
    expect(after.find((s: any) => s.name === 'proxy')).toMatchObject({ id: p.id, status: 'running(1)', uncheckableCount: 1, containers: [app] });
    expect(after.find((s: any) => s.name === 'media')).toEqual(m);
  });

  it('a check that fails keeps the stack and says why; a stack that is gone is deleted', async () => {
    const { relay, media: m, proxy: p } = await setup();
    const { jobId } = await json(api(`/api/stacks/${m.id}/check`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: false, error: { code: 'command-failed', message: 'Cannot connect to the Docker daemon', exitCode: 1 } });
    await finished(jobId);
    const failed = await json(api(`/api/stacks/${m.id}`));
    expect(failed).toMatchObject({ error: 'Cannot connect to the Docker daemon', updatesCount: 2, containers: m.containers });
    expect((await json(api(`/api/stacks/${p.id}`))).error).toBeNull();

    const { jobId: second } = await json(api(`/api/stacks/${m.id}/check`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: second, ok: true, result: dockerScan([]) });
    expect((await finished(second)).summary).toBe('media: no longer there');
    expect((await api(`/api/stacks/${m.id}`)).status).toBe(404);
    expect((await api(`/api/stacks/${p.id}`)).status).toBe(200);
  });

  it('viewers read stacks but neither check nor update them', async () => {
    const { relay, media: m } = await setup();
    const { secret } = await json(api('/api/tokens', { method: 'POST', json: { name: 'ro', role: 'viewer' } }));
    const viewer = { Authorization: `Bearer ${secret}` };
    expect((await api('/api/stacks', { headers: viewer })).status).toBe(200);
    expect((await api(`/api/stacks/${m.id}`, { headers: viewer })).status).toBe(200);
    expect((await api(`/api/stacks/${m.id}/check`, { method: 'POST', json: {}, headers: viewer })).status).toBe(403);
    expect((await api(`/api/stacks/${m.id}/update`, { method: 'POST', json: { confirm: true }, headers: viewer })).status).toBe(403);
    expect(relay.inbox).toEqual([]);
  });
});

describe('POST /api/stacks/:id/update', () => {
  it('sends the update to the relay, stores its output, and records the new stack and the history', async () => {
    const { relay, host, media: m } = await setup();
    const res = await update(m.id, { confirm: true });
    expect(res.status).toBe(202);
    const { jobId } = await json(res);
    const req = await relay.next();
    expect(req).toMatchObject({ type: 'request', id: jobId, op: 'docker.update', timeoutMs: 30 * 60_000 });
    expect(req.params).toEqual({ target: TARGET, runId: jobId, stack: 'media', offset: 0 });

    relay.send({ type: 'output', id: jobId, data: '[patchman] docker compose pull\n' });
    relay.send({ type: 'output', id: jobId, data: ' jellyfin Pulled\n', range: { from: 0, to: 17 } });
    relay.send({ type: 'output', id: jobId, data: ' jellyfin Pulled\n', range: { from: 0, to: 17 } }); // repeated after a re-attach
    relay.send({ type: 'output', id: jobId, data: 'Container media-jellyfin-1  Started\n', range: { from: 17, to: 54 } });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).logBytes > 80);
    const running = await json(api(`/api/jobs/${jobId}`));
    expect(running).toMatchObject({ status: 'running', kind: 'stack-update', stack: 'media', services: null, packages: null });
    expect(running.log).toBe('[patchman] docker compose pull\n jellyfin Pulled\nContainer media-jellyfin-1  Started\n');

    relay.send({ type: 'response', id: jobId, ok: true, result: updateResult(mediaUpdated) });
    const done = await finished(jobId);
    expect(done).toMatchObject({ kind: 'stack-update', status: 'succeeded', exitCode: 0, summary: '2 containers updated', packages: null, stack: 'media' });
    expect(done.changes).toEqual([
      { name: 'media-jellyfin-1', from: digest('a'), to: digest('b') },
      { name: 'media-sonarr-1', from: digest('c'), to: digest('d') },
    ]);
    const stack = await json(api(`/api/stacks/${m.id}`));
    expect(stack).toMatchObject({ id: m.id, updatesCount: 0, containers: mediaUpdated.containers });
    expect((await json(api('/api/summary'))).stacksWithUpdates).toBe(0);
    expect((await json(api(`/api/jobs?hostId=${host.id}&kind=stack-update`))).map((j: any) => j.id)).toEqual([jobId]);
    // the result brought the stack back checked: nothing else is sent
    await new Promise((r) => setTimeout(r, 300));
    expect(relay.inbox).toEqual([]);

    const { jobId: second } = await json(update(m.id, { confirm: true }));
    await relay.next();
    relay.send({ type: 'response', id: second, ok: true, result: updateResult(mediaUpdated) });
    expect((await finished(second)).summary).toBe('already up to date');
  });

  it('updates only the chosen services', async () => {
    const { relay, media: m } = await setup();
    const res = await update(m.id, { confirm: true, services: ['jellyfin', 'jellyfin', 'redis'] });
    expect(res.status).toBe(202);
    const { jobId } = await json(res);
    const req = await relay.next();
    expect(req.params).toEqual({ target: TARGET, runId: jobId, stack: 'media', services: ['jellyfin', 'redis'], offset: 0 });
    expect(await json(api(`/api/jobs/${jobId}`))).toMatchObject({ stack: 'media', services: ['jellyfin', 'redis'] });
    const partly = { ...media, containers: [mediaUpdated.containers[0], sonarr, redis] };
    relay.send({ type: 'response', id: jobId, ok: true, result: updateResult(partly) });
    const done = await finished(jobId);
    expect(done.summary).toBe('1 container updated');
    expect((await json(api(`/api/stacks/${m.id}`))).updatesCount).toBe(1);
  });

  it('refuses bad input with the field named, and stores nothing', async () => {
    const { relay, media: m } = await setup();
    const before = await jobCount();
    const cases: [unknown, string][] = [
      [{}, 'confirm'],
      [{ confirm: false }, 'confirm'],
      [{ confirm: 'yes' }, 'confirm'],
      [{ confirm: true, services: [] }, 'services'],
      [{ confirm: true, services: 'jellyfin' }, 'services'],
      [{ confirm: true, services: ['-f'] }, 'services.0'],
      [{ confirm: true, services: ['jellyfin', 'web;id'] }, 'services.1'],
      [{ confirm: true, services: ['$(id)'] }, 'services.0'],
      [{ confirm: true, services: ['`id`'] }, 'services.0'],
      [{ confirm: true, services: ['a\nb'] }, 'services.0'],
      [{ confirm: true, services: ['a b'] }, 'services.0'],
      [{ confirm: true, services: ['../etc'] }, 'services.0'],
      [{ confirm: true, services: ['--build'] }, 'services.0'],
      [{ confirm: true, services: ['x'.repeat(64)] }, 'services.0'],
      [{ confirm: true, services: [42] }, 'services.0'],
      [{ confirm: true, stack: 'other' }, 'stack'],
      [{ confirm: true, services: ['nginx'] }, 'services'], // not a service of this stack
      [{ confirm: true, services: ['jellyfin', 'traefik'] }, 'services'], // a service of another stack
    ];
    for (const [body, field] of cases) {
      const res = await update(m.id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const { error } = await json(res);
      expect(error.field, JSON.stringify(body)).toBe(field);
      expect(error.message).toContain(field);
    }
    const bad = await update(m.id, { confirm: true }, 'short');
    expect(bad.status).toBe(400);
    expect((await json(bad)).error.field).toBe('Idempotency-Key');
    expect((await update('nope', { confirm: true })).status).toBe(404);
    expect(await jobCount()).toBe(before);
    expect(relay.inbox).toEqual([]);
  });

  it('refuses monitor-only hosts and hosts whose key changed (409), and stores nothing', async () => {
    const { relay, host, media: m } = await setup({ monitorOnly: true });
    const before = await jobCount();
    const res = await update(m.id, { confirm: true });
    expect(res.status).toBe(409);
    expect((await json(res)).error).toMatchObject({ code: 'monitor-only' });
    // checking is reading: allowed
    expect((await api(`/api/stacks/${m.id}/check`, { method: 'POST' })).status).toBe(202);
    expect((await relay.next()).op).toBe('docker.scan');

    await api(`/api/hosts/${host.id}`, { method: 'PATCH', json: { monitorOnly: false } });
    await testEnv.DB.prepare('UPDATE hosts SET host_key_offered = ? WHERE id = ?').bind('SHA256:' + 'A'.repeat(43), host.id).run();
    const keyed = await update(m.id, { confirm: true });
    expect(keyed.status).toBe(409);
    expect((await json(keyed)).error).toMatchObject({ code: 'host-key-changed' });
    expect(await jobCount()).toBe(before + 1);
    expect((await json(api('/api/jobs?kind=stack-update'))).length).toBe(0);
  });

  it('one change per host: a stack update and an upgrade or another stack update exclude each other; a repeated key returns the first job', async () => {
    const { relay, host, media: m, proxy: p } = await setup();
    const first = await update(m.id, { confirm: true }, 'stack-click-01');
    expect(first.status).toBe(202);
    const { jobId } = await json(first);
    const again = await update(m.id, { confirm: true }, 'stack-click-01');
    expect(again.status).toBe(200);
    expect((await json(again)).jobId).toBe(jobId);
    // the same key for another stack is another request
    expect((await json(update(p.id, { confirm: true }, 'stack-click-01'))).error.code).toBe('idempotency-key-reused');

    const other = await update(p.id, { confirm: true });
    expect(other.status).toBe(409);
    const busy = (await json(other)).error;
    expect(busy.code).toBe('busy');
    expect(busy.message).toMatch(/stack update of media/);
    const upgrade = await api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true } });
    expect(upgrade.status).toBe(409);
    expect((await json(api('/api/jobs?kind=stack-update'))).length).toBe(1);
    expect((await json(api('/api/jobs?kind=upgrade'))).length).toBe(0);

    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: true, result: updateResult(mediaUpdated) });
    await finished(jobId);
    // and the other way round: an upgrade under way blocks a stack update
    const { jobId: upgradeId } = await json(api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true } }));
    expect((await relay.next()).id).toBe(upgradeId);
    const blocked = await update(p.id, { confirm: true });
    expect(blocked.status).toBe(409);
    expect((await json(blocked)).error.message).toMatch(/an upgrade/);
  });

  it('a failed update keeps the cause, and the stack is checked again', async () => {
    const { relay, media: m } = await setup();
    const { jobId } = await json(update(m.id, { confirm: true }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: false, error: { code: 'command-failed', message: 'docker compose pull failed: manifest unknown', exitCode: 18 } });
    const failed = await finished(jobId);
    expect(failed).toMatchObject({ status: 'failed', exitCode: 18, error: { code: 'command-failed' } });
    const check = await relay.next();
    expect(check.op).toBe('docker.scan');
    expect(check.params).toEqual({ target: TARGET, stack: 'media' });
  });

  it('a failure that changed nothing is not followed by a check', async () => {
    const { relay, media: m } = await setup();
    const { jobId } = await json(update(m.id, { confirm: true }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: false, error: { code: 'monitor-only', message: 'the relay refuses to change 192.0.2.40' } });
    await finished(jobId);
    await new Promise((r) => setTimeout(r, 300));
    expect(relay.inbox).toEqual([]);
  });
});

describe('a relay restart in the middle of a stack update', () => {
  it('leaves the update running and re-sends it with the offset the Worker holds; the log has every byte once', async () => {
    const { token, relay, media: m } = await setup();
    const { jobId } = await json(update(m.id, { confirm: true, services: ['sonarr'] }));
    await relay.next();
    relay.send({ type: 'output', id: jobId, data: ' sonarr Pulling\n', range: { from: 0, to: 16 } });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).logBytes === 16);
    relay.ws.close(1001, 'relay restarting');
    await new Promise((r) => setTimeout(r, 200));
    expect((await json(api(`/api/jobs/${jobId}`))).status).toBe('running'); // not lost: it goes on on the host

    const back = await FakeRelay.connect(token);
    const again = await back.next();
    expect(again).toMatchObject({ id: jobId, op: 'docker.update' });
    expect(again.params).toEqual({ target: TARGET, runId: jobId, stack: 'media', services: ['sonarr'], offset: 16 });
    back.send({ type: 'output', id: jobId, data: ' sonarr Pulling\n', range: { from: 0, to: 16 } }); // ignored
    back.send({ type: 'output', id: jobId, data: ' sonarr Pulled\n', range: { from: 16, to: 31 } });
    const partly = { ...media, containers: [jellyfin, mediaUpdated.containers[1], redis] };
    back.send({ type: 'response', id: jobId, ok: true, result: updateResult(partly) });
    const done = await finished(jobId);
    expect(done).toMatchObject({ status: 'succeeded', summary: '1 container updated' });
    expect(done.log).toBe(' sonarr Pulling\n sonarr Pulled\n');
  });
});
