import { Hono } from 'hono';
import type { Env } from './env.ts';
import { errorResponse } from './lib/http.ts';
import { health } from './routes/health.ts';
import { relayRoutes } from './routes/relays.ts';
import { relayConnect } from './routes/relay-connect.ts';
import { hostRoutes } from './routes/hosts.ts';
import { jobRoutes } from './routes/jobs.ts';
import { live } from './routes/live.ts';
import { scanRoutes } from './routes/scans.ts';
import { summaryRoutes } from './routes/summary.ts';
import { settingsRoutes } from './routes/settings.ts';
import { upgradeRoutes } from './routes/upgrades.ts';

export const app = new Hono<{ Bindings: Env }>()
  .route('/api/health', health)
  .route('/api/relays', relayRoutes)
  .route('/api/hosts', hostRoutes)
  .route('/api/scans', scanRoutes)
  .route('/api/upgrades', upgradeRoutes)
  .route('/api/summary', summaryRoutes)
  .route('/api/settings', settingsRoutes)
  .route('/api/jobs', jobRoutes)
  .route('/api/live', live)
  .route('/relay/connect', relayConnect)
  .all('/api/*', (c) => c.json({ error: { code: 'not-found', message: `no such endpoint: ${c.req.method} ${c.req.path}` } }, 404))
  .onError((err, c) => errorResponse(c, err));
