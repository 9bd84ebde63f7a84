// `npm run bench:scan`: scan 100 real sshd hosts and 1,000 simulated hosts through ONE relay
// process (the bundle, relay/dist/patchman-relay.cjs) driven by a small fake Worker
// WebSocket server, and the same commands at the same parallelism with OpenSSH's client via
// parallel-ssh (Debian package pssh) as the baseline. Prints a table and writes JSON.
//
//   node bench/scan.ts [--sizes 100,1000] [--concurrency 32] [--op scan|probe] [--rounds 2]
//                      [--no-pssh] [--out bench/results.json] [--profile DIR]
//
// Per run: wall time from the first request sent to the last response; the relay's CPU
// (utime+stime from /proc/<pid>/stat) and peak RSS (VmHWM, reset between rounds through
// /proc/<pid>/clear_refs); for parallel-ssh, the whole process tree's CPU (parallel-ssh's
// Python and every ssh client: /usr/bin/time counts waited-for descendants) as its CPU
// figure, and beside it the ssh clients' own CPU and max RSS (a wrapper runs each one under
// /usr/bin/time). Relay and parallel-ssh rounds are interleaved (relay first in odd rounds,
// parallel-ssh first in even ones: ABBA) so that a machine whose load changes over the run
// treats both alike, and the machine's idle CPU is measured for 1 s before every round and
// recorded. Round 1 is "cold" (every host key is new: the relay pins it, ssh writes
// known_hosts); later rounds are "warm". Everything listens on 127.0.0.0/8 only, and every loop is bounded.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { FakeWorker, cpuTimes, idleShare, loadAverage, procStatus, resetPeakRss, type Outcome } from './fake-worker.ts';
import { loadOrCreateKeyPair } from '../relay/keys.ts';
import { startSshdFleet, type SshdFleet } from './sshd-fleet.ts';
import { benchScript, type PmGroup } from '../sim/commands.ts';

const root = resolve(import.meta.dirname, '..');

// ---- options ----------------------------------------------------------------------------

const argv = process.argv.slice(2);
function opt(name: string, d: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : d;
}
const sizes = opt('sizes', '100,1000').split(',').map(Number);
const concurrency = Number(opt('concurrency', '32'));
const op = opt('op', 'scan') as 'scan' | 'probe';
const rounds = Math.max(1, Number(opt('rounds', '2')));
const withPssh = !argv.includes('--no-pssh');
const outFile = resolve(opt('out', join(root, 'bench', 'results.json')));
/** Write a V8 CPU profile of the relay process per phase into this dir (node --cpu-prof). */
const profileDir = argv.includes('--profile') ? resolve(opt('profile', join(root, 'bench', 'profiles'))) : null;
const REQUEST_TIMEOUT_MS = 600_000;
const RUN_DEADLINE_MS = 20 * 60_000; // a run that takes longer than this is abandoned

function log(line: string): void {
  console.log(`[bench] ${line}`);
}

// ---- the relay process ---------------------------------------------------------------------

interface Target {
  name: string;
  address: string;
  port: number;
  profile?: string;
}

interface RunResult {
  tool: 'relay' | 'parallel-ssh';
  hosts: number;
  round: number;
  wallSeconds: number;
  hostsPerSecond: number;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  /** The relay's CPU, or the sum of the ssh clients' CPU. */
  cpuSeconds: number;
  cpuMsPerHost: number;
  /** parallel-ssh only: the ssh clients alone (cpuSeconds is the whole tree: python + ssh clients). */
  sshCpuSeconds?: number;
  /** The machine's idle CPU share in the second before the round (shared machine), and its load average. */
  idleBefore: number;
  loadBefore: string;
  /** Relay: VmHWM of the relay process. parallel-ssh: largest single ssh client. */
  peakRssMB: number;
  /** parallel-ssh only: sum of all ssh clients' max RSS (an upper bound for the concurrent total). */
  summary?: string;
}

interface RelayProcess {
  pid: number;
  log: () => string;
  stop: () => Promise<void>;
}

async function startRelay(worker: FakeWorker, dataDir: string): Promise<RelayProcess> {
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const relay: ChildProcess = spawn(process.execPath, [...nodeArgs, join(root, 'relay', 'dist', 'patchman-relay.cjs')], {
    env: {
      ...process.env,
      PATCHMAN_URL: `http://127.0.0.1:${worker.port}`,
      PATCHMAN_RELAY_TOKEN: 'pmr_bench_token_0123456789',
      PATCHMAN_DATA_DIR: dataDir,
      PATCHMAN_CONCURRENCY: String(concurrency),
      PATCHMAN_CONNECT_TIMEOUT: '60',
      PATCHMAN_COMMAND_TIMEOUT: '600',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let relayLog = '';
  relay.stdout!.on('data', (d) => (relayLog = (relayLog + d).slice(-20_000)));
  relay.stderr!.on('data', (d) => (relayLog = (relayLog + d).slice(-20_000)));
  const stop = async () => {
    relay.kill('SIGTERM');
    await new Promise((r) => (relay.exitCode !== null ? r(null) : relay.once('exit', r)));
  };
  try {
    await worker.hello(30_000);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${relayLog.slice(-3000)}`);
  }
  await new Promise((r) => setTimeout(r, 300)); // welcome processed
  return { pid: relay.pid!, log: () => relayLog, stop };
}

async function relayRound(worker: FakeWorker, relay: RelayProcess, targets: Target[], round: number): Promise<RunResult> {
  const pid = relay.pid;
  const loadBefore = loadAverage();
  const idleBefore = await idleShare();
  resetPeakRss(pid);
  const times0 = cpuTimes(pid);
  const cpu0 = times0.user + times0.sys;
  const t0 = performance.now();
  let maxRss = procStatus(pid, 'VmRSS');
  const sampler = setInterval(() => {
    try {
      maxRss = Math.max(maxRss, procStatus(pid, 'VmRSS'));
    } catch {
      /* exited */
    }
  }, 50);
  let outcomes: Outcome[];
  try {
    outcomes = await Promise.race([
      Promise.all(
        targets.map((t, i) => worker.request(`r${round}-${i}`, op, { target: { address: t.address, port: t.port, user: 'root' }, ...(op === 'scan' ? { refresh: false } : {}) })),
      ),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('relay run deadline')), RUN_DEADLINE_MS).unref()),
    ]);
  } catch (err) {
    log(`relay run failed: ${(err as Error).message}\n${relay.log().slice(-3000)}`);
    throw err;
  } finally {
    clearInterval(sampler);
  }
  const wall = (performance.now() - t0) / 1000;
  const times1 = cpuTimes(pid);
  const cpu = times1.user + times1.sys - cpu0;
  const userSys = `user ${(times1.user - times0.user).toFixed(2)} s + sys ${(times1.sys - times0.sys).toFixed(2)} s`;
  const hwm = procStatus(pid, 'VmHWM');
  const failures: Record<string, number> = {};
  for (const o of outcomes) if (!o.ok) failures[o.code ?? '?'] = (failures[o.code ?? '?'] ?? 0) + 1;
  const ok = outcomes.filter((o) => o.ok).length;
  const firstFailure = outcomes.find((o) => !o.ok);
  if (firstFailure) log(`relay: first failure: ${firstFailure.code}: ${firstFailure.message}`);
  log(`relay   ${targets.length} hosts round ${round}: ${wall.toFixed(2)} s, ${ok} ok, CPU ${cpu.toFixed(2)} s (${userSys}), peak RSS ${(Math.max(hwm, maxRss) / 1048576).toFixed(1)} MB, idle before ${(idleBefore * 100).toFixed(0)} %`);
  return {
    tool: 'relay',
    hosts: targets.length,
    round,
    wallSeconds: wall,
    hostsPerSecond: targets.length / wall,
    ok,
    failed: targets.length - ok,
    failures,
    cpuSeconds: cpu,
    cpuMsPerHost: (cpu * 1000) / targets.length,
    peakRssMB: Math.max(hwm, maxRss) / 1048576,
    summary: summarise(outcomes),
    idleBefore,
    loadBefore,
  };
}

function summarise(outcomes: Outcome[]): string {
  const byOs = new Map<string, { n: number; updates: number; reboot: number }>();
  for (const o of outcomes) {
    if (!o.ok) continue;
    const probe = o.result?.probe ?? o.result;
    const os = `${probe?.os?.id ?? '?'}${probe?.proxmox ? '/' + probe.proxmox.product : ''}`;
    const e = byOs.get(os) ?? { n: 0, updates: 0, reboot: 0 };
    e.n++;
    e.updates += o.result?.updates?.length ?? 0;
    e.reboot += o.result?.reboot?.required ? 1 : 0;
    byOs.set(os, e);
  }
  return [...byOs].map(([os, e]) => `${os}×${e.n}` + (op === 'scan' ? ` (${e.updates} updates, ${e.reboot} reboot)` : '')).join(', ');
}

// ---- parallel-ssh ---------------------------------------------------------------------------

interface PsshStart {
  pending: Promise<unknown>;
  t0: number;
  procs: Array<{ group: PmGroup; hosts: Target[]; outDir: string; errDir: string; timing: string }>;
  timesFile: string;
}

function psshRun(targets: Target[], groups: Map<PmGroup, Target[]>, keyPath: string, work: string, round: number): PsshStart {
  const timesFile = join(work, `ssh-times-${targets.length}-${round}.txt`);
  const knownHosts = join(work, `known_hosts-${targets.length}`);
  rmSync(timesFile, { force: true });
  if (round === 1) rmSync(knownHosts, { force: true });
  const bin = join(work, 'bin');
  mkdirSync(bin, { recursive: true });
  // Every ssh client runs under /usr/bin/time: its own user+sys CPU and max RSS, one line each.
  writeFileSync(join(bin, 'ssh'), `#!/bin/sh\nexec /usr/bin/time -a -o "$PMBENCH_SSH_TIMES" -f '%U %S %M' /usr/bin/ssh "$@"\n`);
  chmodSync(join(bin, 'ssh'), 0o755);

  // One parallel-ssh per package-manager group, all at once, splitting the parallelism.
  const procs: PsshStart['procs'] = [];
  const t0 = performance.now();
  const children: Array<Promise<void>> = [];
  for (const [group, hosts] of groups) {
    if (hosts.length === 0) continue;
    const par = Math.max(1, Math.round((concurrency * hosts.length) / targets.length));
    const hostsFile = join(work, `hosts-${group}-${targets.length}`);
    writeFileSync(hostsFile, hosts.map((h) => `${h.address}:${h.port}`).join('\n') + '\n');
    const scriptFile = join(work, `script-${group}.sh`);
    writeFileSync(scriptFile, benchScript(group, op));
    const outDir = join(work, `out-${group}-${targets.length}-${round}`);
    const errDir = join(work, `err-${group}-${targets.length}-${round}`);
    const timing = join(work, `pssh-time-${group}-${targets.length}-${round}.txt`);
    const args = [
      '-f', '%e %U %S %M',
      '-o', timing,
      'parallel-ssh',
      '-h', hostsFile,
      '-l', 'root',
      '-p', String(par),
      '-t', String(REQUEST_TIMEOUT_MS / 1000),
      '-o', outDir,
      '-e', errDir,
      '-I',
      '-O', 'KexAlgorithms=curve25519-sha256',
      '-O', 'BatchMode=yes',
      '-O', 'IdentitiesOnly=yes',
      '-O', `UserKnownHostsFile=${knownHosts}`,
      '-O', 'StrictHostKeyChecking=accept-new',
      '-O', 'ConnectTimeout=60',
      '-x', `-i ${keyPath}`,
      'env LC_ALL=C LANG=C /bin/sh -s',
    ];
    procs.push({ group, hosts, outDir, errDir, timing });
    children.push(
      new Promise<void>((resolveRun) => {
        const c = spawn('/usr/bin/time', args, {
          env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, PMBENCH_SSH_TIMES: timesFile },
          stdio: [Buffer.byteLength(readFileSync(scriptFile)) ? 'pipe' : 'ignore', 'ignore', 'pipe'],
        });
        c.stdin?.end(readFileSync(scriptFile));
        c.stderr!.resume();
        const t = setTimeout(() => c.kill('SIGKILL'), RUN_DEADLINE_MS);
        c.on('exit', () => {
          clearTimeout(t);
          resolveRun();
        });
      }),
    );
  }
  return { pending: Promise.all(children), t0, procs, timesFile };
}

async function psshRound(targets: Target[], groups: Map<PmGroup, Target[]>, keyPath: string, work: string, round: number): Promise<RunResult> {
  {
    const loadBefore = loadAverage();
    const idleBefore = await idleShare();
    const started = psshRun(targets, groups, keyPath, work, round);
    await started.pending;
    const wall = (performance.now() - started.t0) / 1000;
    let tree = 0;
    let ok = 0;
    const failures: Record<string, number> = {};
    for (const p of started.procs) {
      const t = readFileSync(p.timing, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
      tree += t[1] + t[2];
      for (const h of p.hosts) {
        const out = join(p.outDir, `${h.address}:${h.port}`);
        const text = existsSync(out) ? readFileSync(out, 'utf8') : '';
        if (text.includes('\n@@end')) ok++;
        else {
          const err = existsSync(join(p.errDir, `${h.address}:${h.port}`)) ? readFileSync(join(p.errDir, `${h.address}:${h.port}`), 'utf8') : '';
          const why = /refused/i.test(err) ? 'refused' : /timed out/i.test(err) ? 'timeout' : 'failed';
          failures[why] = (failures[why] ?? 0) + 1;
        }
      }
    }
    const lines = existsSync(started.timesFile) ? readFileSync(started.timesFile, 'utf8').trim().split('\n').filter((l) => /^[\d.]+ [\d.]+ \d+$/.test(l)) : [];
    let sshCpu = 0;
    let maxRss = 0;
    for (const l of lines) {
      const [u, s, m] = l.split(' ').map(Number);
      sshCpu += u + s;
      maxRss = Math.max(maxRss, m * 1024);
    }
    log(`pssh    ${targets.length} hosts round ${round}: ${wall.toFixed(2)} s, ${ok} ok, tree CPU ${tree.toFixed(2)} s (ssh clients ${sshCpu.toFixed(2)} s), largest ssh RSS ${(maxRss / 1048576).toFixed(1)} MB, idle before ${(idleBefore * 100).toFixed(0)} %`);
    return {
      tool: 'parallel-ssh',
      hosts: targets.length,
      round,
      wallSeconds: wall,
      hostsPerSecond: targets.length / wall,
      ok,
      failed: targets.length - ok,
      failures,
      cpuSeconds: tree,
      cpuMsPerHost: (tree * 1000) / targets.length,
      sshCpuSeconds: sshCpu,
      peakRssMB: maxRss / 1048576,
      summary: `${lines.length} ssh clients`,
      idleBefore,
      loadBefore,
    };
  }
}

// ---- hosts ---------------------------------------------------------------------------------

async function simFleet(count: number, pubKey: string, work: string): Promise<{ hosts: Target[]; stop: () => Promise<void>; pid: number }> {
  const out = join(work, `sim-${count}.json`);
  const child = spawn(
    process.execPath,
    [join(root, 'sim', 'fleet.ts'), '--count', String(count), '--base', '127.89.0.1', '--authorized-key', pubKey, '--state', join(work, 'sim-state'), '--out', out],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const deadline = Date.now() + 120_000;
  while (!existsSync(out)) {
    if (child.exitCode !== null) throw new Error('the simulated fleet exited');
    if (Date.now() > deadline) throw new Error('the simulated fleet did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 200));
  const hosts = JSON.parse(readFileSync(out, 'utf8')) as Target[];
  return {
    hosts,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

function groupOf(profile: string | undefined): PmGroup {
  return profile?.startsWith('arch') ? 'pacman' : 'apt';
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (withPssh && spawnSync('parallel-ssh', ['--version']).status !== 0) {
    throw new Error('parallel-ssh is missing: apt-get install -y pssh (or pass --no-pssh)');
  }
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is missing: apt-get install -y time');
  log('building the relay bundle');
  execFileSync(process.execPath, [join(root, 'scripts', 'build-relay.ts')], { cwd: root, stdio: 'inherit' });

  const work = mkdtempSync(join(tmpdir(), 'patchman-bench-'));
  const worker = new FakeWorker(concurrency, REQUEST_TIMEOUT_MS);
  await worker.listening();
  const all: RunResult[] = [];
  const started = new Date();
  try {
    for (const size of sizes) {
      const dataDir = join(work, `relay-${size}`);
      const key = await loadOrCreateKeyPair(dataDir);
      const real = size <= 100;
      log(`--- ${size} hosts (${real ? 'real OpenSSH sshd' : 'simulated, sim/fleet.ts'}), ${op}, concurrency ${concurrency}`);
      let sshd: SshdFleet | undefined;
      let sim: Awaited<ReturnType<typeof simFleet>> | undefined;
      let targets: Target[];
      if (real) {
        sshd = await startSshdFleet({ count: size, baseAddress: '127.88.0.1', port: 2222, authorizedKeys: [key.publicKey] });
        targets = sshd.hosts.map((h) => ({ ...h, profile: 'debian12-local' }));
      } else {
        sim = await simFleet(size, key.publicKey, work);
        targets = sim.hosts;
      }
      try {
        const groups = new Map<PmGroup, Target[]>([['apt', []], ['pacman', []]]);
        for (const t of targets) groups.get(groupOf(t.profile))!.push(t);
        const relay = await startRelay(worker, dataDir);
        try {
          // interleaved, ABBA: relay first in odd rounds, parallel-ssh first in even ones
          for (let round = 1; round <= rounds; round++) {
            const steps = [() => relayRound(worker, relay, targets, round), ...(withPssh ? [() => psshRound(targets, groups, join(dataDir, 'id_ed25519'), work, round)] : [])];
            if (round % 2 === 0) steps.reverse();
            for (const step of steps) all.push(await step());
          }
        } finally {
          await relay.stop();
        }
      } finally {
        await sshd?.stop();
        await sim?.stop();
      }
    }
  } finally {
    worker.close();
    rmSync(work, { recursive: true, force: true });
  }

  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${readFileSync('/etc/os-release', 'utf8').match(/PRETTY_NAME="([^"]+)"/)?.[1]}, Node ${process.versions.node}, ${execFileSync('ssh', ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) || spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim()}`;
  writeFileSync(outFile, JSON.stringify({ date: started.toISOString(), machine, op, concurrency, rounds, command: `node bench/scan.ts ${argv.join(' ')}`.trim(), results: all }, null, 2) + '\n');
  console.log('\n| hosts | round | tool | idle before | wall s | hosts/s | ok | CPU s | CPU ms/host | peak RSS MB |');
  console.log('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of all) {
    console.log(
      `| ${r.hosts} | ${r.round === 1 ? '1 (cold)' : `${r.round} (warm)`} | ${r.tool} | ${(r.idleBefore * 100).toFixed(0)} % (load ${r.loadBefore}) | ${r.wallSeconds.toFixed(2)} | ${r.hostsPerSecond.toFixed(1)} | ${r.ok}/${r.hosts} | ${r.cpuSeconds.toFixed(2)}${r.sshCpuSeconds !== undefined ? ` (tree; ssh clients ${r.sshCpuSeconds.toFixed(2)})` : ''} | ${r.cpuMsPerHost.toFixed(1)} | ${r.peakRssMB.toFixed(1)} |`,
    );
  }
  console.log(`\nmachine: ${machine}\nwritten to ${outFile}`);
}

main().catch((err) => {
  console.error(`[bench] ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
