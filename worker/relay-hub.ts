// One Durable Object per relay. It holds the relay's WebSocket with the Hibernation API,
// sends it jobs, applies its responses to D1, and publishes live events.
import { DurableObject } from 'cloudflare:workers';
import { and, asc, eq, inArray, notInArray, sql } from 'drizzle-orm';
import {
  Close,
  FromRelay,
  PING,
  PONG,
  PROTOCOL_VERSION,
  decode,
  type OperationName,
} from '../protocol/relay.ts';
import type { LiveEvent } from '../protocol/api.ts';
import { PendingRequests, RequestFailed } from '../protocol/pending.ts';
import type { Env } from './env.ts';
import { openDb, schema, type Db, type HostRow, type JobRow } from './db/index.ts';
import { applyResponse, expireJobs, storeOutput, CHANGES, JOB_TIMEOUT_MS, REPEATABLE, RESUMABLE, requestFor } from './jobs.ts';
import { startDockerScan, startScans } from './hosts.ts';
import { publish } from './live-feed.ts';
import { hostJson, jobJson, relayJson } from './lib/serialize.ts';
import { newId } from './lib/crypto.ts';
import { readSettings } from './settings.ts';
import { pinRelayKey } from './relay-key.ts';
import { HEARD_AT_RESOLUTION_MS, heartbeatTimeout, lastHeardAt, nextSilenceAt, silentSockets, type SocketState } from './relay-heartbeat.ts';

const { relays, hosts, jobs } = schema;

export const RELAY_ID_HEADER = 'X-PatchMan-Relay-Id';

/** Failures after which a change did not touch the host, so no rescan follows. */
const NOTHING_CHANGED = new Set(['monitor-only', 'invalid-request', 'unknown-operation', 'unsupported-os', 'sudo-password', 'not-started', 'unreachable', 'auth-refused', 'host-key-changed', 'locked', 'dpkg-interrupted']);

type Attachment = SocketState;

export class RelayHub extends DurableObject<Env> {
  db: Db;
  /** Requests whose caller awaits the answer in memory (the object stays awake meanwhile). */
  pending = new PendingRequests<unknown>();
  /** A relay's outputs and responses are applied one at a time, in order: a job's output
   * must be stored before its response finishes it, and each output chunk is checked
   * against the offset the previous one left. */
  #inOrder: Promise<void> = Promise.resolve();
  /** A relay silent this long is disconnected (see relay-heartbeat.ts). */
  heartbeatTimeoutMs: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.db = openDb(env.DB);
    this.heartbeatTimeoutMs = heartbeatTimeout(env);
    // Heartbeats are answered without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  }

  // ---- the relay's socket ---------------------------------------------------------------

  async fetch(request: Request): Promise<Response> {
    const relayId = request.headers.get(RELAY_ID_HEADER);
    if (!relayId) return new Response('missing relay id', { status: 400 });
    await this.ctx.storage.put('relayId', relayId);
    // One live connection per relay: a reconnecting relay replaces its stale socket.
    for (const old of this.ctx.getWebSockets()) {
      try {
        old.close(Close.replaced, 'replaced by a newer connection');
      } catch {
        // already gone
      }
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ relayId, greeted: false, heardAt: Date.now() } satisfies Attachment);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment;
    const msg = decode(FromRelay, message);
    if (!msg.ok) {
      console.warn(`relay ${att.relayId}: invalid message (${msg.reason}); closing`);
      ws.close(Close.invalidMessage, `invalid message: ${msg.reason}`.slice(0, 120));
      return;
    }
    const m = msg.value;
    if (Date.now() - (att.heardAt ?? 0) > HEARD_AT_RESOLUTION_MS) ws.serializeAttachment({ ...att, heardAt: Date.now() } satisfies Attachment);
    if (m.type === 'ping') {
      ws.send(PONG);
      return;
    }
    // A hello, and what comes after it, one at a time and in order: a relay that reconnects
    // mid-run sends output right after its hello, and the hello's D1 calls let it in early.
    const step = this.#inOrder.then(() => (m.type === 'hello' ? this.greet(ws, m) : this.onReport(ws, m)));
    this.#inOrder = step.catch((err) => console.error('relay message failed', err instanceof Error ? err.message : String(err)));
    await step;
  }

  async greet(ws: WebSocket, m: Extract<FromRelay, { type: 'hello' }>): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment;
    if (m.v !== PROTOCOL_VERSION) {
      ws.close(Close.versionMismatch, `protocol version ${m.v} is not supported; this server speaks ${PROTOCOL_VERSION}`);
      return;
    }
    const pinned = await this.db.query.relays.findFirst({ where: eq(relays.id, att.relayId) });
    const key = pinRelayKey(pinned ?? { publicKey: null }, m.publicKey);
    if (key.publicKeyOffered) console.warn(`relay ${att.relayId}: presented an SSH key other than the pinned one; waiting for an admin to accept it`);
    const [row] = await this.db
      .update(relays)
      .set({ version: m.version, hostname: m.hostname, lastSeenAt: Date.now(), ...key })
      .where(eq(relays.id, att.relayId))
      .returning();
    if (!row || row.revokedAt) {
      ws.close(Close.revoked, 'relay revoked');
      return;
    }
    ws.serializeAttachment({ ...att, greeted: true, heardAt: Date.now() } satisfies Attachment);
    await this.scheduleAlarm();
    const orphaned = await this.reclaimOrphans(att.relayId);
    const { scanConcurrency } = await readSettings(this.db);
    ws.send(JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, relayId: row.id, name: row.name, concurrency: scanConcurrency }));
    await publish(this.env, { type: 'relay', relay: relayJson(row, { connected: true, lastSeenAt: Date.now() }) }, ...orphaned);
    await this.dispatch();
  }

  /** Output or a response (liveness comes from heartbeats: see status()). */
  async onReport(ws: WebSocket, m: Extract<FromRelay, { type: 'output' | 'response' }>): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment;
    if (!att.greeted) {
      ws.close(Close.invalidMessage, 'hello first');
      return;
    }
    if (m.type === 'response' && this.pending.settle(m.id, m)) return;
    await (m.type === 'output' ? this.onOutput(m, att.relayId) : this.onResponse(m, att.relayId));
  }

  async onOutput(m: Extract<FromRelay, { type: 'output' }>, relayId: string): Promise<void> {
    const stored = await storeOutput(this.db, m, relayId);
    if (!stored) return;
    const events: LiveEvent[] = [{ type: 'job.output', jobId: stored.job.id, hostId: stored.job.hostId, data: m.data }];
    if (stored.started) events.unshift({ type: 'job', job: jobJson(stored.job) });
    await publish(this.env, ...events);
  }

  async onResponse(m: Extract<FromRelay, { type: 'response' }>, relayId: string): Promise<void> {
    const { job, host } = await applyResponse(this.db, m, relayId);
    const events: LiveEvent[] = [];
    if (host) events.push({ type: 'host', host: hostJson(host) });
    if (job) events.push({ type: 'job', job: jobJson(job) });
    await publish(this.env, ...events);
    if (!job) return;
    // A host with Docker: look at its Compose stacks too.
    if (job.kind === 'scan' && job.status === 'succeeded' && host?.docker) {
      await startDockerScan(this.env, this.db, host, job.requestedBy, { dispatch: false });
      await this.dispatch();
      return;
    }
    if (!CHANGES.includes(job.kind) || NOTHING_CHANGED.has(job.errorCode ?? '')) return;
    const target = host ?? (await this.db.query.hosts.findFirst({ where: eq(hosts.id, job.hostId) }));
    if (job.kind === 'stack-update') {
      // A stack update that ended well brought the stack back, checked again; otherwise look.
      if (job.status !== 'succeeded' && target) {
        await startDockerScan(this.env, this.db, target, job.requestedBy ?? 'after stack-update', { stack: job.params?.stack, dispatch: false });
        await this.dispatch();
      }
      return;
    }
    // After a change, look again: the package list, the reboot flag, the kernel.
    if (target) await startScans(this.env, this.db, [target], job.requestedBy ?? `after ${job.kind}`, { dispatch: false });
    await this.dispatch();
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment | null;
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
    if (this.ctx.getWebSockets().some((s) => s !== ws && !(s.deserializeAttachment() as Attachment).silent)) return; // replaced, not gone
    if (att?.silent) return; // already handled as gone by closeSilent
    this.pending.failAll(new RequestFailed('relay-disconnected', 'the relay disconnected'));
    if (!att) return;
    await this.relayGone(att.relayId);
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att && !att.silent && !this.ctx.getWebSockets().some((s) => s !== ws && !(s.deserializeAttachment() as Attachment).silent)) await this.relayGone(att.relayId);
  }

  /** Jobs sent on an earlier connection: their answers (and output) went to a dead socket
   * (the relay restarted, its network dropped, or the Worker was redeployed). Scans change
   * nothing, so they are sent again. Upgrades are sent again too: the relay re-attaches to
   * the run on the host (started at most once per job) and resends the log from the offset
   * stored here. A reboot is re-sent as `resume`: wait for the host, never reboot again.
   * Anything else can no longer be known and is marked lost. */
  async reclaimOrphans(relayId: string): Promise<LiveEvent[]> {
    const inFlight = and(eq(jobs.relayId, relayId), inArray(jobs.status, ['dispatched', 'running']));
    const requeued = await this.db
      .update(jobs)
      .set({ status: 'queued', dispatchedAt: null, startedAt: null, deadlineAt: null })
      .where(and(inFlight, inArray(jobs.kind, REPEATABLE)))
      .returning();
    const resumed = await this.db
      .update(jobs)
      .set({ status: 'queued', resume: sql`${jobs.kind} = 'reboot'` })
      .where(and(inFlight, inArray(jobs.kind, RESUMABLE)))
      .returning();
    const lost = await this.db
      .update(jobs)
      .set({ status: 'lost', finishedAt: Date.now(), errorCode: 'relay-disconnected', errorMessage: 'the relay reconnected without answering' })
      .where(and(inFlight, notInArray(jobs.kind, [...REPEATABLE, ...RESUMABLE])))
      .returning();
    return [...requeued, ...resumed, ...lost].map((j) => ({ type: 'job', job: jobJson(j) }));
  }

  /** The relay vanished: what it was running can no longer be known, except for upgrades
   * and reboots, which go on without it and wait (until their deadline) for it to return. */
  async relayGone(relayId: string): Promise<void> {
    const now = Date.now();
    const lost = await this.db
      .update(jobs)
      .set({ status: 'lost', finishedAt: now, errorCode: 'relay-disconnected', errorMessage: 'the relay disconnected before answering' })
      .where(and(eq(jobs.relayId, relayId), inArray(jobs.status, ['dispatched', 'running']), notInArray(jobs.kind, RESUMABLE)))
      .returning();
    const [row] = await this.db.update(relays).set({ lastSeenAt: now }).where(eq(relays.id, relayId)).returning();
    const events: LiveEvent[] = lost.map((j) => ({ type: 'job', job: jobJson(j) }));
    if (row) events.push({ type: 'relay', relay: relayJson(row, { connected: false, lastSeenAt: now }) });
    await publish(this.env, ...events);
  }

  // ---- called by the Worker (RPC) -------------------------------------------------------

  /** Is the relay connected, and when did we last hear from it (heartbeats included)? */
  status(): { connected: boolean; lastSeenAt: number | null } {
    const sockets = this.ctx.getWebSockets();
    let last: number | null = null;
    for (const ws of sockets) {
      const t = this.ctx.getWebSocketAutoResponseTimestamp(ws);
      if (t && (last === null || t.getTime() > last)) last = t.getTime();
    }
    const connected = sockets.some((ws) => {
      const att = ws.deserializeAttachment() as Attachment;
      return att.greeted && !att.silent && Date.now() - lastHeardAt(this.ctx, ws) < this.heartbeatTimeoutMs;
    });
    return { connected, lastSeenAt: last };
  }

  /** Send every queued job of this relay, if it is connected. */
  async dispatch(): Promise<number> {
    const ws = this.greetedSocket();
    if (!ws) return 0;
    const relayId = (ws.deserializeAttachment() as Attachment).relayId;
    const now = Date.now();
    // Claim the queued jobs in one statement per kind (the deadline depends on the kind).
    const claimed: JobRow[] = [];
    for (const [kind, timeoutMs] of Object.entries(JOB_TIMEOUT_MS) as [JobRow['kind'], number][]) {
      claimed.push(
        ...(await this.db
          .update(jobs)
          .set({ status: 'dispatched', dispatchedAt: now, startedAt: sql`coalesce(${jobs.startedAt}, ${now})`, deadlineAt: now + timeoutMs + 15_000 })
          .where(and(eq(jobs.relayId, relayId), eq(jobs.status, 'queued'), eq(jobs.kind, kind)))
          .returning()),
      );
    }
    if (claimed.length === 0) return 0;
    const hostById = new Map<string, HostRow>();
    const hostIds = [...new Set(claimed.map((j) => j.hostId))];
    for (let i = 0; i < hostIds.length; i += 90) {
      for (const h of await this.db.select().from(hosts).where(inArray(hosts.id, hostIds.slice(i, i + 90)))) hostById.set(h.id, h);
    }
    claimed.sort((a, b) => a.createdAt - b.createdAt);
    for (const job of claimed) {
      // (a job's host cannot vanish: deleting a host deletes its jobs)
      const { op, params } = requestFor(job, hostById.get(job.hostId)!);
      ws.send(JSON.stringify({ type: 'request', id: job.id, op, params, timeoutMs: JOB_TIMEOUT_MS[job.kind] }));
    }
    await this.scheduleAlarm();
    await publish(this.env, ...claimed.map((job): LiveEvent => ({ type: 'job', job: jobJson(job) })));
    return claimed.length;
  }

  /** Ask the relay something and wait for the answer (no job row): e.g. "test connection".
   * Failures come back as values: errors thrown across RPC lose their code. */
  async request(
    op: OperationName,
    params: unknown,
    timeoutMs: number,
  ): Promise<{ ok: true; response: unknown } | { ok: false; code: string; message: string }> {
    const ws = this.greetedSocket();
    if (!ws) return { ok: false, code: 'relay-disconnected', message: 'the relay is not connected' };
    const id = newId();
    const answer = this.pending.wait(id, timeoutMs + 5_000);
    ws.send(JSON.stringify({ type: 'request', id, op, params, timeoutMs }));
    try {
      return { ok: true, response: await answer };
    } catch (err) {
      return { ok: false, code: err instanceof RequestFailed ? err.code : 'internal', message: (err as Error).message };
    }
  }

  /** Push a changed scan-concurrency setting to the connected relay. */
  configure(concurrency: number): void {
    this.greetedSocket()?.send(JSON.stringify({ type: 'config', concurrency }));
  }

  /** Close the relay's socket at once (token revoked or relay deleted). */
  disconnect(reason: string): void {
    for (const ws of this.ctx.getWebSockets()) ws.close(Close.revoked, reason);
  }

  async alarm(): Promise<void> {
    const relayId = (await this.ctx.storage.get<string>('relayId')) ?? null;
    if (!relayId) return;
    await this.closeSilent();
    const failed = await expireJobs(this.db, relayId);
    await publish(this.env, ...failed.map((j): LiveEvent => ({ type: 'job', job: jobJson(j) })));
    await this.scheduleAlarm();
  }

  greetedSocket(): WebSocket | null {
    return this.ctx.getWebSockets().find((ws) => (ws.deserializeAttachment() as Attachment).greeted && !(ws.deserializeAttachment() as Attachment).silent) ?? null;
  }

  /** Close the sockets that missed their heartbeats; with none left, the relay is gone
   * (its close handshake may never come: a frozen relay does not answer). */
  async closeSilent(): Promise<void> {
    const silent = silentSockets(this.ctx, this.heartbeatTimeoutMs);
    if (silent.length === 0) return;
    let relayId: string | null = null;
    for (const ws of silent) {
      const att = ws.deserializeAttachment() as Attachment;
      relayId = att.relayId;
      console.warn(`relay ${att.relayId}: no heartbeat for ${Math.round(this.heartbeatTimeoutMs / 1000)} s; disconnecting it`);
      ws.serializeAttachment({ ...att, silent: true } satisfies Attachment);
      try {
        ws.close(Close.silent, 'no heartbeat in time');
      } catch {
        // already gone
      }
    }
    if (relayId && !this.greetedSocket()) {
      this.pending.failAll(new RequestFailed('relay-disconnected', 'the relay stopped answering'));
      await this.relayGone(relayId);
    }
  }

  async scheduleAlarm(): Promise<void> {
    const relayId = await this.ctx.storage.get<string>('relayId');
    if (!relayId) return;
    const next = await this.db.query.jobs.findFirst({
      where: and(eq(jobs.relayId, relayId), inArray(jobs.status, ['dispatched', 'running'])),
      orderBy: asc(jobs.deadlineAt),
    });
    const silenceAt = nextSilenceAt(this.ctx, this.heartbeatTimeoutMs);
    const at = Math.min(next?.deadlineAt ?? Infinity, silenceAt ?? Infinity);
    if (Number.isFinite(at)) await this.ctx.storage.setAlarm(at);
  }
}

export function relayHub(env: Env, relayId: string) {
  return env.RELAY_HUB.get(env.RELAY_HUB.idFromName(relayId));
}


/** The outcome of `askRelay`: the relay's result, or why there is none — `fromRelay` when
 * the relay itself answered with an error (its code is then one of the protocol's). */
export type RelayAnswer =
  | { ok: true; result: unknown }
  | { ok: false; fromRelay: boolean; error: { code: string; message: string } & Record<string, unknown> };

/** Ask a relay something now (no job) and unwrap both levels of failure: the RPC to its
 * hub (not connected, timed out) and the relay's own error response. */
export async function askRelay(env: Env, relayId: string, op: OperationName, params: unknown, timeoutMs: number): Promise<RelayAnswer> {
  // (RPC wraps the union's members, so narrow it by hand)
  const answer = (await relayHub(env, relayId).request(op, params, timeoutMs)) as
    | { ok: true; response: unknown }
    | { ok: false; code: string; message: string };
  if (!answer.ok) return { ok: false, fromRelay: false, error: { code: answer.code, message: answer.message } };
  const r = answer.response as { ok: boolean; result?: unknown; error?: { code: string; message: string } };
  if (!r.ok) return { ok: false, fromRelay: true, error: r.error ?? { code: 'internal', message: 'no answer' } };
  return { ok: true, result: r.result };
}
