// Live events applied in batches: a fleet-wide scan sends thousands of host and job events,
// and every batch re-sorts the host list and re-renders what shows it. A batch waits
// `batchMs` to gather what arrives together; under a stream, batches go at most once per
// `minGapMs`. A job's output is urgent: it goes at once when nothing waits, and never waits
// longer than `batchMs` behind the events before it (their order is kept).

export interface BatchTiming {
  /** How long the first event of a batch waits for others. */
  batchMs: number;
  /** Least time between two batches. */
  minGapMs: number;
}

export class EventBatches<T> {
  #queue: T[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #dueAt = 0;
  #lastAt = -Infinity;
  readonly #apply: (events: T[]) => void;
  readonly #timing: BatchTiming;

  constructor(apply: (events: T[]) => void, timing: BatchTiming) {
    this.#apply = apply;
    this.#timing = { ...timing };
  }

  /** Change the least time between two batches (from the next batch on). */
  set minGapMs(ms: number) {
    this.#timing.minGapMs = ms;
  }

  /** Events waiting to be applied. */
  get waiting(): number {
    return this.#queue.length;
  }

  push(event: T, urgent = false): void {
    if (urgent && this.#queue.length === 0) return this.#apply([event]);
    this.#queue.push(event);
    const now = Date.now();
    const due = urgent ? now + this.#timing.batchMs : Math.max(now + this.#timing.batchMs, this.#lastAt + this.#timing.minGapMs);
    if (this.#timer && due >= this.#dueAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#dueAt = due;
    this.#timer = setTimeout(() => this.flush(), due - now);
  }

  /** Apply what waits now. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#lastAt = Date.now();
    const events = this.#queue;
    this.#queue = [];
    if (events.length) this.#apply(events);
  }

  /** Drop what waits (the page stopped listening). */
  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue = [];
  }
}
