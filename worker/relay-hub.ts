// One Durable Object per relay. It holds the relay's WebSocket with the Hibernation API,
// sends it jobs, applies its responses to D1, and publishes live events.
import { DurableObject } from 'cloudflare:workers';
import { and, asc, eq, inArray, notInArray, sql } from 'drizzle-orm';
import {
  Close,
  FromRelay,
  PING,
  PONG,
  PROTOCOL_FEATURES,
  PROTOCOL_VERSION,
  agreedFeatures,
  decode,
  type OperationName,
} from '../protocol/relay.ts';
import { packFrames } from '../protocol/batch.ts';
import { IN_FLIGHT_STATUSES, type LiveEvent } from '../protocol/api.ts';
import { PendingRequests, RequestFailed } from '../protocol/pending.ts';
import type { Env } from './env.ts';
import { openDb, schema, type Db, type JobRow } from './db/index.ts';
import { expireJobs } from './jobs.ts';
import { JOB_KINDS, REPEATABLE_KINDS, REQUEST_TARGET_COLUMNS, RESUMABLE_KINDS, requestFor, type RequestTarget } from './job-kinds.ts';
import { applyRelayMessages, MAX_MESSAGES_PER_BATCH, type RelayMessage } from './relay-apply.ts';
import { describeRefusals, RefusalMeter } from './relay-refusals.ts';
import { afterJobsFinished } from './job-hooks.ts';
import { publish } from './live-feed.ts';
import { jobJson, relayJson } from './lib/serialize.ts';
import { newId } from './lib/crypto.ts';
import { readSettings } from './settings.ts';
import { notifyJobsFinished, notifyRelayGone, notifyRelayUp } from './notify/events.ts';
import { pinRelayKey } from './relay-key.ts';
import { HEARD_AT_RESOLUTION_MS, heartbeatTimeout, lastHeardAt, nextSilenceAt, silentSockets, type SocketState } from './relay-heartbeat.ts';

const { relays, hosts, jobs } = schema;

export const RELAY_ID_HEADER = 'X-PatchMan-Relay-Id';

/** A dispatched job's deadline is its kind's time limit plus this (the relay's own timeout
 * fires first and answers). */
const DEADLINE_GRACE_MS = 15_000;

/** Longest a live event waits to be published with others (a job's output included: well
 * inside the quarter second a line may take from the host to the browser). */
const LIVE_FLUSH_MS = 40;

/** Under a stream of responses a batch is applied at most once per this. During "Scan all"
 * each batch (one D1 transaction, then the hooks' reads, the follow-ups it queues and their
 * dispatch: five D1 round trips and a broadcast whatever its size) takes half a second's
 * answers (about 120) instead of the two or three that came while the last one was written.
 * A job's output is never held back (a line must reach the browser within a blink). */
export const APPLY_WINDOW_MS = 500;

/** …but a stream that pauses this long is applied without waiting for the rest of the window:
 * the last answers of a "Scan all" go within this (a lone response after a quiet spell goes at
 * once). Longer than the relay's own gathering (relay/outbox.ts GATHER_MS, 50 ms), whose
 * frames come that far apart under a stream. */
export const APPLY_QUIET_MS = 80;

type Attachment = SocketState;

export class RelayHub extends DurableObject<Env> {
  db: Db;
  /** Requests whose caller awaits the answer in memory (the object stays awake meanwhile). */
  pending = new PendingRequests<unknown>();
  /** A relay's outputs and responses wait here and are applied in batches, in arrival
   * order (relay-apply.ts): whatever arrived while one batch was being written is the next
   * batch. Each entry settles when its message has been applied. */
  #incoming: { relayId: string; msg: RelayMessage; done: () => void }[] = [];
  #draining = false;
  /** When the last batch was taken (APPLY_WINDOW_MS) and written, and when the last message
   * came (APPLY_QUIET_MS), and how to end the wait for the next batch early (output arrived). */
  #lastBatchAt = 0;
  #lastBatchEndAt = 0;
  #lastArrivalAt = 0;
  #wake: (() => void) | null = null;
  /** Live events wait here up to LIVE_FLUSH_MS and go out as one broadcast. */
  #live: LiveEvent[] = [];
  #liveTimer: ReturnType<typeof setTimeout> | null = null;
  /** Batches being applied: their events wait for them (emit). */
  #liveHeld = 0;
  /** A hello and what follows it are taken in order: reports wait for the hello before
   * them (a relay that reconnects mid-run sends output right after its hello). */
  #greeting: Promise<void> = Promise.resolve();
  /** Refused reports of this relay (relay-refusals.ts): too many and it is disconnected. */
  #refusals = new RefusalMeter();
  /** A relay silent this long is disconnected (see relay-heartbeat.ts). */
  heartbeatTimeoutMs: number;
  /** See APPLY_WINDOW_MS and APPLY_QUIET_MS (tests lengthen them). */
  applyWindowMs = APPLY_WINDOW_MS;
  applyQuietMs = APPLY_QUIET_MS;

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
    if (m.type === 'hello') {
      const greeting = this.#greeting.then(() => this.greet(ws, m));
      this.#greeting = greeting.catch((err) => console.error('relay hello failed', err instanceof Error ? err.message : String(err)));
      await greeting;
      return;
    }
    await this.#greeting;
    const now = ws.deserializeAttachment() as Attachment;
    if (!now.greeted) {
      ws.close(Close.invalidMessage, 'hello first');
      return;
    }
    if (m.type === 'batch' && !now.batch) {
      ws.close(Close.invalidMessage, 'batch frames were not agreed in the hello');
      return;
    }
    // output or responses (liveness comes from heartbeats: see status())
    const taken = (m.type === 'batch' ? m.messages : [m]).filter((r) => !(r.type === 'response' && this.pending.settle(r.id, r)));
    if (taken.length === 0) return;
    await new Promise<void>((done) => {
      let left = taken.length;
      const one = () => --left === 0 && done();
      for (const msg of taken) this.#incoming.push({ relayId: now.relayId, msg, done: one });
      this.#lastArrivalAt = Date.now();
      if (taken.some((msg) => msg.type === 'output')) this.#wake?.();
      if (!this.#draining) void this.drain();
    });
  }

  async greet(ws: WebSocket, m: Extract<FromRelay, { type: 'hello' }>): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment;
    // one hello per connection: each costs D1 writes and a dispatch, so a repeated one is a
    // protocol error, not a way to make the Worker work
    if (att.greeted) {
      ws.close(Close.invalidMessage, 'hello was already sent on this connection');
      return;
    }
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
    const features = agreedFeatures(m.features, PROTOCOL_FEATURES);
    ws.serializeAttachment({ ...att, greeted: true, heardAt: Date.now(), batch: features.includes('batch') } satisfies Attachment);
    await this.scheduleAlarm();
    const orphaned = await this.reclaimOrphans(att.relayId);
    const { scanConcurrency } = await readSettings(this.db);
    ws.send(JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, relayId: row.id, name: row.name, concurrency: scanConcurrency, features }));
    await publish(this.env, { type: 'relay', relay: relayJson(row, { connected: true, lastSeenAt: Date.now() }) }, ...orphaned);
    await notifyRelayUp(this.env, att.relayId);
    await this.dispatch();
  }

  /** Apply the waiting messages, a batch at a time, until none are left. */
  async drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#incoming.length) {
        // (a pause counts from the end of the last batch too: what came while it was written is
        // the start of the next one, not a stream that stopped)
        const wait = Math.min(this.#lastBatchAt + this.applyWindowMs, Math.max(this.#lastArrivalAt, this.#lastBatchEndAt) + this.applyQuietMs) - Date.now();
        if (wait > 0 && this.#incoming.length < MAX_MESSAGES_PER_BATCH && !this.#incoming.some((b) => b.msg.type === 'output')) {
          await new Promise<void>((woken) => {
            const timer = setTimeout(woken, wait);
            this.#wake = () => (clearTimeout(timer), woken());
          });
          this.#wake = null;
          continue;
        }
        this.#lastBatchAt = Date.now();
        const batch = this.#incoming.splice(0, MAX_MESSAGES_PER_BATCH);
        try {
          await this.applyBatch(batch[0].relayId, batch.map((b) => b.msg));
        } catch (err) {
          // one bad message must not lose the others: apply them one at a time
          console.error('relay batch failed; applying its messages singly', err instanceof Error ? err.message : String(err));
          for (const b of batch) {
            await this.applyBatch(b.relayId, [b.msg]).catch((e) =>
              console.error(`relay message for job ${b.msg.id} failed`, e instanceof Error ? e.message : String(e)),
            );
          }
        } finally {
          this.#lastBatchEndAt = Date.now();
          for (const b of batch) b.done();
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Apply a batch; throws only if its one transaction failed (then nothing of it was
   * written, and the caller may apply the messages again one by one). */
  async applyBatch(relayId: string, messages: RelayMessage[]): Promise<void> {
    return this.#withLiveHeld(() => this.#applyBatch(relayId, messages));
  }

  async #applyBatch(relayId: string, messages: RelayMessage[]): Promise<void> {
    const { events, finished, refused } = await applyRelayMessages(this.db, relayId, messages, (output) => this.emit(output, true));
    if (refused.length) {
      console.warn(describeRefusals(relayId, refused));
      if (this.#refusals.record(refused.length)) {
        console.warn(`relay ${relayId}: more than ${this.#refusals.limit} reports refused within ${this.#refusals.windowMs / 1000} s; disconnecting it`);
        for (const ws of this.ctx.getWebSockets()) ws.close(Close.invalidMessage, 'too many reports about jobs this relay was not asked to run');
      }
    }
    this.emit(events);
    try {
      const hostOf = async (id: string) => (await this.db.query.hosts.findFirst({ where: eq(hosts.id, id) })) ?? null;
      // follow-ups of the whole batch, then one dispatch
      // (the follow-ups queued are announced with this batch's events, in the same broadcast)
      if ((await afterJobsFinished(this.env, this.db, finished, hostOf, (events) => this.emit(events))) > 0) await this.dispatch();
    } catch (err) {
      console.error('after-job hooks failed', err instanceof Error ? err.message : String(err));
    }
  }

  /** Publish live events coalesced: one broadcast per LIVE_FLUSH_MS at most, and one per
   * applied batch (held until the batch, its follow-ups and their dispatch are done: a docker
   * scan queued and dispatched by the same batch is then announced once, coalesceEvents);
   * `now` (a job's output) sends what is waiting at once, in order. */
  emit(events: LiveEvent[], now = false): void {
    if (events.length === 0) return;
    this.#live.push(...events);
    if (now && this.#liveTimer) {
      clearTimeout(this.#liveTimer);
      this.#liveTimer = null;
    }
    if (!now && this.#liveHeld > 0) return;
    this.#liveTimer ??= setTimeout(() => this.#publishLive(), now ? 0 : LIVE_FLUSH_MS);
  }

  #publishLive(): void {
    if (this.#liveTimer) clearTimeout(this.#liveTimer);
    this.#liveTimer = null;
    if (this.#live.length) void publish(this.env, ...this.#live.splice(0));
  }

  /** Hold the live events of what `work` does, and publish them together when it is done. */
  async #withLiveHeld<T>(work: () => Promise<T>): Promise<T> {
    this.#liveHeld++;
    try {
      return await work();
    } finally {
      if (--this.#liveHeld === 0) this.#publishLive();
    }
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
    const inFlight = and(eq(jobs.relayId, relayId), inArray(jobs.status, [...IN_FLIGHT_STATUSES]));
    const requeued = await this.db
      .update(jobs)
      .set({ status: 'queued', dispatchedAt: null, startedAt: null, deadlineAt: null })
      .where(and(inFlight, inArray(jobs.kind, REPEATABLE_KINDS)))
      .returning();
    const resumed = await this.db
      .update(jobs)
      .set({ status: 'queued', resume: true })
      .where(and(inFlight, inArray(jobs.kind, RESUMABLE_KINDS)))
      .returning();
    const lost = await this.db
      .update(jobs)
      .set({ status: 'lost', finishedAt: Date.now(), errorCode: 'relay-disconnected', errorMessage: 'the relay reconnected without answering' })
      .where(and(inFlight, notInArray(jobs.kind, [...REPEATABLE_KINDS, ...RESUMABLE_KINDS])))
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
      .where(and(eq(jobs.relayId, relayId), inArray(jobs.status, [...IN_FLIGHT_STATUSES]), notInArray(jobs.kind, RESUMABLE_KINDS)))
      .returning();
    const [row] = await this.db.update(relays).set({ lastSeenAt: now }).where(eq(relays.id, relayId)).returning();
    const events: LiveEvent[] = lost.map((j) => ({ type: 'job', job: jobJson(j) }));
    if (row) events.push({ type: 'relay', relay: relayJson(row, { connected: false, lastSeenAt: now }) });
    await publish(this.env, ...events);
    await notifyRelayGone(this.env, relayId);
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
    const { relayId, batch } = ws.deserializeAttachment() as Attachment;
    const now = Date.now();
    // Claim the queued jobs in one statement (the deadline depends on the kind).
    const deadline = sql.join(
      (Object.keys(JOB_KINDS) as JobRow['kind'][]).map((k) => sql`when ${k} then ${now + JOB_KINDS[k].timeoutMs + DEADLINE_GRACE_MS}`),
      sql` `,
    );
    // …and read their hosts in the same round trip (those of the jobs this relay was handed now)
    const handedNow = this.db
      .select({ id: jobs.hostId })
      .from(jobs)
      .where(and(eq(jobs.relayId, relayId), eq(jobs.status, 'dispatched'), eq(jobs.dispatchedAt, now)));
    const [claimed, hostRows] = await this.db.batch([
      this.db
        .update(jobs)
        .set({ status: 'dispatched', dispatchedAt: now, startedAt: sql`coalesce(${jobs.startedAt}, ${now})`, deadlineAt: sql`case ${jobs.kind} ${deadline} end` })
        .where(and(eq(jobs.relayId, relayId), eq(jobs.status, 'queued')))
        .returning(),
      this.db.select(REQUEST_TARGET_COLUMNS).from(hosts).where(inArray(hosts.id, handedNow)),
    ]);
    if (claimed.length === 0) return 0;
    const hostById = new Map<string, RequestTarget>(hostRows.map((h) => [h.id, h]));
    claimed.sort((a, b) => a.createdAt - b.createdAt);
    const requests = claimed.map((job) => {
      // (a job's host cannot vanish: deleting a host deletes its jobs)
      const { op, params, timeoutMs } = requestFor(job, hostById.get(job.hostId)!);
      return JSON.stringify({ type: 'request', id: job.id, op, params, timeoutMs });
    });
    for (const frame of batch ? packFrames(requests) : requests) ws.send(frame);
    await this.alarmBy(Math.min(...claimed.map((j) => j.deadlineAt ?? Infinity)));
    this.emit(claimed.map((job): LiveEvent => ({ type: 'job', job: jobJson(job) })));
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
    await notifyJobsFinished(this.env, failed);
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

  /** Make sure the alarm fires by `at` (the earliest deadline of jobs just dispatched): a later
   * alarm is moved; none set (nothing was in flight, no socket to watch) means a full
   * scheduleAlarm. No D1 read on every dispatch. */
  async alarmBy(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null) return this.scheduleAlarm();
    if (at < current) await this.ctx.storage.setAlarm(at);
  }

  async scheduleAlarm(): Promise<void> {
    const relayId = await this.ctx.storage.get<string>('relayId');
    if (!relayId) return;
    const next = await this.db.query.jobs.findFirst({
      where: and(eq(jobs.relayId, relayId), inArray(jobs.status, [...IN_FLIGHT_STATUSES])),
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
