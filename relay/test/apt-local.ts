// What apt and dpkg say, read directly (not through the relay), for tests that patch for
// real and check the outcome independently: on this machine, or inside a Debian root
// (relay/test/debian-root.ts) when given its directory.
import { execFileSync } from 'node:child_process';

const C = { ...process.env, LC_ALL: 'C' };

/** The local apt and dpkg (root omitted), or those inside `root` (through chroot). */
export function aptOn(root?: string) {
  const run: Run = root
    ? (cmd, args) => execFileSync('chroot', [root, cmd, ...args], { encoding: 'utf8', env: { ...C, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, maxBuffer: 16 * 1024 * 1024 })
    : here;
  return {
    dpkgVersion: (name: string) => dpkgVersion(name, run),
    aptSimulation: () => aptSimulation(run),
    leafUpdates: (names: string[], count = 1, skip: string[] = []) => leafUpdates(names, count, skip, run),
    upgradeSet: (names: string[], maxSize = 4) => upgradeSet(names, maxSize, run),
  };
}
type Run = (cmd: string, args: string[]) => string;
const here: Run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', env: C, maxBuffer: 16 * 1024 * 1024 });

/** Installed version of a package, per dpkg itself ('' when not installed). */
export function dpkgVersion(name: string, run: Run = here): string {
  try {
    return run('dpkg-query', ['-W', '-f=${Version}', name]).trim();
  } catch {
    return '';
  }
}

/** `apt-get -s dist-upgrade`'s Inst lines: name → current/new version and security origin. */
export function aptSimulation(run: Run = here): Map<string, { current: string | null; next: string; security: boolean }> {
  const out = run('apt-get', ['-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade']);
  const map = new Map<string, { current: string | null; next: string; security: boolean }>();
  for (const line of out.split('\n')) {
    const m = /^Inst (\S+) (?:\[(\S+)\] )?\((\S+) (.*)\)/.exec(line);
    if (m) map.set(m[1], { current: m[2] ?? null, next: m[3], security: /-security/i.test(m[4]) });
  }
  return map;
}

/** The smallest pending updates whose `--only-upgrade` changes that package alone (nothing
 * else upgraded, installed or removed with it), per apt's own simulation; `skip` excludes
 * packages another test is using. */
export function leafUpdates(names: string[], count = 1, skip: string[] = [], run: Run = here): string[] {
  const wanted = names.filter((n) => !skip.includes(n));
  const sizes = new Map<string, number>();
  const sourceOf = new Map<string, string>();
  const listing = run('dpkg-query', ['-W', '-f=${Package} ${Installed-Size} ${source:Package}\n', ...wanted]);
  for (const line of listing.split('\n')) {
    const [n, kb, src] = line.split(' ');
    if (!n) continue;
    sizes.set(n, Number(kb) || 1e9);
    sourceOf.set(n, src || n);
  }
  // Binaries built from one source are usually upgraded together: try the lone ones first
  // (each simulation takes a moment).
  const perSource = new Map<string, number>();
  for (const n of names) perSource.set(sourceOf.get(n) ?? n, (perSource.get(sourceOf.get(n) ?? n) ?? 0) + 1);
  const alone = (n: string) => (perSource.get(sourceOf.get(n) ?? n) === 1 ? 0 : 1);
  const sized = wanted.map((n) => ({ n, kb: sizes.get(n) ?? 1e9 })).sort((a, b) => alone(a.n) - alone(b.n) || a.kb - b.kb);
  const out: string[] = [];
  for (const { n } of sized) {
    const sim = run('apt-get', ['-s', '-o', 'Debug::NoLocking=1', 'install', '--only-upgrade', n]);
    const inst = sim.split('\n').filter((l) => l.startsWith('Inst '));
    if (inst.length === 1 && inst[0].startsWith(`Inst ${n} `) && !/^(Remv|Purg) /m.test(sim)) out.push(n);
    if (out.length === count) return out;
  }
  throw new Error(`only ${out.length} of ${count} pending updates on this machine upgrade alone (of ${names.length})`);
}

/** The smallest set of pending updates, all among `names`, that `--only-upgrade` of one of
 * them changes together (nothing else upgraded, installed or removed), per apt's own
 * simulation: one package when one upgrades alone, else e.g. a library and its sibling from
 * the same source. For tests that must pick from a short list (the pending security updates,
 * of which this machine may have no lone one left after earlier runs patched them). */
export function upgradeSet(names: string[], maxSize = 4, run: Run = here): string[] {
  const allowed = new Set(names);
  const sizes = new Map<string, number>();
  const listing = run('dpkg-query', ['-W', '-f=${Package} ${Installed-Size}\n', ...names]);
  for (const line of listing.split('\n')) {
    const [n, kb] = line.split(' ');
    if (n) sizes.set(n, Number(kb) || 1e9);
  }
  let best: string[] | null = null;
  for (const n of [...names].sort((a, b) => (sizes.get(a) ?? 1e9) - (sizes.get(b) ?? 1e9))) {
    const sim = run('apt-get', ['-s', '-o', 'Debug::NoLocking=1', 'install', '--only-upgrade', n]);
    if (/^(Remv|Purg) /m.test(sim)) continue;
    const set = sim.split('\n').flatMap((l) => /^Inst (\S+) \[/.exec(l)?.[1] ?? []);
    if (set.length === 0 || set.length > maxSize || set.some((s) => !allowed.has(s))) continue;
    // (each simulation takes a moment: a pair is small enough, stop there)
    if (set.length <= 2) return set.sort();
    if (!best || set.length < best.length) best = set;
  }
  if (best) return best.sort();
  throw new Error(`no pending update among ${names.length} upgrades alone or with at most ${maxSize - 1} others of them`);
}

/** apt's line for a package, e.g. `Unpacking libfoo1:amd64 (1.2) over (1.1) ...`: a
 * multi-arch package is named with its architecture. */
export function aptLine(verb: 'Unpacking' | 'Setting up', pkg: string): RegExp {
  return new RegExp(`${verb} ${pkg.replace(/[.+*?^$()[\]{}|\\]/g, '\\$&')}(:[a-z0-9]+)? \\(`);
}
