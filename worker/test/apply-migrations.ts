import { beforeEach } from 'vitest';
import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

const e = env as unknown as { DB: D1Database; TEST_MIGRATIONS: Parameters<typeof applyD1Migrations>[1] };
await applyD1Migrations(e.DB, e.TEST_MIGRATIONS);

// Storage is shared between the tests of a file: start each from empty tables.
beforeEach(async () => {
  await e.DB.batch(['job_output', 'jobs', 'host_updates', 'hosts', 'relays', 'settings'].map((t) => e.DB.prepare(`DELETE FROM ${t}`)));
});
