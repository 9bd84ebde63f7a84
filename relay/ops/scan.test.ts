// The scan operation against the real sshd on this machine (Debian 12 with real pending
// updates): what it reports must be exactly what apt-get says locally, computed here
// independently of the relay's parser.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { ScanResult } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import { startSshd, type Sshd } from '../test/sshd.ts';
import type { OpContext } from './context.ts';
import { runScan } from './scan.ts';

// ---- the independent view of this machine ------------------------------------------------

interface Pending {
  old: string | null;
  new: string;
  security: boolean;
}

/** `apt-get -s dist-upgrade` run here, in the C locale. */
function localSimulation(): string {
  return execFileSync('apt-get', ['-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade'], {
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** A deliberately simple reading of Inst lines: name, `[old]` if present, the first word in
 * the parentheses, and whether the parentheses mention a -security origin. */
function pendingOf(text: string): Map<string, Pending> {
  const out = new Map<string, Pending>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('Inst ')) continue;
    const words = line.split(' ');
    const hasOld = words[2].startsWith('[');
    const paren = line.slice(line.indexOf('('));
    out.set(words[1], {
      old: hasOld ? words[2].slice(1, -1) : null,
      new: words[hasOld ? 3 : 2].slice(1),
      security: paren.slice(0, paren.indexOf(')')).includes('-security'),
    });
  }
  return out;
}

function pendingOfResult(r: v.InferOutput<typeof ScanResult>): Map<string, Pending> {
  return new Map(r.updates.map((u) => [u.name, { old: u.currentVersion, new: u.newVersion, security: u.security }]));
}

/** Reboot state computed here: the flag file, else `sort -V` over /boot/vmlinuz-*. */
function localReboot(): { required: boolean; known: boolean } {
  if (existsSync('/run/reboot-required')) return { required: true, known: true };
  const kernels = existsSync('/boot') ? readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')) : [];
  if (kernels.length === 0) return { required: false, known: true }; // no kernel of its own
  const running = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const newest = execFileSync('sort', ['-V'], { input: kernels.map((k) => k.slice('vmlinuz-'.length)).join('\n') + '\n', encoding: 'utf8' }).trim().split('\n').pop();
  // Flavour subtleties (several flavours of one version) are the parser's business; here only
  // the plain cases count.
  return { required: newest !== running, known: kernels.length === 1 || newest === running };
}

/** Scan, and the local listing taken around it; retried if the lists changed meanwhile. */
async function scanAndCompare(run: () => Promise<v.InferOutput<typeof ScanResult>>): Promise<{ result: v.InferOutput<typeof ScanResult>; local: Map<string, Pending> }> {
  for (let attempt = 0; ; attempt++) {
    const before = localSimulation();
    const result = await run();
    const after = localSimulation();
    if (before === after || attempt === 2) return { result, local: pendingOf(after) };
  }
}

// ---- setup ----------------------------------------------------------------------------------

let tmp: string;
let key: KeyPair;
let noPm: KeyPair;
let sshd: Sshd;
let ctx: OpContext;
const target = (user: string) => ({ address: '127.0.0.1', port: sshd.port, user });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-scan-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  noPm = await loadOrCreateKeyPair(join(tmp, 'nopm'));
  // A host with no package manager we know: a forced command that prints such a probe.
  const fake = join(tmp, 'probe-alpine-like.txt');
  writeFileSync(
    fake,
    '\n@@patchman-probe 1\n\n@@os-release\nID=exotic\nNAME="Exotic Linux"\nPRETTY_NAME="Exotic Linux 1"\n\n@@kernel\n6.1.0\n\n@@arch\nx86_64\n\n@@hostname\nexotic\n\n@@boot-id\nx\n\n@@uptime\n1.0 1.0\n\n@@package-managers\nbrew\n\n@@proxmox\n\n@@docker\nno\n\n@@privilege\nroot\n\n@@end\n',
  );
  sshd = await startSshd({ authorizedKeys: [key.publicKey, `command="cat ${fake}" ${noPm.publicKey}`] });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')) };
});
afterAll(async () => {
  await sshd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

// ---- root --------------------------------------------------------------------------------------

describe('scan through the real sshd, as root', () => {
  // Generous limits: apt-get -s takes seconds, minutes when the machine is busy.
  it('returns exactly what apt-get -s dist-upgrade lists here, with the same security classification', { timeout: 600_000 }, async () => {
    const { result, local } = await scanAndCompare(() => runScan({ target: target('root'), refresh: false }, { ...ctx, commandTimeoutMs: 300_000 }));
    expect(v.safeParse(ScanResult, result).success).toBe(true);
    expect(result.packageManager).toBe('apt');
    expect(result.probe.privilege).toBe('root');
    expect(result.warnings).toEqual([]);
    expect(pendingOfResult(result)).toEqual(local);
    expect(new Set(result.updates.filter((u) => u.security).map((u) => u.name))).toEqual(new Set([...local].filter(([, p]) => p.security).map(([n]) => n)));
    expect(result.updates.every((u) => u.repository !== '' && u.arch !== '')).toBe(true);

    const expectReboot = localReboot();
    if (expectReboot.known) expect(result.reboot.required).toBe(expectReboot.required);
    if (!result.reboot.required) expect(result.reboot.reason).toBeNull();
    console.info(
      `[scan] ${result.probe.os.prettyName}: ${result.updates.length} updates, ${result.updates.filter((u) => u.security).length} security, ` +
        `${result.updates.filter((u) => u.currentVersion === null).length} new, ${result.held.length} held; reboot ${JSON.stringify(result.reboot)}`,
    );
  });

  it('refreshes the lists first when asked (real apt-get update against the mirrors)', { timeout: 600_000 }, async () => {
    const { result, local } = await scanAndCompare(() => runScan({ target: target('root'), refresh: true }, { ...ctx, commandTimeoutMs: 300_000 }));
    expect(v.safeParse(ScanResult, result).success).toBe(true);
    // The mirrors may be unreachable; then the scan still succeeds, saying so.
    for (const w of result.warnings) expect(w).toMatch(/^(Refreshing the package lists failed|Some package lists could not be refreshed)/);
    expect(pendingOfResult(result)).toEqual(local);
    console.info(`[scan refresh] ${result.updates.length} updates, ${result.updates.filter((u) => u.security).length} security; warnings ${JSON.stringify(result.warnings)}`);
  });

  it('a host with no supported package manager is a result, not an error', { timeout: 120_000 }, async () => {
    const r = await runScan({ target: target('root'), refresh: true }, { ...ctx, privateKey: noPm.privateKey });
    expect(r).toMatchObject({ packageManager: null, updates: [], held: [], reboot: { required: false, reason: null } });
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^unsupported OS: Exotic Linux 1 has no package manager PatchMan knows/);
    expect(v.safeParse(ScanResult, r).success).toBe(true);
  });
});

// ---- non-root users ----------------------------------------------------------------------------

// Unique per run: the unit project may run in several checkouts at once on one machine.
// (sudo ignores sudoers.d files whose names contain a dot, so none here.)
const SUDO_USER = `pmtest${process.pid}`;
const PLAIN_USER = `pmtest${process.pid}n`;
const SUDOERS = `/etc/sudoers.d/patchman-${SUDO_USER}`;
// The suite runs as root with sudo installed (.ci/run installs it): these are requirements,
// not options — a machine without them fails here instead of silently testing less.
if (process.getuid?.() !== 0 || !existsSync('/usr/bin/sudo') || !existsSync('/usr/sbin/useradd')) {
  throw new Error('scan.test.ts needs root, /usr/bin/sudo and useradd (apt-get install sudo)');
}

function removeUsers(): void {
  for (const u of [SUDO_USER, PLAIN_USER]) {
    try {
      execFileSync('userdel', [u], { stdio: 'ignore' });
    } catch {
      /* not there */
    }
  }
  rmSync(SUDOERS, { force: true });
}

describe('scan through the real sshd, as users that are not root', () => {
  beforeAll(() => {
    for (const u of [SUDO_USER, PLAIN_USER]) {
      execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', u]);
      execFileSync('usermod', ['-p', '*', u]); // not locked (sshd refuses locked accounts), no password
    }
    writeFileSync(SUDOERS, `${SUDO_USER} ALL=(root) NOPASSWD: /usr/bin/apt-get\n`, { mode: 0o440 });
    execFileSync('visudo', ['-cf', SUDOERS]);
    // sshd reads authorized_keys as the user logging in.
    chmodSync(sshd.dir, 0o711);
    chmodSync(join(sshd.dir, 'authorized_keys'), 0o644);
  });
  afterAll(() => removeUsers());

  it('passwordless sudo for apt-get only: privilege "sudo", same list, refresh through sudo -n', { timeout: 600_000 }, async () => {
    const { result, local } = await scanAndCompare(() => runScan({ target: target(SUDO_USER), refresh: false }, { ...ctx, commandTimeoutMs: 300_000 }));
    expect(result.probe.privilege).toBe('sudo');
    expect(pendingOfResult(result)).toEqual(local);

    const refreshed = await runScan({ target: target(SUDO_USER), refresh: true }, { ...ctx, commandTimeoutMs: 300_000 });
    for (const w of refreshed.warnings) expect(w).toMatch(/^(Refreshing the package lists failed|Some package lists could not be refreshed)/);
    expect(refreshed.warnings.join(' ')).not.toMatch(/sudo/);
    expect(pendingOfResult(refreshed)).toEqual(pendingOf(localSimulation()));
  });

  it('no sudo rights: the list works, a refresh fails as sudo-password with a readable message', { timeout: 600_000 }, async () => {
    const { result, local } = await scanAndCompare(() => runScan({ target: target(PLAIN_USER), refresh: false }, { ...ctx, commandTimeoutMs: 300_000 }));
    expect(result.probe.privilege).toBe('sudo-password');
    expect(pendingOfResult(result)).toEqual(local);

    const err = await runScan({ target: target(PLAIN_USER), refresh: true }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpError);
    expect((err as OpError).code).toBe('sudo-password');
    expect((err as OpError).message).toMatch(/"apt-get" must run as root, but sudo on this host asks for a password/);
    expect((err as OpError).message).not.toMatch(/\n|at .*\.ts/);
    console.info(`[scan ${PLAIN_USER}] ${(err as OpError).message}`);
  });
});
