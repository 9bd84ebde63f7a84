// Roll a guest back to one of PatchMan's own snapshots, through its node. `pct rollback` /
// `qm rollback` stop a running guest themselves (a hard stop: __snapshot_rollback_vm_stop);
// `--start 1` starts it again afterwards, which the relay asks for when it was running.
import type { GuestRef } from '../../protocol/proxmox.ts';
import { OpError } from '../errors.ts';
import { tail } from '../pkg/shell.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import { rollbackCommand, statusCommand, type RootPrefix } from './commands.ts';
import { findGuest, guestLabel } from './guest-list.ts';
import { parseStatus } from './parse.ts';
import { listSnapshots, SNAPSHOT_TIMEOUT_MS } from './snapshots.ts';

export async function rollbackGuest(
  node: SshSession,
  prefix: RootPrefix,
  guest: GuestRef,
  snapshot: string,
  say: (line: string) => void,
): Promise<{ status: string }> {
  const listed = await findGuest(node, prefix, guest); // the VMID is one the node lists
  const snaps = await listSnapshots(node, prefix, guest);
  const snap = snaps.find((s) => s.name === snapshot);
  if (!snap || !snap.patchman) {
    throw new OpError('invalid-request', `${guestLabel(guest)} on ${describeTarget(node.target)} has no PatchMan snapshot ${snapshot}${snaps.some((s) => s.patchman) ? ` (it has ${snaps.filter((s) => s.patchman).map((s) => s.name).join(', ')})` : ''}; nothing was changed.`);
  }
  const wasRunning = listed.status === 'running';
  say(`rolling ${guestLabel(guest)} back to ${snapshot}${wasRunning ? ' (it is stopped for the rollback and started again)' : ''}; everything changed since the snapshot is lost`);
  const r = await node.exec(rollbackCommand(prefix, guest.kind, guest.vmid, snapshot, wasRunning), { timeoutMs: SNAPSHOT_TIMEOUT_MS });
  if (r.code !== 0) throw new OpError('command-failed', `Rolling ${guestLabel(guest)} back to ${snapshot} failed (status ${r.code}): ${tail(r.stderr || r.stdout, 400)}`, { exitCode: r.code ?? undefined });
  const s = await node.exec(statusCommand(prefix, guest.kind, guest.vmid), { timeoutMs: 60_000 });
  const status = parseStatus(s.stdout) ?? 'unknown';
  say(`${guestLabel(guest)} is back at ${snapshot} and ${status}`);
  return { status };
}
