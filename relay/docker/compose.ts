// Docker Compose on a managed host: the command lines the relay runs (constants plus
// allowlisted, shell-quoted values), and parsers for what they print. Recorded outputs the
// parsers are tested against: relay/docker/fixtures/README.md.
//
// Every docker command runs through `env LC_ALL=C LANG=C /bin/sh -s` with a script on
// stdin (SH_COMMAND), so the login shell only ever sees that constant, PATH has the sbin
// directories, and the C locale holds. Docker runs as the SSH user: root, or a user in the
// `docker` group. Nothing here uses sudo.
import * as v from 'valibot';
import { ServiceName, StackName } from '../../protocol/fields.ts';
import { OpError } from '../errors.ts';
import { SCRIPT_PROLOGUE, shQuote } from '../pkg/shell.ts';

// ---- command lines -------------------------------------------------------------------------

/** A script that runs one docker command (words already quoted) with stdin closed, so its
 * stdout, stderr and exit status are docker's own. */
export function dockerScript(words: string): string {
  return ['{', ...SCRIPT_PROLOGUE, `exec docker ${words} </dev/null`, '} </dev/null', ''].join('\n');
}

/** Probe: is docker there, and which Compose? Prints `@@patchman-docker 1`, then
 * `no-docker`, or `rc N` and the output of `docker compose version --short`. */
export const DOCKER_PROBE_SCRIPT = [
  '{',
  ...SCRIPT_PROLOGUE,
  "printf '@@patchman-docker 1\\n'",
  'if ! command -v docker >/dev/null 2>&1; then echo no-docker; exit 0; fi',
  'v=$(docker compose version --short 2>&1 </dev/null)',
  'echo "rc $?"',
  'printf \'%s\\n\' "$v"',
  '} </dev/null',
  '',
].join('\n');

export const COMPOSE_LS = 'compose ls --all --format json';

export function composePs(stack: string): string {
  return `compose -p ${shQuote(checkStackName(stack))} ps --all --format json`;
}

/** The template the relay asks `docker container inspect` for: one line per container with
 * its id, the image id it runs, the image reference it was created from, and Compose's
 * working-directory label. Every field is JSON-quoted by docker itself. (`with`: `index` of a
 * container without labels is a template error that would end the whole listing.) */
export const CONTAINER_TEMPLATE =
  '{{json .Id}} {{json .Image}} {{json .Config.Image}} {{with .Config.Labels}}{{json (index . "com.docker.compose.project.working_dir")}}{{else}}""{{end}}';

export function containerInspect(ids: readonly string[]): string {
  for (const id of ids) if (!CONTAINER_ID.test(id)) throw new OpError('command-failed', `Compose reported a container id PatchMan does not accept: ${JSON.stringify(id.slice(0, 80))}`);
  return `container inspect --format ${shQuote(CONTAINER_TEMPLATE)} ${ids.join(' ')}`;
}

/** `docker image inspect` of image ids (`sha256:…`) and references (validated by the
 * caller with parseReference, quoted here). */
export function imageInspect(keys: readonly string[]): string {
  for (const k of keys) if (!IMAGE_KEY.test(k)) throw new OpError('command-failed', `refusing to inspect an image named ${JSON.stringify(k.slice(0, 80))}`);
  return `image inspect ${keys.map(shQuote).join(' ')}`;
}

const CONTAINER_ID = /^[a-f0-9]{12,64}$/;
/** Image ids and references: what the reference grammar allows, and never a leading `-`. */
const IMAGE_KEY = /^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$/;

export function checkStackName(name: string): string {
  if (!v.is(StackName, name)) throw new OpError('invalid-request', `${JSON.stringify(String(name).slice(0, 80))} is not a Compose project name PatchMan accepts`);
  return name;
}

/** Characters allowed in a host path PatchMan passes to Compose: no quotes, `$`, `\`,
 * backticks, newlines or other control characters (quoting would handle them, but a path
 * that needs them is not one to trust). */
const PATH_CHARS = /^[A-Za-z0-9/._+@:,=~ -]+$/;

/** Why a path from the host's Compose labels cannot be used, or null when it can. */
export function pathProblem(p: string): string | null {
  if (p === '') return 'it is empty';
  if (p.length > 4096) return 'it is longer than 4096 characters';
  if (/[\n\r]/.test(p)) return 'it contains a newline';
  if (!p.startsWith('/')) return 'it is not absolute';
  if (p.split('/').some((c) => c === '..')) return 'it has a ".." component';
  if (!PATH_CHARS.test(p)) return 'it has characters outside the allowed set (letters, digits, / . _ + @ : , = ~ - and space)';
  return null;
}

export interface StackLocation {
  name: string;
  workingDir: string;
  configFiles: string[];
}

/** `-p NAME --project-directory DIR -f F1 -f F2`: all validated, all quoted. Throws
 * 'command-failed' naming the path that was refused. */
export function projectArgs(loc: StackLocation): string {
  checkStackName(loc.name);
  if (loc.configFiles.length === 0) throw new OpError('command-failed', `Compose records no config files for stack "${loc.name}" (was it started from stdin?), so PatchMan cannot run it`);
  for (const p of [loc.workingDir, ...loc.configFiles]) {
    const why = pathProblem(p);
    if (why) throw new OpError('command-failed', `The stack "${loc.name}" has a path PatchMan will not use (${why}): ${JSON.stringify(p.slice(0, 200))}`);
  }
  return [`-p ${shQuote(loc.name)}`, `--project-directory ${shQuote(loc.workingDir)}`, ...loc.configFiles.map((f) => `-f ${shQuote(f)}`)].join(' ');
}

export function serviceArgs(services: readonly string[] | undefined): string {
  if (!services) return '';
  for (const s of services) if (!v.is(ServiceName, s)) throw new OpError('invalid-request', `${JSON.stringify(String(s).slice(0, 80))} is not a service name PatchMan accepts`);
  return services.map((s) => ` ${shQuote(s)}`).join('');
}

export const RUN_MARK = '[patchman]';

/**
 * The body of the detached update run: `pull`, then `up -d` only when the pull succeeded.
 * Each step says when it starts and how it failed, so the relay can tell which one did.
 */
export function updateRunScript(loc: StackLocation, services: readonly string[] | undefined): string {
  const base = `docker compose ${projectArgs(loc)}`;
  const svc = serviceArgs(services);
  return [
    'LC_ALL=C; LANG=C; COMPOSE_ANSI=never; COMPOSE_PROGRESS=plain',
    'export LC_ALL LANG COMPOSE_ANSI COMPOSE_PROGRESS',
    'cd / || exit 1',
    `echo '${RUN_MARK} docker compose pull'`,
    `${base} pull${svc}`,
    'rc=$?',
    `if [ "$rc" -ne 0 ]; then echo "${RUN_MARK} docker compose pull failed with exit status $rc; not running up -d"; exit "$rc"; fi`,
    `echo '${RUN_MARK} docker compose up -d'`,
    `${base} up -d${svc}`,
    'rc=$?',
    `if [ "$rc" -ne 0 ]; then echo "${RUN_MARK} docker compose up -d failed with exit status $rc"; exit "$rc"; fi`,
    `echo '${RUN_MARK} done'`,
  ].join('\n');
}

/** Which step of an update run failed, and the last lines the tools printed before it. */
export function runFailure(logTail: string): { step: 'pull' | 'up -d' | null; lines: string[] } {
  const lines = logTail.split('\n').map((l) => l.replace(/\r$/, ''));
  let step: 'pull' | 'up -d' | null = null;
  let end = lines.length;
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^\[patchman\] docker compose (pull|up -d) failed with exit status \d+/.exec(lines[i]);
    if (m) {
      step = m[1] as 'pull' | 'up -d';
      end = i;
      break;
    }
  }
  const before = lines.slice(0, end).filter((l) => l.trim() !== '' && !l.startsWith(RUN_MARK));
  return { step, lines: before.slice(-6).map((l) => l.trim().replace(/\s{2,}/g, ' ').slice(0, 300)) };
}

// ---- parsers ---------------------------------------------------------------------------------

export interface LsEntry {
  name: string;
  /** `running(3)`, `exited(1)`, `running(1), exited(2)`. */
  status: string;
  /** From ConfigFiles (comma-separated), as Compose recorded them. */
  configFiles: string[];
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new OpError('command-failed', `The output of ${what} is not JSON: ${JSON.stringify(text.trim().slice(0, 120))}`);
  }
}

function str(x: unknown): string {
  return typeof x === 'string' ? x : '';
}

/** `docker compose ls --all --format json`: a JSON array of {Name, Status, ConfigFiles}. */
export function parseComposeLs(out: string): LsEntry[] {
  const text = out.trim();
  if (text === '') return [];
  const data = parseJson(text, 'docker compose ls');
  if (!Array.isArray(data)) throw new OpError('command-failed', 'The output of docker compose ls is not a JSON array');
  return data
    .filter((e): e is Record<string, unknown> => !!e && typeof e === 'object')
    .map((e) => ({
      name: str(e.Name),
      status: str(e.Status),
      configFiles: str(e.ConfigFiles)
        .split(',')
        .map((f) => f.trim())
        .filter((f) => f !== ''),
    }))
    .filter((e) => e.name !== '');
}

export interface PsEntry {
  id: string;
  name: string;
  service: string;
  state: string;
  /** The image as `ps` shows it; absent before Compose 2.15. */
  image: string | null;
}

/**
 * `docker compose ps --all --format json`: before Compose 2.21 one JSON array, since then
 * JSON Lines (one object per line, like `docker ps`). Both are taken.
 */
export function parseComposePs(out: string): PsEntry[] {
  const text = out.trim();
  if (text === '') return [];
  let rows: unknown[];
  if (text.startsWith('[')) {
    const data = parseJson(text, 'docker compose ps');
    if (!Array.isArray(data)) throw new OpError('command-failed', 'The output of docker compose ps is not a JSON array');
    rows = data;
  } else {
    rows = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .map((l) => parseJson(l, 'docker compose ps'));
  }
  return rows
    .filter((e): e is Record<string, unknown> => !!e && typeof e === 'object')
    .map((e) => {
      const labels = parseLabels(str(e.Labels));
      return {
        id: str(e.ID),
        name: str(e.Name) || str(e.Names),
        service: str(e.Service) || labels.get('com.docker.compose.service') || '',
        state: str(e.State),
        image: str(e.Image) || null,
      };
    })
    .filter((e) => e.id !== '' || e.name !== '');
}

/**
 * A `Labels` string as `docker ps`-style JSON prints it: `k=v,k=v`. Values may contain
 * commas (config_files does), so a piece that does not start a new `key=` is joined to the
 * value before it.
 */
export function parseLabels(s: string): Map<string, string> {
  const out = new Map<string, string>();
  let key: string | null = null;
  for (const piece of s.split(',')) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._/-]*)=(.*)$/s.exec(piece);
    if (m) {
      key = m[1];
      out.set(key, m[2]);
    } else if (key !== null) {
      out.set(key, `${out.get(key)},${piece}`);
    }
  }
  return out;
}

export interface ContainerInfo {
  id: string;
  imageId: string;
  configImage: string;
  workingDir: string;
}

/** Lines printed with CONTAINER_TEMPLATE. */
export function parseContainerInspect(out: string): ContainerInfo[] {
  const result: ContainerInfo[] = [];
  for (const line of out.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const tokens = t.match(/"(?:[^"\\]|\\.)*"/g) ?? [];
    const rebuilt = tokens.join(' ');
    const fields = rebuilt === t ? tokens.map((tok) => parseJson(tok, 'docker container inspect')) : null;
    if (!fields || fields.length !== 4 || !fields.every((f) => typeof f === 'string')) {
      throw new OpError('command-failed', `docker container inspect printed an unexpected line: ${JSON.stringify(t.slice(0, 120))}`);
    }
    const [id, imageId, configImage, workingDir] = fields as string[];
    result.push({ id, imageId, configImage, workingDir });
  }
  return result;
}

export interface InspectedImage {
  id: string;
  repoTags: string[];
  /** null when Docker says null (the containerd store before Docker 24, images never pulled). */
  repoDigests: string[] | null;
}

/** `docker image inspect`: a JSON array (printed even when some images were not found). */
export function parseImageInspect(out: string): InspectedImage[] {
  const text = out.trim();
  if (text === '') return [];
  const data = parseJson(text, 'docker image inspect');
  if (!Array.isArray(data)) throw new OpError('command-failed', 'The output of docker image inspect is not a JSON array');
  return data
    .filter((e): e is Record<string, unknown> => !!e && typeof e === 'object')
    .map((e) => ({
      id: str(e.Id),
      repoTags: Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string') : [],
      repoDigests: Array.isArray(e.RepoDigests) ? e.RepoDigests.filter((t): t is string => typeof t === 'string') : null,
    }));
}

/** What `docker compose version --short` printed, if it looks like a version. */
export function parseComposeVersion(out: string): string | null {
  const first = out.trim().split('\n')[0]?.trim() ?? '';
  return /^v?\d+\.\d+(\.\d+)?([-+.][0-9A-Za-z.+-]*)?$/.test(first) ? first.replace(/^v/, '') : null;
}

/** Docker's own words for "this user may not use the daemon" and "there is no daemon". */
export function daemonProblem(stderr: string): 'permission' | 'no-daemon' | null {
  if (/permission denied while trying to connect to the docker daemon socket/i.test(stderr)) return 'permission';
  if (/Cannot connect to the Docker daemon at|Is the docker daemon running\?/i.test(stderr)) return 'no-daemon';
  return null;
}
