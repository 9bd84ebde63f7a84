// GET /relay/connect: the relay's outbound WebSocket, authenticated by its bearer token,
// handed to that relay's Durable Object.
import { Hono } from 'hono';
import { and, eq, isNull } from 'drizzle-orm';
import type { AppEnv, Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { sha256Hex } from '../lib/crypto.ts';
import { ApiError } from '../lib/http.ts';
import { relayHub, RELAY_ID_HEADER } from '../relay-hub.ts';

export const relayConnect = new Hono<AppEnv>().get('/', async (c) => {
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new ApiError(426, 'upgrade-required', 'expected a WebSocket upgrade');
  }
  const auth = c.req.header('Authorization') ?? '';
  const token = /^Bearer (\S+)$/.exec(auth)?.[1];
  if (!token) throw new ApiError(401, 'unauthorized', 'a relay token is required (Authorization: Bearer …)');
  const relay = await openDb(c.env.DB).query.relays.findFirst({
    where: and(eq(schema.relays.tokenHash, await sha256Hex(token)), isNull(schema.relays.revokedAt)),
  });
  if (!relay) throw new ApiError(401, 'unauthorized', 'unknown or revoked relay token');
  const headers = new Headers(c.req.raw.headers);
  headers.set(RELAY_ID_HEADER, relay.id);
  headers.delete('Authorization');
  return relayHub(c.env, relay.id).fetch(new Request(c.req.raw.url, { headers }));
});
