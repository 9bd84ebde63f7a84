#!/usr/bin/env node
// The relay daemon: `node relay/dist/patchman-relay.cjs` (Node 20+), configured by
// environment (relay/config.ts). It keeps one outbound WebSocket to the Worker and runs
// the Worker's requests over SSH, from the closed operation table in ops/.
import { hostname } from 'node:os';
import { ConfigError, loadConfig } from './config.ts';
import { RelayConnection } from './connection.ts';
import { loadOrCreateKeyPair } from './keys.ts';
import { KnownHosts } from './known-hosts.ts';
import { executeRequest } from './ops/index.ts';
import { monitorOnlyPolicy } from './policy.ts';
import { RELAY_VERSION } from './version.ts';

const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`patchman-relay: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const keys = await loadOrCreateKeyPair(config.dataDir);
  const knownHosts = KnownHosts.open(config.dataDir);
  log(`relay: PatchMan relay ${RELAY_VERSION} on Node ${process.versions.node}, data in ${config.dataDir}`);
  if (config.monitorOnly !== 'none') log(`relay: never changes (monitor-only): ${config.monitorOnly} (PATCHMAN_MONITOR_ONLY)`);
  log(`relay: SSH public key ${keys.fingerprint} — authorise it on managed hosts: ${keys.publicKey}`);

  const ctx = {
    privateKey: keys.privateKey,
    knownHosts,
    connectTimeoutMs: config.connectTimeoutMs,
    commandTimeoutMs: config.commandTimeoutMs,
    monitorOnly: monitorOnlyPolicy(config.monitorOnly),
    runs: new Map(),
  };
  const connection = new RelayConnection({
    url: config.url,
    token: config.token,
    concurrency: config.concurrency,
    heartbeatMs: config.heartbeatMs,
    hello: { version: RELAY_VERSION, publicKey: keys.publicKey, hostname: hostname() },
    onRequest: (req, send) =>
      executeRequest(req, ctx, {
        send,
        onInternalError: (op, err) => log(`relay: ${op} failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`),
        onRefused: (reason) => log(`relay: refused a request from the Worker: ${reason}`),
      }),
    log,
  });
  log(`relay: connecting to ${config.url}`);
  connection.start();

  const shutdown = (signal: string) => {
    log(`relay: ${signal} received, stopping`);
    connection.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err) => {
  console.error(`patchman-relay: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
