import { drizzle } from 'drizzle-orm/d1';
import * as schema from './schema.ts';

export { schema };
const open = (d1: D1Database) => drizzle(d1, { schema });
export type Db = ReturnType<typeof open>;
/** One drizzle instance per D1 binding (an isolate keeps its bindings): every request
 * opened it two or three times, each time reading the whole schema again. */
const opened = new WeakMap<D1Database, Db>();
export function openDb(d1: D1Database): Db {
  let db = opened.get(d1);
  if (!db) opened.set(d1, (db = open(d1)));
  return db;
}
export type RelayRow = typeof schema.relays.$inferSelect;
export type HostRow = typeof schema.hosts.$inferSelect;
export type JobRow = typeof schema.jobs.$inferSelect;
export type StackRow = typeof schema.stacks.$inferSelect;
export type PolicyRow = typeof schema.policies.$inferSelect;
export type RolloutRow = typeof schema.rollouts.$inferSelect;
export type RolloutHostRow = typeof schema.rolloutHosts.$inferSelect;
export type NotifyChannelRow = typeof schema.notifyChannels.$inferSelect;
export type NotifyDeliveryRow = typeof schema.notifyDeliveries.$inferSelect;
