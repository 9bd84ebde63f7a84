// The `guest.rollback` operation: roll a Proxmox guest back to one of PatchMan's snapshots
// (relay/proxmox/rollback.ts). Refused for monitor-only hosts and for targets that are not
// guests. A request re-sent while this relay process works on the same run id joins it; a
// re-sent one after a relay restart rolls back again to the same snapshot, which loses only
// what changed in between.
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { rootPrefixFor } from '../proxmox/commands.ts';
import { rollbackGuest } from '../proxmox/rollback.ts';
import { isGuestTarget, nodeTarget } from '../proxmox/target.ts';
import { openSession } from '../ssh.ts';
import type { OpContext } from './context.ts';
import { followOnce } from './detached.ts';
import { refuseMonitorOnly } from './upgrade.ts';

type Params = OperationParams<'guest.rollback'>;
type Result = OperationResult<'guest.rollback'>;

export async function runGuestRollback(params: Params, ctx: OpContext): Promise<Result> {
  refuseMonitorOnly(params.target, ctx, 'roll back');
  const target = params.target;
  if (!isGuestTarget(target)) throw new OpError('invalid-request', 'Only a Proxmox guest reached through its node can be rolled back to a snapshot.');
  return followOnce(ctx, params.runId, 0, async () => {
    const started = Date.now();
    const node = await openSession(nodeTarget(target), ctx);
    try {
      const { status } = await rollbackGuest(node, rootPrefixFor(target.user), target.guest, params.snapshot, (line) => ctx.output?.(`[patchman] ${line}\n`));
      return { snapshot: params.snapshot, status, durationMs: Date.now() - started };
    } finally {
      node.close();
    }
  });
}
