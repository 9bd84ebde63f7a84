// The upgrade operation's aptMode (a policy's `upgrade` instead of `dist-upgrade`) through a
// real OpenSSH sshd on this machine: both ends validate it, and a request the relay must
// refuse is refused before anything runs on the host. A real whole-system `apt-get upgrade`
// runs on a throw-away Debian root with real pending updates (relay/test/debian-root.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { UpgradeParams } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import type { OpContext } from './context.ts';
import { runUpgrade } from './upgrade.ts';
import { startSshd, type Sshd } from '../test/sshd.ts';
import { aptOn } from '../test/apt-local.ts';
import { overlayRoot } from '../test/debian-root.ts';

let tmp: string;
let sshd: Sshd;
let ctx: OpContext;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-apt-mode-'));
  const key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')), runs: new Map(), pollIntervalMs: 300, requestTimeoutMs: 60_000 };
});

afterAll(async () => {
  await sshd?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('upgrade aptMode', () => {
  const target = () => ({ address: '127.0.0.1', port: sshd.port, user: process.env.USER === 'root' || process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root') });

  it('the protocol accepts dist-upgrade and upgrade, nothing else', () => {
    const base = { target: { address: '127.0.0.1', port: 22, user: 'root' }, runId: 'r1' };
    expect(v.safeParse(UpgradeParams, { ...base, aptMode: 'upgrade' }).success).toBe(true);
    expect(v.safeParse(UpgradeParams, { ...base, aptMode: 'dist-upgrade' }).success).toBe(true);
    expect(v.safeParse(UpgradeParams, { ...base, aptMode: 'full-upgrade; reboot' }).success).toBe(false);
    expect(v.safeParse(UpgradeParams, { ...base, aptMode: true }).success).toBe(false);
  });

  it('aptMode upgrade with named packages is refused on the real host before any run starts', async () => {
    const runId = `aptmode${process.pid}`;
    let err: unknown;
    try {
      await runUpgrade({ target: target(), runId, packages: ['zip'], aptMode: 'upgrade', resume: false, offset: 0 }, ctx);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OpError);
    expect((err as OpError).code).toBe('invalid-request');
    expect((err as OpError).message).toMatch(/aptMode "upgrade" is for whole-system upgrades/);
    // nothing was started: the session's HOME (the sshd's) holds no run script for it
    expect(existsSync(join(sshd.dir, 'home', '.cache', 'patchman', 'runs', `${runId}.sh`))).toBe(false);
  });

  it('a whole-system upgrade in mode "upgrade" installs every pending update of a real Debian root, exactly as apt planned', { timeout: 600_000 }, async () => {
    const root = await overlayRoot();
    const rootSshd = await startSshd({ authorizedKeys: [(await loadOrCreateKeyPair(join(tmp, 'relay'))).publicKey], chroot: root.dir });
    try {
      const apt = aptOn(root.dir);
      const planned = apt.aptSimulation();
      expect(planned.size).toBeGreaterThan(0);
      const result = await runUpgrade({ target: { address: '127.0.0.1', port: rootSshd.port, user: 'root' }, runId: `whole${process.pid}`, aptMode: 'upgrade', resume: false, offset: 0 }, ctx);
      expect(result).toMatchObject({ packageManager: 'apt', mode: 'full', exitCode: 0 });
      const plain = (n: string) => n.replace(/:\w+$/, '');
      expect(result.changes.map((c) => [plain(c.name), c.from, c.to]).sort()).toEqual([...planned].map(([n, p]) => [n, p.current, p.next]).sort());
      expect(apt.aptSimulation().size).toBe(0);
      for (const [n, p] of planned) expect(apt.dpkgVersion(n), n).toBe(p.next);
    } finally {
      await rootSshd.stop();
      await root.stop();
    }
  });
});
