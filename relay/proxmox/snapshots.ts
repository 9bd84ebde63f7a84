// A guest's snapshots, through its node: list them, take PatchMan's own before an upgrade and
// prune older PatchMan ones beyond `keep` — never anyone else's (only names that start with
// `patchman-` are ever deleted or rolled back to).
import * as v from 'valibot';
import { SnapshotName, type GuestRef, type GuestSnapshot } from '../../protocol/proxmox.ts';
import { OpError } from '../errors.ts';
import { tail } from '../pkg/shell.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import { configCommand, deleteSnapshotCommand, listSnapshotsCommand, snapshotCommand, storageCommand, type RootPrefix } from './commands.ts';
import { guestLabel } from './guest-list.ts';
import { parseConfig, parseSnapshotTree, parseStorage } from './parse.ts';
import { snapshotCapability } from './storage.ts';

/** Taking or deleting a snapshot of a big guest (a VM with RAM state is never asked for) can
 * take a while on slow storage. */
export const SNAPSHOT_TIMEOUT_MS = 600_000;
export const SNAPSHOT_LIST_TIMEOUT_MS = 60_000;

async function nodeRun(node: SshSession, cmd: string, timeoutMs: number, what: string): Promise<string> {
  const r = await node.exec(cmd, { timeoutMs });
  if (r.code !== 0) throw new OpError('command-failed', `${what} on ${describeTarget(node.target)} failed (status ${r.code}): ${tail(r.stderr || r.stdout, 300)}`, { exitCode: r.code ?? undefined });
  return r.stdout;
}

export async function listSnapshots(node: SshSession, prefix: RootPrefix, g: GuestRef): Promise<GuestSnapshot[]> {
  return parseSnapshotTree(await nodeRun(node, listSnapshotsCommand(prefix, g.kind, g.vmid), SNAPSHOT_LIST_TIMEOUT_MS, `listing the snapshots of ${guestLabel(g)}`));
}

/** Refuse, before anything changes, when the guest's storage cannot snapshot. */
export async function assertCanSnapshot(node: SshSession, prefix: RootPrefix, g: GuestRef): Promise<void> {
  const conf = parseConfig(await nodeRun(node, configCommand(prefix, g.kind, g.vmid), SNAPSHOT_LIST_TIMEOUT_MS, `reading the configuration of ${guestLabel(g)}`));
  const storage = parseStorage(await nodeRun(node, storageCommand(prefix), SNAPSHOT_LIST_TIMEOUT_MS, 'reading the storage configuration'));
  const cap = snapshotCapability(g.kind, conf, storage);
  if (!cap.snapshots) {
    throw new OpError('invalid-request', `Cannot snapshot ${guestLabel(g)} before the upgrade: ${cap.reason}. Nothing was changed; upgrade it without a snapshot if that is acceptable.`);
  }
}

/** Take `name` unless it exists (a re-sent request); then delete the oldest PatchMan
 * snapshots beyond `keep`. Returns what it did. */
export async function snapshotAndPrune(
  node: SshSession,
  prefix: RootPrefix,
  g: GuestRef,
  req: { name: string; description: string; keep: number },
  say: (line: string) => void,
  warnings: string[],
): Promise<{ name: string; taken: boolean; pruned: string[] }> {
  let existing = await listSnapshots(node, prefix, g);
  let taken = false;
  if (!existing.some((s) => s.name === req.name)) {
    await assertCanSnapshot(node, prefix, g);
    say(`taking snapshot ${req.name} of ${guestLabel(g)}`);
    await nodeRun(node, snapshotCommand(prefix, g.kind, g.vmid, req.name, req.description), SNAPSHOT_TIMEOUT_MS, `taking snapshot ${req.name} of ${guestLabel(g)}`);
    taken = true;
    existing = await listSnapshots(node, prefix, g);
    if (!existing.some((s) => s.name === req.name)) throw new OpError('command-failed', `Snapshot ${req.name} of ${guestLabel(g)} is not listed after it was taken; nothing was upgraded.`);
  } else {
    say(`snapshot ${req.name} of ${guestLabel(g)} already exists (taken for this run)`);
  }
  const pruned: string[] = [];
  const ours = existing.filter((s) => s.patchman && v.is(SnapshotName, s.name)); // newest first
  // the one just taken always stays, whatever its recorded time says
  const others = ours.filter((s) => s.name !== req.name);
  for (const old of others.slice(Math.max(0, req.keep - 1))) {
    try {
      await nodeRun(node, deleteSnapshotCommand(prefix, g.kind, g.vmid, old.name), SNAPSHOT_TIMEOUT_MS, `deleting snapshot ${old.name}`);
      pruned.push(old.name);
      say(`deleted older PatchMan snapshot ${old.name}`);
    } catch (err) {
      // the upgrade goes on: an extra old snapshot costs space, not safety
      const why = `could not delete the older PatchMan snapshot ${old.name}: ${(err as Error).message}`;
      say(why);
      warnings.push(why);
    }
  }
  return { name: req.name, taken, pruned };
}
