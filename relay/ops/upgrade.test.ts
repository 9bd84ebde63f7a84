// The upgrade operation against simulated hosts (sim/): the relay's real runUpgrade, over
// real SSH (ssh2 on both ends), against hosts that run the upgrade as a detached run and
// change their state when it succeeds. The logs are real apt output (sim/fixtures/README.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { UpgradeResult, type OperationParams, type OperationResult } from '../../protocol/relay.ts';
import { startFleet, type Fleet, type FleetHost } from '../../sim/fleet.ts';
import { aptListWithout, simMachine } from '../../sim/upgrade.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import { PACMAN_FULL_ONLY } from '../pkg/pacman.ts';
import { monitorOnlyPolicy } from '../policy.ts';
import type { OpContext } from './context.ts';
import { runScan } from './scan.ts';
import { PROXMOX_FULL_ONLY, runUpgrade } from './upgrade.ts';

type Params = OperationParams<'upgrade'>;
type Result = OperationResult<'upgrade'>;

let tmp: string;
let key: KeyPair;
let knownHosts: KnownHosts;
let fleet: Fleet;

const HOSTS = [
  { name: 'u-full', profile: 'debian12-security' },
  { name: 'u-select', profile: 'debian12-security' },
  { name: 'u-ubuntu', profile: 'ubuntu2404-phased' },
  { name: 'u-arch', profile: 'arch-reboot' },
  { name: 'u-pve', profile: 'pve8-reboot' },
  { name: 'u-lock', profile: 'debian12-security', failure: 'lock-held' },
  { name: 'u-lock-arch', profile: 'arch-reboot', failure: 'lock-held' },
  { name: 'u-dpkg', profile: 'debian12-security', failure: 'dpkg-interrupted' },
  { name: 'u-sudo', profile: 'debian12-security', failure: 'sudo-password' },
  { name: 'u-sudo-late', profile: 'debian12-security' },
  { name: 'u-drop', profile: 'debian12-security', failure: 'drop-during-run' },
  { name: 'u-restart', profile: 'debian12-security' },
  { name: 'u-twice', profile: 'debian12-security' },
  { name: 'u-rewind', profile: 'debian12-security' },
  { name: 'u-never', profile: 'debian12-current' },
  { name: 'u-monitor', profile: 'debian12-security' },
] as const;

function host(name: string): FleetHost {
  const h = fleet.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name}`);
  return h;
}

function target(name: string, user = 'root') {
  const h = host(name);
  return { address: h.address, port: h.port, user };
}

function params(name: string, runId: string, extra: Partial<Params> = {}, user = 'root'): Params {
  return { target: target(name, user), runId, resume: false, offset: 0, ...extra };
}

interface Collected {
  ctx: OpContext;
  /** Log text with its byte ranges, in the order it arrived. */
  chunks: { text: string; from: number; to: number }[];
  /** The relay's own lines (no range). */
  notes: string[];
  data(): string;
}

function newCtx(extra: Partial<OpContext> = {}): Collected {
  const chunks: Collected['chunks'] = [];
  const notes: string[] = [];
  const ctx: OpContext = {
    privateKey: key.privateKey,
    knownHosts,
    connectTimeoutMs: 5000,
    pollIntervalMs: 20,
    runs: new Map(),
    output: (text, range) => (range ? chunks.push({ text, ...range }) : notes.push(text)),
    ...extra,
  };
  return { ctx, chunks, notes, data: () => chunks.map((c) => c.text).join('') };
}

async function upgradeError(p: Promise<unknown>): Promise<OpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error('expected the upgrade to fail');
}

/** dpkg prints `libssl3:amd64` for Multi-Arch: same packages; apt-get -s prints `libssl3`. */
const plain = (name: string): string => name.replace(/:[a-z0-9-]+$/, '');

async function pending(name: string) {
  const r = await runScan({ target: target(name), refresh: false }, { privateKey: key.privateKey, knownHosts });
  // The host's rewritten `apt-get -s` output must still read as apt's (counts agree).
  expect(r.warnings).toEqual([]);
  return new Map(r.updates.map((u) => [u.name, u]));
}

/** The ranges arrived in order, without gaps or overlaps, from `start` to `end`. */
function expectContiguous(chunks: Collected['chunks'], start: number, end: number): void {
  let at = start;
  for (const c of chunks) {
    expect(c.from).toBe(at);
    expect(c.to).toBeGreaterThan(c.from);
    at = c.to;
  }
  expect(at).toBe(end);
}

function simLog(name: string, runId: string): Buffer {
  const run = simMachine(name).runs.get(runId);
  if (!run) throw new Error(`the simulated host ${name} has no run ${runId}`);
  return run.log;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-upgrade-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  knownHosts = KnownHosts.open(join(tmp, 'relay'));
  fleet = await startFleet({ hosts: HOSTS.map((h) => ({ ...h })), authorizedKeys: [key.publicKey], stateDir: join(tmp, 'sim'), baseAddress: '127.93.0.1' });
});

afterAll(async () => {
  await fleet?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('upgrade on simulated apt hosts', () => {
  it('a full upgrade changes every pending package from its version to the new one, streams apt\'s log, and a rescan finds nothing left', async () => {
    const before = await pending('u-full');
    expect(before.size).toBe(120);
    const c = newCtx();
    const r = await runUpgrade(params('u-full', 'job-full'), c.ctx);
    expect(v.safeParse(UpgradeResult, r).success).toBe(true);
    expect(r).toMatchObject({ packageManager: 'apt', mode: 'full', exitCode: 0, warnings: [], reboot: { required: false } });
    expect(r.changes).toHaveLength(before.size);
    for (const ch of r.changes) {
      const u = before.get(plain(ch.name));
      expect(u, ch.name).toBeDefined();
      expect(ch).toEqual({ name: ch.name, from: u!.currentVersion, to: u!.newVersion });
    }
    // The log arrived whole, once, in order; it is apt's.
    const log = simLog('u-full', 'job-full');
    expect(c.data()).toBe(log.toString('utf8'));
    expectContiguous(c.chunks, 0, log.length);
    expect(r.logBytes).toBe(log.length);
    expect(c.data()).toMatch(/^\$ apt-get -y -q -o DPkg::Lock::Timeout=120 .* dist-upgrade\nReading package lists\.\.\.\n/);
    expect(c.data()).toContain('120 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\nNeed to get 168 MB/203 MB of archives.');
    expect(c.data()).toContain('Setting up libssl3:amd64 (');
    expect(c.notes.join('')).toContain('full upgrade started on root@');

    const after = await pending('u-full');
    expect(after.size).toBe(0);
  });

  it('a selective upgrade of zip prints the real recorded apt log and changes only zip', async () => {
    const before = await pending('u-select');
    const c = newCtx();
    const r = await runUpgrade(params('u-select', 'job-zip', { packages: ['zip'] }), c.ctx);
    expect(r).toMatchObject({ mode: 'selective', exitCode: 0, changes: [{ name: 'zip', from: '3.0-13', to: '3.0-13+deb12u1' }] });
    // Recorded on this project's Debian 12 machine through the relay's own startRun.
    expect(c.data()).toBe(readFileSync(join(import.meta.dirname, '../../sim/fixtures/debian12-local/run-install-zip.log'), 'utf8'));
    const after = await pending('u-select');
    expect([...after.keys()].sort()).toEqual([...before.keys()].filter((n) => n !== 'zip').sort());
  });

  it('a selective upgrade of two packages changes those two and nothing else', async () => {
    const before = await pending('u-select');
    const c = newCtx();
    const r = await runUpgrade(params('u-select', 'job-two', { packages: ['unzip', 'python3-jwt'] }), c.ctx);
    expect(r.changes).toEqual([
      { name: 'python3-jwt', from: before.get('python3-jwt')!.currentVersion, to: before.get('python3-jwt')!.newVersion },
      { name: 'unzip', from: before.get('unzip')!.currentVersion, to: before.get('unzip')!.newVersion },
    ]);
    expect(c.data()).toContain('2 upgraded, 0 newly installed, 0 to remove and 117 not upgraded.');
    expect(c.data()).toContain('Unpacking unzip (6.0-28+deb12u1) over (6.0-28) ...');
    const after = await pending('u-select');
    expect(after.size).toBe(before.size - 2);
    for (const [name, u] of after) expect(u).toEqual(before.get(name));
  });

  it('Ubuntu: a full upgrade installs the upgradable packages and leaves the phased ones pending', async () => {
    const r = await runUpgrade(params('u-ubuntu', 'job-ubuntu'), newCtx().ctx);
    expect(r.changes.map((c) => c.name).sort()).toEqual(['bluez', 'bluez-cups', 'bluez-obexd', 'code', 'libbluetooth3', 'screen-resolution-extra']);
    const after = await runScan({ target: target('u-ubuntu'), refresh: false }, { privateKey: key.privateKey, knownHosts });
    expect(after.updates).toEqual([]);
    expect(after.held).toHaveLength(7);
    expect(after.warnings).toEqual([]);
  });
});

describe('upgrades that are refused or fail', () => {
  it('pacman refuses a selective upgrade (Arch supports only full upgrades) and starts nothing', async () => {
    const m = simMachine('u-arch');
    const err = await upgradeError(runUpgrade(params('u-arch', 'job-arch-sel', { packages: ['linux'] }), newCtx().ctx));
    expect(err.code).toBe('invalid-request');
    expect(err.message).toBe(PACMAN_FULL_ONLY);
    expect(m.ran('run-start')).toHaveLength(0);
  });

  it('pacman: the full upgrade (pacman -Syu) changes every pending package; the new kernel still needs a reboot', async () => {
    const before = await pending('u-arch');
    expect(before.size).toBe(5);
    const c = newCtx();
    const r = await runUpgrade(params('u-arch', 'job-arch'), c.ctx);
    expect(r).toMatchObject({ packageManager: 'pacman', mode: 'full', exitCode: 0 });
    expect(r.changes).toEqual([...before.values()].map((u) => ({ name: u.name, from: u.currentVersion, to: u.newVersion })).sort((a, b) => a.name.localeCompare(b.name)));
    expect(c.data()).toMatch(/^\$ pacman -Syu --noconfirm --noprogressbar --color never\n:: Synchronizing package databases\.\.\./);
    expect(r.reboot.required).toBe(true);
    expect(r.reboot.reason).toMatch(/installed: 5\.4\.7-arch1-1/);
    expect((await pending('u-arch')).size).toBe(0);
    // checkupdates (a refreshing scan) agrees: exit 2, nothing to list.
    const refreshed = await runScan({ target: target('u-arch'), refresh: true }, { privateKey: key.privateKey, knownHosts });
    expect(refreshed).toMatchObject({ updates: [], warnings: [] });
  });

  it('Proxmox VE refuses a selective upgrade; the full upgrade works', async () => {
    const err = await upgradeError(runUpgrade(params('u-pve', 'job-pve-sel', { packages: ['zip'] }), newCtx().ctx));
    expect(err).toMatchObject({ code: 'invalid-request', message: PROXMOX_FULL_ONLY });
    expect(simMachine('u-pve').ran('run-start')).toHaveLength(0);
    const r = await runUpgrade(params('u-pve', 'job-pve'), newCtx().ctx);
    expect(r).toMatchObject({ mode: 'full', exitCode: 0, reboot: { required: true } });
    expect(r.changes).toHaveLength(120);
  });

  it('a held dpkg lock fails as "locked" in plain words, with apt\'s real message in the log, and changes nothing', async () => {
    const c = newCtx();
    const err = await upgradeError(runUpgrade(params('u-lock', 'job-lock'), c.ctx));
    expect(err.code).toBe('lock-held');
    expect(err.exitCode).toBe(100);
    expect(err.message).toMatch(/^Another package manager run on root@127\.93\.\S+ holds the dpkg lock \(held by process \d+, python3\); apt-get waited 2 minutes for it and gave up\. Nothing was changed\./);
    expect(c.data()).toContain('E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?');
    expect((await pending('u-lock')).size).toBe(120);
  });

  it('a held pacman lock fails as "locked" too', async () => {
    const err = await upgradeError(runUpgrade(params('u-lock-arch', 'job-lock-arch'), newCtx().ctx));
    expect(err).toMatchObject({ code: 'lock-held', exitCode: 1 });
    expect(err.message).toMatch(/could not lock its database/);
  });

  it('an interrupted dpkg fails as "interrupted-transaction", telling what to run', async () => {
    const c = newCtx();
    const err = await upgradeError(runUpgrade(params('u-dpkg', 'job-dpkg'), c.ctx));
    expect(err).toMatchObject({ code: 'interrupted-transaction', exitCode: 100 });
    expect(err.message).toContain('dpkg --configure -a');
    expect(c.data()).toContain("E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.");
  });

  it('sudo that wants a password: refused before anything starts', async () => {
    const err = await upgradeError(runUpgrade(params('u-sudo', 'job-sudo', {}, 'admin'), newCtx().ctx));
    expect(err.code).toBe('sudo-password');
    expect(simMachine('u-sudo').ran('run-start')).toHaveLength(0);
  });

  it('sudo that starts asking for a password after the probe: the run fails with sudo\'s message, reported as sudo-password', async () => {
    const m = simMachine('u-sudo-late');
    const flip = (e: { kind: string }) => {
      if (e.kind === 'probe') void fleet.setFailure('u-sudo-late', 'sudo-password');
    };
    m.onExec.push(flip);
    try {
      const c = newCtx();
      const err = await upgradeError(runUpgrade(params('u-sudo-late', 'job-sudo-late', {}, 'admin'), c.ctx));
      expect(err).toMatchObject({ code: 'sudo-password', exitCode: 1 });
      expect(c.data()).toBe("$ sudo -n apt-get -y -q -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o APT::Get::Show-Versions=1 dist-upgrade\nsudo: a password is required\n");
      expect(m.ran('run-start')).toHaveLength(1);
    } finally {
      m.onExec.splice(m.onExec.indexOf(flip), 1);
      await fleet.setFailure('u-sudo-late', null);
    }
  });

  it('the relay refuses a monitor-only host; nothing at all reaches it', async () => {
    const t = target('u-monitor');
    const err = await upgradeError(runUpgrade(params('u-monitor', 'job-monitor'), newCtx({ monitorOnly: monitorOnlyPolicy(`self,${t.address}`) }).ctx));
    expect(err.code).toBe('monitor-only');
    expect(err.message).toContain('PATCHMAN_MONITOR_ONLY');
    expect(simMachine('u-monitor').execs).toEqual([]);
  });
});

describe('re-attaching', () => {
  it('SSH drops mid-upgrade: the relay re-attaches, the run completes, every log byte arrives exactly once', async () => {
    simMachine('u-drop').runMs = 600;
    const c = newCtx();
    const r = await runUpgrade(params('u-drop', 'job-drop'), c.ctx);
    expect(r.exitCode).toBe(0);
    expect(simMachine('u-drop').runs.get('job-drop')!.dropped).toBe(true);
    const notes = c.notes.join('');
    expect(notes).toMatch(/\[patchman\] lost the SSH connection \(.*\); the run goes on on the host, re-attaching…/);
    expect(notes).toContain('[patchman] re-attached to the run');
    const log = simLog('u-drop', 'job-drop');
    expect(c.data()).toBe(log.toString('utf8'));
    expectContiguous(c.chunks, 0, log.length);
    expect(simMachine('u-drop').ran('run-start')).toHaveLength(1);
    expect(r.changes).toHaveLength(120);
  });

  it('a request re-sent after the log was read to its end (its output went to a dropped socket) gets the log again before the answer', async () => {
    const m = simMachine('u-rewind');
    m.runMs = 300;
    const c = newCtx();
    let joined: Promise<Result> | null = null;
    // The Worker re-sends the request (offset 0: it stored nothing) while the relay collects
    // the installed packages, i.e. after its follower had read the whole log.
    m.onExec.push((e) => {
      if (e.kind === 'run-collect' && !joined) joined = runUpgrade(params('u-rewind', 'job-rewind'), c.ctx);
    });
    const r = await runUpgrade(params('u-rewind', 'job-rewind'), c.ctx);
    expect(joined).not.toBeNull();
    expect(await joined!).toEqual(r);
    const log = simLog('u-rewind', 'job-rewind');
    const again = c.chunks.findLastIndex((ch) => ch.from === 0);
    expect(again).toBeGreaterThan(0); // read once, then again from the rewound offset
    expectContiguous(c.chunks.slice(again), 0, log.length);
    expect(m.ran('run-start')).toHaveLength(1);
  });

  it('the relay restarts mid-job: a resumed request with the offset already received completes the same run', async () => {
    const m = simMachine('u-restart');
    m.runMs = 1500;
    // The first relay stops following after ~400 ms (its request deadline).
    const first = newCtx({ requestTimeoutMs: 5_400 });
    const err = await upgradeError(runUpgrade(params('u-restart', 'job-restart'), first.ctx));
    expect(err.code).toBe('lost');
    const received = first.chunks.at(-1)!.to;
    const log = simLog('u-restart', 'job-restart');
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(log.length);

    const second = newCtx(); // a new process: empty runs map
    const r = await runUpgrade(params('u-restart', 'job-restart', { resume: true, offset: received }), second.ctx);
    expect(r.exitCode).toBe(0);
    expect(second.chunks[0].from).toBe(received);
    expectContiguous(second.chunks, received, log.length);
    expect(first.data() + second.data()).toBe(log.toString('utf8'));
    expect(m.ran('run-start')).toHaveLength(1);
    expect(r.changes).toHaveLength(120);
  });

  it('resuming a run that never started: not-started, and nothing is started', async () => {
    const err = await upgradeError(runUpgrade(params('u-never', 'job-never', { resume: true }), newCtx().ctx));
    expect(err.code).toBe('not-started');
    expect(simMachine('u-never').ran('run-start')).toHaveLength(0);
  });

  it('the same run id twice: one run on the host, both requests get its result; sent again later, it re-attaches', async () => {
    const m = simMachine('u-twice');
    const c = newCtx();
    const [a, b] = await Promise.all([runUpgrade(params('u-twice', 'job-twice'), c.ctx), runUpgrade(params('u-twice', 'job-twice'), c.ctx)]);
    expect(b).toBe(a);
    expect(m.ran('run-start')).toHaveLength(1);
    expect(c.ctx.runs!.size).toBe(0);

    const again = newCtx();
    const r: Result = await runUpgrade(params('u-twice', 'job-twice'), again.ctx);
    expect(again.notes.join('')).toContain('the run already exists on the host; following it');
    expect(m.runs.size).toBe(1);
    expect(m.ran('run-start')).toHaveLength(2); // the second start script found the run and did nothing
    expect(r.changes).toEqual(a.changes);
    expect(again.data()).toBe(simLog('u-twice', 'job-twice').toString('utf8'));
  });

  it('sent no command the simulator does not know', () => {
    expect(fleet.unknownCommands).toEqual([]);
  });
});

describe('the simulated pending list', () => {
  const sim = (p: string) => readFileSync(join(import.meta.dirname, '../../sim/fixtures', p), 'utf8');

  it('re-wraps apt\'s name lists exactly as apt does (the recordings come back unchanged)', () => {
    for (const p of ['debian12-local/apt-list.stdout', 'ubuntu2404/apt-list.stdout', 'debian12-current/apt-list.stdout']) expect(aptListWithout(sim(p), new Set())).toBe(sim(p));
  });

  it('drops the upgraded packages\' lines and fixes the counts', () => {
    const text = aptListWithout(sim('ubuntu2404/apt-list.stdout'), new Set(['bluez', 'code']));
    expect(text).not.toMatch(/^(Inst|Conf) (bluez|code) /m);
    expect(text).toContain('The following packages will be upgraded:\n  bluez-cups bluez-obexd libbluetooth3 screen-resolution-extra\n');
    expect(text).toContain('4 upgraded, 0 newly installed, 0 to remove and 7 not upgraded.');
  });
});
