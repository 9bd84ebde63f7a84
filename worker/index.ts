// The Worker: the API and relay socket (Hono), the cron trigger, and the Durable Objects.
// Everything else (the dashboard) is served from web/build by Workers Static Assets.
import { app } from './app.ts';
import type { Env } from './env.ts';
import { runScheduled } from './scheduled.ts';

export { RelayHub } from './relay-hub.ts';
export { LiveFeed } from './live-feed.ts';
export { RolloutRunner } from './rollout-runner.ts';
export { Notifier } from './notify/notifier.ts';

export default {
  fetch: app.fetch,
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(runScheduled(env));
  },
} satisfies ExportedHandler<Env>;
