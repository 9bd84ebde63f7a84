// Docker Compose on a simulated host, for the demo and scale runs: the commands the relay's
// docker.scan and docker.update send (relay/docker/compose.ts builds them; they are imported
// here, never copied) answered from a small model of stacks, containers and images, and a
// stand-in registry on loopback that the relay asks for each tag's current digest.
//
// The output formats are those of the recorded fixtures in relay/docker/fixtures: `compose
// ps` JSON Lines as Compose 2.32.4 printed them (compose-ps-jsonl-potpie-2.32.4.jsonl),
// `container inspect` lines in the relay's CONTAINER_TEMPLATE (as docker CLI 28 printed them),
// `image inspect` objects with Id/RepoTags/RepoDigests. The real-parts tests of the Docker
// code run against a real registry and the docker test stub (relay/ops/docker-*.test.ts,
// e2e/stacks.test.ts); this is the simulated fleet's part only.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { COMPOSE_LS, composePs, containerInspect, DOCKER_PROBE_SCRIPT, dockerScript, imageInspect, RUN_MARK, updateRunScript, type StackLocation } from '../relay/docker/compose.ts';
import { SH_COMMAND } from '../relay/pkg/shell.ts';
import { startScript } from '../relay/run.ts';
import type { Reply } from './host.ts';
import type { SimMachine } from './upgrade.ts';

/** The Compose version the simulated hosts report. */
export const SIM_COMPOSE_VERSION = '2.32.4';

const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

// ---- the stand-in registry -------------------------------------------------------------

/**
 * A registry on 127.0.0.1 that knows one manifest digest per `repo:tag` and answers the
 * relay's `HEAD /v2/<repo>/manifests/<tag>` (and the `/v2/` ping) with it, as a real
 * registry does (Docker-Content-Digest, the manifest media type). Anonymous, plain http: a
 * loopback registry, as Docker and the relay treat it.
 */
export class SimRegistry {
  readonly #digests = new Map<string, string>();
  #server: Server | null = null;
  host = '';

  /** The digest the registry serves for `repo:tag` now. */
  digest(repo: string, tag: string): string | undefined {
    return this.#digests.get(`${repo}:${tag}`);
  }

  /** Publish a (new) build of `repo:tag`; returns its digest. */
  publish(repo: string, tag: string, build: string): string {
    const d = sha(`manifest ${repo}:${tag} ${build}`);
    this.#digests.set(`${repo}:${tag}`, d);
    return d;
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://registry');
      if (url.pathname === '/v2/' || url.pathname === '/v2') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
        return;
      }
      const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
      const digest = m ? this.#digests.get(`${m[1]}:${m[2]}`) : undefined;
      if (!m || !digest || (req.method !== 'HEAD' && req.method !== 'GET')) {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
        return;
      }
      res
        .writeHead(200, {
          'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
          'Docker-Content-Digest': digest,
          'Docker-Distribution-API-Version': 'registry/2.0',
          'Content-Length': '0',
        })
        .end();
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.host = `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = null;
  }
}

// ---- the model -------------------------------------------------------------------------

interface SimService {
  service: string;
  /** `repo:tag` in the registry, or a local build's name (no registry). */
  repo: string;
  tag: string;
  /** How the image is referenced: by tag (checkable), by digest (pinned), or built here. */
  kind: 'tag' | 'pinned' | 'local';
  /** The manifest digest the host pulled (null: built locally, no RepoDigests). */
  pulled: string | null;
  build: string;
}

interface SimStack {
  name: string;
  workingDir: string;
  configFiles: string[];
  services: SimService[];
}

/** What the demo's Docker hosts run: a web stack and a monitoring stack with newer images on
 * the registry, and an app stack with a pinned and a locally built image (not checkable). */
function demoStacks(reg: SimRegistry, host: string): SimStack[] {
  const svc = (service: string, repo: string, tag: string, kind: SimService['kind'], outdated: boolean): SimService => {
    const current = reg.digest(repo, tag) ?? reg.publish(repo, tag, 'build 2');
    // an outdated service runs an older build than the tag now points at
    const pulled = kind === 'local' ? null : outdated ? sha(`manifest ${repo}:${tag} build 1 ${host}`) : current;
    return { service, repo, tag, kind, pulled, build: outdated ? 'build 1' : 'build 2' };
  };
  return [
    {
      name: 'web',
      workingDir: '/srv/web',
      configFiles: ['/srv/web/compose.yaml'],
      services: [svc('nginx', 'library/nginx', '1.27', 'tag', true), svc('redis', 'library/redis', '7.4', 'tag', false)],
    },
    {
      name: 'monitoring',
      workingDir: '/srv/monitoring',
      configFiles: ['/srv/monitoring/compose.yaml', '/srv/monitoring/compose.override.yaml'],
      services: [svc('grafana', 'grafana/grafana', '11.4.0', 'tag', true), svc('prometheus', 'prom/prometheus', 'v3.1.0', 'tag', false)],
    },
    {
      name: 'app',
      workingDir: '/opt/app',
      configFiles: ['/opt/app/docker-compose.yml'],
      services: [svc('db', 'library/postgres', '16', 'pinned', false), svc('api', 'app/api', 'local', 'local', false)],
    },
  ];
}

/** Docker on one simulated host. */
export class SimDocker {
  readonly stacks: SimStack[];
  readonly #reg: SimRegistry;
  readonly #host: string;

  constructor(reg: SimRegistry, hostName: string) {
    this.#reg = reg;
    this.#host = hostName;
    this.stacks = demoStacks(reg, hostName);
  }

  #ref(s: SimService): string {
    if (s.kind === 'local') return `${s.repo}:${s.tag}`;
    if (s.kind === 'pinned') return `${this.#reg.host}/${s.repo}@${s.pulled}`;
    return `${this.#reg.host}/${s.repo}:${s.tag}`;
  }
  #imageId(s: SimService): string {
    return sha(`image config ${s.repo} ${s.pulled ?? s.build} ${this.#host}`);
  }
  #psId(stack: SimStack, s: SimService): string {
    return createHash('sha256').update(`container ${this.#host} ${stack.name} ${s.service}`).digest('hex').slice(0, 12);
  }

  #lsJson(): string {
    return JSON.stringify(this.stacks.map((st) => ({ Name: st.name, Status: `running(${st.services.length})`, ConfigFiles: st.configFiles.join(',') }))) + '\n';
  }

  #psLines(stack: SimStack): string {
    return stack.services
      .map((s) => {
        const name = `${stack.name}-${s.service}-1`;
        const labels = [
          `com.docker.compose.version=${SIM_COMPOSE_VERSION}`,
          'com.docker.compose.container-number=1',
          'com.docker.compose.oneoff=False',
          `com.docker.compose.project.config_files=${stack.configFiles.join(',')}`,
          `com.docker.compose.service=${s.service}`,
          `com.docker.compose.project=${stack.name}`,
          `com.docker.compose.project.working_dir=${stack.workingDir}`,
        ].join(',');
        return JSON.stringify({
          Command: '"/docker-entrypoint.…"',
          CreatedAt: '2026-11-20 09:12:24 +0000 UTC',
          ExitCode: 0,
          Health: '',
          ID: this.#psId(stack, s),
          Image: this.#ref(s),
          Labels: labels,
          LocalVolumes: '0',
          Mounts: '',
          Name: name,
          Names: name,
          Networks: `${stack.name}_default`,
          Ports: '',
          Project: stack.name,
          Publishers: [],
          RunningFor: '13 days ago',
          Service: s.service,
          Size: '0B',
          State: 'running',
          Status: 'Up 13 days',
        });
      })
      .map((l) => l + '\n')
      .join('');
  }

  #all(): { stack: SimStack; s: SimService }[] {
    return this.stacks.flatMap((stack) => stack.services.map((s) => ({ stack, s })));
  }

  #containerLine(stack: SimStack, s: SimService): string {
    const id = (this.#psId(stack, s) + 'f'.repeat(64)).slice(0, 64);
    return [id, this.#imageId(s), this.#ref(s), stack.workingDir].map((f) => JSON.stringify(f)).join(' ') + '\n';
  }

  #imageJson(s: SimService): object {
    const digests = s.pulled ? [`${this.#reg.host}/${s.repo}@${s.pulled}`] : [];
    return { Id: this.#imageId(s), RepoTags: s.kind === 'pinned' ? [] : [this.#ref(s)], RepoDigests: digests, Architecture: 'amd64', Os: 'linux' };
  }

  /** The answer to a docker command of the relay's, or undefined when it is none. */
  answer(command: string, stdin: string | null, user: string, machine: SimMachine): { kind: string; reply: Reply } | undefined {
    if (command !== SH_COMMAND || stdin === null) return undefined;
    if (stdin === DOCKER_PROBE_SCRIPT) return { kind: 'docker-probe', reply: { stdout: `@@patchman-docker 1\nrc 0\n${SIM_COMPOSE_VERSION}\n` } };
    if (stdin === dockerScript(COMPOSE_LS)) return { kind: 'docker-ls', reply: { stdout: this.#lsJson() } };
    for (const stack of this.stacks) {
      if (stdin === dockerScript(composePs(stack.name))) return { kind: 'docker-ps', reply: { stdout: this.#psLines(stack) } };
    }
    const all = this.#all();
    const inspect = /exec docker (container|image) inspect (.*) <\/dev\/null$/m.exec(stdin);
    if (inspect?.[1] === 'container') {
      const ids = inspect[2].split(' ').filter((w) => /^[a-f0-9]{12,64}$/.test(w));
      if (stdin !== dockerScript(containerInspect(ids))) return undefined;
      // (the relay passes the ids `compose ps` printed: 12 digits since Compose 2.21)
      const byId = new Map(all.map(({ stack, s }) => [this.#psId(stack, s), this.#containerLine(stack, s)]));
      return { kind: 'docker-container-inspect', reply: { stdout: ids.map((id) => byId.get(id.slice(0, 12)) ?? '').join('') } };
    }
    if (inspect?.[1] === 'image') {
      const keys = [...inspect[2].matchAll(/'([^']*)'/g)].map((m) => m[1]);
      if (stdin !== dockerScript(imageInspect(keys))) return undefined;
      const byKey = new Map<string, object>();
      for (const { s } of all) {
        byKey.set(this.#imageId(s), this.#imageJson(s));
        byKey.set(this.#ref(s), this.#imageJson(s));
      }
      return { kind: 'docker-image-inspect', reply: { stdout: JSON.stringify(keys.map((k) => byKey.get(k)).filter(Boolean)) + '\n' } };
    }
    return this.#update(stdin, user, machine);
  }

  /** A `docker.update` run: recognised when the start script is byte for byte the relay's
   * own for one of the stacks (and services); pulls the tags' current builds. */
  #update(stdin: string, user: string, machine: SimMachine): { kind: string; reply: Reply } | undefined {
    const runId = /^r=\S*\/([A-Za-z0-9_-]+)"?$/m.exec(stdin)?.[1];
    if (!runId) return undefined;
    for (const stack of this.stacks) {
      const loc: StackLocation = { name: stack.name, workingDir: stack.workingDir, configFiles: stack.configFiles };
      const named = [...stdin.matchAll(/ pull((?: '[a-z0-9_.-]+')*)$/gm)][0]?.[1];
      const services = named ? [...named.matchAll(/'([^']+)'/g)].map((m) => m[1]) : undefined;
      let script: string;
      try {
        script = startScript(runId, updateRunScript(loc, services), ':');
      } catch {
        continue;
      }
      if (script !== stdin) continue;
      const chosen = stack.services.filter((s) => !services || services.includes(s.service));
      const stale = chosen.filter((s) => s.kind === 'tag' && s.pulled !== this.#reg.digest(s.repo, s.tag));
      const pull = chosen.map((s) => (s.kind === 'local' ? ` ${s.service} Skipped - No image to be pulled\n` : ` ${s.service} Pulling \n ${s.service} Pulled \n`)).join('');
      const up = chosen
        .map((s) => {
          const c = `${stack.name}-${s.service}-1`;
          return stale.includes(s) ? ` Container ${c}  Recreate\n Container ${c}  Recreated\n Container ${c}  Starting\n Container ${c}  Started\n` : ` Container ${c}  Running\n`;
        })
        .join('');
      const body = `${pull}${RUN_MARK} docker compose up -d\n${up}${RUN_MARK} done\n`;
      const effect = () => {
        for (const s of stale) s.pulled = this.#reg.digest(s.repo, s.tag) ?? s.pulled;
      };
      return { kind: 'docker-update', reply: machine.startRun({ runId, echo: `${RUN_MARK} docker compose pull`, privilege: 'root', packages: null }, user, { body, exitCode: 0, effect }) };
    }
    return undefined;
  }
}
