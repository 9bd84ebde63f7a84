// The `docker.update` operation: `docker compose pull`, then `up -d` only if the pull
// succeeded, for one stack (or some of its services), as a detached run on the host
// (relay/run.ts: a dropped SSH connection does not kill it; the same runId re-attaches),
// streaming its output; then the stack is checked again and returned.
//
// Where the stack lives — its working directory and config files — is read from the host's
// own `docker compose ls` and its containers' Compose labels at update time, never from the
// request, and every path is validated and quoted before it reaches a command line
// (relay/docker/compose.ts). Refused for monitor-only hosts before anything is dialled.
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { runFailure, updateRunScript } from '../docker/compose.ts';
import { DEFAULT_DOCKER_TIMEOUT_MS, locateStack, probeDocker, scanStacks } from '../docker/host.ts';
import { sharedRegistryClient, type RegistryClient } from '../docker/registry.ts';
import { OpError } from '../errors.ts';
import { startRun } from '../run.ts';
import { describeTarget } from '../ssh.ts';
import type { ActiveRun, OpContext } from './context.ts';
import { followForWorker, followOnce, HostLink, resendRewound } from './detached.ts';
import { refuseMonitorOnly } from './upgrade.ts';

type Params = OperationParams<'docker.update'>;
type Result = OperationResult<'docker.update'>;

export async function runDockerUpdate(params: Params, ctx: OpContext, registry: RegistryClient = sharedRegistryClient()): Promise<Result> {
  refuseMonitorOnly(params.target, ctx, 'update Docker Compose stacks on');
  return followOnce(ctx, params.runId, params.offset, (run) => update(params, ctx, run, registry));
}

async function update(params: Params, ctx: OpContext, run: ActiveRun, registry: RegistryClient): Promise<Result> {
  const started = Date.now();
  const where = describeTarget(params.target);
  const timeoutMs = ctx.commandTimeoutMs ?? DEFAULT_DOCKER_TIMEOUT_MS;
  const link = await HostLink.open(params.target, ctx);
  try {
    const session = await link.session();
    await probeDocker(session, timeoutMs);
    const warnings: string[] = [];
    const location = await locateStack(session, params.stack, timeoutMs, warnings);
    const script = updateRunScript(location, params.services);
    const state = await startRun(session, params.runId, script, ':');
    const what = params.services ? `services ${params.services.join(', ')} of stack "${params.stack}"` : `stack "${params.stack}"`;
    ctx.output?.(state === 'started' ? `[patchman] updating ${what} on ${where} (in ${location.workingDir})\n` : '[patchman] the run already exists on the host; following it\n');
    const followed = await followForWorker(params.runId, run, ctx, link, started);
    if (followed.exitCode !== 0) {
      await resendRewound(params.runId, run, ctx, link, started, followed.size);
      const f = runFailure(followed.tail);
      const step = f.step ? `docker compose ${f.step}` : 'The stack update';
      throw new OpError(
        'command-failed',
        `${step} for stack "${params.stack}" on ${where} failed with exit status ${followed.exitCode}${f.step === 'pull' ? ' (nothing was restarted)' : ''}` +
          (f.lines.length ? `:\n${f.lines.join('\n')}` : ''),
        { exitCode: followed.exitCode },
      );
    }
    const s = await link.session();
    const [stack] = await scanStacks(s, { only: params.stack, timeoutMs, registry, warnings });
    if (!stack) throw new OpError('command-failed', `The update of stack "${params.stack}" on ${where} finished, but docker compose ls no longer lists the stack`);
    await resendRewound(params.runId, run, ctx, link, started, followed.size);
    return { exitCode: followed.exitCode, stack, logBytes: followed.size, logTail: followed.tail, durationMs: Date.now() - started };
  } finally {
    link.drop();
  }
}
