// TEST ONLY (used by relay/ops/docker-*.test.ts; not part of the relay bundle): a `docker`
// command for a real sshd session — a POSIX sh script in a directory put first on the
// session's PATH — that answers the commands the relay runs from files, and appends every
// invocation (each argument in brackets) to a log, so tests can assert what was and was not
// run on the "host".
//
// What it serves is built from the recorded outputs in ./fixtures (README there): the
// `compose ps` JSON Lines output of Compose 2.32.4 and the JSON-array output from the
// Compose docs, with the image references pointed at the test registry; `compose ls` in the
// format Compose's list.go prints (constructed: no published sample has ConfigFiles);
// `container inspect` lines in CONTAINER_TEMPLATE's format (as docker CLI 28 printed them,
// fixtures/container-inspect-cli28.stdout); `image inspect` objects in the shape of
// fixtures/image-inspect-*.
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTAINER_TEMPLATE } from './compose.ts';
import { sha256, type TestRegistry } from '../test/registry.ts';

export const FIXTURES = join(import.meta.dirname, 'fixtures');

export function fixture(name: string): Promise<string> {
  return readFile(join(FIXTURES, name), 'utf8');
}

const STUB = `#!/bin/sh
# PatchMan test stub for docker: answers from files in its own directory.
d=$(dirname "$0")
# one line, one write(2): the relay runs listings in parallel, and lines written piece by
# piece by two of them interleaved in the log (a CI run failed on a mixed line)
line=docker
for a in "$@"; do line="$line [$a]"; done
printf '%s\\n' "$line" >> "$d/log"
case "$1" in
  compose)
    shift
    if [ "$1" = version ] && [ "$2" = --short ]; then
      if [ -e "$d/version-error.txt" ]; then cat "$d/version-error.txt" >&2; exit 125; fi
      cat "$d/version"; exit 0
    fi
    if [ "$1" = ls ] && [ "$2" = --all ] && [ "$3" = --format ] && [ "$4" = json ]; then
      if [ -e "$d/ls-error.txt" ]; then printf '[]\n'; cat "$d/ls-error.txt" >&2; exit 1; fi
      cat "$d/ls.json"; exit 0
    fi
    if [ "$1" = -p ]; then
      name=$2; shift 2
      while [ $# -gt 0 ]; do
        case "$1" in
          --project-directory|-f) shift 2 ;;
          *) break ;;
        esac
      done
      case "$1" in
        ps) cat "$d/ps/$name" 2>/dev/null; exit 0 ;;
        pull)
          if [ -e "$d/fail-pull" ]; then cat "$d/pull-error.txt" >&2; exit 1; fi
          cat "$d/pull-ok.txt"; exit 0 ;;
        up)
          if [ -d "$d/after-up" ]; then cp -R "$d/after-up/." "$d/"; fi
          cat "$d/up-ok.txt"; exit 0 ;;
      esac
    fi ;;
  container)
    if [ "$2" = inspect ]; then
      if [ "$3" != --format ] || [ "$4" != "$(cat "$d/container-template")" ]; then echo "docker stub: unexpected template: $4" >&2; exit 98; fi
      shift 4; st=0
      for id in "$@"; do
        if [ -e "$d/containers/$id" ]; then cat "$d/containers/$id"; else echo "Error response from daemon: No such container: $id" >&2; st=1; fi
      done
      exit $st
    fi ;;
  image)
    if [ "$2" = inspect ]; then
      shift 2; st=0; sep=''
      printf '['
      for ref in "$@"; do
        f="$d/images/$(printf '%s' "$ref" | tr '/:@' '___')"
        if [ -e "$f" ]; then printf '%s' "$sep"; cat "$f"; sep=','; else echo "Error response from daemon: No such image: $ref" >&2; st=1; fi
      done
      printf ']\\n'
      exit $st
    fi ;;
esac
echo "docker stub: unexpected command: $*" >&2
exit 99
`;

export interface StubImage {
  id: string;
  repoTags: string[];
  repoDigests: string[] | null;
}

export interface StubContainer {
  /** As `compose ps` prints it (12 hex digits since 2.21, 64 before). */
  psId: string;
  imageId: string;
  configImage: string;
  workingDir: string;
}

export interface StubHost {
  dir: string;
  /** `[arg]…` lines, one per docker invocation. */
  log(): Promise<string[]>;
  clearLog(): Promise<void>;
  setVersion(v: string): Promise<void>;
  setLs(json: string): Promise<void>;
  setPs(stack: string, output: string): Promise<void>;
  setContainer(c: StubContainer, target?: 'now' | 'after-up'): Promise<void>;
  setImage(key: string, img: StubImage, target?: 'now' | 'after-up'): Promise<void>;
  failPull(message: string | null): Promise<void>;
  /** `compose version --short` fails as a docker CLI without the Compose plugin does. */
  noComposePlugin(stderr: string | null): Promise<void>;
  /** `compose ls` fails with this on stderr (exit 1), e.g. the daemon's permission error. */
  failLs(stderr: string | null): Promise<void>;
  setPullOutput(text: string): Promise<void>;
  setUpOutput(text: string): Promise<void>;
}

export function fullId(psId: string): string {
  return (psId + 'f'.repeat(64)).slice(0, 64);
}

const fileKey = (k: string): string => k.replace(/[/:@]/g, '_');

export async function createDockerStub(dir: string): Promise<StubHost> {
  await mkdir(join(dir, 'ps'), { recursive: true });
  await mkdir(join(dir, 'containers'), { recursive: true });
  await mkdir(join(dir, 'images'), { recursive: true });
  await writeFile(join(dir, 'docker'), STUB);
  await chmod(join(dir, 'docker'), 0o755);
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'container-template'), CONTAINER_TEMPLATE);
  await writeFile(join(dir, 'log'), '');
  await writeFile(join(dir, 'version'), '2.32.4\n');
  await writeFile(join(dir, 'ls.json'), '[]\n');
  await writeFile(join(dir, 'pull-ok.txt'), '');
  await writeFile(join(dir, 'up-ok.txt'), '');
  const under = async (target: 'now' | 'after-up', sub: string): Promise<string> => {
    const base = target === 'now' ? dir : join(dir, 'after-up');
    await mkdir(join(base, sub), { recursive: true });
    return join(base, sub);
  };
  return {
    dir,
    async log() {
      return (await readFile(join(dir, 'log'), 'utf8')).split('\n').filter((l) => l !== '');
    },
    async clearLog() {
      await writeFile(join(dir, 'log'), '');
    },
    setVersion: (v) => writeFile(join(dir, 'version'), v),
    setLs: (json) => writeFile(join(dir, 'ls.json'), json),
    setPs: (stack, output) => writeFile(join(dir, 'ps', stack), output),
    async setContainer(c, target = 'now') {
      const line = [fullId(c.psId), c.imageId, c.configImage, c.workingDir].map((f) => JSON.stringify(f)).join(' ') + '\n';
      await writeFile(join(await under(target, 'containers'), c.psId), line);
    },
    async setImage(key, img, target = 'now') {
      const body = JSON.stringify({ Id: img.id, RepoTags: img.repoTags, RepoDigests: img.repoDigests, Architecture: 'amd64', Os: 'linux' }, null, 4);
      await writeFile(join(await under(target, 'images'), fileKey(key)), body);
    },
    async failPull(message) {
      if (message === null) {
        await rm(join(dir, 'fail-pull'), { force: true });
        return;
      }
      await writeFile(join(dir, 'pull-error.txt'), message);
      await writeFile(join(dir, 'fail-pull'), '');
    },
    async noComposePlugin(stderr) {
      if (stderr === null) await rm(join(dir, 'version-error.txt'), { force: true });
      else await writeFile(join(dir, 'version-error.txt'), stderr);
    },
    async failLs(stderr) {
      if (stderr === null) await rm(join(dir, 'ls-error.txt'), { force: true });
      else await writeFile(join(dir, 'ls-error.txt'), stderr);
    },
    setPullOutput: (text) => writeFile(join(dir, 'pull-ok.txt'), text),
    setUpOutput: (text) => writeFile(join(dir, 'up-ok.txt'), text),
  };
}

// ---- the scenario the docker.scan and docker.update tests share ----------------------------

/** Where the recorded potpie stack lives on its host (from its Compose labels). */
export const POTPIE_DIR = '/home/deepesh/Development/public/opensource/pot/potpie';
export const POTPIE_CONFIG = `${POTPIE_DIR}/docker-compose.yaml`;
export const EXAMPLE_FILES = ['/srv/example/compose.yaml', '/srv/example/compose.override.yaml'];

export interface Scenario {
  neo4jOld: string;
  neo4jNew: string;
  postgres: string;
  foo: string;
  /** RepoDigest of the redis image, whose tag the registry does not have. */
  redisMissing: string;
  imageIds: { neo4jOld: string; neo4jNew: string; postgres: string; redis: string; foo: string; bar: string };
}

const imageId = (name: string): string => sha256(`image config ${name}`);

/**
 * Two stacks, one per `compose ps` format, with images in the test registry:
 *
 * - `potpie` (JSON Lines, the recorded Compose 2.32.4 output): neo4j's tag was pushed again
 *   since the host pulled it (update available), postgres unchanged (up to date), redis's
 *   tag is not in the registry at all (error).
 * - `example` (the JSON array from the Compose docs, which has no Image field, so images
 *   come from `container inspect`): foo pinned by digest, bar built locally (RepoDigests []).
 * - `e2eTestCompose…` (a name from compose-cli PR 823, uppercase): skipped with a warning.
 * - `evil`: a config path with a `..` component (update refused).
 *
 * After `up`, the neo4j container runs the new image.
 */
export async function buildScenario(stub: StubHost, reg: TestRegistry): Promise<Scenario> {
  const R = reg.host;
  const neo4jOld = await reg.push('potpie/neo4j', 'latest', { content: 'neo4j build 1' });
  const postgres = await reg.push('potpie/postgres', 'latest', { content: 'postgres', flavour: 'docker' });
  const neo4jNew = await reg.push('potpie/neo4j', 'latest', { content: 'neo4j build 2' });
  const foo = await reg.push('example/foo', '3', { content: 'foo' });
  const redisMissing = 'sha256:4075a3f8c3f8e3878d1041c5019e4af445e3b79cf3b55e03063f9813cd49e3f2';
  const ids = {
    neo4jOld: imageId('neo4j 1'),
    neo4jNew: imageId('neo4j 2'),
    postgres: imageId('postgres'),
    redis: imageId('redis'),
    foo: imageId('foo'),
    bar: imageId('bar'),
  };

  await stub.clearLog();
  await stub.failPull(null);
  await stub.noComposePlugin(null);
  await stub.failLs(null);
  await rm(join(stub.dir, 'after-up'), { recursive: true, force: true });
  await stub.setVersion('2.32.4\n');
  await stub.setLs(
    JSON.stringify([
      { Name: 'potpie', Status: 'running(3)', ConfigFiles: POTPIE_CONFIG },
      { Name: 'example', Status: 'exited(1), running(1)', ConfigFiles: EXAMPLE_FILES.join(',') },
      ...JSON.parse(await fixture('compose-ls-compose-cli-pr823.json')).slice(0, 1),
      { Name: 'evil', Status: 'running(1)', ConfigFiles: '/srv/../etc/compose.yaml' },
    ]) + '\n',
  );

  // potpie: the recorded JSON Lines, images pointed at the test registry.
  let potpie = await fixture('compose-ps-jsonl-potpie-2.32.4.jsonl');
  for (const name of ['neo4j', 'postgres', 'redis']) potpie = potpie.replace(`"Image":"${name}:latest"`, `"Image":"${R}/potpie/${name}:latest"`);
  await stub.setPs('potpie', potpie);
  const p = (psId: string, id: string, name: string) => stub.setContainer({ psId, imageId: id, configImage: `${R}/potpie/${name}:latest`, workingDir: POTPIE_DIR });
  await p('c8e7a2bad4d1', ids.neo4jOld, 'neo4j');
  await p('f812dc33590a', ids.postgres, 'postgres');
  await p('3ed7ceaa1fa9', ids.redis, 'redis');
  const img = (id: string, tag: string, digests: string[] | null, target: 'now' | 'after-up' = 'now') =>
    stub.setImage(id, { id, repoTags: [tag], repoDigests: digests }, target);
  await img(ids.neo4jOld, `${R}/potpie/neo4j:latest`, [`${R}/potpie/neo4j@${neo4jOld}`]);
  await img(ids.postgres, `${R}/potpie/postgres:latest`, [`${R}/potpie/postgres@${postgres}`]);
  await img(ids.redis, `${R}/potpie/redis:latest`, [`${R}/potpie/redis@${redisMissing}`]);

  // example: the Compose docs' JSON array (no Image field).
  await stub.setPs('example', await fixture('compose-ps-array-docs.json'));
  await stub.setContainer({ psId: '1553b0236cf4d2715845f053a4ee97042c4f9a2ef655731ee34f1f7940eaa41a', imageId: ids.bar, configImage: 'example/bar:local', workingDir: '/srv/example' });
  await stub.setContainer({ psId: 'f02a4efaabb67416e1ff127d51c4b5578634a0ad5743bd65225ff7d1909a3fa0', imageId: ids.foo, configImage: `${R}/example/foo@${foo}`, workingDir: '/srv/example' });
  await img(ids.bar, 'example/bar:local', []);
  await stub.setImage(ids.foo, { id: ids.foo, repoTags: [], repoDigests: [`${R}/example/foo@${foo}`] });

  await stub.setPs('evil', '[]\n');

  // After `up -d`: neo4j runs the image pulled from the new tag.
  await stub.setContainer({ psId: 'c8e7a2bad4d1', imageId: ids.neo4jNew, configImage: `${R}/potpie/neo4j:latest`, workingDir: POTPIE_DIR }, 'after-up');
  await img(ids.neo4jNew, `${R}/potpie/neo4j:latest`, [`${R}/potpie/neo4j@${neo4jNew}`], 'after-up');

  // Streamed by the run (not parsed): Compose's plain progress lines, constructed.
  await stub.setPullOutput(' neo4j Pulling \n neo4j Pulled \n');
  await stub.setUpOutput(' Container potpie_neo4j  Recreate\n Container potpie_neo4j  Recreated\n Container potpie_neo4j  Started\n');
  return { neo4jOld, neo4jNew, postgres, foo, redisMissing, imageIds: ids };
}
