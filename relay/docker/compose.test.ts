// The Compose/docker parsers against recorded outputs (fixtures/README.md says where each
// came from), and the command lines the relay builds.
import { describe, expect, it } from 'vitest';
import { OpError } from '../errors.ts';
import { thrownOpError } from '../test/op-error.ts';
import {
  CONTAINER_TEMPLATE,
  composePs,
  containerInspect,
  daemonProblem,
  imageInspect,
  parseComposeLs,
  parseComposePs,
  parseComposeVersion,
  parseContainerInspect,
  parseImageInspect,
  parseLabels,
  pathProblem,
  projectArgs,
  runFailure,
  serviceArgs,
  updateRunScript,
} from './compose.ts';
import { findByReference } from './host.ts';
import { fixture } from './test-stub.ts';

/** The image-inspect fixtures are published fragments that end in a `...` line: close the
 * object and the array there. */
function closeFragment(text: string): string {
  return text.replace(/,\s*\n\.\.\.\s*$/, '\n}]');
}

describe('docker compose ls', () => {
  it('parses the JSON array (compose-cli PR 823: no ConfigFiles yet)', async () => {
    expect(parseComposeLs(await fixture('compose-ls-compose-cli-pr823.json'))).toEqual([
      { name: 'e2eTestCompose1602770221964365386', status: 'Running', configFiles: [] },
      { name: 'e2eTestCompose1601985767794954638', status: 'Running', configFiles: [] },
      { name: 'e2eTestCompose1601985581055863340', status: 'Running', configFiles: [] },
    ]);
  });

  it('splits ConfigFiles on commas (Compose list.go prints them joined)', () => {
    const out = '[{"Name":"web","Status":"running(2), exited(1)","ConfigFiles":"/srv/web/compose.yaml,/srv/web/compose.override.yaml"}]\n';
    expect(parseComposeLs(out)).toEqual([{ name: 'web', status: 'running(2), exited(1)', configFiles: ['/srv/web/compose.yaml', '/srv/web/compose.override.yaml'] }]);
    expect(parseComposeLs('')).toEqual([]);
    expect(parseComposeLs('[]\n')).toEqual([]);
  });

  it('refuses output that is not a JSON array', () => {
    expect(thrownOpError(() => parseComposeLs('NAME STATUS CONFIG FILES\n')).code).toBe('command-failed');
    expect(thrownOpError(() => parseComposeLs('{"Name":"x"}')).message).toMatch(/not a JSON array/);
  });
});

describe('docker compose ps: both formats', () => {
  it('JSON Lines (Compose ≥ 2.21; recorded with 2.32.4)', async () => {
    const rows = parseComposePs(await fixture('compose-ps-jsonl-potpie-2.32.4.jsonl'));
    expect(rows).toEqual([
      { id: 'c8e7a2bad4d1', name: 'potpie_neo4j', service: 'neo4j', state: 'running', image: 'neo4j:latest' },
      { id: 'f812dc33590a', name: 'potpie_postgres', service: 'postgres', state: 'running', image: 'postgres:latest' },
      { id: '3ed7ceaa1fa9', name: 'potpie_redis_broker', service: 'redis', state: 'running', image: 'redis:latest' },
    ]);
  });

  it('a JSON array (before 2.21; the Compose docs example, which has no Image field)', async () => {
    expect(parseComposePs(await fixture('compose-ps-array-docs.json'))).toEqual([
      { id: '1553b0236cf4d2715845f053a4ee97042c4f9a2ef655731ee34f1f7940eaa41a', name: 'example-bar-1', service: 'bar', state: 'exited', image: null },
      { id: 'f02a4efaabb67416e1ff127d51c4b5578634a0ad5743bd65225ff7d1909a3fa0', name: 'example-foo-1', service: 'foo', state: 'running', image: null },
    ]);
  });

  it('a pretty-printed array (piped through jq)', async () => {
    const rows = parseComposePs(await fixture('compose-ps-array-jq-nerdctl-pr1567.json'));
    expect(rows.map((r) => [r.name, r.service, r.state])).toEqual([
      ['compose-ps-json-db-1', 'db', 'running'],
      ['compose-ps-json-wordpress-1', 'wordpress', 'running'],
    ]);
  });

  it('takes the service from the Labels when the Service field is missing', () => {
    const line = '{"ID":"abc123abc123","Names":"x-web-1","State":"running","Labels":"com.docker.compose.project.config_files=/a/b.yml,/a/c.yml,com.docker.compose.service=web"}';
    expect(parseComposePs(line)).toEqual([{ id: 'abc123abc123', name: 'x-web-1', service: 'web', state: 'running', image: null }]);
    expect(parseComposePs('')).toEqual([]);
    expect(thrownOpError(() => parseComposePs('{"ID":')).code).toBe('command-failed');
  });

  it('parses a Labels string whose values contain commas', async () => {
    const first = (await fixture('compose-ps-jsonl-potpie-2.32.4.jsonl')).split('\n')[0];
    const labels = parseLabels(JSON.parse(first).Labels);
    expect(labels.get('com.docker.compose.project.working_dir')).toBe('/home/deepesh/Development/public/opensource/pot/potpie');
    expect(labels.get('com.docker.compose.depends_on')).toBe('');
    expect(parseLabels('a=1,b=/x,/y,c=3')).toEqual(new Map([['a', '1'], ['b', '/x,/y'], ['c', '3']]));
  });
});

describe('docker image inspect', () => {
  it('RepoDigests null (moby PR 45122, before) and a list (after)', async () => {
    expect(parseImageInspect(closeFragment(await fixture('image-inspect-moby-pr45122-before.txt')))).toEqual([
      { id: 'sha256:69665d02cb32192e52e07644d76bc6f25abeb5410edc1c7a81a10ba3f0efb90a', repoTags: ['alpine:latest', 'myimage:latest'], repoDigests: null },
    ]);
    const after = parseImageInspect(closeFragment(await fixture('image-inspect-moby-pr45122-after.txt')));
    expect(after[0].repoDigests).toEqual([
      'alpine@sha256:69665d02cb32192e52e07644d76bc6f25abeb5410edc1c7a81a10ba3f0efb90a',
      'myimage@sha256:69665d02cb32192e52e07644d76bc6f25abeb5410edc1c7a81a10ba3f0efb90a',
    ]);
  });

  it('RepoDigests [] for a locally built image (build-push-action issue 770)', async () => {
    expect(parseImageInspect(closeFragment(await fixture('image-inspect-build-push-action-770.txt')))).toEqual([
      { id: 'sha256:a021d296839b4a26de5d27b807e0c746e97d64b35b9c4dbfee2440bf4d379134', repoTags: ['localhost:5000/test1:latest'], repoDigests: [] },
    ]);
  });

  it('keeps what was found when some images are missing (docker CLI 28, exit 1)', async () => {
    const found = parseImageInspect(await fixture('image-inspect-partial-cli28.stdout'));
    expect(found.map((f) => [f.repoTags[0], f.repoDigests])).toEqual([
      ['redis:latest', ['redis@sha256:' + 'e'.repeat(64)]],
      ['app:local', null],
    ]);
    expect(await fixture('image-inspect-partial-cli28.stderr')).toMatch(/No such image: gone:1/);
    // and finds each by the reference a container names
    expect(findByReference(found, 'redis')?.id).toBe('sha256:' + 'b'.repeat(64));
    expect(findByReference(found, 'docker.io/library/redis:latest')?.id).toBe('sha256:' + 'b'.repeat(64));
    expect(findByReference(found, 'redis:7')).toBeNull();
    expect(findByReference(found, `redis@sha256:${'e'.repeat(64)}`)?.id).toBe('sha256:' + 'b'.repeat(64));
    expect(findByReference(found, 'app:local')?.repoDigests).toBeNull();
  });

  it("recognises the daemon's own words for no access and no daemon", async () => {
    expect(daemonProblem(await fixture('image-inspect-permission-cli28.stderr'))).toBe('permission');
    expect(daemonProblem(await fixture('image-inspect-no-daemon-cli28.stderr'))).toBe('no-daemon');
    expect(daemonProblem(await fixture('image-inspect-partial-cli28.stderr'))).toBeNull();
    expect(parseImageInspect(await fixture('image-inspect-no-daemon-cli28.stdout'))).toEqual([]);
  });
});

describe('docker container inspect with the relay template', () => {
  it('parses what docker CLI 28 printed for it (labels missing, quotes in values)', async () => {
    expect(parseContainerInspect(await fixture('container-inspect-cli28.stdout'))).toEqual([
      { id: 'd2763e024a10' + 'a'.repeat(52), imageId: 'sha256:' + 'b'.repeat(64), configImage: 'redis:latest', workingDir: '/srv/my stack' },
      { id: 'f00' + 'c'.repeat(61), imageId: 'sha256:' + 'd'.repeat(64), configImage: 'x"y', workingDir: '' },
    ]);
    expect(thrownOpError(() => parseContainerInspect('"a" "b" "c"\n')).code).toBe('command-failed');
    expect(thrownOpError(() => parseContainerInspect('"a" "b" "c" "d" extra\n')).code).toBe('command-failed');
  });

  it('asks with a template that survives containers without labels', () => {
    expect(CONTAINER_TEMPLATE).toContain('{{with .Config.Labels}}');
    expect(containerInspect(['c8e7a2bad4d1', 'f'.repeat(64)])).toBe(`container inspect --format '${CONTAINER_TEMPLATE}' c8e7a2bad4d1 ${'f'.repeat(64)}`);
    expect(thrownOpError(() => containerInspect(['abc; id'])).code).toBe('command-failed');
  });
});

describe('docker compose version --short', () => {
  it('reads a version, and not the error a CLI without the plugin prints', async () => {
    expect(parseComposeVersion('2.32.4\n')).toBe('2.32.4');
    expect(parseComposeVersion('v2.29.7-desktop.1\n')).toBe('2.29.7-desktop.1');
    expect(parseComposeVersion(await fixture('compose-version-no-plugin-cli28.stderr'))).toBeNull();
    expect((await fixture('compose-version-no-plugin-cli28.rc')).trim()).toBe('125');
  });
});

describe('command lines: constants plus validated, quoted values', () => {
  it('quotes stack names and refuses anything else', () => {
    expect(composePs('potpie')).toBe("compose -p 'potpie' ps --all --format json");
    for (const bad of ['Potpie', "x';id;'", '-p', 'a b', '']) expect(thrownOpError(() => composePs(bad)).code, bad).toBe('invalid-request');
  });

  it('refuses image keys that could be options or carry shell syntax', () => {
    expect(imageInspect(['sha256:' + 'a'.repeat(64), 'ghcr.io/org/app:v1'])).toBe(`image inspect 'sha256:${'a'.repeat(64)}' 'ghcr.io/org/app:v1'`);
    for (const bad of ['-f', 'a b', "a'b", 'a$(id)', '']) expect(thrownOpError(() => imageInspect([bad])).code, bad).toBe('command-failed');
  });

  it('validates host paths: absolute, no newline, no .. component, allowlisted characters', () => {
    expect(pathProblem('/srv/web/compose.yaml')).toBeNull();
    expect(pathProblem('/home/me/my stack/docker-compose.yml')).toBeNull();
    expect(pathProblem('/srv/a..b/c')).toBeNull();
    expect(pathProblem('srv/web')).toMatch(/not absolute/);
    expect(pathProblem('/srv/../etc/x.yml')).toMatch(/\.\./);
    expect(pathProblem('/srv/..')).toMatch(/\.\./);
    expect(pathProblem('/srv/x\n.yml')).toMatch(/newline/);
    expect(pathProblem("/srv/x'.yml")).toMatch(/characters/);
    expect(pathProblem('/srv/$(id).yml')).toMatch(/characters/);
    expect(pathProblem('/srv/`id`.yml')).toMatch(/characters/);
    expect(pathProblem('/srv/x\\y.yml')).toMatch(/characters/);
    expect(pathProblem('')).toMatch(/empty/);
  });

  it('builds -p, --project-directory and one -f per config file', () => {
    expect(projectArgs({ name: 'web', workingDir: '/srv/my web', configFiles: ['/srv/my web/compose.yaml', '/srv/my web/override.yaml'] })).toBe(
      "-p 'web' --project-directory '/srv/my web' -f '/srv/my web/compose.yaml' -f '/srv/my web/override.yaml'",
    );
    const e = thrownOpError(() => projectArgs({ name: 'web', workingDir: '/srv/web', configFiles: ['/srv/../etc/compose.yaml'] }));
    expect(e.message).toMatch(/"\.\." component/);
    expect(thrownOpError(() => projectArgs({ name: 'web', workingDir: 'srv', configFiles: ['/srv/c.yaml'] })).message).toMatch(/not absolute/);
    expect(thrownOpError(() => projectArgs({ name: 'web', workingDir: '/srv', configFiles: [] })).message).toMatch(/no config files/);
    expect(serviceArgs(['web', 'db.v2'])).toBe(" 'web' 'db.v2'");
    expect(serviceArgs(undefined)).toBe('');
    expect(thrownOpError(() => serviceArgs(['-d'])).code).toBe('invalid-request');
  });

  it('the run script pulls first and runs up -d only when the pull succeeded', () => {
    const s = updateRunScript({ name: 'web', workingDir: '/srv/web', configFiles: ['/srv/web/compose.yaml'] }, ['app']);
    const pull = s.indexOf("docker compose -p 'web' --project-directory '/srv/web' -f '/srv/web/compose.yaml' pull 'app'");
    const up = s.indexOf("docker compose -p 'web' --project-directory '/srv/web' -f '/srv/web/compose.yaml' up -d 'app'");
    const stop = s.indexOf('not running up -d"; exit "$rc"');
    expect(pull).toBeGreaterThan(0);
    expect(stop).toBeGreaterThan(pull);
    expect(up).toBeGreaterThan(stop);
    expect(s).not.toContain('PATCHMAN_RUN_EOF');
  });

  it('reads which step failed and the last lines before it', async () => {
    const denied = await fixture('compose-up-pull-denied-pmda-2.txt');
    const tail = `[patchman] docker compose pull\n${denied}[patchman] docker compose pull failed with exit status 1; not running up -d\n`;
    const f = runFailure(tail);
    expect(f.step).toBe('pull');
    expect(f.lines.at(-1)).toMatch(/^Error response from daemon: pull access denied for silkyclouds\/pmda/);
    expect(f.lines.some((l) => l.startsWith('[patchman]'))).toBe(false);
    expect(runFailure('[patchman] docker compose up -d\nboom\n[patchman] docker compose up -d failed with exit status 17\n')).toEqual({ step: 'up -d', lines: ['boom'] });
    expect(runFailure('killed\n').step).toBeNull();
  });

  it('OpError stays the error type', () => {
    expect(thrownOpError(() => composePs('X'))).toBeInstanceOf(OpError);
  });
});
