// The relay's real executeRequest against simulated hosts: every profile gives the expected
// OS, counts and reboot state; every failure mode maps to the right error code; commands the
// simulator has no recording for are answered with exit 127.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKeyPair, type KeyPair } from '../relay/keys.ts';
import { KnownHosts } from '../relay/known-hosts.ts';
import { executeRequest } from '../relay/ops/index.ts';
import type { OpContext } from '../relay/ops/context.ts';
import { openSession } from '../relay/ssh.ts';
import { PROBE, benchScript } from './commands.ts';
import { startFleet, loopbackAddresses, PROFILES, PROFILE_NAMES, type Fleet, type FleetHost, type HostSpec } from './fleet.ts';

let tmp: string;
let key: KeyPair;
let fleet: Fleet;
let ctx: OpContext;

const FAILURES: HostSpec[] = [
  { name: 'f-refuse', profile: 'debian12-current', failure: 'refuse' },
  { name: 'f-hang-connect', profile: 'debian12-current', failure: 'hang-connect' },
  { name: 'f-hang-command', profile: 'debian12-current', failure: 'hang-command' },
  { name: 'f-auth', profile: 'debian12-current', failure: 'auth-refused' },
  { name: 'f-drop', profile: 'debian12-current', failure: 'drop' },
  { name: 'f-sudo', profile: 'debian12-security', failure: 'sudo-password' },
  { name: 'f-hostkey', profile: 'debian12-current' },
  { name: 'slow', profile: 'debian12-current', latency: { commandMs: 400, jitterMs: 50 } },
];

function host(name: string): FleetHost {
  const h = fleet.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name}`);
  return h;
}

function req(op: string, h: FleetHost, extra: Record<string, unknown> = {}, user = 'root', timeoutMs?: number) {
  return {
    type: 'request' as const,
    id: `t-${h.name}`,
    op,
    params: { target: { address: h.address, port: h.port, user }, ...extra },
    ...(timeoutMs ? { timeoutMs } : {}),
  };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-sim-test-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  fleet = await startFleet({
    hosts: [...PROFILE_NAMES.map((profile) => ({ name: profile, profile })), ...FAILURES],
    authorizedKeys: [key.publicKey],
    stateDir: join(tmp, 'sim'),
    baseAddress: '127.91.0.1',
  });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), connectTimeoutMs: 5000 };
});

afterAll(async () => {
  await fleet?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('the fleet', () => {
  it('gives every host its own 127.x.y.z address (never 127.0.0.1) and a stable host key', async () => {
    expect(new Set(fleet.hosts.map((h) => h.address)).size).toBe(fleet.hosts.length);
    for (const h of fleet.hosts) {
      expect(h.address).toMatch(/^127\./);
      expect(h.address).not.toBe('127.0.0.1');
      expect(h.port).toBeGreaterThan(0);
      expect(h.hostKeyFingerprint).toMatch(/^SHA256:/);
    }
    const again = await startFleet({
      hosts: [{ name: 'debian12-current', profile: 'debian12-current' }],
      authorizedKeys: [key.publicKey],
      stateDir: join(tmp, 'sim'),
      baseAddress: '127.91.9.1',
    });
    try {
      expect(again.hosts[0].hostKeyFingerprint).toBe(host('debian12-current').hostKeyFingerprint);
    } finally {
      await again.stop();
    }
  });

  it('hands out consecutive loopback addresses, skipping .0, .255 and 127.0.0.1', async () => {
    expect(loopbackAddresses('127.0.0.0', 3)).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    expect(loopbackAddresses('127.5.0.254', 3)).toEqual(['127.5.0.254', '127.5.1.1', '127.5.1.2']);
    await expect(startFleet({ hosts: [{ profile: 'pbs3', address: '127.0.0.1' }], authorizedKeys: [key.publicKey], stateDir: tmp })).rejects.toThrow(/127\.0\.0\.1/);
  });

  it('answers a command it has no recording for with exit 127 and a stderr line', async () => {
    const h = host('debian12-current');
    const s = await openSession({ address: h.address, port: h.port, user: 'root' }, ctx);
    try {
      const r = await s.exec('apt-get -y dist-upgrade', { timeoutMs: 5000 });
      expect(r.code).toBe(127);
      expect(r.stderr).toMatch(/no recorded output.*apt-get -y dist-upgrade/);
      const withStdin = await s.exec('env LC_ALL=C LANG=C /bin/sh -s', { stdin: 'echo something else\n', timeoutMs: 5000 });
      expect(withStdin.code).toBe(127);
      expect(withStdin.stderr).toMatch(/with this stdin/);
    } finally {
      s.close();
    }
    expect(fleet.unknownCommands.map((u) => u.command)).toContain('apt-get -y dist-upgrade');
    fleet.unknownCommands.length = 0;
  });

  it('answers the OpenSSH baseline\'s one-session script with the recorded outputs in sequence', async () => {
    for (const [name, group] of [['debian12-security', 'apt'], ['arch-reboot', 'pacman']] as const) {
      const h = host(name);
      const s = await openSession({ address: h.address, port: h.port, user: 'root' }, ctx);
      try {
        const r = await s.exec(PROBE.command, { stdin: benchScript(group, 'scan'), timeoutMs: 5000 });
        expect(r.code).toBe(0);
        expect(r.stdout).toContain('@@patchman-probe 1');
        expect(r.stdout).toContain(group === 'apt' ? '@@patchman-reboot-apt 1' : '@@patchman-reboot-pacman 1');
        expect(r.stdout).toContain(group === 'apt' ? ' upgraded, ' : ' -> ');
      } finally {
        s.close();
      }
    }
  });
});

describe('probe through the relay', () => {
  for (const name of PROFILE_NAMES) {
    it(`${name}: ${PROFILES[name].title}`, async () => {
      const h = host(name);
      const res = await executeRequest(req('probe', h), ctx);
      expect(res, JSON.stringify(res)).toMatchObject({ ok: true });
      if (!res.ok) return;
      const p = res.result as any;
      const want = PROFILES[name].expected;
      expect(p.os).toMatchObject(want.os);
      expect(p.hostname).toBe(name);
      // The first one found is the one the relay drives (Rocky and Fedora have yum as well).
      expect(p.packageManagers[0]).toBe(want.packageManager);
      expect(p.proxmox?.product ?? null).toBe(want.proxmox);
      expect(p.privilege).toBe('root');
      expect(p.bootId).toMatch(/^[0-9a-f-]{36}$/);
    });
  }

  it('a non-root login sees privilege sudo, or sudo-password on a host that wants one', async () => {
    const ok = await executeRequest(req('probe', host('debian12-security'), {}, 'admin'), ctx);
    expect(ok).toMatchObject({ ok: true, result: { privilege: 'sudo' } });
    const pw = await executeRequest(req('probe', host('f-sudo'), {}, 'admin'), ctx);
    expect(pw).toMatchObject({ ok: true, result: { privilege: 'sudo-password' } });
  });

  it('waits for the configured latency', async () => {
    const t0 = Date.now();
    const res = await executeRequest(req('probe', host('slow')), ctx);
    expect(res.ok).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
  });

  it('sent no command the simulator does not know', () => {
    expect(fleet.unknownCommands).toEqual([]);
  });
});

describe('scan through the relay', () => {
  for (const name of PROFILE_NAMES) {
    for (const refresh of [true, false]) {
      it(`${name} (refresh ${refresh}): expected counts and reboot state`, async () => {
        const res = await executeRequest(req('scan', host(name), { refresh }), ctx);
        expect(res, JSON.stringify(res).slice(0, 500)).toMatchObject({ ok: true });
        if (!res.ok) return;
        const r = res.result as any;
        const want = PROFILES[name].expected;
        expect(r.probe.os).toMatchObject(want.os);
        expect(r.packageManager).toBe(want.packageManager);
        expect(r.updates.length).toBe(want.updates);
        expect(r.updates.filter((u: any) => u.security).length).toBe(want.security);
        expect(r.held.length).toBe(want.held);
        expect(r.reboot.required).toBe(want.rebootRequired);
        if (want.rebootRequired) expect(r.reboot.reason).toBeTruthy();
        expect(r.warnings).toEqual([]);
      });
    }
  }

  it('Ubuntu: the deferred packages are reported as phased', async () => {
    const res = await executeRequest(req('scan', host('ubuntu2404-phased'), { refresh: false }), ctx);
    expect(res.ok).toBe(true);
    if (res.ok) expect(new Set((res.result as any).held.map((h: any) => h.reason))).toEqual(new Set(['phased']));
  });

  it('a non-root login with passwordless sudo refreshes through sudo -n', async () => {
    const res = await executeRequest(req('scan', host('debian12-security'), { refresh: true }, 'admin'), ctx);
    expect(res).toMatchObject({ ok: true, result: { probe: { privilege: 'sudo' } } });
  });

  it('sent no command the simulator does not know', () => {
    expect(fleet.unknownCommands).toEqual([]);
  });
});

describe('failure modes map to error codes', () => {
  it('refuse → unreachable', async () => {
    const res = await executeRequest(req('probe', host('f-refuse')), ctx);
    expect(res).toMatchObject({ ok: false, error: { code: 'unreachable' } });
    if (!res.ok) expect(res.error.message).toMatch(/refused/);
  });

  it('hang-connect → timeout', async () => {
    const t0 = Date.now();
    const res = await executeRequest(req('probe', host('f-hang-connect')), { ...ctx, connectTimeoutMs: 1000 });
    expect(res).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('hang-command → timeout', async () => {
    const res = await executeRequest(req('probe', host('f-hang-command'), {}, 'root', 1000), ctx);
    expect(res).toMatchObject({ ok: false, error: { code: 'timeout' } });
  });

  it('auth-refused → auth-refused', async () => {
    const res = await executeRequest(req('probe', host('f-auth')), ctx);
    expect(res).toMatchObject({ ok: false, error: { code: 'auth-refused' } });
  });

  it('drop mid-command → unreachable', async () => {
    const res = await executeRequest(req('probe', host('f-drop')), ctx);
    expect(res).toMatchObject({ ok: false, error: { code: 'unreachable' } });
  });

  it('changed host key → host-key-changed (after the first key was pinned)', async () => {
    const h = host('f-hostkey');
    expect(await executeRequest(req('probe', h), ctx)).toMatchObject({ ok: true });
    await fleet.setFailure('f-hostkey', 'host-key-changed');
    const res = await executeRequest(req('probe', h), ctx);
    expect(res).toMatchObject({ ok: false, error: { code: 'host-key-changed' } });
    await fleet.setFailure('f-hostkey', null);
    expect(await executeRequest(req('probe', h), ctx)).toMatchObject({ ok: true });
  });

  it('sudo wants a password → sudo-password (scan as a non-root user)', async () => {
    const res = await executeRequest(req('scan', host('f-sudo'), { refresh: true }, 'admin'), ctx);
    expect(res).toMatchObject({ ok: false, error: { code: 'sudo-password' } });
  });

  it('a refused host comes back when its failure is cleared', async () => {
    await fleet.setFailure('f-refuse', null);
    expect(await executeRequest(req('probe', host('f-refuse')), ctx)).toMatchObject({ ok: true });
    await fleet.setFailure('f-refuse', 'refuse');
    expect(await executeRequest(req('probe', host('f-refuse')), ctx)).toMatchObject({ ok: false, error: { code: 'unreachable' } });
  });
});

describe('dnf, zypper and apk hosts: patched fully and selectively where allowed, reboots reported', () => {
  const upgrade = (h: FleetHost, runId: string, packages?: string[]) => executeRequest(req('upgrade', h, { runId, ...(packages ? { packages } : {}) }, 'root', 120_000), { ...ctx, pollIntervalMs: 20, runs: new Map() });
  const scan = async (h: FleetHost) => {
    const r = await executeRequest(req('scan', h, { refresh: false }), ctx);
    if (!r.ok) throw new Error(JSON.stringify(r));
    return r.result as any;
  };

  it('Rocky: the security update alone, then the rest; the scan follows', async () => {
    const h = host('rocky9');
    const sel = await upgrade(h, 'sim-rocky-sel', ['hello-pm']);
    expect(sel, JSON.stringify(sel)).toMatchObject({ ok: true, result: { packageManager: 'dnf', mode: 'selective', changes: [{ name: 'hello-pm.noarch', from: '1.0-1', to: '1.1-1' }] } });
    const after = await scan(h);
    expect(after.updates.map((u: any) => [u.name, u.security])).toEqual([['other-pm', false]]);
    const full = await upgrade(h, 'sim-rocky-full');
    expect(full).toMatchObject({ ok: true, result: { mode: 'full', changes: [{ name: 'other-pm.noarch', from: '2.0-1', to: '2.1-1' }], reboot: { required: false } } });
    expect((await scan(h)).updates).toEqual([]);
  });

  it('openSUSE Leap: the kernel update makes zypper needs-rebooting say reboot; the reboot clears it', async () => {
    const h = host('leap15');
    const full = await upgrade(h, 'sim-leap-full');
    expect(full, JSON.stringify(full)).toMatchObject({ ok: true, result: { packageManager: 'zypper', mode: 'full', reboot: { required: true, reason: 'zypper needs-rebooting: Core libraries or services have been updated.' } } });
    expect((full as any).result.changes.map((c: any) => c.name)).toEqual(['hello-pm.noarch', 'kernel-default.noarch', 'other-pm.noarch']);
    const rebooted = await executeRequest(req('reboot', h, { runId: 'sim-leap-reboot' }, 'root', 120_000), { ...ctx, rebootRetryMs: 100 });
    expect(rebooted, JSON.stringify(rebooted)).toMatchObject({ ok: true });
    expect((await scan(h)).reboot).toEqual({ required: false, reason: null });
  });

  it('Alpine: single packages are refused (whole system only), the full upgrade works', async () => {
    const h = host('alpine320');
    const sel = await upgrade(h, 'sim-alpine-sel', ['busybox']);
    expect(sel).toMatchObject({ ok: false, error: { code: 'invalid-request' } });
    const full = await upgrade(h, 'sim-alpine-full');
    expect(full, JSON.stringify(full)).toMatchObject({ ok: true, result: { packageManager: 'apk', mode: 'full' } });
    expect((full as any).result.changes).toContainEqual({ name: 'busybox', from: '1.36.1-r28', to: '1.36.1-r29' });
    expect((await scan(h)).updates).toEqual([]);
  });

  it('Fedora: a held rpmdb lock fails the upgrade as lock-held with dnf\'s own words', async () => {
    const h = host('fedora40-reboot');
    await fleet.setFailure(h.name, 'lock-held');
    try {
      const r = await upgrade(h, 'sim-fedora-lock');
      expect(r).toMatchObject({ ok: false, error: { code: 'lock-held', exitCode: 200 } });
    } finally {
      await fleet.setFailure(h.name, null);
    }
  });
});
