import { Hono } from 'hono';
import type { AppEnv } from '../env.ts';
import { ApiError, readQuery } from '../lib/http.ts';
import { LiveQuery } from '../../protocol/api.ts';
import { openDb } from '../db/index.ts';
import { liveFeed, LIVE_HOLDER_HEADER } from '../live-feed.ts';
import { checkLiveOrigin, holderOf } from '../live-auth.ts';

// GET /api/live: the browser's socket of live events, held by the LiveFeed object, which
// is told who holds it (so it can close it when that right ends). `?batch=1`: frames are
// arrays of events (live-feed.ts).
export const live = new Hono<AppEnv>().get('/', async (c) => {
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new ApiError(426, 'upgrade-required', 'expected a WebSocket upgrade');
  }
  readQuery(c, LiveQuery); // (the LiveFeed reads `batch` from the URL it is handed)
  const identity = c.get('identity');
  checkLiveOrigin(c, identity);
  const headers = new Headers(c.req.raw.headers);
  headers.set(LIVE_HOLDER_HEADER, JSON.stringify(await holderOf(openDb(c.env.DB), identity)));
  return liveFeed(c.env).fetch(new Request(c.req.raw.url, { headers }));
});
