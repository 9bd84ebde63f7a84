import { fileURLToPath } from 'node:url';
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineProject } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Worker tests run inside workerd with the real D1 and Durable Objects, migrations applied.
export default defineProject(async () => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: here('../wrangler.toml') },
      miniflare: {
        // SETUP_SECRET: what `wrangler secret put SETUP_SECRET` sets in production.
        bindings: { TEST_MIGRATIONS: await readD1Migrations(here('../migrations')), SETUP_SECRET: 'test-setup-secret-42', NOTIFY_KEY: 'test-notify-key-0123456789', NOTIFY_LOOPBACK: '1' },
      },
    }),
  ],
  test: {
    name: 'worker',
    root: here('..'),
    include: ['worker/**/*.test.ts'],
    setupFiles: [here('./test/apply-migrations.ts')],
    // a real HTTP receiver on loopback for notification deliveries
    globalSetup: [here('../e2e/receiver-global-setup.ts')],
  },
}));
