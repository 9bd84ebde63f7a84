/**
 * Exponential backoff with jitter for reconnects. Every relay reconnects at once after a
 * Worker redeploy drops all sockets; the jitter spreads them out ("full jitter" halved:
 * between 50 % and 100 % of the exponential delay).
 */
export function backoffDelay(attempt: number, opts: { initialMs: number; maxMs: number }, random = Math.random): number {
  const exp = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp * (0.5 + random() * 0.5));
}
