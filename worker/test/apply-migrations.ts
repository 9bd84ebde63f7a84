import { beforeEach } from 'vitest';
import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { ADMIN_TOKEN } from './auth.ts';

const e = env as unknown as { DB: D1Database; TEST_MIGRATIONS: Parameters<typeof applyD1Migrations>[1] };
await applyD1Migrations(e.DB, e.TEST_MIGRATIONS);

const TABLES = ['proxmox_guests', 'rollout_hosts', 'update_sightings', 'job_output', 'jobs', 'rollouts', 'policies', 'host_updates', 'stacks', 'hosts', 'relays', 'settings', 'sessions', 'users', 'api_tokens', 'login_throttle', 'audit', 'notify_deliveries', 'notify_channels', 'notify_events', 'notify_state', 'fleet_days'];

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// Storage is shared between the tests of a file: start each from empty tables, plus the
// admin API token the test helpers sign their requests with.
beforeEach(async () => {
  await e.DB.batch([
    ...TABLES.map((t) => e.DB.prepare(`DELETE FROM ${t}`)),
    e.DB.prepare(`INSERT INTO api_tokens (id, name, token_hash, role, created_at) VALUES ('test-admin', 'tests', ?, 'admin', 0)`).bind(await sha256Hex(ADMIN_TOKEN)),
  ]);
});
