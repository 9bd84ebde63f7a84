import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { ProbeResult } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import { startSshd, type Sshd } from '../test/sshd.ts';
import { osFromRelease, parseOsRelease, parsePrivilege, parseProbe, parseProxmox, runProbe, PROBE_SCRIPT, PROBE_COMMAND, withDerivative } from './probe.ts';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

/** A probe output assembled from parts, in the script's format. */
function probeOutput(parts: Partial<Record<string, string>>, opts: { end?: boolean } = {}): string {
  const order = ['os-release', 'kernel', 'arch', 'hostname', 'boot-id', 'uptime', 'package-managers', 'proxmox', 'docker', 'privilege'];
  let out = '\n@@patchman-probe 1\n';
  for (const name of order) out += `\n@@${name}\n${parts[name] ?? ''}`;
  if (opts.end !== false) out += '\n@@end\n';
  return out;
}

describe('parseProbe on fixtures', () => {
  it('parses the output captured from Debian 12 through a real sshd', () => {
    const r = parseProbe(fixture('probe-debian12.txt'));
    expect(r).toEqual({
      os: { id: 'debian', name: 'Debian GNU/Linux', version: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)', idLike: [] },
      kernel: '6.18.44-fc-v782',
      arch: 'x86_64',
      hostname: 'vm',
      bootId: '3694f407-ad61-47f5-b737-069732f597ed',
      uptimeSeconds: 2578.23,
      packageManagers: ['apt'],
      proxmox: null,
      docker: true,
      privilege: 'root',
    });
    expect(v.safeParse(ProbeResult, r).success).toBe(true);
  });

  it('parses Arch Linux (no VERSION_ID) and a Proxmox VE node', () => {
    const arch = parseProbe(
      probeOutput({ 'os-release': fixture('os-release-arch.txt'), 'package-managers': 'pacman\n', docker: 'no\n', uptime: '12.5 3.0\n' }),
    );
    expect(arch.os).toEqual({ id: 'arch', name: 'Arch Linux', version: '', prettyName: 'Arch Linux', idLike: [] });
    expect(arch.packageManagers).toEqual(['pacman']);
    expect(arch.docker).toBe(false);
    expect(arch.uptimeSeconds).toBe(12.5);

    const debianRelease = fixture('probe-debian12.txt').split('@@os-release\n')[1].split('\n@@kernel')[0];
    const pve = parseProbe(
      probeOutput({ 'os-release': debianRelease, 'package-managers': 'apt-get\n', proxmox: 'pve ' + fixture('pveversion-pve8.txt') }),
    );
    expect(pve.os.id).toBe('debian');
    expect(pve.proxmox).toEqual({ product: 'pve', version: '8.2.4' });
  });

  it('reads Proxmox versions from pveversion and proxmox-backup-manager lines', () => {
    expect(parseProxmox([])).toBeNull();
    expect(parseProxmox(['pve ' + fixture('pveversion-pve8.txt').trim()])).toEqual({ product: 'pve', version: '8.2.4' });
    expect(parseProxmox(['pve 8.3.0-1'])).toEqual({ product: 'pve', version: '8.3.0-1' }); // dpkg-query fallback
    expect(parseProxmox(['pbs proxmox-backup-server 3.2.7-1 running version: 3.2.7'])).toEqual({ product: 'pbs', version: '3.2.7' });
    expect(parseProxmox(['pbs 3.2.7-1'])).toEqual({ product: 'pbs', version: '3.2.7-1' });
    // PBS installed on a PVE node: the node is a PVE node.
    expect(parseProxmox(['pve pve-manager/8.2.4/x (running kernel: 6.8.8-3-pve)', 'pbs 3.2.7-1'])?.product).toBe('pve');
    expect(parseProxmox(['pve'])).toEqual({ product: 'pve', version: '' });
  });

  it('ignores what a login shell prints before the begin marker and maps every package manager', () => {
    const out =
      'Welcome to host!\n@@kernel\nnot this one\n' +
      probeOutput({ kernel: '6.1.0\n', 'package-managers': 'zypper\napk\ndnf\nyum\napt-get\npacman\nbrew\n', 'os-release': '' });
    const r = parseProbe(out);
    expect(r.kernel).toBe('6.1.0');
    expect(r.packageManagers).toEqual(['apt', 'pacman', 'dnf', 'yum', 'zypper', 'apk']);
    // No os-release at all: the spec's defaults.
    expect(r.os).toEqual({ id: 'linux', name: 'Linux', version: '', prettyName: 'Linux', idLike: [] });
    // Unsupported OS (no package manager) still parses.
    expect(parseProbe(probeOutput({})).packageManagers).toEqual([]);
  });

  it('reads the privilege section; anything else is the least privilege', () => {
    for (const p of ['root', 'sudo', 'sudo-password', 'no-sudo'] as const) expect(parseProbe(probeOutput({ privilege: `${p}\n` })).privilege).toBe(p);
    expect(parsePrivilege('')).toBe('no-sudo');
    expect(parsePrivilege('ROOT')).toBe('no-sudo');
    expect(parseProbe(probeOutput({})).privilege).toBe('no-sudo');
  });

  it('refuses output without the begin marker or cut short', () => {
    for (const bad of ['hello\n', probeOutput({ kernel: '6.1\n' }, { end: false })]) {
      let err: unknown;
      try {
        parseProbe(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OpError);
      expect((err as OpError).code).toBe('command-failed');
    }
  });
});

describe('parseOsRelease (os-release(5))', () => {
  it('handles quoting, escapes, comments and ID_LIKE', () => {
    const text = [
      '# a comment',
      '  # an indented comment',
      '; also a comment for systemd',
      '',
      'NAME="Fancy \\"Quoted\\" OS"',
      "VERSION='1.0 (single $quotes \\n stay literal)'",
      'ID=fancy',
      'ID_LIKE="rhel  centos fedora"',
      'VERSION_ID=1.0   ',
      'PRETTY_NAME="Fancy \\$HOME \\`tick\\` back\\\\slash \\q"',
      'BUILD_ID=unquoted\\ escaped',
      'BOGUS LINE without equals',
      'CRLF="yes"\r',
      'EMPTY=',
    ].join('\n');
    const vars = parseOsRelease(text);
    expect(vars).toEqual({
      NAME: 'Fancy "Quoted" OS',
      VERSION: '1.0 (single $quotes \\n stay literal)',
      ID: 'fancy',
      ID_LIKE: 'rhel  centos fedora',
      VERSION_ID: '1.0',
      PRETTY_NAME: 'Fancy $HOME `tick` back\\slash \\q',
      BUILD_ID: 'unquoted escaped',
      CRLF: 'yes',
      EMPTY: '',
    });
    expect(osFromRelease(vars)).toEqual({
      id: 'fancy',
      name: 'Fancy "Quoted" OS',
      version: '1.0',
      prettyName: 'Fancy $HOME `tick` back\\slash \\q',
      idLike: ['rhel', 'centos', 'fedora'],
    });
  });

  it('falls back to NAME and VERSION when PRETTY_NAME is missing', () => {
    expect(osFromRelease(parseOsRelease('NAME=Foo\nVERSION="2 (bar)"\nID=foo')).prettyName).toBe('Foo 2 (bar)');
  });
});

describe('the probe script', () => {
  it('interpolates nothing: it is one constant, fed on stdin to a fixed command', () => {
    expect(PROBE_COMMAND).toBe('env LC_ALL=C LANG=C /bin/sh -s');
    expect(PROBE_SCRIPT.startsWith('{\n')).toBe(true);
    expect(PROBE_SCRIPT.trimEnd().endsWith('} </dev/null')).toBe(true);
    // The fallback when /etc/os-release is missing.
    expect(PROBE_SCRIPT).toContain('/usr/lib/os-release');
    // Runs under dash (Debian's /bin/sh) without syntax errors.
    expect(() => execFileSync('/bin/sh', ['-n'], { input: PROBE_SCRIPT })).not.toThrow();
  });
});

// ---- live: a real sshd on this machine ---------------------------------------------------

/** Independent reading of the machine's os-release: just the plain KEY="value" form. */
function osReleaseValue(key: string): string | undefined {
  const text = readFileSync('/etc/os-release', 'utf8');
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
  return m?.[1].replace(/^"(.*)"$/, '$1');
}

describe('runProbe through a real sshd', () => {
  let tmp: string;
  let key: KeyPair;
  let forced: KeyPair;
  let sshd: Sshd;
  let knownHosts: KnownHosts;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'patchman-probe-'));
    key = await loadOrCreateKeyPair(join(tmp, 'relay'));
    forced = await loadOrCreateKeyPair(join(tmp, 'forced'));
    sshd = await startSshd({ authorizedKeys: [key.publicKey, `command="echo this account only says hello" ${forced.publicKey}`] });
    knownHosts = KnownHosts.open(join(tmp, 'relay'));
  });
  afterAll(async () => {
    await sshd?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("returns this machine's os-release, kernel, boot id, hostname and package managers", async () => {
    const r = await runProbe({ target: { address: sshd.address, port: sshd.port, user: 'root' } }, { privateKey: key.privateKey, knownHosts });
    expect(v.safeParse(ProbeResult, r).success).toBe(true);

    expect(r.os.id).toBe(osReleaseValue('ID'));
    expect(r.os.version).toBe(osReleaseValue('VERSION_ID'));
    expect(r.os.prettyName).toBe(osReleaseValue('PRETTY_NAME'));
    expect(r.os.name).toBe(osReleaseValue('NAME'));
    expect(r.kernel).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    expect(r.arch).toBe(execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim());
    expect(r.hostname).toBe(hostname());
    expect(r.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    const uptimeNow = Number.parseFloat(readFileSync('/proc/uptime', 'utf8'));
    expect(r.uptimeSeconds).toBeGreaterThan(0);
    expect(r.uptimeSeconds).toBeLessThanOrEqual(uptimeNow);
    expect(uptimeNow - r.uptimeSeconds).toBeLessThan(60);
    expect(r.packageManagers).toContain('apt');
    let hasDocker = true;
    try {
      execFileSync('/bin/sh', ['-c', 'command -v docker'], { stdio: 'ignore' });
    } catch {
      hasDocker = false;
    }
    expect(r.docker).toBe(hasDocker);
    expect(r.proxmox).toBeNull();
    expect(r.privilege).toBe(process.getuid?.() === 0 ? 'root' : r.privilege);
  });

  it('reports command-failed when the account runs a forced command instead of the script', async () => {
    const err = await runProbe({ target: { address: sshd.address, port: sshd.port, user: 'root' } }, { privateKey: forced.privateKey, knownHosts }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpError);
    expect((err as OpError).code).toBe('command-failed');
    expect((err as OpError).message).toMatch(/not recognised/);
  });
});

describe('derivatives that keep ID=debian', () => {
  const debian = { id: 'debian', name: 'Debian GNU/Linux', version: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)', idLike: [] };
  it('Raspberry Pi OS (/etc/rpi-issue) and DietPi (/boot/dietpi/.version) get their own id', () => {
    expect(withDerivative(debian, ['raspberrypi'])).toEqual({ ...debian, id: 'raspbian', name: 'Raspberry Pi OS', prettyName: 'Raspberry Pi OS (Debian GNU/Linux 12 (bookworm))', idLike: ['debian'] });
    expect(withDerivative(debian, ['raspberrypi', 'dietpi'])).toMatchObject({ id: 'dietpi', name: 'DietPi' });
    expect(withDerivative(debian, [])).toBe(debian);
    expect(withDerivative({ ...debian, id: 'ubuntu' }, ['raspberrypi'])).toMatchObject({ id: 'ubuntu' });
  });

  it('the probe script asks for them, and the section is parsed', () => {
    expect(PROBE_SCRIPT).toContain('section derivative\nif [ -e /etc/rpi-issue ]; then echo raspberrypi; fi');
    const out = `\n@@patchman-probe 1\n\n@@os-release\nID=debian\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n\n@@kernel\n6.6.51+rpt-rpi-v8\n\n@@arch\naarch64\n\n@@hostname\npi\n\n@@boot-id\nx\n\n@@uptime\n1.0 1.0\n\n@@package-managers\napt-get\n\n@@proxmox\n\n@@docker\nno\n\n@@privilege\nroot\n\n@@derivative\nraspberrypi\n\n@@end\n`;
    expect(parseProbe(out).os).toMatchObject({ id: 'raspbian', name: 'Raspberry Pi OS' });
  });
});
