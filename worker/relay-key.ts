// A relay's SSH public key is what admins put in authorized_keys on their hosts, so it is
// pinned at the relay's first hello. A later hello with another key (a reinstalled relay,
// or someone holding its token) only offers that key: admins keep seeing the pinned one
// until one of them accepts the new fingerprint (POST /api/relays/:id/accept-key).
import { createHash } from 'node:crypto';
import type { RelayRow } from './db/index.ts';

/** OpenSSH's fingerprint of a public key line: `SHA256:` + unpadded base64 of the key blob's SHA-256. */
export function sshKeyFingerprint(publicKey: string): string {
  const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The same key (type and blob; the comment does not matter). */
const sameKey = (a: string, b: string) => a.trim().split(/\s+/).slice(0, 2).join(' ') === b.trim().split(/\s+/).slice(0, 2).join(' ');

/** The key columns a hello with `presented` sets on the relay row. */
export function pinRelayKey(row: Pick<RelayRow, 'publicKey'>, presented: string): { publicKey?: string; publicKeyOffered: string | null } {
  if (!row.publicKey) return { publicKey: presented, publicKeyOffered: null };
  if (sameKey(row.publicKey, presented)) return { publicKeyOffered: null };
  return { publicKeyOffered: presented };
}
