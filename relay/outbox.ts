// The relay's answers on their way to the Worker, gathered into batch frames once the Worker
// has accepted the `batch` feature (protocol/relay.ts). During "Scan all" answers come a few
// hundred a second, and the Worker pays for each frame more than for the JSON in it.
import { packFrames } from '../protocol/batch.ts';

/** An answer that comes within this of the last frame waits for the next one, at most this
 * long: under a stream a frame carries the answers of its 50 ms. After a pause an answer goes
 * at once (a lone "test connection" is not held back). Below the Worker's APPLY_QUIET_MS, so
 * a stream of frames still reads as a stream there. At 20 ms, "Scan all" of 1,000 hosts was
 * twice as many frames, each a wake-up of the Worker: its CPU for the scan went from 0.84–0.96
 * to 0.71–0.91 s at 50 (bench:scan-all). */
export const GATHER_MS = 50;

export class Outbox {
  #queue: string[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastSentAt = -Infinity;
  readonly #send: (frame: string) => void;
  readonly #gatherMs: number;

  constructor(send: (frame: string) => void, gatherMs = GATHER_MS) {
    this.#send = send;
    this.#gatherMs = gatherMs;
  }

  /** Queue one message (its JSON). `urgent` (a job's output: someone may be reading it) sends
   * it, and everything queued before it, now. */
  push(json: string, urgent = false): void {
    this.#queue.push(json);
    const wait = this.#lastSentAt + this.#gatherMs - performance.now();
    if (urgent || wait <= 0) return this.flush();
    this.#timer ??= setTimeout(() => this.flush(), wait);
  }

  /** Send what waits, in order, in as few frames as the limits allow. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#queue.length === 0) return;
    for (const frame of packFrames(this.#queue.splice(0))) this.#send(frame);
    this.#lastSentAt = performance.now();
  }

  /** Forget what waits: its socket is gone (the Worker re-sends or loses those jobs). */
  drop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue = [];
  }

  get waiting(): number {
    return this.#queue.length;
  }
}
