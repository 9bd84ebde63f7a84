// The dashboard's live state: relays, hosts and recent jobs, kept current by the
// `/api/live` WebSocket. Every (re)connect refetches the lists, so events missed while the
// socket was down are never lost; events are validated against protocol/api.ts.
import * as v from 'valibot';
import { untrack } from 'svelte';
import { ACTIVE_STATUSES, LiveEvent, type CreatedHost, type Host, type Job, type Relay, type Summary } from '$protocol/api.ts';
import { EventBatches } from './event-batches.ts';
import { api, goneAnyway } from './api.ts';
import { forgetEarly } from './early-requests.ts';
import { toasts } from './toasts.svelte.ts';
import { isChangeJob, isPatchJob, lastLine } from './patch.ts';

export type SocketState = 'idle' | 'connecting' | 'open' | 'closed';

const ACTIVE_JOB = new Set<Job['status']>(ACTIVE_STATUSES);
export const isActiveJob = (job: Job | undefined) => !!job && ACTIVE_JOB.has(job.status);

/** A "Scan all" / "Scan filtered" run this browser started, followed through job events. */
export interface ScanBatch {
  id: number;
  /** What was asked for, for the progress line ("all hosts", "3 filtered hosts"). */
  label: string;
  /** Null until POST /api/scans answers. */
  jobIds: string[] | null;
  startedAt: number;
  error: string | null;
}

let batchSeq = 0;

/** Everything a resync fetches, at once. */
function fetchLists() {
  return Promise.all([
    api.health().catch(() => null),
    api.relays(),
    api.hosts(),
    api.jobs({ limit: 200 }).catch(() => [] as Job[]),
    // upgrades and reboots apart: a fleet-wide scan must not push a running upgrade out of the list
    api.jobs({ kind: 'upgrade', limit: 200 }).catch(() => [] as Job[]),
    api.jobs({ kind: 'reboot', limit: 100 }).catch(() => [] as Job[]),
    api.jobs({ kind: 'stack-update', limit: 100 }).catch(() => [] as Job[]),
  ]);
}

/** Most live output kept in memory per job (characters, like the Worker's own log cap);
 * beyond it the oldest lines are dropped (the whole log stays in History). */
export const OUTPUT_CAP = 2 * 1024 * 1024;

/** The upgrades and reboots under way, and those that finished since the first of them
 * started: what the patch banner shows. A new run starts when a change job starts while
 * none is running. */
export interface PatchRun {
  id: number;
  startedAt: number;
  /** Every job of the run, with its host (known before the job itself is). */
  jobs: { jobId: string; hostId: string }[];
}

export type PatchEntryState = 'queued' | 'running' | 'done' | 'failed';

export interface PatchEntry {
  hostId: string;
  name: string;
  /** The host's latest job in the run (undefined until we hear of it). */
  job: Job | undefined;
  kind: Job['kind'];
  state: PatchEntryState;
  /** The latest line of its output, if any has come. */
  line: string | null;
}

/** The summary cards, counted from the host list (used until /api/summary answers, or if it cannot). */
export function countSummary(hosts: Host[]): Summary {
  let online = 0, offline = 0, needUpdates = 0, pendingPackages = 0, securityPackages = 0, securityHosts = 0, needReboot = 0;
  for (const h of hosts) {
    if (h.status === 'online') online++;
    if (h.status === 'offline' || h.status === 'error') offline++;
    if ((h.updatesCount ?? 0) > 0) needUpdates++;
    pendingPackages += h.updatesCount ?? 0;
    securityPackages += h.securityCount ?? 0;
    if ((h.securityCount ?? 0) > 0) securityHosts++;
    if (h.rebootRequired) needReboot++;
  }
  // (stacks are not in the host list: only /api/summary counts them)
  return { hosts: hosts.length, online, offline, needUpdates, pendingPackages, securityPackages, securityHosts, needReboot, stacksWithUpdates: 0 };
}

/** One collator for every name comparison: `localeCompare` with options builds one per
 * call, which made sorting 1,000 hosts (and placing each updated one) slow. */
const names = new Intl.Collator(undefined, { numeric: true });
const byName = <T extends { name: string }>(a: T, b: T) => names.compare(a.name, b.name);

/** Finished jobs the page keeps in `jobs` (see #pruneJobs): it kept every job it heard of, and
 * a page left open through a day of hourly scans of 1,000 hosts hears of 24,000. */
export const FINISHED_JOBS_KEPT = 2_000;
export const JOBS_PRUNE_EVERY_MS = 60_000;

/** How long host and job events are held to be applied together (see #events). */
const EVENT_BATCH_MS = 50;
/** Under a stream of events, batches are applied at most once per this (a job's output
 * never waits longer than EVENT_BATCH_MS): during a fleet-wide scan the page moves twice a
 * second, each move a re-render, a layout and a paint (at four a second the open dashboard
 * spent 0.5–0.6 CPU-s on a "Scan all" of 1,000 hosts, now 0.4–0.5: bench:scan-all). */
export const EVENT_FLUSH_MIN_GAP_MS = 500;
/** …and once a second while a fleet-wide scan keeps the rows still (calmScans): then only
 * the one indicator and the counts move, and each move is a re-render, a layout and a paint
 * (bench:scan-all traced ~170 ms of them in the open dashboard's 1,000-host "Scan all"). */
export const CALM_FLUSH_MIN_GAP_MS = 1_000;
/** A scan batch is looked up by request only after this long without a job event. */
const BATCH_QUIET_MS = 8_000;
/** At most one GET /api/summary per this long after host events (it only adds the stacks count). */
const SUMMARY_REFRESH_MS = 5_000;

/** More hosts than this scanning at once (a fleet-wide scan, started in this browser or
 * anywhere else) and their rows show a still "Scanning…", the page one indicator for them all
 * (ScanProgress): dozens of spinners on screen say nothing more, and kept the browser drawing
 * 60 frames a second through the whole scan (bench:scan-all: a quarter of the open
 * dashboard's CPU in a 1,000-host scan). */
export const CALM_SCANS_ABOVE = 10;

const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30_000;

class LiveStore {
  relays = $state<Relay[]>([]);
  /** Not deeply reactive: 1,000 hosts of 30 fields each as proxies cost more than the list
   * itself. A host is replaced (never changed in place) and the array with it. */
  hosts = $state.raw<Host[]>([]);
  /** Latest known job per host id. */
  latestJob = $state<Record<string, Job>>({});
  /** Scans this browser started and is waiting on: host id → job id (null until the POST answers). */
  pendingScans = $state<Record<string, string | null>>({});
  /** Every job we have heard of this session (lists and events), by id. */
  jobs = $state<Record<string, Job>>({});
  /** GET /api/summary, refreshed after host events; null until the first answer. */
  summary = $state<Summary | null>(null);
  /** The latest scan-all / scan-filtered run, while it is shown. */
  batch = $state<ScanBatch | null>(null);
  /** Live output of upgrades and reboots (`job.output` events), by job id, capped at OUTPUT_CAP. */
  output = $state<Record<string, string>>({});
  /** Characters dropped from the front of `output[jobId]` by the cap. */
  outputDropped = $state<Record<string, number>>({});
  /** The latest non-empty output line of each job. */
  outputLine = $state<Record<string, string>>({});
  /** The current patch run (see PatchRun), while it is shown. */
  patchRun = $state<PatchRun | null>(null);

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
  /** Jobs whose output a view shows (host page, history): their output is kept after they finish. */
  #watched = new Map<string, number>();
  /** Chunks received while a job's log is being fetched, to join the two without doubles. */
  #recording = new Map<string, string[]>();
  #patchSeq = 0;
  /** Bumped by reset(): a fetch that started before it must not bring the old lists back. */
  #generation = 0;

  connectedRelays = $derived(this.relays.filter((r) => r.connected));

  /** The summary cards: host counts from the live list (current with every event, no
   * request), stacks from GET /api/summary. Until the list has loaded, the server's answer. */
  counts = $derived.by((): Summary => {
    if (!this.loaded && this.summary) return this.summary;
    return { ...countSummary(this.hosts), stacksWithUpdates: this.summary?.stacksWithUpdates ?? 0 };
  });

  /** Progress of the current batch: how many of its jobs have finished, and how. */
  batchProgress = $derived.by(() => {
    const b = this.batch;
    if (!b) return null;
    const ids = b.jobIds ?? [];
    let done = 0, failed = 0;
    for (const id of ids) {
      const job = this.jobs[id];
      if (job && !isActiveJob(job)) {
        done++;
        if (job.status !== 'succeeded') failed++;
      }
    }
    return { total: ids.length, done, failed, finished: b.jobIds !== null && done === ids.length };
  });

  /** How many hosts are being scanned now (isScanning), whoever started it: counted once per
   * batch of events (#recount), not derived — a derivation read every host's latest job, each
   * read tracked, after every batch (90 ms more of the page's JS in a 1,000-host scan). */
  scansUnderWay = $state(0);

  /** A fleet-wide scan is under way: rows stay still (CALM_SCANS_ABOVE). */
  calmScans = $derived(this.scansUnderWay > CALM_SCANS_ABOVE);

  /** The latest upgrade, reboot or stack update of each host, kept as jobs arrive (#remember).
   * It was derived from every job known: after each batch of a fleet-wide scan that walked
   * thousands of them, and more after every scan while the page stayed open. */
  latestChange = $state<Record<string, Job>>({});

  /** The patch run, host by host: the latest state of each, and the counts the banner shows. */
  patchProgress = $derived.by(() => {
    const run = this.patchRun;
    if (!run) return null;
    const latest = new Map<string, { jobId: string; job: Job | undefined }>();
    for (const { jobId, hostId } of run.jobs) {
      const job = this.jobs[jobId];
      const cur = latest.get(hostId);
      // a job we have not heard of yet was only just started: it is the newest
      if (!cur || !job || (cur.job && job.createdAt >= cur.job.createdAt)) latest.set(hostId, { jobId, job });
    }
    const entries: PatchEntry[] = [];
    let queued = 0, running = 0, done = 0, failed = 0;
    const kinds = new Set<Job['kind']>();
    for (const [hostId, { jobId, job }] of latest) {
      const state: PatchEntryState = !job || job.status === 'queued' ? 'queued' : isActiveJob(job) ? 'running' : job.status === 'succeeded' ? 'done' : 'failed';
      if (state === 'queued') queued++;
      else if (state === 'running') running++;
      else if (state === 'done') done++;
      else failed++;
      const kind = job?.kind ?? 'upgrade';
      kinds.add(kind);
      const name = this.hosts.find((h) => h.id === hostId)?.name ?? 'removed host';
      entries.push({ hostId, name, job, kind, state, line: this.outputLine[jobId] ?? null });
    }
    entries.sort(byName);
    const kind: 'upgrade' | 'reboot' | 'mixed' = kinds.size > 1 ? 'mixed' : kinds.has('reboot') ? 'reboot' : 'upgrade';
    return { entries, total: entries.length, queued, running, done, failed, kind, finished: queued + running === 0 };
  });

  #summaryTimer: ReturnType<typeof setTimeout> | null = null;
  #batchTimer: ReturnType<typeof setInterval> | null = null;

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
    this.#events.clear();
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.#wake);
      document.removeEventListener('visibilitychange', this.#wake);
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000, 'bye');
    this.socket = 'idle';
  }

  /** Forget everything (signed out): the next user starts from fresh lists. */
  reset() {
    this.stop();
    this.#generation++;
    forgetEarly();
    this.#syncing = null;
    this.#attempt = 0;
    this.relays = [];
    this.hosts = [];
    this.latestJob = {};
    this.pendingScans = {};
    this.#scanning.clear();
    this.#touched.clear();
    this.#prunedAt = 0;
    this.scansUnderWay = 0;
    this.jobs = {};
    this.latestChange = {};
    this.summary = null;
    this.output = {};
    this.outputDropped = {};
    this.outputLine = {};
    this.dismissBatch();
    this.patchRun = null;
    this.loaded = false;
    this.loadError = null;
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
    // (frames as arrays of events: a fleet-wide scan sends thousands, and each frame costs the
    // browser more than an event in it)
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/live?batch=1`;
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
      for (const item of Array.isArray(json) ? json : [json]) {
        const parsed = v.safeParse(LiveEvent, item);
        if (!parsed.success) {
          // Unknown event types are expected as the API grows; ignore them quietly.
          if (import.meta.env.DEV) console.debug('live: ignored event', item, parsed.issues);
          continue;
        }
        this.#enqueue(parsed.output);
      }
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

  /** Host and job events wait a moment and are applied together (event-batches.ts): a
   * fleet-wide scan sends thousands, and one re-render per batch keeps the page fluid. */
  #events = new EventBatches<LiveEvent>(
    (events) => this.applyAll(events),
    { batchMs: EVENT_BATCH_MS, minGapMs: EVENT_FLUSH_MIN_GAP_MS },
  );
  #enqueue(event: LiveEvent) {
    this.#events.push(event, event.type === 'job.output');
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
    const generation = this.#generation;
    const syncing = (async () => {
      try {
        // (the first one on the dashboard takes the answers /early.js asked for while the page
        // loaded: api.ts request())
        const [health, relays, hosts, jobs, upgrades, reboots, stackUpdates] = await fetchLists();
        if (generation !== this.#generation) return;
        // the host counts come from the list; the summary only adds the stacks (not worth waiting for)
        void this.refreshSummary();
        this.rememberJobs(jobs);
        this.rememberJobs(upgrades);
        this.rememberJobs(reboots);
        this.rememberJobs(stackUpdates);
        const changes = [...upgrades, ...reboots].sort((x, y) => x.createdAt.localeCompare(y.createdAt));
        for (const job of changes) this.#noteChange(this.jobs[job.id] ?? job);
        // output of jobs that finished while the socket was down, and that no view shows
        for (const id of Object.keys(this.output)) {
          if (!this.#watched.has(id) && this.jobs[id] && !isActiveJob(this.jobs[id])) this.#dropOutput(id);
        }
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
        if (this.batch && !this.batchProgress?.finished) await this.#pollBatch();
        this.loadError = null;
      } catch (err) {
        if (generation === this.#generation) this.loadError = err instanceof Error ? err.message : String(err);
      } finally {
        if (generation === this.#generation) {
          this.loaded = true;
          this.#syncing = null;
          this.#recount(true);
          this.#pruneJobs();
        }
      }
    })();
    this.#syncing = syncing;
    return syncing;
  }

  /** After a resync, look up each scan we are still waiting on. */
  async #settlePendingScans() {
    const waiting = Object.entries(this.pendingScans).filter(([, jobId]) => jobId);
    await Promise.all(
      waiting.map(async ([hostId, jobId]) => {
        if (this.latestJob[hostId]?.id === jobId && !isActiveJob(this.latestJob[hostId])) {
          delete this.pendingScans[hostId];
          this.#touch(hostId);
          return;
        }
        const jobs = await api.jobs(hostId).catch(() => [] as Job[]);
        const job = jobs.find((j) => j.id === jobId);
        if (job) this.#applyJob(job);
      }),
    );
  }

  /** Apply one event (the socket's come in batches: #events). */
  apply(event: LiveEvent) {
    this.applyAll([event]);
  }

  /** Apply a batch of events, in order (the socket's come this way: #events). */
  applyAll(events: LiveEvent[]) {
    for (const event of events) this.#applyOne(event);
    this.#mergeHosts();
    this.#recount();
    this.#pruneJobs();
  }

  /** Host events of the batch being applied, merged into `hosts` once at its end: a copy of
   * the list per event was a thousand copies of a thousand hosts in a fleet-wide scan. */
  #hostsPending = new Map<string, Host>();
  #prunedAt = 0;

  #mergeHosts() {
    if (this.#hostsPending.size === 0) return;
    const pending = this.#hostsPending;
    this.#hostsPending = new Map();
    const next = this.hosts.map((h) => {
      const host = pending.get(h.id);
      if (!host || host.name !== h.name) return h;
      pending.delete(h.id);
      return host;
    });
    // new hosts, and renamed ones (their place in the name order changes)
    for (const host of pending.values()) upsert(next, host);
    this.hosts = next;
  }

  /** Forget the oldest finished jobs beyond FINISHED_JOBS_KEPT, but for those the page still
   * follows: the scan batch's, the patch run's, each host's latest job and change, a watched
   * job's. Looks at most once per JOBS_PRUNE_EVERY_MS: walking the map through its proxy
   * after every batch cost more than the memory it saved. */
  #pruneJobs() {
    const now = Date.now();
    if (now - this.#prunedAt < JOBS_PRUNE_EVERY_MS) return;
    this.#prunedAt = now;
    untrack(() => {
      const ids = Object.keys(this.jobs);
      if (ids.length <= FINISHED_JOBS_KEPT * 1.5) return;
      const keep = new Set<string>([...(this.batch?.jobIds ?? []), ...(this.patchRun?.jobs.map((j) => j.jobId) ?? []), ...this.#watched.keys()]);
      for (const job of Object.values(this.latestJob)) keep.add(job.id);
      for (const job of Object.values(this.latestChange)) keep.add(job.id);
      const finished = ids
        .map((id) => this.jobs[id])
        .filter((job) => !keep.has(job.id) && !isActiveJob(job))
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      for (const job of finished.slice(FINISHED_JOBS_KEPT)) delete this.jobs[job.id];
    });
  }

  #applyOne(event: LiveEvent) {
    switch (event.type) {
      case 'relay':
        upsert(this.relays, event.relay);
        break;
      case 'host':
        this.#hostsPending.set(event.host.id, event.host);
        this.#summarySoon();
        break;
      case 'host.deleted': {
        this.#mergeHosts();
        if (this.patchRun) this.patchRun.jobs = this.patchRun.jobs.filter((j) => j.hostId !== event.id);
        if (this.hosts.some((h) => h.id === event.id)) this.hosts = this.hosts.filter((h) => h.id !== event.id);
        delete this.latestJob[event.id];
        delete this.pendingScans[event.id];
        this.#touch(event.id);
        this.#summarySoon();
        break;
      }
      case 'job':
        this.#lastJobEventAt = Date.now();
        this.#applyJob(event.job);
        break;
      case 'job.output':
        this.#appendOutput(event.jobId, event.data);
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

  rememberJobs(jobs: Job[]) {
    for (const job of jobs) {
      const cur = this.jobs[job.id];
      // a list fetched before an event must not undo the event
      if (!cur || !isActiveJob(job) || isActiveJob(cur)) this.#remember(job);
    }
  }

  #remember(job: Job) {
    this.jobs[job.id] = job;
    if (!isChangeJob(job)) return;
    const cur = this.latestChange[job.hostId];
    if (!cur || cur.id === job.id || job.createdAt > cur.createdAt) this.latestChange[job.hostId] = job;
  }

  #applyJob(job: Job) {
    this.#remember(job);
    this.#noteChange(job);
    // a finished job's output is only kept while a view shows it (the log is in History)
    if (!isActiveJob(job) && job.id in this.output && !this.#watched.has(job.id)) this.#dropOutput(job.id);
    const cur = this.latestJob[job.hostId];
    if (!cur || cur.id === job.id || job.createdAt >= cur.createdAt) this.latestJob[job.hostId] = job;
    this.#touch(job.hostId);
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
    const job = this.latestJob[hostId];
    return hostId in this.pendingScans || (job?.kind === 'scan' && isActiveJob(job));
  }

  /** Hosts scanning now (isScanning), kept by #recount; and the hosts whose latest job or
   * pending scan changed since it last ran (#touch). */
  #scanning = new Set<string>();
  #touched = new Set<string>();

  #touch(hostId: string) {
    this.#touched.add(hostId);
  }

  /** Bring scansUnderWay up to date: the touched hosts only, or every host (`all`, after a
   * resync replaced the lists). Reading every host's latest job through its proxy after each
   * batch of events was 35 ms of the page's JS in a 1,000-host scan. */
  #recount(all = false) {
    untrack(() => {
      if (all) {
        this.#scanning.clear();
        for (const hostId in this.latestJob) this.#touched.add(hostId);
        for (const hostId in this.pendingScans) this.#touched.add(hostId);
      }
      for (const hostId of this.#touched) {
        if (this.isScanning(hostId)) this.#scanning.add(hostId);
        else this.#scanning.delete(hostId);
      }
    });
    this.#touched.clear();
    this.scansUnderWay = this.#scanning.size;
    this.#events.minGapMs = this.eventGapMs;
  }

  /** The least time between two batches of socket events now (EVENT_FLUSH_MIN_GAP_MS, or
   * CALM_FLUSH_MIN_GAP_MS in a fleet-wide scan). */
  get eventGapMs(): number {
    return this.calmScans ? CALM_FLUSH_MIN_GAP_MS : EVENT_FLUSH_MIN_GAP_MS;
  }

  /** The host's upgrade or reboot that is queued or running, if any. */
  activeChange(hostId: string): Job | null {
    const job = this.latestChange[hostId];
    return job && isActiveJob(job) ? job : null;
  }

  // ---- upgrades and reboots ------------------------------------------------------------

  /** Add an upgrade or reboot job to the patch run (starting a new run when none is going). */
  #noteChange(job: Job) {
    if (!isPatchJob(job)) return;
    const run = this.patchRun;
    if (run?.jobs.some((j) => j.jobId === job.id)) return;
    const going = !!run && !this.patchProgress?.finished;
    if (!isActiveJob(job)) {
      // a finished job joins a run only when it started during it (it finished before we heard of it)
      if (going && Date.parse(job.createdAt) >= run!.startedAt - 5_000) run!.jobs.push({ jobId: job.id, hostId: job.hostId });
      return;
    }
    if (going) run!.jobs.push({ jobId: job.id, hostId: job.hostId });
    else this.patchRun = { id: ++this.#patchSeq, startedAt: Math.min(Date.now(), Date.parse(job.createdAt) || Date.now()), jobs: [{ jobId: job.id, hostId: job.hostId }] };
  }

  /** Follow jobs this browser just started (their events may come before or after the answer). */
  trackChanges(started: { jobId: string; hostId: string }[]) {
    if (started.length === 0) return;
    const run = this.patchRun;
    const going = !!run && !this.patchProgress?.finished;
    const fresh = started.filter((s) => !run?.jobs.some((j) => j.jobId === s.jobId));
    if (going) run!.jobs.push(...fresh);
    else this.patchRun = { id: ++this.#patchSeq, startedAt: Date.now(), jobs: fresh };
  }

  /** Hide the banner of a finished patch run. */
  dismissPatchRun() {
    if (this.patchProgress?.finished) this.patchRun = null;
  }

  /** Start an upgrade of one host (every package, or the named ones) and follow it. */
  async upgradeHost(hostId: string, packages: string[] | undefined, key: string, withoutSnapshot = false): Promise<string> {
    const { jobId } = await api.upgradeHost(hostId, packages, key, withoutSnapshot);
    this.trackChanges([{ jobId, hostId }]);
    return jobId;
  }

  async rebootHost(hostId: string, key: string): Promise<string> {
    const { jobId } = await api.rebootHost(hostId, key);
    this.trackChanges([{ jobId, hostId }]);
    return jobId;
  }

  /** Full upgrades of several hosts; returns the per-host answers (jobs and refusals). */
  async upgradeHosts(hostIds: string[], key: string) {
    const res = await api.upgradeHosts(hostIds, key);
    this.trackChanges(res.results.flatMap((r) => (r.jobId ? [{ jobId: r.jobId, hostId: r.hostId }] : [])));
    return res;
  }

  /** Update a Compose stack (or some of its services). Its output streams in like an upgrade's. */
  async updateStack(stackId: string, services: string[] | undefined, key: string): Promise<string> {
    const { jobId } = await api.updateStack(stackId, services, key);
    return jobId;
  }

  #appendOutput(jobId: string, data: string) {
    if (!data) return;
    this.#recording.get(jobId)?.push(data);
    this.#setOutput(jobId, (this.output[jobId] ?? '') + data);
    const line = lastLine(data);
    if (line) this.outputLine[jobId] = line;
  }

  /** Store a job's output, dropping whole lines from the front beyond OUTPUT_CAP. */
  #setOutput(jobId: string, text: string) {
    if (text.length > OUTPUT_CAP) {
      let cut = text.length - OUTPUT_CAP;
      const nl = text.indexOf('\n', cut);
      if (nl >= 0 && nl - cut < 4096) cut = nl + 1;
      text = text.slice(cut);
      this.outputDropped[jobId] = (this.outputDropped[jobId] ?? 0) + cut;
    }
    this.output[jobId] = text;
  }

  #dropOutput(jobId: string) {
    delete this.output[jobId];
    delete this.outputDropped[jobId];
  }

  /** Keep this job's output while a view shows it. Returns the function that stops watching. */
  watchOutput(jobId: string): () => void {
    this.#watched.set(jobId, (this.#watched.get(jobId) ?? 0) + 1);
    return () => {
      const n = (this.#watched.get(jobId) ?? 1) - 1;
      if (n > 0) return void this.#watched.set(jobId, n);
      this.#watched.delete(jobId);
      if (!isActiveJob(this.jobs[jobId])) this.#dropOutput(jobId);
    };
  }

  /** Fetch a job with its log so far and make that the job's output, joined with whatever
   * streamed in meanwhile (each chunk once). For a view opened while the job runs. */
  async loadOutput(jobId: string) {
    const chunks: string[] = [];
    this.#recording.set(jobId, chunks);
    try {
      const detail = await api.getJob(jobId);
      // a later fetch of the same log is under way: it wins
      if (this.#recording.get(jobId) !== chunks) return detail;
      // The fetched log ends with some of the chunks that came meanwhile (those the Worker
      // had stored before it answered): append only the rest.
      let k = chunks.length;
      for (; k > 0; k--) if (detail.log.endsWith(chunks.slice(0, k).join(''))) break;
      const text = detail.log + chunks.slice(k).join('');
      const { log: _log, ...job } = detail;
      this.rememberJobs([job]);
      this.#noteChange(this.jobs[jobId] ?? job);
      // nobody shows it any more (the view closed while the log was on its way)
      if (!this.#watched.has(jobId) && !isActiveJob(this.jobs[jobId])) return detail;
      delete this.outputDropped[jobId];
      this.#setOutput(jobId, text);
      const line = lastLine(text);
      if (line) this.outputLine[jobId] = line;
      return detail;
    } finally {
      if (this.#recording.get(jobId) === chunks) this.#recording.delete(jobId);
    }
  }

  async scan(hostId: string): Promise<void> {
    if (hostId in this.pendingScans) return;
    this.pendingScans[hostId] = null;
    this.#touch(hostId);
    this.#recount();
    try {
      const { jobId } = await api.scanHost(hostId);
      const known = this.latestJob[hostId];
      if (known?.id === jobId && !isActiveJob(known)) delete this.pendingScans[hostId];
      else if (hostId in this.pendingScans) this.pendingScans[hostId] = jobId;
    } catch (err) {
      delete this.pendingScans[hostId];
      throw err;
    } finally {
      this.#touch(hostId);
      this.#recount();
    }
  }

  /** Follow a scan the server started by itself (e.g. after a new host key was accepted). */
  trackScan(hostId: string, jobId: string) {
    const known = this.jobs[jobId];
    if (known && !isActiveJob(known)) return;
    this.pendingScans[hostId] = jobId;
    this.#touch(hostId);
    this.#recount();
  }

  /** Trust the new SSH host key the host offered; the server scans it right away. */
  async acceptHostKey(hostId: string, fingerprint: string): Promise<Host> {
    const { host, jobId } = await api.acceptHostKey(hostId, fingerprint);
    this.hosts = upserted(this.hosts, host);
    if (jobId) this.trackScan(hostId, jobId);
    this.#summarySoon();
    return host;
  }

  async addHost(body: Parameters<typeof api.createHost>[0]): Promise<CreatedHost> {
    const host = await api.createHost(body);
    this.hosts = upserted(this.hosts, host);
    this.#summarySoon();
    return host;
  }

  async updateHost(hostId: string, patch: Parameters<typeof api.updateHost>[1]): Promise<Host> {
    const host = await api.updateHost(hostId, patch);
    this.hosts = upserted(this.hosts, host);
    this.#summarySoon();
    return host;
  }

  async deleteHost(hostId: string): Promise<void> {
    await goneAnyway(api.deleteHost(hostId));
    this.apply({ type: 'host.deleted', id: hostId });
  }

  /** Fetch the summary cards now. Never throws: the cards fall back to counting the list. */
  async refreshSummary(): Promise<void> {
    try {
      this.summary = await api.summary();
    } catch (err) {
      if (import.meta.env.DEV) console.debug('summary unavailable', err);
    }
  }

  /** Refetch the summary a while after host events: a burst of them (a scan of the whole
   * fleet) costs one request per SUMMARY_REFRESH_MS at most. The host counts are counted
   * from the list meanwhile (`counts`). */
  #summarySoon() {
    if (this.#summaryTimer) return;
    this.#summaryTimer = setTimeout(() => {
      this.#summaryTimer = null;
      void this.refreshSummary();
    }, SUMMARY_REFRESH_MS);
  }

  /** Start scans of the given hosts (every host when omitted) and follow them in `batch`. */
  async scanMany(hostIds?: string[], label = hostIds ? `${hostIds.length} hosts` : 'all hosts'): Promise<void> {
    if (this.batch && !this.batchProgress?.finished && this.batch.error === null) return;
    const batch: ScanBatch = { id: ++batchSeq, label, jobIds: null, startedAt: Date.now(), error: null };
    this.batch = batch;
    try {
      const { jobIds } = await api.scanMany(hostIds);
      if (this.batch?.id !== batch.id) return;
      this.batch.jobIds = jobIds;
      if (jobIds.length === 0) {
        this.batch = null;
        toasts.push('info', 'Nothing to scan: no host has a relay to reach it through.');
        return;
      }
      // Events normally tell us everything; a slow poll covers jobs that finished before
      // the answer came back while the socket was down, and events lost on a reconnect.
      this.#stopBatchPoll();
      this.#batchTimer = setInterval(() => {
        if (!this.batch || this.batchProgress?.finished) return this.#stopBatchPoll();
        void this.#pollBatch();
      }, 10_000);
      setTimeout(() => void this.#pollBatch(), 1500);
    } catch (err) {
      if (this.batch?.id === batch.id) this.batch.error = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  dismissBatch() {
    this.#stopBatchPoll();
    this.batch = null;
  }

  #stopBatchPoll() {
    if (this.#batchTimer) clearInterval(this.#batchTimer);
    this.#batchTimer = null;
  }

  #lastJobEventAt = 0;
  #polling = false;

  /** Look up the batch's unfinished jobs, unless job events are coming in anyway (the socket
   * is open and one came within BATCH_QUIET_MS): while a big scan runs the events say it all. */
  async #pollBatch() {
    const ids = this.batch?.jobIds;
    if (!ids || this.#polling) return;
    if (this.socket === 'open' && Date.now() - this.#lastJobEventAt < BATCH_QUIET_MS) return;
    const missing = ids.filter((id) => isActiveJob(this.jobs[id]) || !this.jobs[id]);
    if (missing.length === 0) return;
    this.#polling = true;
    try {
      const jobs = await api.jobs({ kind: 'scan', limit: 500 }).catch(() => [] as Job[]);
      const wanted = new Set(missing);
      for (const job of jobs) if (wanted.has(job.id)) this.#applyJob(job);
    } finally {
      this.#polling = false;
      this.#recount();
    }
  }

  relayName(id: string | null): string | null {
    if (!id) return null;
    return this.relays.find((r) => r.id === id)?.name ?? null;
  }
}

/** A copy of the list with the item in (replacing the one with its id), in name order. */
function upserted<T extends { id: string; name: string }>(list: T[], item: T): T[] {
  const next = [...list];
  upsert(next, item);
  return next;
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
