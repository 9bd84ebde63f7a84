// The parts of PatchMan the fault suite kills, freezes and restarts one by one: `wrangler
// dev` (workerd with the local D1, on a fixed port and state dir so a restart finds the same
// database and Durable Objects) and the relay (relay/main.ts, its own process). `npm start`
// runs the same two, but stops both when either dies; here each is its own process group.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../relay/test/sshd.ts';

const root = resolve(import.meta.dirname, '..', '..');
const wranglerBin = join(root, 'node_modules', '.bin', 'wrangler');
const run = promisify(execFile);
const quietEnv = { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_HIDE_BANNER: 'true', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };

export const ADMIN = { username: 'admin', password: 'chaos-admin-password-1' };

export type Api = <T = any>(path: string, init?: { method?: string; json?: unknown; token?: string | null }) => Promise<{ status: number; body: T }>;

/** The Worker's heartbeat timeout under the suite (RELAY_HEARTBEAT_TIMEOUT_MS) and the relay's
 * heartbeat interval: short, so that a frozen relay is noticed within seconds. */
export const CHAOS_HEARTBEAT_TIMEOUT_MS = 8_000;
export const CHAOS_HEARTBEAT_INTERVAL_S = 1;

export interface RelayOptions {
  /** Per SSH command (s): a silent host times out this fast. */
  commandTimeoutS?: number;
  connectTimeoutS?: number;
}

export class Stack {
  readonly url: string;
  readonly state: string;
  readonly port: number;
  relayId = '';
  #persist: string;
  #worker: ChildProcess | null = null;
  #relay: ChildProcess | null = null;
  #token: string | null = null;
  #relayTokenFile: string;
  #relayOpts: RelayOptions;
  #log: string[] = [];

  private constructor(port: number, state: string, relayOpts: RelayOptions) {
    this.port = port;
    this.state = state;
    this.url = `http://127.0.0.1:${port}`;
    this.#persist = join(state, 'wrangler');
    this.#relayTokenFile = join(state, 'relay-token');
    this.#relayOpts = relayOpts;
  }

  /** Migrations, wrangler dev, the admin (and an API token), a relay paired through the API
   * and started. */
  static async start(relayOpts: RelayOptions = {}): Promise<Stack> {
    const s = new Stack(await freePort(), mkdtempSync(join(tmpdir(), 'patchman-chaos-')), relayOpts);
    try {
      await run(wranglerBin, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', s.#persist], { cwd: root, env: quietEnv });
      await s.startWorker();
      const setup = await fetch(s.url + '/api/setup', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ADMIN) });
      if (setup.status !== 201) throw new Error(`setup: ${setup.status} ${await setup.text()}`);
      const session = /__Host-patchman_session=([^;]+)/.exec(setup.headers.get('Set-Cookie') ?? '')?.[1];
      const made = await fetch(s.url + '/api/tokens', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Cookie: `__Host-patchman_session=${session}` },
        body: JSON.stringify({ name: 'chaos', role: 'admin' }),
      });
      if (made.status !== 201) throw new Error(`token: ${made.status} ${await made.text()}`);
      s.#token = ((await made.json()) as { secret: string }).secret;
      const relay = await s.api('/api/relays', { method: 'POST', json: { name: 'chaos relay' } });
      if (relay.status !== 201) throw new Error(`relay: ${relay.status} ${JSON.stringify(relay.body)}`);
      s.relayId = relay.body.relay.id;
      writeFileSync(s.#relayTokenFile, relay.body.token + '\n', { mode: 0o600 });
      await s.startRelay();
      return s;
    } catch (err) {
      await s.stop();
      throw err;
    }
  }

  api: Api = async (path, init = {}) => {
    const headers: Record<string, string> = {};
    if (init.json !== undefined) headers['Content-Type'] = 'application/json';
    const token = init.token === undefined ? this.#token : init.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    // While the Worker restarts nothing listens: a refused connection delivered nothing, so
    // it is tried again (for a minute).
    let res: Response;
    for (let tries = 0; ; tries++) {
      try {
        res = await fetch(this.url + path, { method: init.method ?? 'GET', headers, body: init.json !== undefined ? JSON.stringify(init.json) : undefined });
        break;
      } catch (err) {
        if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED' || tries >= 300) throw err;
        await sleep(200);
      }
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };

  /** The last lines the Worker and the relay printed (for a failing run's report). */
  output(): string {
    return this.#log.slice(-200).join('');
  }

  #spawn(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    // (its own process group outlives this process: a test runner that gives up on a slow
    // run must not leave a frozen relay or a workerd behind)
    const reap = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    };
    process.once('exit', reap);
    child.once('exit', () => process.off('exit', reap));
    const keep = (c: Buffer) => {
      for (const l of c.toString().split('\n')) if (l.trim()) this.#log.push(`[${name}] ${l}\n`);
      if (this.#log.length > 2000) this.#log.splice(0, 1000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return child;
  }

  async startWorker(): Promise<void> {
    this.#worker = this.#spawn('worker', wranglerBin, ['dev', '--ip', '127.0.0.1', '--port', String(this.port), '--persist-to', this.#persist, '--show-interactive-dev-session=false', '--log-level', 'warn', '--var', `RELAY_HEARTBEAT_TIMEOUT_MS:${CHAOS_HEARTBEAT_TIMEOUT_MS}`], quietEnv);
    const child = this.#worker;
    const end = Date.now() + 180_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`wrangler dev exited (${child.exitCode ?? child.signalCode}):\n${this.output()}`);
      try {
        if ((await fetch(this.url + '/api/health')).ok) return;
      } catch {
        // not up yet
      }
      if (Date.now() > end) throw new Error(`wrangler dev did not answer:\n${this.output()}`);
      await sleep(200);
    }
  }

  /** The Worker crashes (SIGKILL to wrangler and workerd) and comes back on the same port
   * and state. */
  async restartWorker(): Promise<void> {
    await killGroup(this.#worker, 'SIGKILL');
    // (workerd may hold the port a moment after its death: try again)
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startWorker();
      } catch (err) {
        if (attempt >= 5) throw err;
        await killGroup(this.#worker, 'SIGKILL');
        await sleep(1000);
      }
    }
  }

  async startRelay(): Promise<void> {
    this.#relay = this.#spawn('relay', process.execPath, [join(root, 'relay', 'main.ts')], {
      ...process.env,
      PATCHMAN_URL: this.url,
      PATCHMAN_RELAY_TOKEN_FILE: this.#relayTokenFile,
      PATCHMAN_DATA_DIR: join(this.state, 'relay'),
      PATCHMAN_MONITOR_ONLY: 'none',
      PATCHMAN_COMMAND_TIMEOUT: String(this.#relayOpts.commandTimeoutS ?? 8),
      PATCHMAN_CONNECT_TIMEOUT: String(this.#relayOpts.connectTimeoutS ?? 4),
      PATCHMAN_HEARTBEAT_INTERVAL: String(CHAOS_HEARTBEAT_INTERVAL_S),
    });
  }

  /** SIGKILL: the relay dies without a word (no close frame, its runs' followers gone). */
  async killRelay(): Promise<void> {
    await killGroup(this.#relay, 'SIGKILL');
    this.#relay = null;
  }

  freezeRelay(): void {
    if (this.#relay?.pid) process.kill(-this.#relay.pid, 'SIGSTOP');
  }

  thawRelay(): void {
    if (this.#relay?.pid) process.kill(-this.#relay.pid, 'SIGCONT');
  }

  async relayConnected(): Promise<{ connected: boolean; publicKey: string | null }> {
    const { body } = await this.api<any[]>('/api/relays');
    const r = body?.find((x) => x.id === this.relayId);
    return { connected: !!r?.connected, publicKey: r?.publicKey ?? null };
  }

  async stop(): Promise<void> {
    this.thawRelay();
    await killGroup(this.#relay, 'SIGTERM');
    await killGroup(this.#worker, 'SIGTERM');
    rmSync(this.state, { recursive: true, force: true });
  }
}

/** Signal a child's process group and wait (a little) for the child to be gone. */
async function killGroup(child: ChildProcess | null, signal: NodeJS.Signals): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(-child.pid, signal);
  } catch {
    return;
  }
  const t = await Promise.race([gone.then(() => true), sleep(5000).then(() => false)]);
  if (!t) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
    await Promise.race([gone, sleep(2000)]);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
