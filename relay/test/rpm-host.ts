// Test helper: a test host that looks like Fedora or openSUSE to the relay, running the REAL
// dnf / zypper / rpm of this Debian machine against local repositories built here.
//
// The host is the test sshd (relay/test/sshd.ts) started as root inside a private mount
// namespace (`unshare --mount --propagation private`), where bind mounts give it its own
// /etc/os-release, package-manager configuration (/etc/dnf, /etc/zypp) and hide the other
// package managers' binaries from `command -v` (a non-executable file over them), and a
// private /var and /run (rpm database in /var/lib/rpm, caches, logs, locks, reboot flags). Every SSH session inherits
// the namespace, so the relay's constant commands hit the real tools. Nothing outside the
// temp dir is changed: the mounts vanish with the namespace.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Debian package versions of the tools, for the test log. (Asked of dpkg, not the tools:
 * `zypper --version` outside the test host would write this machine's /var/log/zypper.log.) */
export function toolVersion(pkg: string): string {
  try {
    return `${pkg} ${execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()}`;
  } catch {
    return `${pkg} unknown`;
  }
}

export interface RpmSpec {
  name: string;
  version: string;
  release?: string;
  /** Extra `Provides:` lines (e.g. `system-release(releasever) = 40`). */
  provides?: string[];
  /** A Lua %pre scriptlet (Lua needs no /bin/sh inside the rpm database). */
  preLua?: string;
}

/** Build a tiny noarch rpm with rpmbuild; returns its path. */
export function buildRpm(dir: string, spec: RpmSpec): string {
  const top = join(dir, 'rpmbuild');
  mkdirSync(top, { recursive: true });
  const release = spec.release ?? '1';
  const specFile = join(dir, `${spec.name}-${spec.version}.spec`);
  writeFileSync(
    specFile,
    [
      `Name: ${spec.name}`,
      `Version: ${spec.version}`,
      `Release: ${release}`,
      'Summary: PatchMan test package',
      'License: MIT',
      'BuildArch: noarch',
      ...(spec.provides ?? []).map((p) => `Provides: ${p}`),
      '%description',
      'A package built by the PatchMan tests.',
      ...(spec.preLua ? ['%pre -p <lua>', spec.preLua] : []),
      '%files',
      '',
    ].join('\n'),
  );
  execFileSync('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, specFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  return join(top, 'RPMS', 'noarch', `${spec.name}-${spec.version}-${release}.noarch.rpm`);
}

/** A repository of rpms (createrepo_c), with an updateinfo.xml when given (modifyrepo_c). */
export function publishRepo(repoDir: string, rpms: string[], updateinfo?: string): void {
  mkdirSync(repoDir, { recursive: true });
  for (const r of rpms) execFileSync('cp', [r, repoDir]);
  execFileSync('createrepo_c', ['-q', repoDir]);
  if (updateinfo) {
    const file = join(repoDir, '..', `updateinfo-${Date.now()}.xml`);
    writeFileSync(file, updateinfo);
    execFileSync('modifyrepo_c', ['--mdtype=updateinfo', file, join(repoDir, 'repodata')], { stdio: 'ignore' });
  }
}

export interface Advisory {
  id: string;
  type: 'security' | 'bugfix' | 'enhancement';
  severity: string;
  pkg: { name: string; version: string; release?: string };
}

export function updateinfoXml(advisories: Advisory[], repo: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<updates>',
    ...advisories.map((a) =>
      [
        `  <update from="tests@patchman.invalid" status="stable" type="${a.type}" version="2.0">`,
        `    <id>${a.id}</id>`,
        `    <title>${a.pkg.name} ${a.type} update</title>`,
        '    <issued date="2026-11-30 00:00:00"/>',
        `    <severity>${a.severity}</severity>`,
        '    <description>A test advisory.</description>',
        '    <pkglist>',
        `      <collection short="${repo}">`,
        `        <name>${repo}</name>`,
        `        <package name="${a.pkg.name}" version="${a.pkg.version}" release="${a.pkg.release ?? '1'}" epoch="0" arch="noarch">`,
        `          <filename>${a.pkg.name}-${a.pkg.version}-${a.pkg.release ?? '1'}.noarch.rpm</filename>`,
        '        </package>',
        '      </collection>',
        '    </pkglist>',
        '  </update>',
      ].join('\n'),
    ),
    '</updates>',
    '',
  ].join('\n');
}

export interface NamespaceHost {
  /** Prefix for startSshd's `wrap`. */
  wrap: string[];
  /** The test host's /var and /run, as seen from outside. */
  varDir: string;
  runDir: string;
}

/** rpm against the test host's database (/var/lib/rpm inside it). */
export function rpmInto(host: NamespaceHost, args: string[]): string {
  return execFileSync('rpm', ['--dbpath', join(host.varDir, 'lib', 'rpm'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Debian's rpm keeps its database in ~/.rpmdb; Fedora and openSUSE in /var/lib/rpm. The
 * test host's HOME (the sshd's) gets the latter. */
export function fedoraRpmMacros(home: string): void {
  writeFileSync(join(home, '.rpmmacros'), '%_dbpath /var/lib/rpm\n');
}

/**
 * The `unshare` command line that runs sshd in a private mount namespace with `binds`
 * (source → target, both must exist) mounted and `hide` (absolute paths of binaries) made
 * invisible to `command -v`. Paths are this test's own temp paths: no quoting surprises.
 */
export function namespaceHost(dir: string, binds: [source: string, target: string][], hide: string[]): NamespaceHost {
  const hidden = join(dir, 'hidden-binary');
  writeFileSync(hidden, '');
  chmodSync(hidden, 0o644);
  const varDir = join(dir, 'var');
  for (const d of ['lib/rpm', 'lib/dnf', 'lib/zypp', 'cache', 'log', 'spool']) mkdirSync(join(varDir, d), { recursive: true });
  mkdirSync(join(varDir, 'tmp'), { mode: 0o1777 });
  chmodSync(join(varDir, 'tmp'), 0o1777);
  symlinkSync('/run', join(varDir, 'run'));
  symlinkSync('/run/lock', join(varDir, 'lock'));
  // A private /run too: zypper's lock (/run/zypp.pid) and reboot flag (/run/reboot-needed).
  const runDir = join(dir, 'run');
  for (const d of ['sshd', 'lock']) mkdirSync(join(runDir, d), { recursive: true, mode: 0o755 });
  const all: [string, string][] = [[varDir, '/var'], [runDir, '/run'], ...binds, ...hide.map((h): [string, string] => [hidden, h])];
  for (const [s, t] of all) if (/['\s]/.test(s + t)) throw new Error(`unexpected path ${s} ${t}`);
  const script = [...all.map(([s, t]) => `mount --bind '${s}' '${t}'`), 'exec "$@"'].join(' && ');
  return { wrap: ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'patchman-test-host'], varDir, runDir };
}

/** Which of these binaries exist here (only those can be bind-mounted over). */
export function existing(paths: string[]): string[] {
  return paths.filter((p) => {
    try {
      execFileSync('test', ['-e', p]);
      return true;
    } catch {
      return false;
    }
  });
}
