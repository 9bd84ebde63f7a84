// The `guest.rollback` operation: roll a Proxmox guest back to one of PatchMan's snapshots.
// Placeholder until relay/proxmox/ lands (issue 16): refuses with a readable cause.
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import type { OpContext } from './context.ts';

export async function runGuestRollback(_params: OperationParams<'guest.rollback'>, _ctx: OpContext): Promise<OperationResult<'guest.rollback'>> {
  throw new OpError('internal', 'This relay cannot roll Proxmox guests back yet');
}
