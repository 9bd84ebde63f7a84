// The `accept-host-key` operation: an admin saw "host key changed" with the fingerprint the
// host now offers, and accepted it. Pin exactly that fingerprint and connect to check the
// host presents it; if it does not (it changed again, or someone else answered), the old
// pin is put back and the host stays blocked.
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { openSession } from '../ssh.ts';
import type { OpContext } from './context.ts';

export async function runAcceptHostKey(params: OperationParams<'accept-host-key'>, ctx: OpContext): Promise<OperationResult<'accept-host-key'>> {
  const { address, port } = params.target;
  const previous = ctx.knownHosts.get(address, port);
  ctx.knownHosts.accept(address, port, params.fingerprint);
  try {
    const session = await openSession(params.target, ctx);
    session.close();
    return { hostKey: session.hostKey.fingerprint };
  } catch (err) {
    if (previous) ctx.knownHosts.accept(address, port, previous.fingerprint, previous.keyType);
    else ctx.knownHosts.forget(address, port);
    throw err;
  }
}
