// docker.scan end to end: the relay's real runDockerScan over real SSH (OpenSSH sshd,
// relay/test/sshd.ts) to a "host" whose `docker` is a stub answering with recorded Compose
// outputs (relay/docker/test-stub.ts), with images in a real registry (docker-registry,
// relay/test/registry.ts) that the relay checks with HEAD requests.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { DockerScanResult } from '../../protocol/relay.ts';
import { probeDocker } from '../docker/host.ts';
import { RegistryClient } from '../docker/registry.ts';
import { buildScenario, createDockerStub, EXAMPLE_FILES, fixture, POTPIE_CONFIG, POTPIE_DIR, type Scenario, type StubHost } from '../docker/test-stub.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import type { SshSession } from '../ssh.ts';
import { startRegistry, type TestRegistry } from '../test/registry.ts';
import { startSshd, type Sshd } from '../test/sshd.ts';
import type { OpContext } from './context.ts';
import { executeRequest } from './index.ts';
import { runDockerScan } from './docker-scan.ts';

let tmp: string;
let key: KeyPair;
let sshd: Sshd;
let reg: TestRegistry;
let stub: StubHost;
let ctx: OpContext;
let scenario: Scenario;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-docker-scan-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  reg = await startRegistry();
  stub = await createDockerStub(join(tmp, 'bin'));
  sshd = await startSshd({ authorizedKeys: [key.publicKey], env: { PATH: `${stub.dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` } });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), connectTimeoutMs: 10_000 };
});
afterAll(async () => {
  await sshd?.stop();
  await reg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});
beforeEach(async () => {
  scenario = await buildScenario(stub, reg);
});

const target = () => ({ address: sshd.address, port: sshd.port, user: 'root' });

describe('docker.scan', () => {
  it('reports stacks, containers, digests and update statuses from both ps formats, and pulls nothing', async () => {
    const R = reg.host;
    const client = new RegistryClient();
    const result = await runDockerScan({ target: target() }, ctx, client);
    expect(v.safeParse(DockerScanResult, result).success).toBe(true);
    expect(result.composeVersion).toBe('2.32.4');
    expect(result.stacks.map((s) => s.name)).toEqual(['potpie', 'example', 'evil']);
    expect(result.warnings).toEqual([expect.stringMatching(/"e2eTestCompose1602770221964365386" has a name PatchMan does not accept/)]);

    const [potpie, example, evil] = result.stacks;
    expect(potpie).toMatchObject({ name: 'potpie', status: 'running(3)', workingDir: POTPIE_DIR, configFiles: [POTPIE_CONFIG] });
    expect(potpie.containers.map((c) => [c.name, c.service, c.state, c.image])).toEqual([
      ['potpie_neo4j', 'neo4j', 'running', `${R}/potpie/neo4j:latest`],
      ['potpie_postgres', 'postgres', 'running', `${R}/potpie/postgres:latest`],
      ['potpie_redis_broker', 'redis', 'running', `${R}/potpie/redis:latest`],
    ]);
    const [neo4j, postgres, redis] = potpie.containers;
    expect(neo4j).toMatchObject({
      imageId: scenario.imageIds.neo4jOld,
      repoDigests: [`${R}/potpie/neo4j@${scenario.neo4jOld}`],
      check: { status: 'update-available', reason: null, localDigest: scenario.neo4jOld, remoteDigest: scenario.neo4jNew },
    });
    expect(postgres.check).toEqual({ status: 'up-to-date', reason: null, localDigest: scenario.postgres, remoteDigest: scenario.postgres });
    expect(redis.check).toMatchObject({ status: 'error', localDigest: scenario.redisMissing, remoteDigest: null });
    expect(redis.check.reason).toBe(`${R} has no tag "latest" for ${R}/potpie/redis (404 Not Found)`);

    // The docs' array format has no Image field: the images came from container inspect.
    expect(example).toMatchObject({ name: 'example', status: 'exited(1), running(1)', workingDir: '/srv/example', configFiles: EXAMPLE_FILES });
    const [bar, foo] = example.containers;
    expect(bar).toMatchObject({ name: 'example-bar-1', service: 'bar', state: 'exited', image: 'example/bar:local', imageId: scenario.imageIds.bar, repoDigests: [] });
    expect(bar.check.status).toBe('not-checkable');
    expect(bar.check.reason).toMatch(/no registry digest \(built locally/);
    expect(foo).toMatchObject({ name: 'example-foo-1', service: 'foo', state: 'running', image: `${R}/example/foo@${scenario.foo}` });
    expect(foo.check).toMatchObject({ status: 'not-checkable', localDigest: scenario.foo, remoteDigest: null });
    expect(foo.check.reason).toMatch(/pinned by digest/);

    expect(evil).toMatchObject({ name: 'evil', containers: [], configFiles: ['/srv/../etc/compose.yaml'] });

    // What ran on the host: listings only. No pull, no up, nothing else.
    const log = await stub.log();
    expect(log).toContain('docker [compose] [version] [--short]');
    expect(log).toContain('docker [compose] [ls] [--all] [--format] [json]');
    expect(log).toContain('docker [compose] [-p] [potpie] [ps] [--all] [--format] [json]');
    expect(log).toContain('docker [compose] [-p] [example] [ps] [--all] [--format] [json]');
    expect(log.filter((l) => l.startsWith('docker [container] [inspect]'))).toHaveLength(1);
    expect(log.filter((l) => l.startsWith('docker [image] [inspect]'))).toHaveLength(1);
    expect(log.some((l) => /\[(pull|up|down|rm|stop|restart|start|run|create)\]/.test(l))).toBe(false);
    expect(log.every((l) => /^docker \[(compose|container|image)\] /.test(l))).toBe(true);
    // Exactly 3 HEADs (pinned and locally built images are decided without the network).
    expect(client.stats.heads).toBe(3);
  });

  it('scans only the stack asked for, and says when there is no such stack', async () => {
    const one = await runDockerScan({ target: target(), stack: 'example' }, ctx, new RegistryClient());
    expect(one.stacks.map((s) => s.name)).toEqual(['example']);
    expect((await stub.log()).some((l) => l.includes('[potpie]'))).toBe(false);

    const none = await runDockerScan({ target: target(), stack: 'nope' }, ctx, new RegistryClient());
    expect(none.stacks).toEqual([]);
    expect(none.warnings).toEqual([expect.stringMatching(/There is no Compose stack named "nope"/)]);
  });

  it('goes through the operation table with a schema-valid response', async () => {
    const res = await executeRequest({ type: 'request', id: 'req-1', op: 'docker.scan', params: { target: target(), stack: 'potpie' } }, ctx);
    expect(res).toMatchObject({ ok: true, result: { composeVersion: '2.32.4', stacks: [{ name: 'potpie' }] } });
    const bad = await executeRequest({ type: 'request', id: 'req-2', op: 'docker.scan', params: { target: target(), stack: "x';id" } }, ctx);
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
  });

  it('says clearly when Compose v2 is missing or the SSH user may not use Docker', async () => {
    await stub.noComposePlugin(await fixture('compose-version-no-plugin-cli28.stderr'));
    const noPlugin = await runDockerScan({ target: target() }, ctx, new RegistryClient()).catch((e: unknown) => e);
    expect(noPlugin).toBeInstanceOf(OpError);
    expect(noPlugin).toMatchObject({ code: 'unsupported-os', message: expect.stringMatching(/has no Compose v2/) });

    await stub.noComposePlugin(null);
    await stub.failLs(await fixture('image-inspect-permission-cli28.stderr'));
    const denied = await runDockerScan({ target: target() }, ctx, new RegistryClient()).catch((e: unknown) => e);
    expect(denied).toMatchObject({ code: 'command-failed', message: expect.stringMatching(/root on .* may not use Docker .*add it to the docker group, or log in as root/) });
  });
});

describe('probeDocker', () => {
  /** A session that answers the probe script with canned stdout. */
  const canned = (stdout: string): SshSession =>
    ({
      target: { address: 'web1', port: 22, user: 'deploy' },
      hostKey: { fingerprint: '', pinnedNow: false },
      kex: undefined,
      exec: async () => ({ code: 0, signal: null, stdout, stderr: '' }),
      close: () => {},
    }) as SshSession;

  it('tells "no docker" from "no Compose plugin" from a version', async () => {
    await expect(probeDocker(canned('@@patchman-docker 1\nno-docker\n'), 1000)).rejects.toMatchObject({ code: 'unsupported-os', message: expect.stringMatching(/Docker is not installed on deploy@web1:22/) });
    const noPlugin = `@@patchman-docker 1\nrc 125\n${await fixture('compose-version-no-plugin-cli28.stderr')}`;
    await expect(probeDocker(canned(noPlugin), 1000)).rejects.toMatchObject({ code: 'unsupported-os', message: expect.stringMatching(/no Compose v2/) });
    await expect(probeDocker(canned("@@patchman-docker 1\nrc 1\ndocker: 'compose' is not a docker command.\n"), 1000)).rejects.toMatchObject({ code: 'unsupported-os' });
    await expect(probeDocker(canned('@@patchman-docker 1\nrc 0\nnot a version\n'), 1000)).rejects.toMatchObject({ code: 'command-failed' });
    await expect(probeDocker(canned('motd only\n'), 1000)).rejects.toMatchObject({ code: 'command-failed' });
    expect(await probeDocker(canned('@@patchman-docker 1\nrc 0\n2.29.7\n'), 1000)).toBe('2.29.7');
  });
});
