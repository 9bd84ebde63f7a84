import { defineConfig } from 'drizzle-kit';

// Flat SQL files in migrations/ that `wrangler d1 migrations apply` reads as they are.
export default defineConfig({
  dialect: 'sqlite',
  schema: './worker/db/schema.ts',
  out: './migrations',
});
