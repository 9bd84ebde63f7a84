// How many of a relay's reports were refused (relay-apply.ts acceptsRelayMessage), per
// connection window. A working relay has a few at most — a late output after a job was
// cancelled or timed out — but a rogue or broken one could send refused reports without end,
// each costing a D1 lookup and a log line, and stall the Worker for every other relay. Past
// the limit the hub closes the socket; the log gets one line per batch, not one per message.

/** Refused reports tolerated per window before the relay is disconnected. */
export const MAX_REFUSED_REPORTS = 200;
export const REFUSED_WINDOW_MS = 60_000;

export class RefusalMeter {
  #since = 0;
  #count = 0;

  readonly limit: number;
  readonly windowMs: number;

  constructor(limit = MAX_REFUSED_REPORTS, windowMs = REFUSED_WINDOW_MS) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Count `n` refusals; true when the relay has now gone past the limit (the meter resets). */
  record(n: number, now = Date.now()): boolean {
    if (n <= 0) return false;
    if (now - this.#since > this.windowMs) {
      this.#since = now;
      this.#count = 0;
    }
    this.#count += n;
    if (this.#count <= this.limit) return false;
    this.#count = 0;
    this.#since = now;
    return true;
  }
}

/** One log line for a batch's refusals: how many, and the first few ids with why. */
export function describeRefusals(relayId: string, refused: { id: string; type: string; reason: string }[]): string {
  const shown = refused.slice(0, 3).map((r) => `${r.type} for job ${r.id} (${r.reason})`);
  const more = refused.length > shown.length ? ` and ${refused.length - shown.length} more` : '';
  return `relay ${relayId}: dropped ${refused.length} report${refused.length === 1 ? '' : 's'}: ${shown.join(', ')}${more}`;
}
