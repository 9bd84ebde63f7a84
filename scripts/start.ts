// `npm start`: the whole of PatchMan on one machine. Builds the dashboard and the relay,
// applies the D1 migrations to a local database, pairs a local relay (no token copying),
// starts `wrangler dev` (workerd) and the relay, and prints the URL.
//
//   PORT            port for the dashboard and API (default 8787)
//   PATCHMAN_STATE  where the local D1, the relay's key and pinned host keys live (default .patchman/)
//   PATCHMAN_SKIP_BUILD=1   reuse web/build and relay/dist as they are
//   PATCHMAN_RELAY_NODE     node binary for the relay (default: the one running this script)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { supervise, type Supervisor } from './supervise.ts';

const root = resolve(import.meta.dirname, '..');
const port = Number(process.env.PORT ?? 8787);
const state = resolve(process.env.PATCHMAN_STATE ?? join(root, '.patchman'));
const url = `http://127.0.0.1:${port}`;
const wranglerBin = join(root, 'node_modules', '.bin', 'wrangler');
const children: ChildProcess[] = [];
// Local means local: no telemetry, and no fetch of the Request.cf placeholder from
// workers.cloudflare.com (miniflare's CLOUDFLARE_CF_FETCH_ENABLED switch). And this is the
// app running, not a debugging session: wrangler dev's local explorer (which wraps every
// Durable Object class) and its trace collector (a streaming tail of every request and
// event) are off; they cost the one workerd thread work on every request (X_LOCAL_EXPLORER,
// X_LOCAL_OBSERVABILITY in wrangler's cli.js; issue 11).
const quietEnv = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  X_LOCAL_EXPLORER: process.env.X_LOCAL_EXPLORER ?? 'false',
  X_LOCAL_OBSERVABILITY: process.env.X_LOCAL_OBSERVABILITY ?? 'false',
};

function say(line: string) {
  console.log(`[patchman] ${line}`);
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}) {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? root, env: quietEnv, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(r.stdout ?? '');
    process.stderr.write(r.stderr ?? '');
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
  }
  return r.stdout;
}

/** Start a child with its output prefixed by its name. */
function launch(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  child.once('exit', () => {
    const i = children.indexOf(child);
    if (i >= 0) children.splice(i, 1);
  });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => `[${name}] ${l}\n`)
      .join('');
  child.stdout!.on('data', (c) => process.stdout.write(prefix(c)));
  child.stderr!.on('data', (c) => process.stderr.write(prefix(c)));
  return child;
}

/** Start a child that everything depends on (the Worker): when it exits, everything stops. */
function start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = launch(name, cmd, args, env);
  child.on('exit', (code, signal) => {
    if (stopping) return;
    say(`${name} exited (${signal ?? code}); stopping`);
    stop(code ?? 1);
  });
  return child;
}

let stopping = false;
/** The local relay, restarted when it dies (as its systemd unit's Restart= would). */
let relay: Supervisor | null = null;
function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  relay?.stop();
  for (const c of children) {
    try {
      process.kill(-c.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  setTimeout(() => process.exit(code), 500).unref();
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

async function waitForHealth(timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const res = await fetch(`${url}/api/health`);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the Worker did not answer on ${url} within ${timeoutMs / 1000} s`);
}

/** The Worker's local secrets and settings, as `wrangler dev --env-file` reads them: a
 * NOTIFY_KEY made once per state dir (channel secrets are encrypted with it), local mode
 * (channels may target loopback receivers), and the URL messages link to. */
function workerEnvFile(): string {
  const file = join(state, 'worker.env');
  const keyFile = join(state, 'notify-key');
  if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('base64url') + '\n', { mode: 0o600 });
  const key = readFileSync(keyFile, 'utf8').trim();
  writeFileSync(file, `NOTIFY_KEY=${key}\nPATCHMAN_LOCAL=1\nPATCHMAN_PUBLIC_URL=${url}\n`, { mode: 0o600 });
  return file;
}

/** The local relay's token: made once per state dir; D1 keeps only its hash. */
function pairLocalRelay(persist: string): string {
  const tokenFile = join(state, 'relay-token');
  let token: string;
  if (existsSync(tokenFile)) token = readFileSync(tokenFile, 'utf8').trim();
  else {
    token = `pmr_${randomBytes(32).toString('base64url')}`;
    writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  }
  const hash = createHash('sha256').update(token).digest('hex');
  const name = `local relay (${hostname().replace(/[^A-Za-z0-9_.-]/g, '')})`;
  const sql =
    `INSERT INTO relays (id, name, token_hash, created_at) VALUES ('local', '${name}', '${hash}', ${Date.now()}) ` +
    `ON CONFLICT(id) DO UPDATE SET token_hash = excluded.token_hash, revoked_at = NULL`;
  run(wranglerBin, ['d1', 'execute', 'DB', '--local', '--persist-to', persist, '--command', sql]);
  return tokenFile;
}

async function main() {
  mkdirSync(state, { recursive: true, mode: 0o700 });
  const persist = join(state, 'wrangler');
  if (process.env.PATCHMAN_SKIP_BUILD !== '1') {
    say('building the dashboard and the relay');
    run(join(root, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn'], { cwd: join(root, 'web') });
    run(process.execPath, [join(root, 'scripts', 'build-relay.ts')]);
  }
  say(`applying migrations to the local D1 in ${persist}`);
  run(wranglerBin, ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persist]);
  const tokenFile = pairLocalRelay(persist);

  // fault tests shorten the relay heartbeat timeout (see worker/relay-heartbeat.ts); the
  // local relay then beats four times as often
  const timeout = /^\d+$/.test(process.env.RELAY_HEARTBEAT_TIMEOUT_MS ?? '') ? Number(process.env.RELAY_HEARTBEAT_TIMEOUT_MS) : null;
  const heartbeatVar = timeout ? ['--var', `RELAY_HEARTBEAT_TIMEOUT_MS:${timeout}`] : [];
  const relayHeartbeat = timeout ? { PATCHMAN_HEARTBEAT_INTERVAL: String(Math.max(1, Math.floor(timeout / 4000))) } : {};
  // ROLLOUT_TICK_MS: how often live rollouts advance (tests shorten it)
  const tickVar = process.env.ROLLOUT_TICK_MS ? ['--var', `ROLLOUT_TICK_MS:${process.env.ROLLOUT_TICK_MS}`] : [];
  // (the env file sets PATCHMAN_LOCAL=1 and the local NOTIFY_KEY)
  start('worker', wranglerBin, ['dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persist, '--env-file', workerEnvFile(), '--show-interactive-dev-session=false', '--log-level', 'warn', ...heartbeatVar, ...tickVar], quietEnv);
  await waitForHealth(120_000);

  const relayNode = process.env.PATCHMAN_RELAY_NODE ?? process.execPath;
  relay = supervise({
    name: 'relay',
    spawn: () =>
      launch('relay', relayNode, [join(root, 'relay', 'dist', 'patchman-relay.cjs')], {
        ...process.env,
        PATCHMAN_URL: url,
        PATCHMAN_RELAY_TOKEN_FILE: tokenFile,
        PATCHMAN_DATA_DIR: join(state, 'relay'),
        ...relayHeartbeat,
      }),
    log: say,
    kill: (c) => {
      try {
        process.kill(-c.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    },
  });
  say(`PatchMan is running at ${url}`);
  try {
    const setup = (await (await fetch(`${url}/api/setup`)).json()) as { needed?: boolean };
    if (setup.needed) say(`first run: open ${url} to create the admin account (the local relay is already paired)`);
  } catch {
    /* only a hint */
  }
}

main().catch((err) => {
  console.error(`[patchman] ${err instanceof Error ? err.message : String(err)}`);
  stop(1);
});
