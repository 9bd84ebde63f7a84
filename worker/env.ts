import type { RelayHub } from './relay-hub.ts';
import type { LiveFeed } from './live-feed.ts';
import type { Role } from './auth/policy.ts';

/** Bindings declared in wrangler.toml (and secrets set with `wrangler secret put`). */
export interface Env {
  DB: D1Database;
  RELAY_HUB: DurableObjectNamespace<RelayHub>;
  LIVE_FEED: DurableObjectNamespace<LiveFeed>;
  ASSETS: Fetcher;
  PATCHMAN_VERSION: string;
  /** Required to create the first admin anywhere but on localhost (`wrangler secret put SETUP_SECRET`). */
  SETUP_SECRET?: string;
  /** Overrides the relay heartbeat timeout (ms), for fault tests: see relay-heartbeat.ts. */
  RELAY_HEARTBEAT_TIMEOUT_MS?: string;
  /** `1` under `npm start` (wrangler dev --var): this Worker runs on this machine, not behind Cloudflare. */
  PATCHMAN_LOCAL?: string;
}

/** Who is making a request (set by worker/auth/middleware.ts). */
export interface Identity {
  kind: 'user' | 'token' | 'access';
  id: string;
  /** Shown in history and the audit log: the user name, or `token:<name>`. */
  name: string;
  role: Role;
  sessionId?: string;
}

export type AppEnv = { Bindings: Env; Variables: { identity: Identity } };
