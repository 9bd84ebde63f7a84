// `npm run demo`: PatchMan with a simulated fleet, for a first look without any real hosts.
// Starts the app the way `npm start` does, waits for the local relay, starts ~12 simulated
// SSH hosts (sim/) of every profile plus one offline machine, authorises the relay's key on
// them, adds them through the API, scans them all, gives them 90 days of made-up history
// that ends in what the scans found (sim/history.ts: the trend charts, exposure and time to
// patch have something to show) and prints the URL. Ctrl-C stops it all.
//
//   PORT             dashboard/API port (default 8787)
//   PATCHMAN_STATE   state dir (default: a new temp dir, removed on exit; give one to keep
//                    the database, the relay's key and the simulated hosts between runs)
//   DEMO_HOSTS       how many simulated hosts (default 12)
//   DEMO_SIM_PORT    the SSH port every simulated host listens on (default 2222; each host
//                    has its own 127.77.x.y address)
//   DEMO_LATENCY_MS  per-command latency of the simulated hosts (default 150, plus up to
//                    twice that of jitter)
//   PATCHMAN_SKIP_BUILD=1 is passed through to npm start (reuse web/build and relay/dist).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startFleet, type Fleet, type HostSpec, type ProfileName, PROFILE_NAMES } from '../sim/fleet.ts';
import { localD1File, writeHistoryOf } from '../sim/history.ts';

const root = resolve(import.meta.dirname, '..');
const port = Number(process.env.PORT ?? 8787);
const url = `http://127.0.0.1:${port}`;
const givenState = process.env.PATCHMAN_STATE;
const state = givenState ? resolve(givenState) : mkdtempSync(join(tmpdir(), 'patchman-demo-'));
const hostCount = Math.max(1, Number(process.env.DEMO_HOSTS ?? 12));
const simPort = Number(process.env.DEMO_SIM_PORT ?? 2222);
const latencyMs = Number(process.env.DEMO_LATENCY_MS ?? 150);
/** The trend charts' longest period. */
const HISTORY_DAYS = 90;

function say(line: string): void {
  console.log(`[demo] ${line}`);
}

let app: ChildProcess | undefined;
let fleet: Fleet | undefined;
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  say('stopping');
  if (app?.pid) {
    try {
      process.kill(-app.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  await fleet?.stop().catch(() => {});
  if (app && app.exitCode === null && app.signalCode === null) {
    await Promise.race([new Promise((r) => app!.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
    try {
      process.kill(-app.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (!givenState) rmSync(state, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

// ---- the API, with a session cookie if the app asks for one ----------------------------------

let cookie = '';
async function api<T = any>(path: string, init: { method?: string; json?: unknown } = {}): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  const method = init.method ?? 'GET';
  // The API takes changes only as JSON (its CSRF defence), even with no body.
  if (method !== 'GET') headers['Content-Type'] = 'application/json';
  if (cookie) headers.Cookie = cookie;
  const res = await fetch(url + path, {
    method,
    headers,
    body: init.json !== undefined ? JSON.stringify(init.json) : method !== 'GET' ? '{}' : undefined,
  });
  const set = res.headers.getSetCookie?.() ?? [];
  if (set.length) cookie = set.map((c) => c.split(';')[0]).join('; ');
  const text = await res.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/** The demo's admin account (a throwaway local demo: the password is printed). */
const DEMO_ADMIN = { username: 'admin', password: 'patchman-demo-admin' };

/** If the API wants a login, create the demo admin (first run) and log in. */
async function ensureSession(): Promise<void> {
  const probe = await api('/api/hosts');
  if (probe.status !== 401) return;
  const creds = DEMO_ADMIN;
  await api('/api/setup', { method: 'POST', json: creds });
  const login = await api('/api/auth/login', { method: 'POST', json: creds });
  if (login.status >= 400) throw new Error(`could not log in as the demo admin (${login.status} ${JSON.stringify(login.body)})`);
  say(`logged in as ${creds.username} / ${creds.password}`);
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (stopping) throw new Error('stopping');
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

// ---- the fleet ---------------------------------------------------------------------------

const NICE: Record<ProfileName, { prefix: string; tags: string[] }> = {
  'debian12-security': { prefix: 'web', tags: ['debian', 'web'] },
  'debian12-current': { prefix: 'db', tags: ['debian', 'db'] },
  'ubuntu2404-phased': { prefix: 'app', tags: ['ubuntu', 'app'] },
  'pve8-reboot': { prefix: 'pve', tags: ['proxmox', 'hypervisor'] },
  'pbs3': { prefix: 'backup', tags: ['proxmox', 'backup'] },
  'arch-reboot': { prefix: 'workstation', tags: ['arch', 'desktop'] },
  'rocky9': { prefix: 'rocky', tags: ['rhel', 'app'] },
  'fedora40-reboot': { prefix: 'fedora', tags: ['fedora', 'dev'] },
  'leap15': { prefix: 'suse', tags: ['opensuse', 'files'] },
  'alpine320': { prefix: 'alpine', tags: ['alpine', 'edge'] },
  'pve8-guests': { prefix: 'pvelab', tags: ['proxmox', 'hypervisor'] },
};

function demoHosts(count: number): HostSpec[] {
  const seen = new Map<string, number>();
  const specs: HostSpec[] = [];
  for (let i = 0; i < count; i++) {
    const profile = PROFILE_NAMES[i % PROFILE_NAMES.length];
    const n = (seen.get(profile) ?? 0) + 1;
    seen.set(profile, n);
    specs.push({ name: `${NICE[profile].prefix}-${n}`, profile, latency: { commandMs: latencyMs, jitterMs: latencyMs * 2 } });
  }
  // One machine is switched off.
  if (count > 1) specs[count - 1] = { ...specs[count - 1], name: 'old-nas', failure: 'refuse' };
  return specs;
}

async function main(): Promise<void> {
  say(`state in ${state}${givenState ? '' : ' (temporary)'}; starting PatchMan on ${url}`);
  app = spawn(process.execPath, [join(root, 'scripts', 'start.ts')], {
    cwd: root,
    env: { ...process.env, PORT: String(port), PATCHMAN_STATE: state },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  app.once('exit', (code, signal) => {
    if (!stopping) {
      say(`npm start exited (${signal ?? code})`);
      void stop(1);
    }
  });

  await until('the API (/api/health)', 300_000, async () => (await api('/api/health')).status === 200);
  await ensureSession();
  const relay = await until('the local relay to connect', 120_000, async () => {
    const { body } = await api<any[]>('/api/relays');
    return Array.isArray(body) && body.find((r) => r.connected && r.publicKey);
  });
  say(`relay "${relay.name}" connected; its key: ${relay.publicKey}`);

  const specs = demoHosts(hostCount);
  fleet = await startFleet({ hosts: specs, authorizedKeys: [relay.publicKey], stateDir: join(state, 'sim'), baseAddress: '127.77.0.1', port: simPort });
  say(`${fleet.hosts.length} simulated hosts listening on 127.77.0.x:${simPort}`);

  const existing = (await api<any[]>('/api/hosts')).body ?? [];
  const ids: string[] = [];
  for (const [i, h] of fleet.hosts.entries()) {
    const tags = [...(NICE[h.profile]?.tags ?? []), 'simulated'];
    const found = existing.find((e: any) => e.address === h.address && e.port === h.port);
    if (found) {
      ids.push(found.id);
      continue;
    }
    const res = await api('/api/hosts', {
      method: 'POST',
      json: { name: h.name, address: h.address, port: h.port, user: 'root', monitorOnly: false, tags },
    });
    if (res.status !== 201) throw new Error(`adding ${h.name} failed: ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(res.body.id);
    void i;
  }
  say(`added ${ids.length} hosts`);

  let jobIds: string[] = [];
  const all = await api('/api/scans', { method: 'POST', json: {} });
  if (all.status === 404) {
    for (const id of ids) {
      const r = await api(`/api/hosts/${id}/scan`, { method: 'POST' });
      if (r.body?.jobId) jobIds.push(r.body.jobId);
    }
  } else if (all.status < 300) {
    jobIds = all.body?.jobIds ?? [];
  } else {
    say(`POST /api/scans answered ${all.status}: ${JSON.stringify(all.body)}`);
  }
  say(`started ${jobIds.length} scans`);
  say(`PatchMan demo is running at ${url} — Ctrl-C stops it`);

  // Report how the scans ended (bounded wait), then keep serving.
  const done = await until('scans to finish', 180_000, async () => {
    const jobs = await Promise.all(jobIds.map(async (id) => (await api(`/api/jobs/${id}`)).body));
    return jobs.every((j: any) => j && ['succeeded', 'failed', 'lost', 'cancelled'].includes(j.status)) && jobs;
  }).catch(() => null);
  // the scans wrote today; the days before are made up to lead to it (once per state dir)
  const past = writeHistoryOf(localD1File(join(state, 'wrangler')), { days: HISTORY_DAYS, logs: true });
  if (past.hostDays) say(`gave ${past.hosts.length} hosts ${HISTORY_DAYS} days of history (${past.jobs} upgrades and reboots)`);
  if (done) {
    const hosts = (await api<any[]>('/api/hosts')).body ?? [];
    for (const h of hosts) {
      const what = h.status === 'online' ? `${h.updatesCount ?? '?'} updates (${h.securityCount ?? '?'} security)${h.rebootRequired ? ', reboot needed' : ''}` : `${h.status}${h.statusReason ? ': ' + h.statusReason : ''}`;
      say(`  ${String(h.name).padEnd(14)} ${String(h.os?.name ?? '').padEnd(22)} ${what}`);
    }
  }
  if (fleet.unknownCommands.length) {
    say(`warning: the relay sent ${fleet.unknownCommands.length} command(s) the simulator has no recording for, e.g. ${JSON.stringify(fleet.unknownCommands[0].command.slice(0, 120))}`);
  }
  say(`PatchMan demo is running at ${url} — sign in as ${DEMO_ADMIN.username} / ${DEMO_ADMIN.password} — Ctrl-C stops it`);
}

main().catch((err) => {
  console.error(`[demo] ${err instanceof Error ? err.message : String(err)}`);
  void stop(1);
});
