// Adopted Proxmox guests are reached through their node: their SSH target and relay are the
// node's, kept in step here when the node's change.
import { eq } from 'drizzle-orm';
import { schema, type Db, type HostRow } from './db/index.ts';
import type { Env } from './env.ts';
import { hostJson } from './lib/serialize.ts';
import { publish } from './live-feed.ts';

const { hosts } = schema;

/** The fields a guest takes from its node (and cannot be given its own). */
export const GUEST_TARGET_FIELDS = ['address', 'port', 'user', 'relayId'] as const;

/** Give a node's adopted guests the node's (new) SSH target and relay. */
export async function followNode(env: Env, db: Db, node: HostRow): Promise<void> {
  const rows = await db
    .update(hosts)
    .set({ address: node.address, port: node.port, user: node.user, relayId: node.relayId, status: 'unknown', statusReason: null, updatedAt: Date.now() })
    .where(eq(hosts.guestOf, node.id))
    .returning();
  if (rows.length) await publish(env, ...rows.map((h) => ({ type: 'host' as const, host: hostJson(h) })));
}
