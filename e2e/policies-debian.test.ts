// A security-only policy on a real Debian 12 host (a throw-away overlay of the debootstrap
// root in relay/test/debian-root.ts, with real pending security updates, behind a real sshd
// that chroots into it), through the real relay and Worker (`npm start`): an include glob
// that selects one small pending security package installs exactly that package — dpkg
// agrees, and every other pending package keeps its installed version.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, until, type RunningApp } from './app.ts';
import { aptOn } from '../relay/test/apt-local.ts';
import { overlayRoot, type OverlayRoot } from '../relay/test/debian-root.ts';
import { startSshd, type Sshd } from '../relay/test/sshd.ts';

let app: RunningApp;
let sshd: Sshd;
let root: OverlayRoot;
let apt: ReturnType<typeof aptOn>;

beforeAll(async () => {
  // the relay may change its own machine here (it refuses by default)
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1', ROLLOUT_TICK_MS: '1000', PATCHMAN_MONITOR_ONLY: 'none' });
  root = await overlayRoot();
  apt = aptOn(root.dir);
});

afterAll(async () => {
  await sshd?.stop();
  await app?.stop();
  await root?.stop();
});

describe('a security-only policy on a Debian host', () => {
  it('installs exactly the pending security packages its include globs select', async () => {
    const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
    sshd = await startSshd({ authorizedKeys: [relay.publicKey], chroot: root.dir });
    const add = await app.api('/api/hosts', { method: 'POST', json: { name: 'debian-host', address: '127.0.0.1', port: sshd.port, user: 'root', monitorOnly: false } });
    expect(add.status).toBe(201);
    const hostId = add.body.id;
    const scan = await app.api(`/api/hosts/${hostId}/scan`, { method: 'POST' });
    await until(async () => ['succeeded', 'failed'].includes((await app.api(`/api/jobs/${scan.body.jobId}`)).body.status), 120_000, 'scan');

    const { body: updates } = await app.api(`/api/hosts/${hostId}/updates`);
    const security = updates.filter((u: any) => u.security).map((u: any) => u.name);
    expect(security.length).toBeGreaterThan(0);
    // one package that upgrades alone, or (when earlier runs have patched every such one on
    // this root) the smallest set apt upgrades together, all of them security updates
    const pkgs = apt.upgradeSet(security);
    const chosen = pkgs.map((name) => updates.find((u: any) => u.name === name));
    // globs (not just names) that match these packages and no other pending one
    const globs = pkgs.map((p) => (updates.some((u: any) => !pkgs.includes(u.name) && u.name.startsWith(p)) ? p : `${p}*`));
    const before = new Map<string, string>(updates.map((u: any) => [u.name, apt.dpkgVersion(u.name)]));
    for (const u of chosen) expect(before.get(u.name)).toBe(u.currentVersion);

    const made = await app.api('/api/policies', {
      method: 'POST',
      json: { name: 'debian host, one package', selector: { hostIds: [hostId] }, scope: 'security', include: globs, rollout: { canary: 1, concurrency: 1 } },
    });
    expect(made.status).toBe(201);
    const preview = await app.api(`/api/policies/${made.body.id}/preview`, { method: 'POST', json: {} });
    expect(preview.body.hosts).toEqual([
      {
        hostId,
        name: 'debian-host',
        action: 'upgrade',
        full: false,
        packages: chosen.map((u) => ({ name: u.name, currentVersion: u.currentVersion, newVersion: u.newVersion, security: true })),
        rebootExpected: expect.any(Boolean),
      },
    ]);

    const run = await app.api(`/api/policies/${made.body.id}/run`, { method: 'POST', json: {} });
    expect(run.status).toBe(202);
    const rollout = await until(async () => {
      const { body } = await app.api(`/api/rollouts/${run.body.rolloutId}`);
      return body.finishedAt && body;
    }, 600_000, 'rollout finished');
    expect(rollout.status, JSON.stringify(rollout.hosts)).toBe('done');
    expect(rollout.hosts).toEqual([expect.objectContaining({ hostId, batch: 0, status: 'succeeded', packages: pkgs })]);

    const { body: job } = await app.api(`/api/jobs/${rollout.hosts[0].jobId}`);
    expect(job).toMatchObject({ kind: 'upgrade', status: 'succeeded', exitCode: 0, packages: pkgs, requestedBy: 'policy debian host, one package' });
    const plain = (name: string) => name.replace(/:\w+$/, '');
    expect(job.changes.map((c: any) => ({ ...c, name: plain(c.name) })).sort((a: any, b: any) => a.name.localeCompare(b.name))).toEqual(
      chosen.map((u) => ({ name: u.name, from: u.currentVersion, to: u.newVersion })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    // dpkg agrees: the packages have their new versions, every other pending package is as it was
    for (const u of chosen) expect(apt.dpkgVersion(u.name), u.name).toBe(u.newVersion);
    for (const [name, version] of before) if (!pkgs.includes(name)) expect(apt.dpkgVersion(name), name).toBe(version);
    const after = apt.aptSimulation();
    for (const p of pkgs) expect(after.has(p), p).toBe(false);
    console.log(`policy upgraded ${chosen.map((u) => `${u.name} ${u.currentVersion} → ${u.newVersion}`).join(', ')} (globs ${globs.join(' ')}); ${before.size - pkgs.length} other pending packages untouched`);
  });
});
