// The reboot operation against simulated hosts (sim/): the relay's real runReboot over real
// SSH. A simulated host answers the reboot command, drops off the network, and comes back
// after a while with a new boot id (and its newest kernel).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { RebootResult, type OperationParams } from '../../protocol/relay.ts';
import { startFleet, type Fleet, type FleetHost } from '../../sim/fleet.ts';
import { simMachine } from '../../sim/upgrade.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import { privileged } from '../pkg/shell.ts';
import { monitorOnlyPolicy } from '../policy.ts';
import { openSession } from '../ssh.ts';
import type { OpContext } from './context.ts';
import { REBOOT_COMMAND, runReboot } from './reboot.ts';
import { runScan } from './scan.ts';
import { runUpgrade } from './upgrade.ts';
import { rejectedOpError } from '../test/op-error.ts';

type Params = OperationParams<'reboot'>;

let tmp: string;
let key: KeyPair;
let knownHosts: KnownHosts;
let fleet: Fleet;

const HOSTS = [
  { name: 'b-pve', profile: 'pve8-reboot' },
  { name: 'b-arch', profile: 'arch-reboot' },
  { name: 'b-sudo-ok', profile: 'debian12-security' },
  { name: 'b-noreturn', profile: 'debian12-security', failure: 'reboot-no-return' },
  { name: 'b-sudo', profile: 'debian12-security', failure: 'sudo-password' },
  { name: 'b-monitor', profile: 'debian12-security' },
  { name: 'b-resume', profile: 'debian12-current' },
] as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function host(name: string): FleetHost {
  const h = fleet.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name}`);
  return h;
}

function target(name: string, user = 'root') {
  const h = host(name);
  return { address: h.address, port: h.port, user };
}

function params(name: string, extra: Partial<Params> = {}, user = 'root'): Params {
  return { target: target(name, user), runId: `reboot-${name}`, resume: false, waitSeconds: 30, ...extra };
}

function newCtx(extra: Partial<OpContext> = {}): { ctx: OpContext; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    ctx: { privateKey: key.privateKey, knownHosts, connectTimeoutMs: 2000, rebootRetryMs: 100, pollIntervalMs: 20, runs: new Map(), output: (t) => lines.push(t), ...extra },
  };
}

const opError = rejectedOpError;

async function scan(name: string) {
  return runScan({ target: target(name), refresh: false }, { privateKey: key.privateKey, knownHosts });
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-reboot-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  knownHosts = KnownHosts.open(join(tmp, 'relay'));
  fleet = await startFleet({ hosts: HOSTS.map((h) => ({ ...h })), authorizedKeys: [key.publicKey], stateDir: join(tmp, 'sim'), baseAddress: '127.94.0.1' });
  for (const h of HOSTS) simMachine(h.name).downMs = 400;
});

afterAll(async () => {
  await fleet?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('reboot', () => {
  it('Proxmox VE: goes down, comes back with a new boot id and the new kernel; the reboot is no longer needed', async () => {
    const before = await scan('b-pve');
    expect(before.reboot.required).toBe(true);
    const { ctx, lines } = newCtx();
    const r = await runReboot(params('b-pve'), ctx);
    expect(v.safeParse(RebootResult, r).success).toBe(true);
    expect(r.bootIdBefore).toBe(before.probe.bootId);
    expect(r.bootIdAfter).toMatch(UUID);
    expect(r.bootIdAfter).not.toBe(r.bootIdBefore);
    expect(r.downMs).toBeGreaterThanOrEqual(400);
    expect(r.kernel).toBe('6.8.12-4-pve');
    const out = lines.join('');
    expect(out).toContain(`[patchman] rebooting root@${host('b-pve').address}:${host('b-pve').port} (boot id ${r.bootIdBefore}, kernel 6.8.8-3-pve)\n`);
    expect(out).toMatch(/\[patchman\] root@\S+ is down; waiting for it to come back \(up to 30 s\)\n/);
    expect(out).toMatch(new RegExp(`\\[patchman\\] root@\\S+ is back after \\d+ s \\(boot id ${r.bootIdAfter}, kernel 6\\.8\\.12-4-pve\\)\\n`));
    expect(simMachine('b-pve').ran('reboot').map((e) => e.command)).toEqual(['env LC_ALL=C LANG=C reboot']);

    const after = await scan('b-pve');
    expect(after.probe.bootId).toBe(r.bootIdAfter);
    expect(after.probe.kernel).toBe('6.8.12-4-pve');
    expect(after.reboot).toEqual({ required: false, reason: null });
  });

  it('Arch after a kernel upgrade: the reboot boots the new kernel and clears the reboot flag', async () => {
    await runUpgrade({ target: target('b-arch'), runId: 'arch-up', resume: false, offset: 0 }, newCtx().ctx);
    expect((await scan('b-arch')).reboot.required).toBe(true);
    const r = await runReboot(params('b-arch'), newCtx().ctx);
    expect(r.kernel).toBe('5.4.7-arch1-1');
    const after = await scan('b-arch');
    expect(after.probe.kernel).toBe('5.4.7-arch1-1');
    expect(after.reboot).toEqual({ required: false, reason: null });
  });

  it('a non-root login reboots through sudo -n', async () => {
    const r = await runReboot(params('b-sudo-ok', {}, 'admin'), newCtx().ctx);
    expect(r.bootIdAfter).not.toBe(r.bootIdBefore);
    expect(simMachine('b-sudo-ok').ran('reboot').map((e) => e.command)).toEqual(['env LC_ALL=C LANG=C sudo -n reboot']);
  });

  it('a host that does not come back: host-down after the wait', async () => {
    const m = simMachine('b-noreturn');
    const { ctx, lines } = newCtx();
    const t0 = Date.now();
    // Below the protocol's 5 s minimum to keep the test short; runReboot takes it as given.
    const err = await opError(runReboot(params('b-noreturn', { waitSeconds: 2 }), ctx));
    expect(err.code).toBe('host-down');
    expect(err.message).toMatch(/went down for the reboot and did not come back within 2 s\. Check its console/);
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(lines.join('')).toContain('is down; waiting for it to come back');
    expect(m.ran('reboot')).toHaveLength(1);
    // Clearing the failure brings it back, rebooted.
    const down = m.bootId;
    await fleet.setFailure('b-noreturn', null);
    expect(m.bootId).not.toBe(down);
    expect((await scan('b-noreturn')).probe.bootId).toBe(m.bootId);
  });

  it('sudo that wants a password: sudo-password, and no reboot is sent', async () => {
    const m = simMachine('b-sudo');
    const bootId = m.bootId;
    const err = await opError(runReboot(params('b-sudo', {}, 'admin'), newCtx().ctx));
    expect(err.code).toBe('sudo-password');
    expect(err.message).toMatch(/"reboot" must run as root, but sudo on this host asks for a password/);
    expect(m.ran('reboot')).toEqual([]);
    expect(m.bootId).toBe(bootId);
  });

  it('the relay refuses a monitor-only host; nothing reaches it', async () => {
    const t = target('b-monitor');
    const err = await opError(runReboot(params('b-monitor'), newCtx({ monitorOnly: monitorOnlyPolicy(t.address) }).ctx));
    expect(err.code).toBe('monitor-only');
    expect(simMachine('b-monitor').execs).toEqual([]);
  });
});

describe('a resumed reboot (the relay restarted while the host was down)', () => {
  it('waits for the known boot id to change, without sending another reboot', async () => {
    const m = simMachine('b-resume');
    const before = m.bootId;
    // The first relay sent the reboot, then died.
    const s = await openSession(target('b-resume'), { privateKey: key.privateKey, knownHosts });
    try {
      expect((await s.exec(privileged(REBOOT_COMMAND, 'root'), { timeoutMs: 5000 })).code).toBe(0);
    } finally {
      s.close();
    }
    const { ctx, lines } = newCtx();
    const r = await runReboot(params('b-resume', { resume: true, bootId: before }), ctx);
    expect(r.bootIdBefore).toBe(before);
    expect(r.bootIdAfter).toBe(m.bootId);
    expect(r.bootIdAfter).not.toBe(before);
    expect(lines[0]).toMatch(/^\[patchman\] re-attached: waiting for root@\S+ to come back\n$/);
    expect(m.ran('reboot')).toHaveLength(1);
  });

  it('without the boot id from before, the return cannot be recognised: lost', async () => {
    const err = await opError(runReboot(params('b-resume', { resume: true }), newCtx().ctx));
    expect(err.code).toBe('lost');
  });

  it('sent no command the simulator does not know', () => {
    expect(fleet.unknownCommands).toEqual([]);
  });
});
