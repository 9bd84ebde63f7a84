import { Hono } from 'hono';
import type { AppEnv, Env } from '../env.ts';

export const health = new Hono<AppEnv>().get('/', (c) =>
  c.json({ ok: true, version: c.env.PATCHMAN_VERSION }),
);
