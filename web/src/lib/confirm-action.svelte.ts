// The state of a dialog that does something on Confirm (reboot, upgrade, update a stack,
// trust a host key, revoke …): busy while it runs, the error shown in the dialog, and one
// Idempotency-Key per opening, so that a double click or a retry starts one job, never two.
import { idempotencyKey } from './api.ts';

export class ConfirmAction {
  busy = $state(false);
  error = $state<string | null>(null);
  /** Sent with the request; the same for every try while the dialog stays open. */
  key = '';

  /** The dialog opened: a new key, no error. */
  reset() {
    this.key = idempotencyKey();
    this.busy = false;
    this.error = null;
  }

  /**
   * Run `action`, one at a time. What it throws is shown in the dialog: in `explain`'s words
   * when it has some for it, else its message.
   */
  async run(action: () => Promise<void>, explain?: (err: unknown) => string | null) {
    if (this.busy) return;
    this.busy = true;
    this.error = null;
    try {
      await action();
    } catch (err) {
      this.error = explain?.(err) ?? (err instanceof Error ? err.message : String(err));
    } finally {
      this.busy = false;
    }
  }
}
