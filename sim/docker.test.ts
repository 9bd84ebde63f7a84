// The simulated fleet's Docker hosts, through the relay's real docker.scan and docker.update
// (executeRequest over SSH to a simulated host, registry checks against the sim's stand-in
// registry): the demo's Stacks page has stacks with newer images, and updating one works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKeyPair } from '../relay/keys.ts';
import { KnownHosts } from '../relay/known-hosts.ts';
import { executeRequest } from '../relay/ops/index.ts';
import type { OpContext } from '../relay/ops/context.ts';
import { startFleet, type Fleet } from './fleet.ts';

let tmp: string;
let fleet: Fleet;
let ctx: OpContext;
let output = '';

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-sim-docker-'));
  const key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  fleet = await startFleet({ hosts: [{ name: 'dock-1', profile: 'ubuntu2404-phased' }], authorizedKeys: [key.publicKey], stateDir: join(tmp, 'sim'), baseAddress: '127.92.0.1' });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), connectTimeoutMs: 5000, output: (d: string) => void (output += d) } as OpContext;
});

afterAll(async () => {
  await fleet?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const target = () => ({ address: fleet.hosts[0].address, port: fleet.hosts[0].port, user: 'root' });
const checks = (stack: any) => Object.fromEntries(stack.containers.map((c: any) => [c.service, c.check.status]));

describe('Docker on a simulated host', () => {
  it('docker.scan lists three stacks; newer images where the tag moved, pinned and local builds not checkable', async () => {
    const res = await executeRequest({ type: 'request', id: 'scan-1', op: 'docker.scan', params: { target: target() } }, ctx);
    expect(res, JSON.stringify(res).slice(0, 500)).toMatchObject({ ok: true });
    if (!res.ok) return;
    const { stacks, warnings } = res.result as any;
    expect(warnings).toEqual([]);
    const byName = Object.fromEntries(stacks.map((s: any) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(['app', 'monitoring', 'web']);
    expect(checks(byName.web)).toEqual({ nginx: 'update-available', redis: 'up-to-date' });
    expect(checks(byName.monitoring)).toEqual({ grafana: 'update-available', prometheus: 'up-to-date' });
    expect(checks(byName.app)).toEqual({ db: 'not-checkable', api: 'not-checkable' });
    expect(byName.monitoring.configFiles).toEqual(['/srv/monitoring/compose.yaml', '/srv/monitoring/compose.override.yaml']);
  });

  it('docker.update pulls and recreates only what changed; the stack is up to date afterwards', async () => {
    output = '';
    const res = await executeRequest({ type: 'request', id: 'up-1', op: 'docker.update', params: { target: target(), runId: 'simdockerrun1', stack: 'web' } }, ctx);
    expect(res, JSON.stringify(res).slice(0, 500)).toMatchObject({ ok: true, result: { exitCode: 0 } });
    if (!res.ok) return;
    expect(checks((res.result as any).stack)).toEqual({ nginx: 'up-to-date', redis: 'up-to-date' });
    expect(output).toContain('Container web-nginx-1  Recreated');
    expect(output).toContain('Container web-redis-1  Running');
    // the other stacks are as they were
    const again = await executeRequest({ type: 'request', id: 'scan-2', op: 'docker.scan', params: { target: target() } }, ctx);
    if (!again.ok) throw new Error(JSON.stringify(again));
    const monitoring = (again.result as any).stacks.find((s: any) => s.name === 'monitoring');
    expect(checks(monitoring).grafana).toBe('update-available');
  });
});
