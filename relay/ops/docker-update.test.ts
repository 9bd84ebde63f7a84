// docker.update end to end: real SSH to a "host" whose docker is the stub
// (relay/docker/test-stub.ts), the update as a real detached run (relay/run.ts), the stack
// checked again against a real registry afterwards.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { DockerUpdateResult, type OperationParams } from '../../protocol/relay.ts';
import { RegistryClient } from '../docker/registry.ts';
import { buildScenario, createDockerStub, EXAMPLE_FILES, fixture, POTPIE_CONFIG, POTPIE_DIR, type Scenario, type StubHost } from '../docker/test-stub.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import { startRegistry, type TestRegistry } from '../test/registry.ts';
import { startSshd, type Sshd } from '../test/sshd.ts';
import type { OpContext } from './context.ts';
import { runDockerUpdate } from './docker-update.ts';

type Params = OperationParams<'docker.update'>;

let tmp: string;
let key: KeyPair;
let sshd: Sshd;
let reg: TestRegistry;
let stub: StubHost;
let knownHosts: KnownHosts;
let scenario: Scenario;
let runs = 0;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-docker-update-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  reg = await startRegistry();
  stub = await createDockerStub(join(tmp, 'bin'));
  sshd = await startSshd({ authorizedKeys: [key.publicKey], env: { PATH: `${stub.dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` } });
  knownHosts = KnownHosts.open(join(tmp, 'relay'));
});
afterAll(async () => {
  await sshd?.stop();
  await reg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});
beforeEach(async () => {
  scenario = await buildScenario(stub, reg);
});

interface Collected {
  ctx: OpContext;
  chunks: { text: string; from: number; to: number }[];
  notes: string[];
  data(): string;
}

function newCtx(extra: Partial<OpContext> = {}): Collected {
  const chunks: Collected['chunks'] = [];
  const notes: string[] = [];
  const ctx: OpContext = {
    privateKey: key.privateKey,
    knownHosts,
    connectTimeoutMs: 10_000,
    pollIntervalMs: 20,
    runs: new Map(),
    output: (text, range) => (range ? chunks.push({ text, ...range }) : notes.push(text)),
    ...extra,
  };
  return { ctx, chunks, notes, data: () => chunks.map((c) => c.text).join('') };
}

function params(stack: string, extra: Partial<Params> = {}): Params {
  return { target: { address: sshd.address, port: sshd.port, user: 'root' }, runId: `docker-run-${++runs}`, stack, offset: 0, ...extra };
}

async function failure(p: Promise<unknown>): Promise<OpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error('expected the update to fail');
}

/** The stub log's compose steps (pull/up), without the read-only listings. */
async function steps(): Promise<string[]> {
  return (await stub.log()).filter((l) => /\] \[(pull|up)\]/.test(l));
}

describe('docker.update', () => {
  it('pulls, then runs up -d, with the project, directory and files from the host, streams the output, and checks the stack again', async () => {
    const c = newCtx();
    const result = await runDockerUpdate(params('potpie', { services: ['neo4j'] }), c.ctx, new RegistryClient());
    expect(v.safeParse(DockerUpdateResult, result).success).toBe(true);

    const base = `docker [compose] [-p] [potpie] [--project-directory] [${POTPIE_DIR}] [-f] [${POTPIE_CONFIG}]`;
    expect(await steps()).toEqual([`${base} [pull] [neo4j]`, `${base} [up] [-d] [neo4j]`]);

    // Streamed: the run's log, in order, contiguous byte ranges.
    expect(c.notes[0]).toMatch(/^\[patchman\] updating services neo4j of stack "potpie" on root@127\.0\.0\.1:\d+ \(in \/home\/deepesh\//);
    const text = c.data();
    expect(text).toContain('[patchman] docker compose pull\n neo4j Pulling \n neo4j Pulled \n[patchman] docker compose up -d\n');
    expect(text).toContain(' Container potpie_neo4j  Started\n[patchman] done\n');
    let at = 0;
    for (const ch of c.chunks) {
      expect(ch.from).toBe(at);
      at = ch.to;
    }
    expect(at).toBe(result.logBytes);

    // Checked again afterwards: neo4j now runs the image the tag points at.
    expect(result.exitCode).toBe(0);
    expect(result.stack.name).toBe('potpie');
    const neo4j = result.stack.containers.find((x) => x.service === 'neo4j');
    expect(neo4j).toMatchObject({ imageId: scenario.imageIds.neo4jNew, check: { status: 'up-to-date', localDigest: scenario.neo4jNew, remoteDigest: scenario.neo4jNew } });
    const log = await stub.log();
    const upAt = log.findIndex((l) => l.includes('[up]'));
    expect(log.slice(upAt + 1).some((l) => l.startsWith('docker [compose] [ls]'))).toBe(true);
  });

  it('updates the whole stack with every config file when no services are named', async () => {
    const result = await runDockerUpdate(params('example'), newCtx().ctx, new RegistryClient());
    const base = `docker [compose] [-p] [example] [--project-directory] [/srv/example] [-f] [${EXAMPLE_FILES[0]}] [-f] [${EXAMPLE_FILES[1]}]`;
    expect(await steps()).toEqual([`${base} [pull]`, `${base} [up] [-d]`]);
    expect(result.stack.containers.map((x) => x.name)).toEqual(['example-bar-1', 'example-foo-1']);
  });

  it('a failed pull is a failed OpError with the cause, and up never runs', async () => {
    await stub.failPull(await fixture('compose-up-pull-denied-pmda-2.txt'));
    const c = newCtx();
    const e = await failure(runDockerUpdate(params('potpie'), c.ctx, new RegistryClient()));
    expect(e.code).toBe('command-failed');
    expect(e.exitCode).toBe(1);
    expect(e.message).toMatch(/^docker compose pull for stack "potpie" on root@127\.0\.0\.1:\d+ failed with exit status 1 \(nothing was restarted\):\n/);
    expect(e.message).toContain("Error response from daemon: pull access denied for silkyclouds/pmda, repository does not exist or may require 'docker login'");
    expect(await steps()).toEqual([expect.stringMatching(/\[pull\]$/)]);
    expect(c.data()).toContain('[patchman] docker compose pull failed with exit status 1; not running up -d');
  });

  it('the same runId re-attaches instead of starting a second run', async () => {
    const c = newCtx();
    const p = params('potpie', { services: ['neo4j'] });
    const [a, b] = await Promise.all([runDockerUpdate(p, c.ctx, new RegistryClient()), runDockerUpdate({ ...p }, c.ctx, new RegistryClient())]);
    expect(a).toBe(b);
    expect(await steps()).toHaveLength(2); // one pull, one up

    // A later request with the same runId (a relay restart): follows the finished run on
    // the host, starts nothing.
    await stub.clearLog();
    const again = await runDockerUpdate(p, newCtx().ctx, new RegistryClient());
    expect(again.exitCode).toBe(0);
    expect(await steps()).toEqual([]);
  });

  it('refuses monitor-only hosts before connecting: nothing runs', async () => {
    const c = newCtx({ monitorOnly: () => "it is the relay's own host (PATCHMAN_MONITOR_ONLY)" });
    const e = await failure(runDockerUpdate(params('potpie'), c.ctx, new RegistryClient()));
    expect(e.code).toBe('monitor-only');
    expect(e.message).toMatch(/refused to update Docker Compose stacks on root@127\.0\.0\.1:\d+: it is the relay's own host/);
    expect(await stub.log()).toEqual([]);
    expect(c.notes).toEqual([]);
  });

  it('refuses a stack whose recorded paths are not safe, and a stack that is not there', async () => {
    const evil = await failure(runDockerUpdate(params('evil'), newCtx().ctx, new RegistryClient()));
    expect(evil.code).toBe('command-failed');
    expect(evil.message).toMatch(/has a path PatchMan will not use \(it has a "\.\." component\)|working directory .* "\.\." component/);
    const missing = await failure(runDockerUpdate(params('nope'), newCtx().ctx, new RegistryClient()));
    expect(missing.code).toBe('invalid-request');
    expect(missing.message).toMatch(/There is no Compose stack named "nope"/);
    expect(await steps()).toEqual([]);
  });
});
