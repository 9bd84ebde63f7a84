// A security-only policy on this real Debian machine, through a real sshd and the real relay
// and Worker (`npm start`): an include glob that selects one small pending security package
// installs exactly that package — dpkg agrees, and every other pending package keeps its
// installed version. (In the e2e project: it changes this machine's packages, and the files
// of this project run one at a time.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, until, type RunningApp } from './app.ts';
import { aptSimulation, dpkgVersion, leafUpdates } from '../relay/test/apt-local.ts';
import { startSshd, type Sshd } from '../relay/test/sshd.ts';

let app: RunningApp;
let sshd: Sshd;

beforeAll(async () => {
  // the relay may change its own machine here (it refuses by default)
  app = await startApp({ PATCHMAN_SKIP_BUILD: '1', ROLLOUT_TICK_MS: '1000', PATCHMAN_MONITOR_ONLY: 'none' });
});

afterAll(async () => {
  await sshd?.stop();
  await app?.stop();
});

describe('a security-only policy on this machine', () => {
  it('installs exactly the one pending security package its include glob selects', async () => {
    const relay = await until(async () => (await app.api('/api/relays')).body.find((r: any) => r.connected && r.publicKey), 60_000, 'relay');
    sshd = await startSshd({ authorizedKeys: [relay.publicKey] });
    const add = await app.api('/api/hosts', { method: 'POST', json: { name: 'this-machine', address: '127.0.0.1', port: sshd.port, user: 'root', monitorOnly: false } });
    expect(add.status).toBe(201);
    const hostId = add.body.id;
    const scan = await app.api(`/api/hosts/${hostId}/scan`, { method: 'POST' });
    await until(async () => ['succeeded', 'failed'].includes((await app.api(`/api/jobs/${scan.body.jobId}`)).body.status), 120_000, 'scan');

    const { body: updates } = await app.api(`/api/hosts/${hostId}/updates`);
    const security = updates.filter((u: any) => u.security).map((u: any) => u.name);
    expect(security.length).toBeGreaterThan(0);
    const [pkg] = leafUpdates(security);
    const update = updates.find((u: any) => u.name === pkg);
    // a glob (not just the name) that matches this package and no other pending one
    const glob = updates.some((u: any) => u.name !== pkg && u.name.startsWith(pkg)) ? pkg : `${pkg}*`;
    const before = new Map<string, string>(updates.map((u: any) => [u.name, dpkgVersion(u.name)]));
    expect(before.get(pkg)).toBe(update.currentVersion);

    const made = await app.api('/api/policies', {
      method: 'POST',
      json: { name: 'this machine, one package', selector: { hostIds: [hostId] }, scope: 'security', include: [glob], rollout: { canary: 1, concurrency: 1 } },
    });
    expect(made.status).toBe(201);
    const preview = await app.api(`/api/policies/${made.body.id}/preview`, { method: 'POST', json: {} });
    expect(preview.body.hosts).toEqual([
      {
        hostId,
        name: 'this-machine',
        action: 'upgrade',
        full: false,
        packages: [{ name: pkg, currentVersion: update.currentVersion, newVersion: update.newVersion, security: true }],
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
    expect(rollout.hosts).toEqual([expect.objectContaining({ hostId, batch: 0, status: 'succeeded', packages: [pkg] })]);

    const { body: job } = await app.api(`/api/jobs/${rollout.hosts[0].jobId}`);
    expect(job).toMatchObject({ kind: 'upgrade', status: 'succeeded', exitCode: 0, packages: [pkg], requestedBy: 'policy this machine, one package' });
    expect(job.changes).toEqual([{ name: expect.stringMatching(new RegExp(`^${pkg.replace(/[.+]/g, '\\$&')}(:\\w+)?$`)), from: update.currentVersion, to: update.newVersion }]);
    // dpkg agrees: the package has its new version, every other pending package is as it was
    expect(dpkgVersion(pkg)).toBe(update.newVersion);
    for (const [name, version] of before) if (name !== pkg) expect(dpkgVersion(name), name).toBe(version);
    expect(aptSimulation().has(pkg)).toBe(false);
    console.log(`policy upgraded ${pkg} ${update.currentVersion} → ${update.newVersion} (glob ${glob}); ${before.size - 1} other pending packages untouched`);
  });
});
