import { Hono } from 'hono';
import type { AppEnv, Env } from '../env.ts';
import { ApiError } from '../lib/http.ts';
import { liveFeed } from '../live-feed.ts';

// GET /api/live: the browser's socket of live events, held by the LiveFeed object.
export const live = new Hono<AppEnv>().get('/', (c) => {
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new ApiError(426, 'upgrade-required', 'expected a WebSocket upgrade');
  }
  return liveFeed(c.env).fetch(c.req.raw);
});
