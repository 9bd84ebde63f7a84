// What the relay asks a Docker host over SSH, read-only: is docker there, which stacks,
// which containers, which images and their RepoDigests. Then the registry checks (from the
// relay, registry.ts). Used by docker.scan, and by docker.update before and after its run.
import { posix } from 'node:path';
import * as v from 'valibot';
import { StackName } from '../../protocol/fields.ts';
import type { Stack } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { describeExit, SH_COMMAND, tail } from '../pkg/shell.ts';
import { describeTarget, type ExecResult, type SshSession } from '../ssh.ts';
import {
  COMPOSE_LS,
  composePs,
  containerInspect,
  daemonProblem,
  DOCKER_PROBE_SCRIPT,
  dockerScript,
  imageInspect,
  parseComposeLs,
  parseComposePs,
  parseComposeVersion,
  parseContainerInspect,
  parseImageInspect,
  pathProblem,
  type ContainerInfo,
  type InspectedImage,
  type LsEntry,
  type PsEntry,
  type StackLocation,
} from './compose.ts';
import { parseReference, repositoryOf } from './reference.ts';
import type { ImageCheck, RegistryClient } from './registry.ts';

export const DEFAULT_DOCKER_TIMEOUT_MS = 60_000;
/** `compose ps` at once over one SSH connection (sshd's MaxSessions default is 10). */
const PS_PARALLEL = 4;
/** Ids per `docker … inspect` command line. */
const INSPECT_CHUNK = 100;

/** Run one docker command (quoted words) on the host. */
export function runDocker(session: SshSession, words: string, timeoutMs: number): Promise<ExecResult> {
  return session.exec(SH_COMMAND, { stdin: dockerScript(words), timeoutMs, maxOutputBytes: 32 * 1024 * 1024 });
}

/** The error for a docker command that failed, in words an operator can act on. */
export function dockerFailure(session: SshSession, what: string, r: ExecResult): OpError {
  const where = describeTarget(session.target);
  const text = r.stderr.trim() || r.stdout.trim();
  const line = text.split('\n').find((l) => daemonProblem(l)) ?? text.split('\n')[0] ?? '';
  switch (daemonProblem(text)) {
    case 'permission':
      return new OpError(
        'command-failed',
        `${session.target.user} on ${where} may not use Docker (${line.trim().slice(0, 200)}). PatchMan runs docker as the SSH user: add it to the docker group, or log in as root.`,
        r.code !== null ? { exitCode: r.code } : undefined,
      );
    case 'no-daemon':
      return new OpError('command-failed', `The Docker daemon on ${where} is not running or not reachable: ${line.trim().slice(0, 200)}`, r.code !== null ? { exitCode: r.code } : undefined);
  }
  return new OpError('command-failed', `${what} on ${where} ${describeExit(r)}: ${tail(text, 400) || 'no output'}`, r.code !== null ? { exitCode: r.code } : undefined);
}

/** Is docker there, with the Compose v2 plugin? Returns `docker compose version --short`. */
export async function probeDocker(session: SshSession, timeoutMs: number): Promise<string> {
  const where = describeTarget(session.target);
  const r = await session.exec(SH_COMMAND, { stdin: DOCKER_PROBE_SCRIPT, timeoutMs });
  const lines = r.stdout.split('\n');
  const begin = lines.indexOf('@@patchman-docker 1');
  if (begin < 0) throw new OpError('command-failed', `The Docker probe on ${where} printed something unrecognised (${describeExit(r)}): ${tail(r.stderr || r.stdout, 200)}`);
  if (lines[begin + 1] === 'no-docker') {
    throw new OpError('unsupported-os', `Docker is not installed on ${where} (no docker command in the PATH of ${session.target.user}), so there are no Compose stacks to manage`);
  }
  const rc = Number(/^rc (\d+)$/.exec(lines[begin + 1] ?? '')?.[1] ?? NaN);
  const out = lines.slice(begin + 2).join('\n').trim();
  if (rc !== 0) {
    // Without the plugin the docker CLI says `unknown flag: --short` (it parsed `compose`
    // as nothing) or `'compose' is not a docker command` (older CLIs), exit 125 / 1.
    if (/unknown flag: --short|is not a docker command|unknown command:? "?(docker )?compose/i.test(out)) {
      throw new OpError('unsupported-os', `Docker on ${where} has no Compose v2 (the "docker compose" plugin is not installed), so PatchMan cannot list its stacks`);
    }
    throw new OpError('command-failed', `docker compose version on ${where} exited with status ${Number.isFinite(rc) ? rc : '?'}: ${tail(out, 300) || 'no output'}`);
  }
  const version = parseComposeVersion(out);
  if (!version) throw new OpError('command-failed', `docker compose version --short on ${where} printed something that is not a version: ${JSON.stringify(out.slice(0, 80))}`);
  return version;
}

export async function listStacks(session: SshSession, timeoutMs: number): Promise<LsEntry[]> {
  const r = await runDocker(session, COMPOSE_LS, timeoutMs);
  if (r.code !== 0) throw dockerFailure(session, 'docker compose ls', r);
  return parseComposeLs(r.stdout);
}

export interface CollectedContainer {
  ps: PsEntry;
  /** The image reference the container was created from (its Config.Image), or ps's. */
  image: string;
  imageId: string | null;
  inspected: InspectedImage | null;
  /** Why the image could not be looked at, when it could not. */
  problem: string | null;
}

export interface CollectedStack {
  entry: LsEntry;
  workingDir: string | null;
  containers: CollectedContainer[];
}

/**
 * The containers of each listed stack, with the working directory Compose recorded and
 * (when `images`) each container's image and its RepoDigests. Stacks whose names PatchMan
 * would not put on a command line are left out with a warning.
 */
export async function collectStacks(
  session: SshSession,
  entries: readonly LsEntry[],
  warnings: string[],
  opts: { timeoutMs: number; images: boolean },
): Promise<CollectedStack[]> {
  const usable = entries.filter((e) => {
    if (v.is(StackName, e.name)) return true;
    warnings.push(`The Compose stack ${JSON.stringify(String(e.name).slice(0, 80))} has a name PatchMan does not accept (a-z, 0-9, _ and -), so it was left out.`);
    return false;
  });

  // ps per stack, a few at a time over the one connection.
  const ps = new Map<string, PsEntry[]>();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(PS_PARALLEL, usable.length) }, async () => {
      while (next < usable.length) {
        const e = usable[next++];
        const r = await runDocker(session, composePs(e.name), opts.timeoutMs);
        if (r.code !== 0) {
          const err = dockerFailure(session, `docker compose -p ${e.name} ps`, r);
          if (daemonProblem(r.stderr)) throw err;
          warnings.push(`Could not list the containers of stack "${e.name}": ${err.message}`);
          ps.set(e.name, []);
          continue;
        }
        ps.set(e.name, parseComposePs(r.stdout));
      }
    }),
  );

  // Each container's image id, image reference and working-directory label.
  const ids = [...new Set([...ps.values()].flat().map((c) => c.id).filter((id) => /^[a-f0-9]{12,64}$/.test(id)))];
  const info = await inspectContainers(session, ids, warnings, opts.timeoutMs);
  const infoFor = (id: string): ContainerInfo | undefined => info.find((i) => i.id === id || (id.length >= 12 && i.id.startsWith(id)));

  const stacks: CollectedStack[] = usable.map((entry) => {
    const containers: CollectedContainer[] = (ps.get(entry.name) ?? []).map((p) => {
      const i = infoFor(p.id);
      const image = i?.configImage || p.image || '';
      return {
        ps: p,
        image,
        imageId: i && /^sha256:[a-f0-9]{64}$/.test(i.imageId) ? i.imageId : null,
        inspected: null,
        problem: image ? null : 'Compose did not report which image this container runs',
      };
    });
    const dirs = [...new Set(containers.map((c) => infoFor(c.ps.id)?.workingDir ?? '').filter((d) => d !== ''))];
    if (dirs.length > 1) warnings.push(`The containers of stack "${entry.name}" disagree about its working directory (${dirs.join(', ')}); using ${dirs[0]}.`);
    const first = entry.configFiles[0];
    const workingDir = dirs[0] ?? (first && first.startsWith('/') ? posix.dirname(first) : null);
    return { entry, workingDir, containers };
  });

  if (opts.images) await inspectImages(session, stacks.flatMap((s) => s.containers), warnings, opts.timeoutMs);
  return stacks;
}

async function inspectContainers(session: SshSession, ids: readonly string[], warnings: string[], timeoutMs: number): Promise<ContainerInfo[]> {
  const out: ContainerInfo[] = [];
  for (let i = 0; i < ids.length; i += INSPECT_CHUNK) {
    const chunk = ids.slice(i, i + INSPECT_CHUNK);
    const r = await runDocker(session, containerInspect(chunk), timeoutMs);
    // Exit 1 with some output: a container went away between ps and inspect.
    if (r.code !== 0 && (daemonProblem(r.stderr) || r.stdout.trim() === '')) {
      const err = dockerFailure(session, 'docker container inspect', r);
      if (daemonProblem(r.stderr)) throw err;
      warnings.push(`Could not inspect some containers: ${err.message}`);
      continue;
    }
    out.push(...parseContainerInspect(r.stdout));
  }
  return out;
}

/** Look up every container's image (by id when known, else by reference) in one or a few
 * `docker image inspect` calls. */
async function inspectImages(session: SshSession, containers: CollectedContainer[], warnings: string[], timeoutMs: number): Promise<void> {
  const keyOf = (c: CollectedContainer): string | null => {
    if (c.problem) return null;
    if (c.imageId) return c.imageId;
    try {
      parseReference(c.image);
      return c.image;
    } catch {
      return null; // the registry check says why
    }
  };
  const keys = [...new Set(containers.map(keyOf).filter((k): k is string => k !== null))];
  const found: InspectedImage[] = [];
  for (let i = 0; i < keys.length; i += INSPECT_CHUNK) {
    const r = await runDocker(session, imageInspect(keys.slice(i, i + INSPECT_CHUNK)), timeoutMs);
    if (r.code !== 0) {
      if (daemonProblem(r.stderr)) throw dockerFailure(session, 'docker image inspect', r);
      // Missing images: docker still prints the others, then "Error: No such image: …".
      if (!/No such image/i.test(r.stderr)) warnings.push(`docker image inspect: ${tail(r.stderr, 200)}`);
    }
    found.push(...parseImageInspect(r.stdout));
  }
  for (const c of containers) {
    const key = keyOf(c);
    if (key === null) continue;
    c.inspected = key.startsWith('sha256:') ? (found.find((f) => f.id === key) ?? null) : findByReference(found, key);
    if (!c.inspected) c.problem = `the image ${key.startsWith('sha256:') ? key.slice(0, 19) + '…' : key} is not on the host any more (docker image inspect found nothing)`;
  }
}

/** The inspected image a reference names: by its tags, or for a digest reference by its
 * RepoDigests; both compared normalised (`nginx` = `docker.io/library/nginx:latest`). */
export function findByReference(images: readonly InspectedImage[], reference: string): InspectedImage | null {
  let ref;
  try {
    ref = parseReference(reference);
  } catch {
    return null;
  }
  const repo = repositoryOf(ref);
  const same = (s: string, digest: boolean): boolean => {
    try {
      const r = parseReference(s);
      return repositoryOf(r) === repo && (digest ? r.digest === ref.digest : r.tag === ref.tag);
    } catch {
      return false;
    }
  };
  if (ref.digest) return images.find((i) => (i.repoDigests ?? []).some((d) => same(d, true))) ?? null;
  return images.find((i) => i.repoTags.some((t) => same(t, false))) ?? null;
}

/** The registry checks for every container, then the protocol's Stack objects. */
export async function checkStacks(collected: readonly CollectedStack[], registry: RegistryClient): Promise<Stack[]> {
  const all = collected.flatMap((s) => s.containers);
  const toCheck = all.filter((c) => !c.problem);
  const checks = await registry.checkMany(toCheck.map((c) => ({ reference: c.image, repoDigests: c.inspected?.repoDigests ?? null })));
  const byContainer = new Map<CollectedContainer, ImageCheck>(toCheck.map((c, i) => [c, checks[i]]));
  return collected.map((s) => ({
    name: s.entry.name,
    status: s.entry.status,
    workingDir: s.workingDir,
    configFiles: s.entry.configFiles,
    containers: s.containers.map((c) => ({
      name: c.ps.name,
      service: c.ps.service,
      state: c.ps.state,
      image: c.image,
      imageId: c.inspected?.id || c.imageId,
      repoDigests: c.inspected?.repoDigests ?? [],
      check: byContainer.get(c) ?? { status: 'not-checkable' as const, reason: c.problem ?? 'not checked', localDigest: null, remoteDigest: null },
    })),
  }));
}

/** Scan: list stacks (or the one), collect, check. */
export async function scanStacks(
  session: SshSession,
  opts: { only?: string; timeoutMs: number; registry: RegistryClient; warnings: string[] },
): Promise<Stack[]> {
  let entries = await listStacks(session, opts.timeoutMs);
  if (opts.only !== undefined) {
    entries = entries.filter((e) => e.name === opts.only);
    if (entries.length === 0) opts.warnings.push(`There is no Compose stack named "${opts.only}" on ${describeTarget(session.target)} (docker compose ls --all does not list it).`);
  }
  const collected = await collectStacks(session, entries, opts.warnings, { timeoutMs: opts.timeoutMs, images: true });
  return checkStacks(collected, opts.registry);
}

/**
 * Where a stack lives, from the host's own `docker compose ls` (config files) and its
 * containers' working-directory label, read now: never from the request. Throws when the
 * stack is not there or a path is not one PatchMan will pass to Compose.
 */
export async function locateStack(session: SshSession, name: string, timeoutMs: number, warnings: string[]): Promise<StackLocation> {
  const where = describeTarget(session.target);
  const entry = (await listStacks(session, timeoutMs)).find((e) => e.name === name);
  if (!entry) throw new OpError('invalid-request', `There is no Compose stack named "${name}" on ${where} (docker compose ls --all does not list it)`);
  const [stack] = await collectStacks(session, [entry], warnings, { timeoutMs, images: false });
  if (!stack) throw new OpError('invalid-request', `The Compose stack "${name}" on ${where} has a name PatchMan does not accept`);
  if (!stack.workingDir) throw new OpError('command-failed', `Compose on ${where} records no working directory or config files for stack "${name}", so PatchMan cannot run it`);
  const why = pathProblem(stack.workingDir);
  if (why) throw new OpError('command-failed', `The working directory of stack "${name}" is not one PatchMan will use (${why}): ${JSON.stringify(stack.workingDir.slice(0, 200))}`);
  return { name, workingDir: stack.workingDir, configFiles: entry.configFiles };
}
