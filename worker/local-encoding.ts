// On this machine (`npm start`; lib/local.ts isLocal) the API is answered over loopback, where
// gzip is CPU spent for nothing — on the one workerd thread that serves every request and
// every relay message: miniflare's entry worker compresses each compressible answer as
// Cloudflare's edge would (`ensureAcceptableEncoding` in miniflare's core entry.worker.js;
// 0.4 ms for a 25 kB host page, ~3.5 ms for the whole 1,000-host list, measured with
// bench/api.ts). An answer that names its encoding (`identity`) is passed through as it is.
// Deployed on Cloudflare, the edge still compresses.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './env.ts';
import { isLocal } from './lib/local.ts';

export const localEncoding: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  // (a WebSocket upgrade's answer comes from a Durable Object and cannot be changed)
  if (c.res.status === 101 || c.res.headers.has('Content-Encoding') || !isLocal(c.env, c.req.url)) return;
  c.res.headers.set('Content-Encoding', 'identity');
};
