// One Durable Object instance holds every browser's live socket (hibernatable) and fans
// events out to them. RelayHubs and API routes call `broadcast`.
import { DurableObject } from 'cloudflare:workers';
import * as v from 'valibot';
import { LiveQuery, type LiveEvent } from '../protocol/api.ts';
import type { Env } from './env.ts';
import { openDb } from './db/index.ts';
import { coalesceEvents } from './live-coalesce.ts';
import { LIVE_AUTH_ENDED, LIVE_RECHECK_MS, matches, stillAllowed, type LiveHolder, type LiveMatch } from './live-auth.ts';

/** Internal header: who the Worker found holds the socket (set by routes/live.ts only). */
export const LIVE_HOLDER_HEADER = 'X-PatchMan-Live-Holder';

/** A batched frame stays under this (Workers' WebSocket messages may be 1 MiB); an event
 * bigger than it goes alone. */
export const LIVE_FRAME_MAX_CHARS = 256 * 1024;

/** What a live socket carries: who holds it, and how its frames are cut. */
type LiveSocket = LiveHolder & { batched?: boolean };

/** The events as frames: one each, or arrays of them up to LIVE_FRAME_MAX_CHARS. */
export function liveFrames(texts: string[], batched: boolean): string[] {
  if (!batched) return texts;
  const frames: string[] = [];
  let part: string[] = [];
  let size = 2;
  for (const t of texts) {
    if (part.length && size + t.length + 1 > LIVE_FRAME_MAX_CHARS) {
      frames.push(`[${part.join(',')}]`);
      part = [];
      size = 2;
    }
    part.push(t);
    size += t.length + 1;
  }
  if (part.length) frames.push(`[${part.join(',')}]`);
  return frames;
}

export class LiveFeed extends DurableObject<Env> {
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('expected a WebSocket upgrade', { status: 426 });
    }
    const holder = JSON.parse(request.headers.get(LIVE_HOLDER_HEADER) ?? 'null') as LiveHolder | null;
    if (!holder) return new Response('no holder', { status: 400 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    // `GET /api/live?batch=1` (LiveQuery, checked by the route): each frame a JSON array of
    // events, in order (the dashboard asks for it: a fleet-wide scan is thousands of events,
    // and a frame costs the browser more than an event in it); without it, one event per
    // frame, as scripts expect
    const batched = v.parse(LiveQuery, Object.fromEntries(new URL(request.url).searchParams)).batch === '1';
    server.serializeAttachment({ ...holder, ...(batched ? { batched } : {}) } satisfies LiveSocket);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + LIVE_RECHECK_MS);
    return new Response(null, { status: 101, webSocket: client });
  }

  broadcast(events: LiveEvent[]): number {
    const sockets = this.ctx.getWebSockets();
    const texts = events.map((event) => JSON.stringify(event));
    let arrays: string[] | undefined;
    for (const ws of sockets) {
      const frames = (ws.deserializeAttachment() as LiveSocket).batched ? (arrays ??= liveFrames(texts, true)) : texts;
      for (const frame of frames) {
        try {
          ws.send(frame);
        } catch {
          // a socket closing concurrently; its close handler cleans up
        }
      }
    }
    return sockets.length;
  }

  /** Close the sockets of a session, user or token whose right to read just ended. */
  close(match: LiveMatch, reason: string): number {
    let n = 0;
    for (const ws of this.ctx.getWebSockets()) {
      if (!matches(ws.deserializeAttachment() as LiveHolder, match)) continue;
      n++;
      try {
        ws.close(LIVE_AUTH_ENDED, reason);
      } catch {
        // already closed
      }
    }
    return n;
  }

  /** Check every holder again: sessions expire without anyone asking. */
  async alarm(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    const db = openDb(this.env.DB);
    for (const ws of sockets) {
      if (await stillAllowed(db, ws.deserializeAttachment() as LiveHolder)) continue;
      try {
        ws.close(LIVE_AUTH_ENDED, 'signed out');
      } catch {
        // already closed
      }
    }
    if (this.ctx.getWebSockets().length) await this.ctx.storage.setAlarm(Date.now() + LIVE_RECHECK_MS);
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

/** Send events to every watching browser (each job, host and relay once: coalesceEvents);
 * never fails the caller. */
export async function publish(env: Env, ...events: LiveEvent[]): Promise<void> {
  if (events.length === 0) return;
  try {
    await liveFeed(env).broadcast(coalesceEvents(events));
  } catch (err) {
    console.error('live feed unavailable', err instanceof Error ? err.message : String(err));
  }
}

/** Close the live sockets whose holder just lost the right to read; never fails the caller. */
export async function closeLive(env: Env, match: LiveMatch, reason: string): Promise<void> {
  try {
    await liveFeed(env).close(match, reason);
  } catch (err) {
    console.error('live feed unavailable', err instanceof Error ? err.message : String(err));
  }
}
