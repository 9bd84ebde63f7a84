// Pairing a new relay from the dashboard (the Pair a relay dialog, the wizard's relay step):
// the name it gets, creating it, and what went wrong. The relay and its token, shown once,
// are kept by the caller.
import type { Relay } from '$protocol/api.ts';
import { api, ApiError, fieldMessage } from './api.ts';
import { live } from './live.svelte.ts';

export interface PairedRelay {
  relay: Relay;
  /** Shown this once: PatchMan keeps only its hash. */
  token: string;
}

export class RelayPairing {
  name = $state('');
  busy = $state(false);
  nameError = $state<string | undefined>();
  formError = $state<string | null>(null);

  /** A fresh form. */
  reset() {
    this.name = '';
    this.nameError = undefined;
    this.formError = null;
  }

  /** Create the relay named; null when it was not (the errors say why). */
  async create(): Promise<PairedRelay | null> {
    if (this.busy) return null;
    this.nameError = undefined;
    this.formError = null;
    if (!this.name.trim()) {
      this.nameError = 'Give the relay a name, e.g. where it runs';
      return null;
    }
    this.busy = true;
    try {
      const res = await api.createRelay(this.name.trim());
      if (!live.relays.some((r) => r.id === res.relay.id)) live.apply({ type: 'relay', relay: res.relay });
      return res;
    } catch (err) {
      if (err instanceof ApiError && err.field === 'name') this.nameError = fieldMessage(err);
      else this.formError = err instanceof Error ? err.message : String(err);
      return null;
    } finally {
      this.busy = false;
    }
  }
}

/** The relay made, as the live store knows it now (connected yet?). */
export function pairedNow(paired: PairedRelay | null): Relay | null {
  return paired ? (live.relays.find((r) => r.id === paired.relay.id) ?? paired.relay) : null;
}
