// The one error type the relay's operations throw on purpose. `code` is from the protocol's
// closed list; `message` is for a human and must never carry a secret (keys, tokens) or a
// stack trace, because it travels to the Worker and ends up in the dashboard.
import type { ErrorCode } from '../protocol/relay.ts';

const MAX_MESSAGE = 2000; // RelayError.message's limit in protocol/relay.ts

export class OpError extends Error {
  readonly code: ErrorCode;
  /** Exit status of the host command that failed, when there was one. */
  readonly exitCode: number | undefined;
  /** For 'host-key-changed': the pinned fingerprint and the one offered now. */
  readonly hostKey: { pinned: string; offered: string } | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; exitCode?: number; hostKey?: { pinned: string; offered: string } }) {
    super(message.length > MAX_MESSAGE ? message.slice(0, MAX_MESSAGE - 1) + '…' : message, options);
    this.name = 'OpError';
    this.code = code;
    this.exitCode = options?.exitCode;
    this.hostKey = options?.hostKey;
  }
}

export function isOpError(err: unknown): err is OpError {
  return err instanceof OpError;
}
