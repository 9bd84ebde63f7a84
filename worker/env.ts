import type { RelayHub } from './relay-hub.ts';
import type { LiveFeed } from './live-feed.ts';
import type { RolloutRunner } from './rollout-runner.ts';
import type { Role } from './auth/policy.ts';

/** Bindings declared in wrangler.toml (and secrets set with `wrangler secret put`). */
export interface Env {
  DB: D1Database;
  RELAY_HUB: DurableObjectNamespace<RelayHub>;
  LIVE_FEED: DurableObjectNamespace<LiveFeed>;
  ROLLOUT_RUNNER: DurableObjectNamespace<RolloutRunner>;
  /** How often a live rollout is advanced (ms); default worker/rollouts.ts TICK_MS. */
  ROLLOUT_TICK_MS?: string;
  ASSETS: Fetcher;
  PATCHMAN_VERSION: string;
  /** Required to create the first admin anywhere but on localhost (`wrangler secret put SETUP_SECRET`). */
  SETUP_SECRET?: string;
  /** Notifications: the Durable Object that flushes and delivers them (worker/notify/notifier.ts). */
  NOTIFIER: DurableObjectNamespace<import('./notify/notifier.ts').Notifier>;
  /** Encrypts channel secrets at rest (`wrangler secret put NOTIFY_KEY`; npm start makes one). */
  NOTIFY_KEY?: string;
  /** The dashboard's address for links in messages when the notification settings name none. */
  PATCHMAN_PUBLIC_URL?: string;
  /** Overrides the relay heartbeat timeout (ms), for fault tests: see relay-heartbeat.ts. */
  RELAY_HEARTBEAT_TIMEOUT_MS?: string;
  /** `1` under `npm start`: this Worker runs on this machine, not behind Cloudflare (the login
   * throttle's address), and channels it delivers may target loopback receivers. */
  PATCHMAN_LOCAL?: string;
  /** `1`: channels the Worker delivers may target loopback receivers, as under `npm start`
   * (the Worker tests use it without the rest of local mode). */
  NOTIFY_LOOPBACK?: string;
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

/** What a route tells the audit log about its request beyond the path: the target's id and
 * its name in words (a host's name survives the host's deletion there). */
export interface AuditNote {
  target?: string | null;
  detail?: string | null;
}

export type AppEnv = {
  Bindings: Env;
  /** `credentialJudged`: this request's credential was judged (by readChecked), whatever the
   * verdict; the middleware then does not ask D1 about it again. */
  Variables: { identity: Identity; audit?: AuditNote; credentialJudged?: true };
};
