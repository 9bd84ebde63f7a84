// What the operations that start detached runs (upgrade, docker.update) share: one follower
// per run id in this relay process, an SSH session that reopens after a drop, and following
// the run with the Worker's offset (relay/run.ts does the polling).
import { followRun } from '../run.ts';
import type { SshSession, SshTarget } from '../ssh.ts';
import { openTargetSession } from '../proxmox/target.ts';
import type { ActiveRun, OpContext } from './context.ts';

/** Run `work` for this run id unless this process already follows it; a repeated request
 * joins that follower instead, and rewinds it to the offset the Worker holds. */
export function followOnce<T>(ctx: OpContext, runId: string, offset: number, work: (run: ActiveRun) => Promise<T>): Promise<T> {
  const existing = ctx.runs?.get(runId);
  if (existing) {
    existing.offset = offset; // resend what the Worker is missing
    return existing.promise as Promise<T>;
  }
  const run: ActiveRun = { offset, promise: Promise.resolve() };
  const promise = work(run).finally(() => ctx.runs?.delete(runId));
  run.promise = promise;
  ctx.runs?.set(runId, run);
  return promise;
}

/** An SSH session to one host that is opened again when it is needed after a drop. */
export class HostLink {
  #session: SshSession | null;
  readonly target: SshTarget;
  readonly ctx: OpContext;

  private constructor(target: SshTarget, ctx: OpContext, first: SshSession) {
    this.target = target;
    this.ctx = ctx;
    this.#session = first;
  }

  static async open(target: SshTarget, ctx: OpContext): Promise<HostLink> {
    return new HostLink(target, ctx, await openTargetSession(target, ctx));
  }

  session = async (): Promise<SshSession> => (this.#session ??= await openTargetSession(this.target, this.ctx));

  drop = (): void => {
    this.#session?.close();
    this.#session = null;
  };
}

/** Follow the run to its end, passing its output (with byte ranges) to the Worker. */
export function followForWorker(runId: string, run: ActiveRun, ctx: OpContext, link: HostLink, started: number) {
  return followRun(runId, {
    offset: () => run.offset,
    onData: (text, range) => {
      run.offset = range.to;
      ctx.output?.(text, range);
    },
    onNote: (text) => ctx.output?.(text),
    session: link.session,
    dropSession: link.drop,
    pollIntervalMs: ctx.pollIntervalMs ?? 1000,
    deadline: started + (ctx.requestTimeoutMs ?? 3_600_000) - 5_000,
    reconnectDelayMs: Math.min(2000, ctx.pollIntervalMs ?? 2000),
    // `qm guest exec` answers only when a command ends: a VM's run is polled, not followed
    stream: link.target.guest?.kind !== 'qemu',
  });
}

/** A request re-sent while the result was being put together (after the log was read to its
 * end) rewound `run.offset`: the Worker missed part of the log (it went to a dropped socket).
 * Read it again from there before answering — the answer ends the job, and output after it
 * is dropped, so the job would keep a log with a hole. */
export async function resendRewound(runId: string, run: ActiveRun, ctx: OpContext, link: HostLink, started: number, size: number): Promise<void> {
  while (run.offset < size) await followForWorker(runId, run, ctx, link, started);
}
