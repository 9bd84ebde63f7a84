// The relay is configured by environment variables only (see README "Configuration").
import { readFileSync } from 'node:fs';
import * as v from 'valibot';
import { HEARTBEAT_INTERVAL_MS } from '../protocol/relay.ts';

const Int = (min: number, max: number) =>
  v.pipe(v.string(), v.regex(/^\d+$/, 'must be a whole number'), v.transform(Number), v.minValue(min), v.maxValue(max));

const Env = v.object({
  PATCHMAN_URL: v.pipe(v.string('is required'), v.url('must be a URL like https://patchman.example.com'), v.regex(/^https?:\/\//, 'must start with http:// or https://')),
  PATCHMAN_RELAY_TOKEN: v.optional(v.pipe(v.string(), v.minLength(10, 'looks too short'))),
  PATCHMAN_RELAY_TOKEN_FILE: v.optional(v.string()),
  PATCHMAN_DATA_DIR: v.optional(v.string(), '/var/lib/patchman-relay'),
  PATCHMAN_CONCURRENCY: v.optional(Int(1, 1024), '32'),
  PATCHMAN_CONNECT_TIMEOUT: v.optional(Int(1, 300), '10'),
  PATCHMAN_COMMAND_TIMEOUT: v.optional(Int(1, 86_400), '600'),
  PATCHMAN_MONITOR_ONLY: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9.:%_, -]*$/, 'must be "self", "none" or a comma-separated list of addresses')),
    'self',
  ),
  /** Seconds between heartbeats; keep it well under the Worker's heartbeat timeout. */
  PATCHMAN_HEARTBEAT_INTERVAL: v.optional(Int(1, 300), String(HEARTBEAT_INTERVAL_MS / 1000)),
});

export type RelayConfig = {
  url: string;
  token: string;
  dataDir: string;
  concurrency: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** Hosts the relay never upgrades or reboots: "self" (default), "none", or addresses. */
  monitorOnly: string;
  heartbeatMs: number;
};

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv): RelayConfig {
  const r = v.safeParse(Env, env);
  if (!r.success) {
    const issue = r.issues[0];
    const message = issue.input === undefined ? 'is required' : issue.message;
    throw new ConfigError(`${v.getDotPath(issue) ?? 'environment'}: ${message}`);
  }
  const e = r.output;
  let token = e.PATCHMAN_RELAY_TOKEN;
  if (!token && e.PATCHMAN_RELAY_TOKEN_FILE) {
    try {
      token = readFileSync(e.PATCHMAN_RELAY_TOKEN_FILE, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`PATCHMAN_RELAY_TOKEN_FILE: cannot read ${e.PATCHMAN_RELAY_TOKEN_FILE} (${(err as Error).message})`);
    }
  }
  if (!token) throw new ConfigError('PATCHMAN_RELAY_TOKEN (or PATCHMAN_RELAY_TOKEN_FILE) is required: create a relay in the dashboard to get one');
  return {
    url: e.PATCHMAN_URL,
    token,
    dataDir: e.PATCHMAN_DATA_DIR,
    concurrency: e.PATCHMAN_CONCURRENCY,
    connectTimeoutMs: e.PATCHMAN_CONNECT_TIMEOUT * 1000,
    commandTimeoutMs: e.PATCHMAN_COMMAND_TIMEOUT * 1000,
    monitorOnly: e.PATCHMAN_MONITOR_ONLY.trim() || 'none',
    heartbeatMs: e.PATCHMAN_HEARTBEAT_INTERVAL * 1000,
  };
}
