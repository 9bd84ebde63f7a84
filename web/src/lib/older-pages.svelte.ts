// Paging back through a list shown newest first ("Load older", the audit log and History):
// whether there may be more, the page being fetched and what went wrong with it.

export class OlderPages {
  /** The last page was full: there may be older rows. */
  hasMore = $state(false);
  loading = $state(false);
  error = $state<string | null>(null);

  readonly #size: number;

  constructor(pageSize: number) {
    this.#size = pageSize;
  }

  /** A page arrived (the first or an older one): a full one means there may be more. */
  got(page: readonly unknown[]) {
    this.hasMore = page.length === this.#size;
  }

  /**
   * Fetch the next older page and hand it to `append`, unless the list was reloaded
   * meanwhile (`current()` is false by then). One fetch at a time.
   */
  async load<T>(fetchPage: () => Promise<T[]>, current: () => boolean, append: (page: T[]) => void) {
    if (this.loading) return;
    this.loading = true;
    this.error = null;
    try {
      const page = await fetchPage();
      if (!current()) return;
      append(page);
      this.got(page);
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    } finally {
      this.loading = false;
    }
  }
}

/** `rows`, then the rows of an older page that are not among them yet. */
export function appendOlder<T extends { id: string }>(rows: T[], older: T[]): T[] {
  const ids = new Set(rows.map((r) => r.id));
  return [...rows, ...older.filter((r) => !ids.has(r.id))];
}
