import type { RelayHub } from './relay-hub.ts';
import type { LiveFeed } from './live-feed.ts';

/** Bindings declared in wrangler.toml. */
export interface Env {
  DB: D1Database;
  RELAY_HUB: DurableObjectNamespace<RelayHub>;
  LIVE_FEED: DurableObjectNamespace<LiveFeed>;
  ASSETS: Fetcher;
  PATCHMAN_VERSION: string;
}
