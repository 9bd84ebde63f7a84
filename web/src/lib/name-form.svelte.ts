// A form in Settings that creates something from just a name (a relay, an API token): the
// name checked as a label, the API's complaint about it under the field, anything else as a
// toast. The name is cleared once made.
import * as v from 'valibot';
import { Label } from '$protocol/fields.ts';
import { ApiError, fieldMessage } from './api.ts';
import { toasts } from './toasts.svelte.ts';

export class NameForm {
  name = $state('');
  error = $state<string | undefined>(undefined);
  creating = $state(false);

  readonly #what: string;

  /** @param what what is made, for the toast: "the relay". */
  constructor(what: string) {
    this.#what = what;
  }

  async submit(create: (name: string) => Promise<void>) {
    if (this.creating) return;
    const r = v.safeParse(Label, this.name);
    if (!r.success) {
      this.error = r.issues[0].message;
      return;
    }
    this.creating = true;
    this.error = undefined;
    try {
      await create(r.output);
      this.name = '';
    } catch (err) {
      if (err instanceof ApiError && err.field === 'name') this.error = fieldMessage(err);
      else toasts.push('error', `Could not create ${this.#what}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.creating = false;
    }
  }
}
