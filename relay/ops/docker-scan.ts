// The `docker.scan` operation: is docker there (with Compose v2), which Compose stacks, which
// containers, which images and RepoDigests — all read-only over SSH, as the SSH user — and
// whether each image's tag has moved on its registry (HEAD requests from the relay,
// relay/docker/registry.ts). Nothing is pulled and nothing on the host changes.
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { DEFAULT_DOCKER_TIMEOUT_MS, probeDocker, scanStacks } from '../docker/host.ts';
import { sharedRegistryClient, type RegistryClient } from '../docker/registry.ts';
import { openTargetSession } from '../proxmox/target.ts';
import type { OpContext } from './context.ts';

type Params = OperationParams<'docker.scan'>;
type Result = OperationResult<'docker.scan'>;

export async function runDockerScan(params: Params, ctx: OpContext, registry: RegistryClient = sharedRegistryClient()): Promise<Result> {
  const timeoutMs = ctx.commandTimeoutMs ?? DEFAULT_DOCKER_TIMEOUT_MS;
  const session = await openTargetSession(params.target, ctx);
  try {
    const composeVersion = await probeDocker(session, timeoutMs);
    const warnings: string[] = [];
    const stacks = await scanStacks(session, { only: params.stack, timeoutMs, registry, warnings });
    return { composeVersion, stacks, warnings };
  } finally {
    session.close();
  }
}
