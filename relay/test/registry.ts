// Test helper: a real Docker registry — Debian's `docker-registry` (distribution 2.8,
// /usr/bin/docker-registry) — on 127.0.0.1:<free port>, storing into a temp dir, and a
// small client that pushes images to it with the Registry HTTP API v2 (blob uploads with
// POST + PUT, a config blob, a layer blob, a manifest PUT), so tests get real manifests and
// real digests without Docker. Anonymous, plain http (a loopback registry, as Docker treats
// it).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './sshd.ts';

const REGISTRY_BIN = '/usr/bin/docker-registry';

export type ManifestFlavour = 'oci' | 'docker';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  host: string;
  port: number;
  url: string;
  dir: string;
  /** Push a one-layer image; returns the manifest digest (what Docker records in RepoDigests). */
  push(repo: string, tag: string, opts?: { content?: string; flavour?: ManifestFlavour }): Promise<string>;
  /** Push an image index (manifest list) for two platforms under `tag`; returns its digest. */
  pushIndex(repo: string, tag: string, content?: string): Promise<string>;
  /** Delete a manifest (the tag then answers 404). */
  deleteManifest(repo: string, digest: string): Promise<void>;
  log(): string;
  stop(): Promise<void>;
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

async function waitUntilUp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let exited = false;
  child.once('exit', () => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`docker-registry exited during startup: ${log().trim().slice(-2000)}`);
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer within 10 s: ${log().trim().slice(-2000)}`);
}

export async function startRegistry(): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'patchman-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: ${host}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
      '',
    ].join('\n'),
  );
  let output = '';
  const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  const keep = (d: string): void => {
    output = (output + d).slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  try {
    await waitUntilUp(url, child, () => output);
  } catch (e) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }

  const uploadBlob = async (repo: string, data: Buffer): Promise<string> => {
    const digest = sha256(data);
    const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
    await start.body?.cancel();
    const location = start.headers.get('location');
    if (start.status !== 202 || !location) throw new Error(`blob upload start for ${repo}: ${start.status}`);
    const target = new URL(location, url);
    target.searchParams.set('digest', digest);
    const put = await fetch(target, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) },
      body: data,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await put.text();
    if (put.status !== 201) throw new Error(`blob upload for ${repo}: ${put.status} ${text}`);
    return digest;
  };

  const putManifest = async (repo: string, ref: string, mediaType: string, body: Buffer): Promise<string> => {
    const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
      method: 'PUT',
      headers: { 'Content-Type': mediaType },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`manifest PUT ${repo}:${ref}: ${res.status} ${text}`);
    const digest = res.headers.get('docker-content-digest');
    if (digest !== sha256(body)) throw new Error(`manifest PUT ${repo}:${ref}: digest ${digest}, expected ${sha256(body)}`);
    return digest;
  };

  /** Push blobs and a manifest; returns the manifest's bytes and media type (not tagged
   * when `ref` is a digest). */
  const pushManifest = async (repo: string, ref: string | null, content: string, flavour: ManifestFlavour, arch = 'amd64'): Promise<{ digest: string; size: number; mediaType: string }> => {
    const layer = Buffer.from(`patchman test layer ${repo} ${content} ${arch}\n`);
    const config = Buffer.from(
      JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, history: [{ created_by: `patchman test ${content}` }] }),
    );
    const [layerDigest, configDigest] = await Promise.all([uploadBlob(repo, layer), uploadBlob(repo, config)]);
    const oci = flavour === 'oci';
    const mediaType = oci ? MEDIA.ociManifest : MEDIA.dockerManifest;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: oci ? MEDIA.ociConfig : MEDIA.dockerConfig, digest: configDigest, size: config.length },
        layers: [{ mediaType: oci ? MEDIA.ociLayer : MEDIA.dockerLayer, digest: layerDigest, size: layer.length }],
      }),
    );
    const digest = await putManifest(repo, ref ?? sha256(manifest), mediaType, manifest);
    return { digest, size: manifest.length, mediaType };
  };

  return {
    host,
    port,
    url,
    dir,
    async push(repo, tag, opts = {}) {
      return (await pushManifest(repo, tag, opts.content ?? 'v1', opts.flavour ?? 'oci')).digest;
    },
    async pushIndex(repo, tag, content = 'v1') {
      const platforms = ['amd64', 'arm64'];
      const children = await Promise.all(platforms.map((arch) => pushManifest(repo, null, content, 'oci', arch)));
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA.ociIndex,
          manifests: children.map((c, i) => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: { architecture: platforms[i], os: 'linux' } })),
        }),
      );
      return putManifest(repo, tag, MEDIA.ociIndex, index);
    },
    async deleteManifest(repo, digest) {
      const res = await fetch(`${url}/v2/${repo}/manifests/${digest}`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (res.status !== 202) throw new Error(`manifest DELETE ${repo}@${digest}: ${res.status} ${text}`);
    },
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => child.kill('SIGKILL'), 3000);
          child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          child.kill('SIGTERM');
        });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
