// Liveness of a relay's socket. The relay sends a heartbeat every HEARTBEAT_INTERVAL_MS; the
// Durable Object answers it by auto-response (without waking) and the runtime remembers
// when. A socket not heard from for the heartbeat timeout belongs to a relay that is frozen
// or whose network silently vanished: the hub closes it and treats the relay as gone.
import { HEARTBEAT_TIMEOUT_MS } from '../protocol/relay.ts';

/** What the hub keeps on each relay socket (survives hibernation). */
export interface SocketState {
  relayId: string;
  greeted: boolean;
  /** When the socket connected, or last sent something other than an auto-answered ping. */
  heardAt?: number;
  /** Closed for silence: no longer counted as connected, even before the close completes. */
  silent?: boolean;
  /** The relay offered the `batch` feature in its hello and the welcome accepted it. */
  batch?: boolean;
}

/** Writing the attachment on every message would be wasted work: this often at most. */
export const HEARD_AT_RESOLUTION_MS = 1000;

/** The timeout in force: HEARTBEAT_TIMEOUT_MS, or `RELAY_HEARTBEAT_TIMEOUT_MS` from the
 * Worker's environment (e.g. `wrangler dev --var RELAY_HEARTBEAT_TIMEOUT_MS:5000` for fault tests). */
export function heartbeatTimeout(env: { RELAY_HEARTBEAT_TIMEOUT_MS?: string }): number {
  const n = Number(env.RELAY_HEARTBEAT_TIMEOUT_MS);
  return Number.isInteger(n) && n > 0 ? n : HEARTBEAT_TIMEOUT_MS;
}

/** When we last heard from this socket: its last heartbeat or message, else its connecting. */
export function lastHeardAt(ctx: DurableObjectState, ws: WebSocket): number {
  const att = ws.deserializeAttachment() as SocketState;
  return Math.max(ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0, att.heardAt ?? 0);
}

/** Sockets silent for `timeoutMs` or longer (not yet closed for it). */
export function silentSockets(ctx: DurableObjectState, timeoutMs: number, now = Date.now()): WebSocket[] {
  return ctx.getWebSockets().filter((ws) => !(ws.deserializeAttachment() as SocketState).silent && now - lastHeardAt(ctx, ws) >= timeoutMs);
}

/** When the next socket would go silent, if none hears anything before: the alarm's time. */
export function nextSilenceAt(ctx: DurableObjectState, timeoutMs: number): number | null {
  let at: number | null = null;
  for (const ws of ctx.getWebSockets()) {
    if ((ws.deserializeAttachment() as SocketState).silent) continue;
    const t = lastHeardAt(ctx, ws) + timeoutMs;
    if (at === null || t < at) at = t;
  }
  return at;
}
