// Wake the Notifier (one Durable Object for the whole Worker) at a time: its alarm flushes
// pending events and delivers the outbox.
import type { Env } from '../env.ts';

export const notifierStub = (env: Env) => env.NOTIFIER.get(env.NOTIFIER.idFromName('notifier'));

export async function kickNotifier(env: Env, at: number): Promise<void> {
  await notifierStub(env).wakeAt(at);
}
