// Test helper: a real Debian 12 root filesystem with real pending updates, for tests that
// patch for real without using up this machine's own pending updates (each such run used to
// upgrade a few of this machine's packages, and the supply ran out). The pristine root is
// built once by debian-root.sh (debootstrap from Debian's archive, security pocket enabled)
// and cached; every test gets its own writable overlay of it and throws it away after.
// Needs root (mount, chroot) and debootstrap.
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Where the pristine root is cached (outside the repository: it is ~215 MB). */
export const DEBIAN_ROOT_DIR = process.env.PATCHMAN_TEST_DEBIAN_ROOT ?? '/var/cache/patchman-test/bookworm-minbase';
/** Overlays live here: every path component root-owned and not group/world-writable, as
 * sshd's ChrootDirectory demands (so not under /tmp). */
export const OVERLAY_BASE = '/var/lib/patchman-test/roots';
const BUILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'debian-root.sh');
/** debootstrap plus `apt-get update`: about 30 s here, much longer on a slow mirror. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

/** The pristine root, built on first use. Concurrent test files wait on one build (flock). */
export async function debianRoot(): Promise<string> {
  await mkdir(dirname(DEBIAN_ROOT_DIR), { recursive: true });
  try {
    await execFileP('flock', [`${DEBIAN_ROOT_DIR}.lock`, 'bash', BUILD_SCRIPT, DEBIAN_ROOT_DIR], { timeout: BUILD_TIMEOUT_MS });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`could not build the test Debian root in ${DEBIAN_ROOT_DIR}: ${(e.stderr || e.message).trim()}`);
  }
  return DEBIAN_ROOT_DIR;
}

export interface OverlayRoot {
  /** The writable root (overlayfs over the pristine one), with /proc and /dev mounted. */
  dir: string;
  /** Run a command inside it (`chroot dir …`), as root. */
  run(argv: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string }): Promise<string>;
  /** Unmount and delete every change. */
  stop(): Promise<void>;
}

/** OVERLAY_BASE, created root-owned and 0755 all the way down (sshd's ChrootDirectory). */
export async function overlayBase(): Promise<string> {
  for (const d of [dirname(OVERLAY_BASE), OVERLAY_BASE]) {
    await mkdir(d, { recursive: true });
    await chmod(d, 0o755);
  }
  return OVERLAY_BASE;
}

/** Mount a writable overlay of `lower` at `<base>/root` (its upper and work directories
 * beside it), with /proc and /dev mounted inside, as apt and dpkg in a chroot need. */
export async function mountOverlay(lower: string, base: string): Promise<void> {
  const dir = join(base, 'root');
  for (const d of ['upper', 'work', 'root']) await mkdir(join(base, d), { recursive: true });
  try {
    await execFileP('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, dir]);
    await execFileP('mount', ['-t', 'proc', 'proc', join(dir, 'proc')]);
    await execFileP('mount', ['--bind', '/dev', join(dir, 'dev')]);
  } catch (err) {
    await unmountOverlay(base);
    throw err;
  }
}

/** Undo mountOverlay; lazily, since a process chrooted there may still be ending. Mounts
 * that are not there are skipped. */
export async function unmountOverlay(base: string): Promise<void> {
  for (const m of ['root/dev', 'root/proc', 'root']) await execFileP('umount', ['-l', join(base, m)]).catch(() => {});
}

/** A throw-away writable copy of the pristine root: overlayfs, so it costs nothing until
 * written, and whatever a test installs in it is gone after `stop()`. */
export async function overlayRoot(): Promise<OverlayRoot> {
  const lower = await debianRoot();
  const base = await mkdtemp(join(await overlayBase(), 'r-'));
  await chmod(base, 0o755);
  const dir = join(base, 'root');
  const stop = async (): Promise<void> => {
    await unmountOverlay(base);
    await rm(base, { recursive: true, force: true });
  };
  try {
    await mountOverlay(lower, base);
  } catch (err) {
    await rm(base, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    async run(argv, opts = {}) {
      const child = execFileP('chroot', [dir, ...argv], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', ...opts.env }, maxBuffer: 16 * 1024 * 1024 });
      if (opts.input !== undefined) {
        child.child.stdin?.end(opts.input);
      }
      return (await child).stdout;
    },
    stop,
  };
}
