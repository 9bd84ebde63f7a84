// Test helper: a "Proxmox VE node" behind a real OpenSSH sshd on 127.0.0.1. Its `pct`, `qm`,
// `pvesh` and `pveversion` are TEST DOUBLES of Proxmox's CLI only (pve-standin/standin.mjs,
// answering in the formats of relay/proxmox/fixtures/); every guest with a root is a REAL
// Debian root filesystem (an overlayfs over relay/test/debian-root.ts's debootstrap root, with
// real pending security updates), and `pct exec` / `qm guest exec` run commands in it with
// chroot, so apt and dpkg inside are real. Snapshots are copies of the overlay's upper dir.
// Needs root (sshd, mount, chroot).
import { mkdir, mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GuestKind } from '../../protocol/proxmox.ts';
import { debianRoot, mountOverlay, overlayBase, unmountOverlay } from './debian-root.ts';
import { startSshd, type Sshd } from './sshd.ts';

const here = dirname(fileURLToPath(import.meta.url));
const STANDIN = join(here, 'pve-standin', 'standin.mjs');
const STORAGE_FIXTURE = join(here, '..', 'proxmox', 'fixtures', 'pvesh-storage.json');
const STANDIN_TOOLS = ['pct', 'qm', 'pvesh', 'pveversion'] as const;

export interface PveGuestSpec {
  vmid: number;
  kind: GuestKind;
  name: string;
  status: 'running' | 'stopped';
  /** A storage id of fixtures/pvesh-storage.json: `local-lvm`/`local-zfs` can snapshot,
   * `local` (dir) cannot. */
  storage: 'local-lvm' | 'local-zfs' | 'local';
  /** QEMU: `agent: 1` in its config, and the agent answers. */
  agent?: boolean;
}

export interface PveNode {
  sshd: Sshd;
  state: string;
  /** The guest's root directory as the node sees it (for checking what apt did inside). */
  rootOf(vmid: number): string;
  /** Every stand-in call so far, one line each (`pct snapshot 105 …`). */
  calls(): Promise<string[]>;
  /** A snapshot taken "earlier" (its time given), e.g. someone else's or an old PatchMan one. */
  addSnapshot(vmid: number, name: string, description: string, snaptime: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startPveNode(opts: { authorizedKeys: string[]; guests: PveGuestSpec[] }): Promise<PveNode> {
  const lower = await debianRoot();
  const state = await mkdtemp(join(await overlayBase(), 'pve-'));
  const bin = join(state, 'bin');
  await mkdir(bin);
  for (const tool of STANDIN_TOOLS) {
    await writeFile(join(bin, tool), `#!/bin/sh\nexec "${process.execPath}" "${STANDIN}" ${tool} "$@"\n`, { mode: 0o755 });
  }
  await writeFile(join(state, 'storage.json'), await readFile(STORAGE_FIXTURE, 'utf8'));
  await writeFile(join(state, 'calls.log'), '');
  const guests: Record<number, PveGuestSpec & { base: string; lower: string }> = {};
  let sshd: Sshd | undefined;
  const stop = async (): Promise<void> => {
    await sshd?.stop();
    for (const g of Object.values(guests)) await unmountOverlay(g.base);
    await rm(state, { recursive: true, force: true });
  };
  try {
    for (const g of opts.guests) {
      const base = join(state, `g${g.vmid}`);
      guests[g.vmid] = { ...g, base, lower };
      await mountOverlay(lower, base);
    }
    await writeFile(join(state, 'guests.json'), JSON.stringify(guests, null, 1));
    sshd = await startSshd({
      authorizedKeys: opts.authorizedKeys,
      env: { PATH: `${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, PVE_STANDIN_STATE: state },
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    sshd,
    state,
    rootOf: (vmid) => join(state, `g${vmid}`, 'root'),
    calls: async () => (await readFile(join(state, 'calls.log'), 'utf8')).split('\n').filter(Boolean),
    async addSnapshot(vmid, name, description, snaptime) {
      const dir = join(state, 'snap', String(vmid), name);
      await mkdir(dir, { recursive: true });
      await cp(join(state, `g${vmid}`, 'upper'), join(dir, 'upper'), { recursive: true, verbatimSymlinks: true });
      await writeFile(join(dir, 'meta.json'), JSON.stringify({ description, snaptime }));
    },
    stop,
  };
}
