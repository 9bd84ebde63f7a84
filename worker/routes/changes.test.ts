// Upgrades, reboots and their history, against the real Worker in workerd (local D1) with a
// fake relay on a real WebSocket: what the API accepts and refuses, what reaches the relay,
// how output and answers become history, and what survives a relay restart.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, testEnv, until } from '../test/helpers.ts';
import { probeResult, scanResult, scanWith } from '../test/fixtures.ts';
import { expireJobs, LOG_CAP } from '../jobs.ts';
import { openDb } from '../db/index.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

async function addHost(relayId: string, body: Record<string, unknown>) {
  const res = await api('/api/hosts', { method: 'POST', json: { relayId, ...body } });
  expect(res.status).toBe(201);
  return json(res);
}

async function scanHost(relay: FakeRelay, hostId: string, result: unknown = scanResult) {
  const { jobId } = await json(api(`/api/hosts/${hostId}/scan`, { method: 'POST' }));
  const req = await relay.next();
  expect(req.op).toBe('scan');
  relay.send({ type: 'response', id: jobId, ok: true, result });
  await until(async () => (await json(api(`/api/jobs/${jobId}`))).status === 'succeeded');
}

/** A relay with one scanned apt host (3 pending updates). */
async function setup(hostBody: Record<string, unknown> = {}, scan: unknown = scanResult) {
  const { id: relayId, token } = await createRelay();
  const relay = await FakeRelay.connect(token);
  const host = await addHost(relayId, { name: 'web1', address: '192.0.2.10', ...hostBody });
  await scanHost(relay, host.id, scan);
  return { relayId, token, relay, host };
}

const upgrade = (hostId: string, body: unknown, key?: string) =>
  api(`/api/hosts/${hostId}/upgrade`, { method: 'POST', json: body, headers: key ? { 'Idempotency-Key': key } : {} });

const upgradeResult = (changes: { name: string; from: string | null; to: string | null }[], extra: Record<string, unknown> = {}) => ({
  packageManager: 'apt',
  mode: 'selective',
  exitCode: 0,
  changes,
  logBytes: 20,
  logTail: 'Setting up openssl\n',
  durationMs: 4200,
  reboot: { required: false, reason: null },
  warnings: [],
  ...extra,
});

describe('POST /api/hosts/:id/upgrade', () => {
  it('sends the upgrade to the relay, stores its output in order, records the outcome and rescans', async () => {
    const { relay, host } = await setup();
    const res = await upgrade(host.id, { confirm: true, packages: ['openssl', 'libssl3'] });
    expect(res.status).toBe(202);
    const { jobId } = await json(res);

    const req = await relay.next();
    expect(req).toMatchObject({
      type: 'request',
      id: jobId,
      op: 'upgrade',
      params: { target: { address: '192.0.2.10', port: 22, user: 'root' }, runId: jobId, offset: 0, packages: ['openssl', 'libssl3'] },
    });

    relay.send({ type: 'output', id: jobId, data: '[patchman] upgrading 2 package(s)\n' });
    relay.send({ type: 'output', id: jobId, data: 'Reading package lists...\n', range: { from: 0, to: 25 } });
    relay.send({ type: 'output', id: jobId, data: 'Reading package lists...\n', range: { from: 0, to: 25 } }); // a re-attached relay repeating itself
    relay.send({ type: 'output', id: jobId, data: 'Setting up openssl\n', range: { from: 25, to: 44 } });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).logBytes > 60);
    const running = await json(api(`/api/jobs/${jobId}`));
    expect(running.status).toBe('running');
    expect(running.log).toBe('[patchman] upgrading 2 package(s)\nReading package lists...\nSetting up openssl\n');

    relay.send({
      type: 'response',
      id: jobId,
      ok: true,
      result: upgradeResult([
        { name: 'libssl3', from: '3.0.15-1~deb12u1', to: '3.0.17-1~deb12u2' },
        { name: 'openssl', from: '3.0.15-1~deb12u1', to: '3.0.17-1~deb12u2' },
      ]),
    });
    const done = await until(async () => {
      const j = await json(api(`/api/jobs/${jobId}`));
      return j.status === 'succeeded' && j;
    });
    expect(done).toMatchObject({ kind: 'upgrade', exitCode: 0, summary: '2 packages upgraded', packages: ['openssl', 'libssl3'] });
    expect(done.changes).toHaveLength(2);
    expect(done.durationMs).toBeGreaterThanOrEqual(0);

    // the rescan follows by itself
    const rescan = await relay.next();
    expect(rescan).toMatchObject({ op: 'scan', params: { target: { address: '192.0.2.10' } } });
  });

  it('refuses bad input with the field named, and stores nothing', async () => {
    const { relay, host } = await setup();
    const cases: [unknown, string][] = [
      [{}, 'confirm'],
      [{ confirm: false }, 'confirm'],
      [{ confirm: 'yes' }, 'confirm'],
      [{ confirm: true, packages: ['-oAPT::Update::Pre-Invoke::=sh'] }, 'packages.0'],
      [{ confirm: true, packages: ['openssl', 'pkg;id'] }, 'packages.1'],
      [{ confirm: true, packages: ['$(id)'] }, 'packages.0'],
      [{ confirm: true, packages: ['a\nb'] }, 'packages.0'],
      [{ confirm: true, packages: ['openssl=3.0'] }, 'packages.0'],
      [{ confirm: true, packages: [] }, 'packages'],
      [{ confirm: true, packages: 'openssl' }, 'packages'],
      [{ confirm: true, force: true }, 'force'],
      [{ confirm: true, packages: ['nginx'] }, 'packages'], // not a pending update
    ];
    for (const [body, field] of cases) {
      const res = await upgrade(host.id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json(res)).error.field, JSON.stringify(body)).toBe(field);
    }
    const bad = await upgrade(host.id, { confirm: true }, 'short');
    expect(bad.status).toBe(400);
    expect((await json(bad)).error.field).toBe('Idempotency-Key');
    expect(await json(api(`/api/jobs?hostId=${host.id}&kind=upgrade`))).toEqual([]);
    expect(relay.inbox).toEqual([]);
  });

  it('refuses monitor-only hosts and selective upgrades where the package manager forbids them (409)', async () => {
    const a = await setup({ monitorOnly: true });
    const res = await upgrade(a.host.id, { confirm: true });
    expect(res.status).toBe(409);
    expect((await json(res)).error).toMatchObject({ code: 'monitor-only' });
    const reboot = await api(`/api/hosts/${a.host.id}/reboot`, { method: 'POST', json: { confirm: true } });
    expect(reboot.status).toBe(409);

    const arch = await addHost(a.relayId, { name: 'desk', address: '192.0.2.20' });
    await scanHost(a.relay, arch.id, scanWith({ packageManager: 'pacman', probe: { ...probeResult, packageManagers: ['pacman'] } }));
    const partial = await upgrade(arch.id, { confirm: true, packages: ['openssl'] });
    expect(partial.status).toBe(409);
    expect((await json(partial)).error).toMatchObject({ code: 'full-upgrade-only', field: 'packages' });
    expect((await json(await upgrade(arch.id, { confirm: true, packages: ['openssl'] }))).error.message).toMatch(/partial upgrades/);

    const pve = await addHost(a.relayId, { name: 'pve1', address: '192.0.2.21' });
    await scanHost(a.relay, pve.id, scanWith({ probe: { ...probeResult, proxmox: { product: 'pve', version: '8.4.1' } } }));
    const pvePartial = await upgrade(pve.id, { confirm: true, packages: ['openssl'] });
    expect(pvePartial.status).toBe(409);
    expect((await json(pvePartial)).error.message).toMatch(/Proxmox/);
    expect((await upgrade(pve.id, { confirm: true })).status).toBe(202);
    expect((await a.relay.next()).op).toBe('upgrade');

    // The descriptor's per-OS rule: zypper picks packages on Leap, never on Tumbleweed.
    const tw = await addHost(a.relayId, { name: 'tw', address: '192.0.2.22' });
    const twProbe = { ...probeResult, os: { ...probeResult.os, id: 'opensuse-tumbleweed' }, packageManagers: ['zypper' as const] };
    await scanHost(a.relay, tw.id, scanWith({ packageManager: 'zypper', probe: twProbe }));
    const twPartial = await upgrade(tw.id, { confirm: true, packages: ['openssl'] });
    expect(twPartial.status).toBe(409);
    expect((await json(twPartial)).error).toMatchObject({ code: 'full-upgrade-only', message: expect.stringMatching(/zypper dup/) });
  });

  it('runs one change per host at a time, and a repeated Idempotency-Key returns the first job', async () => {
    const { relay, host } = await setup();
    const first = await upgrade(host.id, { confirm: true }, 'click-0001');
    expect(first.status).toBe(202);
    const { jobId } = await json(first);
    const again = await upgrade(host.id, { confirm: true }, 'click-0001');
    expect(again.status).toBe(200);
    expect((await json(again)).jobId).toBe(jobId);

    const second = await upgrade(host.id, { confirm: true }, 'click-0002');
    expect(second.status).toBe(409);
    expect((await json(second)).error).toMatchObject({ code: 'busy' });
    const reboot = await api(`/api/hosts/${host.id}/reboot`, { method: 'POST', json: { confirm: true } });
    expect(reboot.status).toBe(409);

    // Two racing requests without keys: exactly one wins.
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: false, error: { code: 'locked', message: 'dpkg lock held by unattended-upgr', exitCode: 100 } });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).status === 'failed');
    const race = await Promise.all([upgrade(host.id, { confirm: true }), upgrade(host.id, { confirm: true }), upgrade(host.id, { confirm: true })]);
    expect(race.map((r) => r.status).sort()).toEqual([202, 409, 409]);
    expect((await json(api(`/api/jobs?hostId=${host.id}&kind=upgrade`))).length).toBe(2);
  });

  it('a failed upgrade keeps the cause and exit status; a lost one is lost, not failed', async () => {
    const { relay, host } = await setup();
    const { jobId } = await json(upgrade(host.id, { confirm: true }));
    await relay.next();
    relay.send({
      type: 'response',
      id: jobId,
      ok: false,
      error: { code: 'dpkg-interrupted', message: 'An earlier dpkg run was interrupted: run "dpkg --configure -a"', exitCode: 100 },
    });
    const failed = await until(async () => {
      const j = await json(api(`/api/jobs/${jobId}`));
      return j.status === 'failed' && j;
    });
    expect(failed).toMatchObject({ exitCode: 100, error: { code: 'dpkg-interrupted' } });
    // nothing changed: no rescan is sent
    await new Promise((r) => setTimeout(r, 300));
    expect(relay.inbox).toEqual([]);

    // The neutral codes every package manager uses (protocol/package-managers.ts) likewise.
    for (const code of ['lock-held', 'repo-unreachable'] as const) {
      const { jobId: next } = await json(upgrade(host.id, { confirm: true }));
      await relay.next();
      relay.send({ type: 'response', id: next, ok: false, error: { code, message: `dnf on web1: ${code}`, exitCode: 200 } });
      await until(async () => (await json(api(`/api/jobs/${next}`))).status === 'failed');
      expect((await json(api(`/api/jobs/${next}`))).error).toMatchObject({ code });
      await new Promise((r) => setTimeout(r, 300));
      expect(relay.inbox).toEqual([]);
    }

    const { jobId: second } = await json(upgrade(host.id, { confirm: true }));
    await relay.next();
    relay.send({ type: 'response', id: second, ok: false, error: { code: 'lost', message: 'the host rebooted during the run' } });
    await until(async () => (await json(api(`/api/jobs/${second}`))).status === 'lost');
    expect((await relay.next()).op).toBe('scan'); // what did it change? look
  });

  it('caps a huge log with a visible marker and appends the end of it when the job finishes', async () => {
    const { relay, host } = await setup();
    const { jobId } = await json(upgrade(host.id, { confirm: true }));
    await relay.next();
    const chunk = 'x'.repeat(256 * 1024 - 1) + '\n';
    let offset = 0;
    for (let i = 0; i < LOG_CAP / chunk.length + 2; i++) {
      relay.send({ type: 'output', id: jobId, data: chunk, range: { from: offset, to: offset + chunk.length } });
      offset += chunk.length;
    }
    await until(async () => (await json(api(`/api/jobs?hostId=${host.id}&kind=upgrade`)))[0].logTruncated === true, 15_000);
    relay.send({ type: 'response', id: jobId, ok: true, result: upgradeResult([], { logTail: 'E: the very end\n', mode: 'full' }) });
    const done = await until(async () => {
      const j = await json(api(`/api/jobs/${jobId}`));
      return j.status === 'succeeded' && j;
    }, 15_000);
    expect(done.logTruncated).toBe(true);
    expect(done.log.length).toBeLessThan(LOG_CAP + 1000);
    expect(done.log).toContain('[patchman: output truncated here');
    expect(done.log.endsWith('E: the very end\n')).toBe(true);
  });
});

describe('a relay restart in the middle of a change', () => {
  it('leaves the upgrade running and re-sends it with the offset the Worker holds; the log has every byte once', async () => {
    const { token, relay, host } = await setup();
    const { jobId } = await json(upgrade(host.id, { confirm: true }));
    await relay.next();
    relay.send({ type: 'output', id: jobId, data: 'Unpacking a\n', range: { from: 0, to: 12 } });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).logBytes === 12);
    relay.ws.close(1001, 'relay restarting');
    await new Promise((r) => setTimeout(r, 200));
    expect((await json(api(`/api/jobs/${jobId}`))).status).toBe('running'); // not lost: it goes on on the host

    const back = await FakeRelay.connect(token);
    const again = await back.next();
    expect(again).toMatchObject({ id: jobId, op: 'upgrade', params: { runId: jobId, offset: 12 } });
    back.send({ type: 'output', id: jobId, data: 'Unpacking a\n', range: { from: 0, to: 12 } }); // ignored
    back.send({ type: 'output', id: jobId, data: 'Setting up a\n', range: { from: 12, to: 25 } });
    back.send({ type: 'response', id: jobId, ok: true, result: upgradeResult([{ name: 'a', from: '1', to: '2' }], { mode: 'full' }) });
    const done = await until(async () => {
      const j = await json(api(`/api/jobs/${jobId}`));
      return j.status === 'succeeded' && j;
    });
    expect(done.log).toBe('Unpacking a\nSetting up a\n');
  });

  it('a reboot is re-sent only to wait (resume), never to reboot again', async () => {
    const { token, relay, host } = await setup();
    const res = await api(`/api/hosts/${host.id}/reboot`, { method: 'POST', json: { confirm: true } });
    expect(res.status).toBe(202);
    const { jobId } = await json(res);
    const req = await relay.next();
    expect(req).toMatchObject({ op: 'reboot', params: { runId: jobId, resume: false, bootId: probeResult.bootId } });
    relay.ws.close(1001, 'relay restarting');
    await new Promise((r) => setTimeout(r, 200));
    const back = await FakeRelay.connect(token);
    expect(await back.next()).toMatchObject({ id: jobId, op: 'reboot', params: { resume: true, bootId: probeResult.bootId } });
    back.send({ type: 'response', id: jobId, ok: true, result: { bootIdBefore: probeResult.bootId, bootIdAfter: 'b2', downMs: 42_000, kernel: '6.1.0-41-amd64' } });
    const done = await until(async () => {
      const j = await json(api(`/api/jobs/${jobId}`));
      return j.status === 'succeeded' && j;
    });
    expect(done.summary).toBe('back after 42 s (kernel 6.1.0-41-amd64)');
    expect((await json(api(`/api/hosts/${host.id}`))).bootId).toBe('b2');
    expect((await back.next()).op).toBe('scan');
  });

  it('a change whose relay never comes back is lost at its deadline, never succeeded', async () => {
    const { relay, host, relayId } = await setup();
    const { jobId } = await json(upgrade(host.id, { confirm: true }));
    await relay.next();
    relay.ws.close(1001, 'gone');
    await new Promise((r) => setTimeout(r, 200));
    await expireJobs(openDb(testEnv.DB), relayId, Date.now() + 2 * 3_600_000);
    const job = await json(api(`/api/jobs/${jobId}`));
    expect(job).toMatchObject({ status: 'lost', error: { code: 'lost' } });
  });
});

describe('bulk upgrades and history', () => {
  it('POST /api/upgrades starts one job per host and says why each refused host was refused', async () => {
    const { relayId, relay, host } = await setup();
    const b = await addHost(relayId, { name: 'web2', address: '192.0.2.11' });
    const m = await addHost(relayId, { name: 'relaybox', address: '192.0.2.12', monitorOnly: true });
    const res = await api('/api/upgrades', { method: 'POST', json: { confirm: true, hostIds: [host.id, b.id, m.id, 'nope'] }, headers: { 'Idempotency-Key': 'bulk-000001' } });
    expect(res.status).toBe(200);
    const { results } = await json(res);
    expect(results.map((r: any) => (r.jobId ? 'job' : r.error.code))).toEqual(['job', 'job', 'monitor-only', 'not-found']);
    const ops = [await relay.next(), await relay.next()].map((r) => r.op);
    expect(ops).toEqual(['upgrade', 'upgrade']);
    // retried: the same jobs, nothing new sent
    const retry = await json(api('/api/upgrades', { method: 'POST', json: { confirm: true, hostIds: [host.id, b.id] }, headers: { 'Idempotency-Key': 'bulk-000001' } }));
    expect(retry.results.map((r: any) => r.jobId)).toEqual(results.slice(0, 2).map((r: any) => r.jobId));
    const bad = await api('/api/upgrades', { method: 'POST', json: { confirm: true, hostIds: [] } });
    expect(bad.status).toBe(400);
    expect((await json(bad)).error.field).toBe('hostIds');
  });

  it('GET /api/jobs filters by host, kind, status and date, newest first', async () => {
    const { relay, host } = await setup();
    const { jobId } = await json(upgrade(host.id, { confirm: true }));
    await relay.next();
    relay.send({ type: 'response', id: jobId, ok: true, result: upgradeResult([], { mode: 'full' }) });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).status === 'succeeded');
    const all = await json(api(`/api/jobs?hostId=${host.id}`));
    expect(all[0].createdAt >= all[all.length - 1].createdAt).toBe(true);
    expect((await json(api(`/api/jobs?kind=upgrade&status=succeeded`))).map((j: any) => j.id)).toEqual([jobId]);
    expect(await json(api(`/api/jobs?kind=upgrade&status=failed`))).toEqual([]);
    const today = new Date().toISOString().slice(0, 10);
    expect((await json(api(`/api/jobs?kind=upgrade&since=${today}`))).length).toBe(1);
    expect(await json(api(`/api/jobs?kind=upgrade&before=2000-01-01`))).toEqual([]);
    for (const q of ['since=yesterday', 'kind=shell', 'status=done', 'limit=0', 'hostId=a;b']) {
      const res = await api(`/api/jobs?${q}`);
      expect(res.status, q).toBe(400);
    }
  });
});
