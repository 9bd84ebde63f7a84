// The snapshot an upgrade of a guest asks for, taken before its run starts — once per run id:
// a re-sent request whose run already exists on the guest (or a resumed one) takes none, and
// one whose snapshot already exists does not take it again.
import type * as v from 'valibot';
import type { SnapshotOutcome, SnapshotRequest } from '../../protocol/proxmox.ts';
import { OpError } from '../errors.ts';
import { SH_COMMAND } from '../pkg/shell.ts';
import { parsePoll, pollScript } from '../run.ts';
import type { SshSession } from '../ssh.ts';
import { GuestSession } from './guest-session.ts';
import { listSnapshots, snapshotAndPrune } from './snapshots.ts';

export const SNAPSHOT_NEEDS_GUEST = 'A snapshot before the upgrade can only be taken of a Proxmox guest reached through its node.';

/** Does the run already exist inside the guest? (A poll that reads no log bytes.) */
async function runExists(session: SshSession, runId: string): Promise<boolean> {
  const r = await session.exec(SH_COMMAND, { stdin: pollScript(runId, 0, 0), timeoutMs: 60_000, binary: true });
  if (r.code !== 0 || !r.stdoutBytes) throw new OpError('command-failed', `Could not check whether the run exists: ${r.stderr.trim().slice(-200)}`);
  return parsePoll(r.stdoutBytes).state !== 'none';
}

export async function snapshotBeforeRun(
  session: SshSession,
  runId: string,
  req: v.InferOutput<typeof SnapshotRequest>,
  resume: boolean,
  say: (line: string) => void,
  warnings: string[],
): Promise<v.InferOutput<typeof SnapshotOutcome>> {
  if (!(session instanceof GuestSession)) throw new OpError('invalid-request', SNAPSHOT_NEEDS_GUEST);
  const { node, prefix } = session;
  const guest = session.target.guest;
  if (resume || (await runExists(session, runId))) {
    // the run began earlier: whatever snapshot it had was taken then
    const exists = (await listSnapshots(node, prefix, guest)).some((s) => s.name === req.name);
    return { name: req.name, taken: exists, pruned: [] };
  }
  return snapshotAndPrune(node, prefix, guest, req, say, warnings);
}
