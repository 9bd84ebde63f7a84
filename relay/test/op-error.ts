import { OpError } from '../errors.ts';

/** Run `fn` and return the OpError it throws (anything else fails the test). */
export function thrownOpError(fn: () => unknown): OpError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error('expected an OpError');
}

/** Await `p` and return the OpError it rejects with (anything else fails the test). */
export async function rejectedOpError(p: Promise<unknown>): Promise<OpError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error('expected an OpError');
}
