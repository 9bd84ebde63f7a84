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
        bindings: { TEST_MIGRATIONS: await readD1Migrations(here('../migrations')) },
      },
    }),
  ],
  test: {
    name: 'worker',
    root: here('..'),
    include: ['worker/**/*.test.ts'],
    setupFiles: [here('./test/apply-migrations.ts')],
  },
}));
