// Security headers on every answer the Worker gives (the API; the dashboard's static files
// get theirs from web/build/_headers): see protocol/security-headers.ts.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './env.ts';
import { API_CSP, COMMON_HEADERS, HSTS } from '../protocol/security-headers.ts';
import { isLocal } from './lib/local.ts';

export const securityHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  // a WebSocket upgrade's answer comes from a Durable Object and cannot be changed
  if (c.res.status === 101) return;
  const set = (k: string, v: string) => c.res.headers.set(k, v);
  for (const [k, v] of Object.entries(COMMON_HEADERS)) set(k, v);
  set('Content-Security-Policy', API_CSP);
  if (new URL(c.req.url).protocol === 'https:' && !isLocal(c.env, c.req.url)) set('Strict-Transport-Security', HSTS);
};
