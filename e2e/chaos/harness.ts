// The fault suite: the Worker (wrangler dev), a relay and a simulated fleet, driven through
// rounds of jobs with faults chosen by a seeded PRNG, and the invariants (invariants.ts)
// checked after every round. The same seed gives the same faults on the same hosts after the
// same delays; what the processes then do with them is timing, so figures may differ a little
// between runs, the verdicts not.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet, type Fleet, type ProfileName } from '../../sim/fleet.ts';
import { simMachine, type SimMachine } from '../../sim/upgrade.ts';
import type { FailureMode } from '../../sim/host.ts';
import { FAULT_KINDS, MAY_LOSE, PROCESS_FAULTS, SCAN_FAULTS, UPGRADE_FAULTS, type FaultKind } from './faults.ts';
import { Prng } from './prng.ts';
import { Rogue } from './rogue.ts';
import { CHAOS_HEARTBEAT_TIMEOUT_MS, Stack, sleep } from './stack.ts';
import { checkRound, type Injected, type JobView, type Violation } from './invariants.ts';

export interface ChaosOptions {
  seed: number;
  rounds: number;
  /** Simulated hosts (default 6). */
  hosts?: number;
  /** Faults per round (default 4); kinds are drawn so that every kind comes up in turn. */
  faultsPerRound?: number;
  /** Only these kinds. */
  kinds?: FaultKind[];
  /** How long the relay stays frozen (ms); must pass the Worker's heartbeat timeout. */
  freezeMs?: number;
  /** How long an upgrade runs on a simulated host (ms). */
  runMs?: number;
  /** Longest wait for the round's jobs to end once its faults are cleared (ms). */
  settleMs?: number;
  log?: (line: string) => void;
}

export interface Figures {
  seed: number;
  rounds: number;
  hosts: number;
  faults: Record<FaultKind, number>;
  faultsTotal: number;
  jobs: number;
  byStatus: Record<string, number>;
  /** Terminal states that do not match what happened on the host. */
  misreported: number;
  /** `lost` without a fault that makes the outcome unknowable. */
  lostUnexpected: number;
  lostExpected: number;
  stuck: number;
  logLinesLost: number;
  logLinesDuplicated: number;
  overlappingChanges: number;
  rogueMessages: number;
  rogueReachedD1: number;
  /** From a relay SIGKILL to its restarted process being connected again (ms). */
  relayReconnectMs: number[];
  /** From a relay SIGKILL until every job that was out on it had ended (ms). */
  relayRecoverMs: number[];
  violations: Violation[];
  durationMs: number;
}

const PROFILES: ProfileName[] = ['debian12-security', 'ubuntu2404-phased', 'arch-reboot', 'pve8-reboot'];
/** Failure modes a host fault sets for its job's duration. */
const HOST_MODE: Partial<Record<FaultKind, FailureMode>> = {
  'ssh-drop-scan': 'drop',
  'host-silent': 'hang-command',
  'sshd-refusing': 'refuse',
  'disk-full': 'disk-full',
};

interface HostInfo {
  id: string;
  name: string;
  profile: ProfileName;
  machine: SimMachine;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'lost']);
/** Jobs a rogue volley forges messages for: those out now first (the list is newest first). */
const ROGUE_TARGETS = 20;

export async function runChaos(o: ChaosOptions): Promise<Figures> {
  const began = Date.now();
  const log = o.log ?? (() => {});
  const rng = new Prng(o.seed);
  const kinds = o.kinds ?? [...FAULT_KINDS];
  const perRound = o.faultsPerRound ?? 4;
  const runMs = o.runMs ?? 4000;
  const settleMs = o.settleMs ?? 120_000;
  // past the heartbeat timeout and the hub's alarm that acts on it
  const freezeMs = o.freezeMs ?? CHAOS_HEARTBEAT_TIMEOUT_MS + 4_000;
  const fig: Figures = {
    seed: o.seed,
    rounds: o.rounds,
    hosts: o.hosts ?? 6,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    faultsTotal: 0,
    jobs: 0,
    byStatus: {},
    misreported: 0,
    lostUnexpected: 0,
    lostExpected: 0,
    stuck: 0,
    logLinesLost: 0,
    logLinesDuplicated: 0,
    overlappingChanges: 0,
    rogueMessages: 0,
    rogueReachedD1: 0,
    relayReconnectMs: [],
    relayRecoverMs: [],
    violations: [],
    durationMs: 0,
  };

  const simState = mkdtempSync(join(tmpdir(), 'patchman-chaos-sim-'));
  let stack: Stack | null = null;
  let fleet: Fleet | null = null;
  let rogue: Rogue | null = null;
  // Ctrl-C: stop the Worker, the relay (thawed) and the fleet rather than leave them behind.
  const interrupted = () => {
    void Promise.all([fleet?.stop(), stack?.stop()]).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    stack = await Stack.start();
    const s = stack;
    log(`worker on ${s.url}, state ${s.state}`);
    const relay = await waitFor(async () => {
      const r = await s.relayConnected();
      return r.connected && r.publicKey ? r : null;
    }, 60_000, 'the relay to connect');
    fleet = await startFleet({
      hosts: Array.from({ length: fig.hosts }, (_, i) => ({ name: `chaos-${i + 1}`, profile: PROFILES[i % PROFILES.length] })),
      authorizedKeys: [relay.publicKey!],
      stateDir: simState,
      // an address block of its own, apart from the e2e fleet's
      baseAddress: `127.91.${o.seed % 200}.1`,
    });
    const hosts: HostInfo[] = [];
    for (const h of fleet.hosts) {
      const machine = simMachine(h.name);
      machine.runMs = runMs;
      machine.downMs = 1500;
      const res = await s.api('/api/hosts', { method: 'POST', json: { name: h.name, address: h.address, port: h.port, user: 'root', relayId: s.relayId, monitorOnly: false } });
      if (res.status !== 201) throw new Error(`add host: ${res.status} ${JSON.stringify(res.body)}`);
      hosts.push({ id: res.body.id, name: h.name, profile: h.profile, machine });
    }
    // A first scan with no faults: every host known, its pending list in D1.
    const first = await s.api('/api/scans', { method: 'POST', json: {} });
    await settle(s, first.body.jobIds, 120_000);

    const seenTerminal = new Map<string, string>();
    let bag: FaultKind[] = [];
    const draw = (): FaultKind => {
      if (bag.length === 0) bag = rng.shuffle(kinds);
      return bag.pop()!;
    };

    for (let round = 1; round <= o.rounds; round++) {
      const since = Date.now();
      // The round's faults: host faults each on a host of its own, process faults at most once.
      const chosen: FaultKind[] = [];
      for (let i = 0; i < perRound; i++) {
        const k = draw();
        if (PROCESS_FAULTS.includes(k) && chosen.includes(k)) continue;
        chosen.push(k);
      }
      const free = rng.shuffle(hosts);
      const injected: Injected[] = [];
      const hostFault = new Map<string, FaultKind>();
      for (const k of chosen) {
        if (PROCESS_FAULTS.includes(k)) continue;
        const h = free.pop();
        if (!h) continue;
        hostFault.set(h.id, k);
      }
      // One job per host: what its fault needs, else a scan or (one time in two) an upgrade.
      const jobs = new Map<string, { host: HostInfo; kind: 'scan' | 'upgrade' }>();
      const submit: (() => Promise<void>)[] = [];
      // (a rogue relay needs jobs out on the other relay to forge: one upgrade at least)
      const mustUpgrade = chosen.includes('rogue-relay') ? hosts.find((h) => !hostFault.has(h.id)) : undefined;
      for (const h of hosts) {
        const f = hostFault.get(h.id);
        let kind: 'scan' | 'upgrade' = f ? (UPGRADE_FAULTS.includes(f) ? 'upgrade' : SCAN_FAULTS.includes(f) ? 'scan' : rng.pick(['scan', 'upgrade'] as const)) : rng.pick(['scan', 'upgrade'] as const);
        if (h === mustUpgrade) kind = 'upgrade';
        const selective = kind === 'upgrade' && (h.profile === 'debian12-security' || h.profile === 'ubuntu2404-phased') && rng.next() < 0.6;
        const pick = rng.next();
        if (f && HOST_MODE[f]) await fleet.setFailure(h.name, HOST_MODE[f]!);
        if (f === 'host-slow') h.machine.host!.latency = { commandMs: rng.int(1000, 2000), connectMs: 500 };
        submit.push(async () => {
          let res;
          if (kind === 'scan') res = await s.api(`/api/hosts/${h.id}/scan`, { method: 'POST', json: {} });
          else {
            let packages: string[] | undefined;
            if (selective) {
              const pending = (await s.api<{ name: string }[]>(`/api/hosts/${h.id}/updates`)).body ?? [];
              if (pending.length) packages = [pending[Math.floor(pick * pending.length)].name];
            }
            res = await s.api(`/api/hosts/${h.id}/upgrade`, { method: 'POST', json: { confirm: true, ...(packages ? { packages } : {}) } });
          }
          if (res.status >= 300) throw new Error(`${kind} on ${h.name}: ${res.status} ${JSON.stringify(res.body)}`);
          jobs.set(res.body.jobId, { host: h, kind });
        });
      }
      log(`round ${round}: faults ${chosen.join(', ')}`);
      for (const [hostId, k] of hostFault) injected.push({ kind: k, hostId, at: Date.now(), until: null });
      await Promise.all(submit.map((f) => f()));
      const jobIds = [...jobs.keys()];

      // Host faults during the run.
      const actions: Promise<void>[] = [];
      for (const [hostId, k] of hostFault) {
        const h = hosts.find((x) => x.id === hostId)!;
        const jobId = [...jobs].find(([, j]) => j.host.id === hostId)![0];
        if (k === 'ssh-drop-upgrade') {
          const times = rng.int(1, 3);
          const delays = Array.from({ length: times }, () => rng.int(300, runMs - 300)).sort((a, b) => a - b);
          actions.push(
            (async () => {
              await waitRunStarted(h.machine, jobId, 30_000);
              const t0 = Date.now();
              for (const d of delays) {
                await sleep(Math.max(0, t0 + d - Date.now()));
                h.machine.host!.dropConnections();
              }
            })(),
          );
        }
        if (k === 'host-reboot') {
          const d = rng.int(500, runMs - 500);
          actions.push(
            (async () => {
              await waitRunStarted(h.machine, jobId, 30_000);
              await sleep(d);
              h.machine.reboot();
            })(),
          );
        }
      }
      // Process faults, at a random moment in the first seconds of the round.
      const inFlight = async () => (await listJobs(s, since)).filter((j) => !TERMINAL.has(j.status));
      // (one after the other: a rogue relay cannot connect to a Worker that is restarting)
      // (the rogue first: after a Worker restart the round's jobs may all have ended)
      const processFaults = [...chosen.filter((c) => c === 'rogue-relay'), ...chosen.filter((c) => PROCESS_FAULTS.includes(c) && c !== 'rogue-relay')].map((k) => ({ k, delay: rng.int(300, Math.max(400, runMs - 500)), pause: rng.int(300, 2000), replays: rng.int(2, 5) }));
      actions.push(
        (async () => {
          for (const { k, delay, pause, replays } of processFaults) {
            await sleep(delay);
            const at = Date.now();
            const inj: Injected = { kind: k, hostId: null, at, until: null };
            injected.push(inj);
            if (k === 'relay-kill') {
              const out = (await inFlight()).map((j) => j.id);
              await s.killRelay();
              await sleep(pause);
              const restarted = Date.now();
              await s.startRelay();
              await waitFor(async () => (await s.relayConnected()).connected, 60_000, 'the relay to reconnect');
              fig.relayReconnectMs.push(Date.now() - restarted);
              await waitFor(async () => {
                const all = await listJobs(s, since);
                return out.every((id) => TERMINAL.has(all.find((j) => j.id === id)?.status ?? '')) ? true : null;
              }, settleMs, 'the jobs out on the killed relay to end');
              fig.relayRecoverMs.push(Date.now() - at);
            } else if (k === 'relay-freeze') {
              s.freezeRelay();
              await sleep(freezeMs);
              s.thawRelay();
            } else if (k === 'worker-restart') {
              await s.restartWorker();
            } else if (k === 'rogue-relay') {
              if (!rogue?.open) {
                fig.rogueMessages += rogue?.sent ?? 0;
                rogue?.close();
                rogue = await Rogue.connect(s.url, s.api);
              }
              // the other relay's jobs while they are out on it, and (replayed) the ones already ended
              const mine = (j: ApiJob) => j.relayId === s.relayId;
              await waitFor(async () => (await inFlight()).some(mine), 15_000, 'a job out on the relay').catch(() => {});
              const before = rogue.sent;
              // (a bounded volley: a flood of thousands of messages a second stalls the local
              // Worker past the suite's short heartbeat timeout — see docs/RELIABILITY.md)
              for (let volley = 0; volley < 3; volley++) {
                const targets = (await listJobs(s, volley === 0 ? since - 600_000 : since)).filter(mine).slice(0, ROGUE_TARGETS);
                await rogue.attack(targets.map((j) => ({ id: j.id, logBytes: j.logBytes })), replays);
                await sleep(400);
              }
              fig.rogueMessages += rogue.sent - before;
            }
            inj.until = Date.now();
          }
        })(),
      );
      await Promise.all(actions);

      // Clear the host faults once their job has ended (or after a while: a silent host's
      // scan ends by the relay's command timeout).
      await waitFor(async () => {
        const all = await listJobs(s, since);
        for (const [hostId] of hostFault) {
          const id = [...jobs].find(([, j]) => j.host.id === hostId)![0];
          if (!TERMINAL.has(all.find((j) => j.id === id)?.status ?? '')) return null;
        }
        return true;
      }, 90_000, 'the faulted jobs to end').catch(() => {});
      for (const [hostId, k] of hostFault) {
        const h = hosts.find((x) => x.id === hostId)!;
        if (HOST_MODE[k]) await fleet.setFailure(h.name, null);
        if (k === 'host-slow') h.machine.host!.latency = {};
        const inj = injected.find((i) => i.hostId === hostId);
        if (inj) inj.until = Date.now();
      }

      // Every job of the round (and the rescans the Worker added) must end.
      const ended = await settle(s, null, settleMs, since);
      const views: JobView[] = [];
      for (const j of ended) views.push({ ...j, log: (await s.api(`/api/jobs/${j.id}`)).body.log as string });
      const hostRows = (await s.api<any[]>('/api/hosts')).body;
      const allJobs = await listJobs(s, 0);
      const result = checkRound({ round, jobs: views, allJobs, hosts: hostRows, machines: new Map(hosts.map((h) => [h.id, h.machine])), injected, seenTerminal, mayLose: MAY_LOSE });
      for (const k of chosen) fig.faults[k]++;
      fig.faultsTotal += chosen.length;
      fig.jobs += views.length;
      for (const j of views) fig.byStatus[j.status] = (fig.byStatus[j.status] ?? 0) + 1;
      fig.misreported += result.misreported;
      fig.lostUnexpected += result.lostUnexpected;
      fig.lostExpected += result.lostExpected;
      fig.stuck += result.stuck;
      fig.logLinesLost += result.logLinesLost;
      fig.logLinesDuplicated += result.logLinesDuplicated;
      fig.overlappingChanges += result.overlappingChanges;
      fig.rogueReachedD1 += result.rogueReached;
      fig.violations.push(...result.violations);
      log(`round ${round}: ${views.length} jobs (${summarise(views)}), ${result.violations.length} violation(s)`);
      for (const v of result.violations) log(`  ✗ ${v.invariant}: ${v.detail}`);
      if (result.violations.length) log(`what the Worker and the relay said last:\n${s.output().split('\n').slice(-60).join('\n')}`);
      if (jobIds.length === 0) throw new Error('no jobs were started');
    }
  } catch (err) {
    if (stack) log(stack.output().slice(-6000));
    throw err;
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    (rogue as Rogue | null)?.close(); // (set inside the fault closures)
    await fleet?.stop();
    await stack?.stop();
    rmSync(simState, { recursive: true, force: true });
  }
  fig.durationMs = Date.now() - began;
  return fig;
}

function summarise(jobs: JobView[]): string {
  const by: Record<string, number> = {};
  for (const j of jobs) by[`${j.kind} ${j.status}`] = (by[`${j.kind} ${j.status}`] ?? 0) + 1;
  return Object.entries(by)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
}

export type ApiJob = Omit<JobView, 'log'>;

async function listJobs(s: Stack, since: number): Promise<ApiJob[]> {
  const res = await s.api<ApiJob[]>(`/api/jobs?limit=500&since=${encodeURIComponent(new Date(since).toISOString())}`);
  if (res.status !== 200) throw new Error(`jobs: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Wait until these jobs (null: every job created since `since`, the Worker's follow-up
 * rescans included) have ended; those still going after `ms` come back as they are. */
async function settle(s: Stack, ids: string[] | null, ms: number, since = 0): Promise<ApiJob[]> {
  const end = Date.now() + ms;
  for (;;) {
    let all: ApiJob[] = [];
    try {
      all = await listJobs(s, since);
    } catch {
      // the Worker is restarting
    }
    const mine = ids ? all.filter((j) => ids.includes(j.id)) : all;
    const done = mine.length > 0 && mine.every((j) => TERMINAL.has(j.status));
    if (done) {
      // a finished change queues its rescan a moment later: look once more
      await sleep(1500);
      const again = await listJobs(s, since);
      const mine2 = ids ? again.filter((j) => ids.includes(j.id)) : again;
      if (mine2.every((j) => TERMINAL.has(j.status))) return mine2;
    }
    if (Date.now() > end) return mine;
    await sleep(500);
  }
}

async function waitRunStarted(m: SimMachine, runId: string, ms: number): Promise<void> {
  await waitFor(async () => m.runs.has(runId) || null, ms, `run ${runId} to start`).catch(() => {});
}

export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      // (the Worker may be restarting)
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
