import { defineConfig } from 'vitest/config';

// `npm test` runs every project: unit (protocol, relay against a real sshd), worker
// (inside workerd with D1), e2e (npm start + real sshd + headless Chromium).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['protocol/**/*.test.ts', 'relay/**/*.test.ts', 'scripts/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      './worker/vitest.config.ts',
      './e2e/vitest.config.ts',
    ],
  },
});
