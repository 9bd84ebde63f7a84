// The relay's closed vocabulary: one handler per protocol operation, nothing else. A request
// names an operation; if it is not in this table it is refused before its params are looked
// at. Params are validated against the protocol schema before the handler runs, and the
// handler's result is validated again before it leaves the relay.
import * as v from 'valibot';
import {
  Operations,
  describeIssues,
  type OperationName,
  type OperationParams,
  type OperationResult,
  type Request,
  type Response,
  type Output,
} from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import type { OpContext } from './context.ts';
import { runProbe } from './probe.ts';
import { runScan } from './scan.ts';
import { runUpgrade } from './upgrade.ts';
import { runReboot } from './reboot.ts';
import { runAcceptHostKey } from './accept-host-key.ts';
import { runDockerScan } from './docker-scan.ts';
import { runDockerUpdate } from './docker-update.ts';
import { runNotifySend } from './notify-send.ts';
import { runGuestRollback } from './guest-rollback.ts';

export type Handler<K extends OperationName> = (params: OperationParams<K>, ctx: OpContext) => Promise<OperationResult<K>>;
export type HandlerTable = { [K in OperationName]: Handler<K> };

/** Every key of the protocol's Operations must have a handler here (and nothing else may). */
export const handlers = {
  probe: runProbe,
  scan: runScan,
  upgrade: runUpgrade,
  reboot: runReboot,
  'docker.scan': (params, ctx) => runDockerScan(params, ctx),
  'docker.update': (params, ctx) => runDockerUpdate(params, ctx),
  'accept-host-key': runAcceptHostKey,
  'notify.send': runNotifySend,
  'guest.rollback': runGuestRollback,
} satisfies HandlerTable;

type RequestMsg = v.InferOutput<typeof Request>;
type ResponseMsg = v.InferOutput<typeof Response>;

function isOperation(op: string): op is OperationName {
  // Own keys only: `constructor`, `__proto__`, `toString` are not operations.
  return Object.hasOwn(Operations, op);
}

function failure(id: string, code: OpError['code'], message: string, extra: { exitCode?: number; hostKey?: { pinned: string; offered: string } } = {}): ResponseMsg {
  const error = {
    code,
    message: new OpError(code, message).message,
    ...(extra.exitCode !== undefined ? { exitCode: extra.exitCode } : {}),
    ...(extra.hostKey ? { hostKey: extra.hostKey } : {}),
  };
  return { type: 'response', id, ok: false, error };
}

export interface ExecuteOptions {
  /** The handler table (tests substitute their own). */
  table?: HandlerTable;
  /** Told about unexpected errors, which reach the Worker only as a generic 'internal'. For the
   * relay's local log; must not be forwarded anywhere. */
  onInternalError?: (op: string, err: unknown) => void;
  /** Sends a request's output to the Worker while it runs. */
  send?: (msg: Output) => void;
  /** Told about every request refused before it ran (unknown operation, invalid params):
   * the relay logs them, since a Worker asking for those is a sign of trouble. */
  onRefused?: (reason: string) => void;
}

export async function executeRequest(req: RequestMsg, ctx: OpContext, opts: ExecuteOptions = {}): Promise<ResponseMsg> {
  const table = opts.table ?? handlers;
  const op = req.op;
  if (!isOperation(op) || !Object.hasOwn(table, op)) {
    const reason = `Unknown operation ${JSON.stringify(op.slice(0, 64))}`;
    opts.onRefused?.(reason);
    return failure(req.id, 'unknown-operation', reason);
  }
  const spec = Operations[op];

  const parsed = v.safeParse(spec.params, req.params);
  if (!parsed.success) {
    const reason = `Invalid params for ${op}: ${describeIssues(parsed.issues)}`;
    opts.onRefused?.(reason);
    return failure(req.id, 'invalid-request', reason);
  }

  // The Worker's deadline for the whole request bounds each command too.
  const send = opts.send;
  const runCtx: OpContext = {
    ...ctx,
    ...(req.timeoutMs !== undefined ? { commandTimeoutMs: Math.min(ctx.commandTimeoutMs ?? Infinity, req.timeoutMs), requestTimeoutMs: req.timeoutMs } : {}),
    ...(send ? { output: (data: string, range?: { from: number; to: number }) => send({ type: 'output', id: req.id, data, ...(range ? { range } : {}) }) } : {}),
  };

  let result: unknown;
  try {
    const handler = table[op] as Handler<typeof op>;
    result = await handler(parsed.output, runCtx);
  } catch (err) {
    if (err instanceof OpError) return failure(req.id, err.code, err.message, { exitCode: err.exitCode, hostKey: err.hostKey });
    opts.onInternalError?.(op, err);
    return failure(req.id, 'internal', `The relay hit an unexpected error while running ${op}`);
  }

  const checked = v.safeParse(spec.result, result);
  if (!checked.success) {
    opts.onInternalError?.(op, new Error(`invalid ${op} result: ${describeIssues(checked.issues)}`));
    return failure(req.id, 'internal', `The relay produced an invalid ${op} result (${describeIssues(checked.issues)})`);
  }
  return { type: 'response', id: req.id, ok: true, result: checked.output };
}
