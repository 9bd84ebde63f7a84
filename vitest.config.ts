import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Miniflare would fetch the Request.cf placeholder from workers.cloudflare.com; tests stay
// on loopback (miniflare reads this variable: CLOUDFLARE_CF_FETCH_ENABLED).
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
process.env.WRANGLER_SEND_METRICS ??= 'false';

// `npm test` runs every project: unit (protocol, relay against a real sshd), worker
// (inside workerd with D1), e2e (npm start + real sshd + headless Chromium).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['protocol/**/*.test.ts', 'relay/**/*.test.ts', 'sim/**/*.test.ts', 'scripts/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // the dashboard's plain TypeScript helpers and stores (components are covered by e2e/)
        // (svelte() compiles the runes of *.svelte.ts stores, so that they can be tested too)
        plugins: [svelte()],
        resolve: { alias: { $protocol: here('protocol'), $lib: here('web/src/lib') } },
        test: { name: 'web', include: ['web/src/**/*.test.ts', 'web/*.test.ts'], environment: 'node' },
      },
      './worker/vitest.config.ts',
      './e2e/vitest.config.ts',
    ],
  },
});
