// Request/response correlation by id, with a timeout per request and a way to fail every
// pending request at once when the connection drops. Used by both ends.

export class RequestFailed extends Error {
  readonly code: string;
  constructor(code: 'timeout' | 'relay-disconnected' | (string & {}), message: string) {
    super(message);
    this.code = code;
  }
}

interface Entry<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class PendingRequests<T = unknown> {
  #entries = new Map<string, Entry<T>>();

  get size(): number {
    return this.#entries.size;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Register `id` and get a promise settled by `settle`, `fail`, `failAll` or the timeout. */
  wait(id: string, timeoutMs: number): Promise<T> {
    if (this.#entries.has(id)) return Promise.reject(new Error(`duplicate request id ${id}`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#entries.delete(id);
        reject(new RequestFailed('timeout', `no answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.#entries.set(id, { resolve, reject, timer });
    });
  }

  /** Settle a pending request; returns false when nothing waited for this id. */
  settle(id: string, value: T): boolean {
    const e = this.#entries.get(id);
    if (!e) return false;
    clearTimeout(e.timer);
    this.#entries.delete(id);
    e.resolve(value);
    return true;
  }

  fail(id: string, err: Error): boolean {
    const e = this.#entries.get(id);
    if (!e) return false;
    clearTimeout(e.timer);
    this.#entries.delete(id);
    e.reject(err);
    return true;
  }

  failAll(err: Error): void {
    for (const id of [...this.#entries.keys()]) this.fail(id, err);
  }
}
