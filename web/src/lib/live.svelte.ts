// The dashboard's live state: relays, hosts and recent jobs, kept current by the
// `/api/live` WebSocket. Every (re)connect refetches the lists, so events missed while the
// socket was down are never lost; events are validated against protocol/api.ts.
import * as v from 'valibot';
import { LiveEvent, type Host, type Job, type Relay } from '$protocol/api.ts';
import { api, ApiError } from './api.ts';
import { toasts } from './toasts.svelte.ts';

export type SocketState = 'idle' | 'connecting' | 'open' | 'closed';

const ACTIVE_JOB = new Set<Job['status']>(['queued', 'dispatched', 'running']);
export const isActiveJob = (job: Job | undefined) => !!job && ACTIVE_JOB.has(job.status);

const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name, undefined, { numeric: true });

const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30_000;

class LiveStore {
  relays = $state<Relay[]>([]);
  hosts = $state<Host[]>([]);
  /** Latest known job per host id. */
  latestJob = $state<Record<string, Job>>({});
  /** Scans this browser started and is waiting on: host id → job id (null until the POST answers). */
  pendingScans = $state<Record<string, string | null>>({});

  socket = $state<SocketState>('idle');
  /** True once the first fetch of the lists has completed. */
  loaded = $state(false);
  /** Why the last fetch failed, if it did (cleared by the next good one). */
  loadError = $state<string | null>(null);
  version = $state<string | null>(null);
  /** When the socket will next try to reconnect (ms epoch), while closed. */
  retryAt = $state<number | null>(null);

  #ws: WebSocket | null = null;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #started = false;
  #syncing: Promise<void> | null = null;
  #listeners = new Set<(event: LiveEvent) => void>();

  connectedRelays = $derived(this.relays.filter((r) => r.connected));

  /** Subscribe to every validated event (after the store has applied it). */
  onEvent(fn: (event: LiveEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  start() {
    if (this.#started || typeof window === 'undefined') return;
    this.#started = true;
    window.addEventListener('online', this.#wake);
    document.addEventListener('visibilitychange', this.#wake);
    void this.resync();
    this.#connect();
  }

  stop() {
    this.#started = false;
    window.removeEventListener('online', this.#wake);
    document.removeEventListener('visibilitychange', this.#wake);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000, 'bye');
    this.socket = 'idle';
  }

  /** Retry now instead of waiting for the backoff (network back, tab visible again). */
  #wake = () => {
    if (!this.#started || document.visibilityState === 'hidden') return;
    if (this.socket === 'closed') {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      this.#connect();
    }
  };

  #connect() {
    if (!this.#started) return;
    this.retryAt = null;
    this.socket = 'connecting';
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/live`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#attempt = 0;
      this.socket = 'open';
      // Anything that happened while we were away is in the lists, not in the socket.
      void this.resync();
    };
    ws.onmessage = (msg) => {
      if (this.#ws !== ws || typeof msg.data !== 'string') return;
      let json: unknown;
      try {
        json = JSON.parse(msg.data);
      } catch {
        return;
      }
      const parsed = v.safeParse(LiveEvent, json);
      if (!parsed.success) {
        // Unknown event types are expected as the API grows; ignore them quietly.
        if (import.meta.env.DEV) console.debug('live: ignored event', json, parsed.issues);
        return;
      }
      this.apply(parsed.output);
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows and schedules the retry
    };
  }

  #scheduleReconnect() {
    if (!this.#started) return;
    this.socket = 'closed';
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.#attempt);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.#attempt++;
    this.retryAt = Date.now() + delay;
    // Without the socket nothing tells us about changes: refetch at the backoff's pace so the
    // page stays roughly current (and shows the error if the server itself is down).
    if (this.#attempt > 2) void this.resync();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, delay);
  }

  /** Refetch relays, hosts and recent jobs. Concurrent calls share one fetch. */
  resync(): Promise<void> {
    if (this.#syncing) return this.#syncing;
    this.#syncing = (async () => {
      try {
        const [health, relays, hosts, jobs] = await Promise.all([
          api.health().catch(() => null),
          api.relays(),
          api.hosts(),
          api.jobs().catch(() => [] as Job[]),
        ]);
        if (health) this.version = health.version;
        this.relays = relays.toSorted(byName);
        this.hosts = hosts.toSorted(byName);
        const latest: Record<string, Job> = {};
        for (const job of jobs) {
          const cur = latest[job.hostId];
          if (!cur || job.createdAt > cur.createdAt) latest[job.hostId] = job;
        }
        // Keep only hosts that still exist; jobs older than the list's window stay as they were.
        const ids = new Set(hosts.map((h) => h.id));
        const merged: Record<string, Job> = {};
        for (const id of ids) {
          const a = this.latestJob[id];
          const b = latest[id];
          const pick = !a ? b : !b ? a : b.createdAt >= a.createdAt ? b : a;
          if (pick) merged[id] = pick;
        }
        this.latestJob = merged;
        for (const hostId of Object.keys(this.pendingScans)) {
          if (!ids.has(hostId)) delete this.pendingScans[hostId];
        }
        await this.#settlePendingScans();
        this.loadError = null;
      } catch (err) {
        this.loadError = err instanceof Error ? err.message : String(err);
      } finally {
        this.loaded = true;
        this.#syncing = null;
      }
    })();
    return this.#syncing;
  }

  /** After a resync, look up each scan we are still waiting on. */
  async #settlePendingScans() {
    const waiting = Object.entries(this.pendingScans).filter(([, jobId]) => jobId);
    await Promise.all(
      waiting.map(async ([hostId, jobId]) => {
        if (this.latestJob[hostId]?.id === jobId && !isActiveJob(this.latestJob[hostId])) {
          delete this.pendingScans[hostId];
          return;
        }
        const jobs = await api.jobs(hostId).catch(() => [] as Job[]);
        const job = jobs.find((j) => j.id === jobId);
        if (job) this.#applyJob(job);
      }),
    );
  }

  apply(event: LiveEvent) {
    switch (event.type) {
      case 'relay':
        upsert(this.relays, event.relay);
        break;
      case 'host':
        upsert(this.hosts, event.host);
        break;
      case 'host.deleted': {
        const i = this.hosts.findIndex((h) => h.id === event.id);
        if (i >= 0) this.hosts.splice(i, 1);
        delete this.latestJob[event.id];
        delete this.pendingScans[event.id];
        break;
      }
      case 'job':
        this.#applyJob(event.job);
        break;
    }
    for (const fn of this.#listeners) {
      try {
        fn(event);
      } catch (err) {
        console.error(err);
      }
    }
  }

  #applyJob(job: Job) {
    const cur = this.latestJob[job.hostId];
    if (!cur || cur.id === job.id || job.createdAt >= cur.createdAt) this.latestJob[job.hostId] = job;
    if (this.pendingScans[job.hostId] === job.id && !isActiveJob(job)) {
      delete this.pendingScans[job.hostId];
      if (job.status !== 'succeeded') {
        const name = this.hosts.find((h) => h.id === job.hostId)?.name ?? 'host';
        toasts.push('error', `Scan of ${name} ${job.status}${job.error ? `: ${job.error.message}` : ''}`);
      }
    }
  }

  /** Is a scan for this host waiting or running (ours, or anyone's we heard about)? */
  isScanning(hostId: string): boolean {
    return hostId in this.pendingScans || isActiveJob(this.latestJob[hostId]);
  }

  async scan(hostId: string): Promise<void> {
    if (hostId in this.pendingScans) return;
    this.pendingScans[hostId] = null;
    try {
      const { jobId } = await api.scanHost(hostId);
      const known = this.latestJob[hostId];
      if (known?.id === jobId && !isActiveJob(known)) delete this.pendingScans[hostId];
      else if (hostId in this.pendingScans) this.pendingScans[hostId] = jobId;
    } catch (err) {
      delete this.pendingScans[hostId];
      throw err;
    }
  }

  async addHost(body: Parameters<typeof api.createHost>[0]): Promise<Host> {
    const host = await api.createHost(body);
    upsert(this.hosts, host);
    return host;
  }

  async deleteHost(hostId: string): Promise<void> {
    try {
      await api.deleteHost(hostId);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    this.apply({ type: 'host.deleted', id: hostId });
  }

  relayName(id: string | null): string | null {
    if (!id) return null;
    return this.relays.find((r) => r.id === id)?.name ?? null;
  }
}

function upsert<T extends { id: string; name: string }>(list: T[], item: T) {
  const i = list.findIndex((x) => x.id === item.id);
  if (i >= 0) {
    if (list[i].name === item.name) {
      list[i] = item;
      return;
    }
    list.splice(i, 1);
  }
  let at = list.findIndex((x) => byName(item, x) < 0);
  if (at < 0) at = list.length;
  list.splice(at, 0, item);
}

export const live = new LiveStore();
