import { Hono } from 'hono';
import type { AppEnv } from './env.ts';
import { errorResponse } from './lib/http.ts';
import { authenticate } from './auth/middleware.ts';
import { health } from './routes/health.ts';
import { setupRoutes } from './routes/setup.ts';
import { authRoutes } from './routes/auth.ts';
import { userRoutes } from './routes/users.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { auditRoutes } from './routes/audit.ts';
import { relayRoutes } from './routes/relays.ts';
import { relayConnect } from './routes/relay-connect.ts';
import { hostRoutes } from './routes/hosts.ts';
import { jobRoutes } from './routes/jobs.ts';
import { live } from './routes/live.ts';
import { scanRoutes } from './routes/scans.ts';
import { upgradeRoutes } from './routes/upgrades.ts';
import { summaryRoutes } from './routes/summary.ts';
import { settingsRoutes } from './routes/settings.ts';
import { stackRoutes } from './routes/stacks.ts';
import { policyRoutes } from './routes/policies.ts';
import { rolloutRoutes } from './routes/rollouts.ts';
import { notificationRoutes } from './routes/notifications.ts';
import { securityHeaders } from './security-headers.ts';
import { localEncoding } from './local-encoding.ts';
import { trendRoutes } from './routes/trends.ts';
import { exportRoutes } from './routes/exports.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { guestRoutes } from './routes/guests.ts';

// Every /api path goes through `authenticate` (identity, role, CSRF, audit) first; the relay
// socket authenticates with its own bearer token.
export const app = new Hono<AppEnv>()
  .use('*', securityHeaders)
  .use('*', localEncoding)
  .use('/api/*', authenticate)
  .route('/api/health', health)
  .route('/api/setup', setupRoutes)
  .route('/api/auth', authRoutes)
  .route('/api/users', userRoutes)
  .route('/api/tokens', tokenRoutes)
  .route('/api/audit', auditRoutes)
  .route('/api/relays', relayRoutes)
  .route('/api/hosts', hostRoutes)
  .route('/api/scans', scanRoutes)
  .route('/api/upgrades', upgradeRoutes)
  .route('/api/summary', summaryRoutes)
  .route('/api/settings', settingsRoutes)
  .route('/api/stacks', stackRoutes)
  .route('/api/policies', policyRoutes)
  .route('/api/rollouts', rolloutRoutes)
  .route('/api/notifications', notificationRoutes)
  .route('/api/jobs', jobRoutes)
  .route('/api/live', live)
  .route('/api/export', exportRoutes)
  .route('/api', trendRoutes)
  .route('/api', guestRoutes)
  .route('/metrics', metricsRoutes)
  .route('/relay/connect', relayConnect)
  .all('/api/*', (c) => c.json({ error: { code: 'not-found', message: `no such endpoint: ${c.req.method} ${c.req.path}` } }, 404))
  .onError((err, c) => errorResponse(c, err));
