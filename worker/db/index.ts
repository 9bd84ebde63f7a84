import { drizzle } from 'drizzle-orm/d1';
import * as schema from './schema.ts';

export { schema };
export const openDb = (d1: D1Database) => drizzle(d1, { schema });
export type Db = ReturnType<typeof openDb>;
export type RelayRow = typeof schema.relays.$inferSelect;
export type HostRow = typeof schema.hosts.$inferSelect;
export type JobRow = typeof schema.jobs.$inferSelect;
export type StackRow = typeof schema.stacks.$inferSelect;
export type PolicyRow = typeof schema.policies.$inferSelect;
export type RolloutRow = typeof schema.rollouts.$inferSelect;
export type RolloutHostRow = typeof schema.rolloutHosts.$inferSelect;
export type NotifyChannelRow = typeof schema.notifyChannels.$inferSelect;
export type NotifyDeliveryRow = typeof schema.notifyDeliveries.$inferSelect;
