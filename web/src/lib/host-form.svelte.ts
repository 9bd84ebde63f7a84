// The state of the add-host forms (the Add host dialog, the wizard's host step): where the
// host is reached (address, SSH port and user, relay), the errors the API names, and the
// last Test connection. The fields beyond the connection (name, tags, …) stay with the form.
import type { ConnectionTestResult } from '$protocol/api.ts';
import { api, ApiError, fieldMessage } from './api.ts';
import { live } from './live.svelte.ts';

export type HostFormField = 'address' | 'port' | 'user' | 'name' | 'relayId' | 'tags' | 'monitorOnly';

export interface HostTarget {
  address: string;
  port?: number;
  user?: string;
  relayId?: string;
}

export class HostForm {
  address = $state('');
  port = $state<number | null>(22);
  user = $state('root');
  relayId = $state('');
  errors = $state<Partial<Record<HostFormField, string>>>({});
  formError = $state<string | null>(null);
  testing = $state(false);
  /** The last test and the target it was run against (see `targetKey`). */
  test = $state<{ result: ConnectionTestResult; key: string } | null>(null);

  /** Only with several relays is there a choice (and a relay field). */
  readonly chooseRelay = $derived(live.relays.length > 1);
  readonly relay = $derived(live.relays.find((r) => r.id === this.relayId) ?? (live.relays.length === 1 ? live.relays[0] : null));
  /** Changes with anything the connection test depends on. */
  readonly targetKey = $derived(`${this.address.trim()}|${this.port}|${this.user.trim()}|${this.relay?.id ?? ''}`);
  /** The host name Test connection found for this very target: the name a host gets when
   * none is typed (rather than its address). */
  readonly foundName = $derived(this.test?.key === this.targetKey && this.test.result.ok ? this.test.result.probe.hostname.trim() || null : null);
  /** The name field's placeholder: what the host will be called if it stays empty. */
  readonly namePlaceholder = $derived(this.foundName ? `${this.foundName} (found by Test connection)` : 'defaults to the host name, else the address');

  readonly #fields: readonly HostFormField[];
  readonly #sendSoleRelay: boolean;

  /**
   * @param fields the fields the form shows: an API error about one of them goes under it.
   * @param sendSoleRelay send the relay even when it is the only one (and not chosen).
   */
  constructor(fields: readonly HostFormField[], { sendSoleRelay }: { sendSoleRelay: boolean }) {
    this.#fields = fields;
    this.#sendSoleRelay = sendSoleRelay;
  }

  /** The field was edited: its error, and the form's, no longer apply. */
  clear(field: HostFormField) {
    if (this.errors[field]) delete this.errors[field];
    this.formError = null;
  }

  /** Forget the errors of the last attempt. */
  resetErrors() {
    this.errors = {};
    this.formError = null;
  }

  /** An API error under the field it names, else for the whole form. */
  showError(err: unknown) {
    if (err instanceof ApiError && err.field) {
      const field = err.field.split('.')[0] as HostFormField;
      if (this.#fields.includes(field) && (field !== 'relayId' || this.chooseRelay)) {
        this.errors[field] = fieldMessage(err);
        return;
      }
    }
    this.formError = err instanceof Error ? err.message : String(err);
  }

  /** What to connect to, as the API takes it. */
  target(): HostTarget {
    const body: HostTarget = { address: this.address.trim() };
    if (this.port != null && Number.isFinite(this.port)) body.port = this.port;
    if (this.user.trim()) body.user = this.user.trim();
    if (this.relay && (this.chooseRelay || this.#sendSoleRelay)) body.relayId = this.relay.id;
    return body;
  }

  /** Test connection; true when there is a new result to show. */
  async runTest(): Promise<boolean> {
    if (this.testing) return false;
    this.resetErrors();
    this.testing = true;
    const key = this.targetKey;
    try {
      const result = await api.testConnection(this.target());
      this.test = { result, key };
      return true;
    } catch (err) {
      this.test = null;
      this.showError(err);
      return false;
    } finally {
      this.testing = false;
    }
  }
}
