// One Durable Object instance holds every browser's live socket (hibernatable) and fans
// events out to them. RelayHubs and API routes call `broadcast`.
import { DurableObject } from 'cloudflare:workers';
import type { LiveEvent } from '../protocol/api.ts';
import type { Env } from './env.ts';

export class LiveFeed extends DurableObject<Env> {
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('expected a WebSocket upgrade', { status: 426 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  broadcast(events: LiveEvent[]): number {
    const sockets = this.ctx.getWebSockets();
    for (const event of events) {
      const text = JSON.stringify(event);
      for (const ws of sockets) {
        try {
          ws.send(text);
        } catch {
          // a socket closing concurrently; its close handler cleans up
        }
      }
    }
    return sockets.length;
  }

  // Browsers only listen; anything they send is ignored.
  async webSocketMessage(): Promise<void> {}

  async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, 'bye');
    } catch {
      // already closed
    }
  }
}

export function liveFeed(env: Env) {
  return env.LIVE_FEED.get(env.LIVE_FEED.idFromName('global'));
}

/** Send events to every watching browser; never fails the caller. */
export async function publish(env: Env, ...events: LiveEvent[]): Promise<void> {
  if (events.length === 0) return;
  try {
    await liveFeed(env).broadcast(events);
  } catch (err) {
    console.error('live feed unavailable', err instanceof Error ? err.message : String(err));
  }
}
