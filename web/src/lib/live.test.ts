// The live store's bookkeeping of jobs as events arrive (live.svelte.ts), run with its runes
// compiled (vitest.config.ts: the web project's svelte() plugin).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Host, Job } from '$protocol/api.ts';
import { CALM_FLUSH_MIN_GAP_MS, CALM_SCANS_ABOVE, EVENT_FLUSH_MIN_GAP_MS, FINISHED_JOBS_KEPT, JOBS_PRUNE_EVERY_MS, live } from './live.svelte.ts';

let seq = 0;
const job = (over: Partial<Job> & Pick<Job, 'kind' | 'hostId' | 'status'>): Job =>
  ({ id: `j${++seq}`, createdAt: new Date(Date.UTC(2026, 11, 3, 12, 0, seq)).toISOString(), ...over }) as Job;

beforeEach(() => {
  seq = 0;
  live.reset();
});

describe('live: the latest change of each host', () => {
  it('follows upgrades, reboots and stack updates as their events come, the newest per host winning', () => {
    const up = job({ kind: 'upgrade', hostId: 'h1', status: 'queued' });
    live.apply({ type: 'job', job: up });
    expect(live.activeChange('h1')?.id).toBe(up.id);
    live.apply({ type: 'job', job: { ...up, status: 'running' } });
    expect(live.latestChange.h1.status).toBe('running');
    // a scan is not a change
    live.apply({ type: 'job', job: job({ kind: 'scan', hostId: 'h1', status: 'running' }) });
    expect(live.latestChange.h1.id).toBe(up.id);
    // a newer reboot takes over; the older upgrade finishing later does not take it back
    const reboot = job({ kind: 'reboot', hostId: 'h1', status: 'dispatched' });
    live.apply({ type: 'job', job: reboot });
    live.apply({ type: 'job', job: { ...up, status: 'succeeded' } });
    expect(live.latestChange.h1.id).toBe(reboot.id);
    expect(live.activeChange('h1')?.kind).toBe('reboot');
    live.apply({ type: 'job', job: { ...reboot, status: 'succeeded' } });
    expect(live.activeChange('h1')).toBeNull();
    // another host's are its own
    live.apply({ type: 'job', job: job({ kind: 'stack-update', hostId: 'h2', status: 'running' }) });
    expect(live.activeChange('h2')?.kind).toBe('stack-update');
    expect(live.latestChange.h1.id).toBe(reboot.id);
  });

  it('takes changes from fetched lists as from events, without undoing a newer event', () => {
    const up = job({ kind: 'upgrade', hostId: 'h3', status: 'running' });
    live.apply({ type: 'job', job: { ...up, status: 'succeeded' } });
    live.rememberJobs([up]); // a list fetched before the event: still running there
    expect(live.latestChange.h3.status).toBe('succeeded');
    const later = job({ kind: 'upgrade', hostId: 'h3', status: 'queued' });
    live.rememberJobs([later]);
    expect(live.activeChange('h3')?.id).toBe(later.id);
  });

  it('forgets them on reset (signed out)', () => {
    live.apply({ type: 'job', job: job({ kind: 'upgrade', hostId: 'h4', status: 'running' }) });
    live.reset();
    expect(live.latestChange).toEqual({});
  });
});

describe('live: how many hosts are being scanned', () => {
  it('counts the hosts with a scan under way, whoever started it, and calls a fleet-wide scan calm above CALM_SCANS_ABOVE', () => {
    const scans = Array.from({ length: CALM_SCANS_ABOVE + 1 }, (_, i) => job({ kind: 'scan', hostId: `s${i}`, status: 'dispatched' }));
    for (const s of scans.slice(0, CALM_SCANS_ABOVE)) live.apply({ type: 'job', job: s });
    // an upgrade is not a scan; a host counts once however its scan is known
    live.apply({ type: 'job', job: job({ kind: 'upgrade', hostId: 'u1', status: 'running' }) });
    live.apply({ type: 'job', job: { ...scans[0], status: 'running' } });
    expect(live.scansUnderWay).toBe(CALM_SCANS_ABOVE);
    expect(live.calmScans).toBe(false);
    live.apply({ type: 'job', job: scans[CALM_SCANS_ABOVE] });
    expect(live.scansUnderWay).toBe(CALM_SCANS_ABOVE + 1);
    expect(live.calmScans).toBe(true);
    // finished scans no longer count
    for (const s of scans.slice(0, 3)) live.apply({ type: 'job', job: { ...s, status: 'succeeded' } });
    expect(live.scansUnderWay).toBe(CALM_SCANS_ABOVE - 2);
    expect(live.calmScans).toBe(false);
  });

  it('applies socket events once a second in a fleet-wide scan, twice a second otherwise', () => {
    expect(live.eventGapMs).toBe(EVENT_FLUSH_MIN_GAP_MS);
    const scans = Array.from({ length: CALM_SCANS_ABOVE + 1 }, (_, i) => job({ kind: 'scan', hostId: `s${i}`, status: 'dispatched' }));
    for (const s of scans) live.apply({ type: 'job', job: s });
    expect(live.eventGapMs).toBe(CALM_FLUSH_MIN_GAP_MS);
    live.apply({ type: 'job', job: { ...scans[0], status: 'failed' } });
    expect(live.eventGapMs).toBe(EVENT_FLUSH_MIN_GAP_MS);
  });

  it('keeps the count through deleted hosts, scans of its own and resets', () => {
    const scans = Array.from({ length: 4 }, (_, i) => job({ kind: 'scan', hostId: `d${i}`, status: 'running' }));
    for (const s of scans) live.apply({ type: 'job', job: s });
    live.apply({ type: 'host.deleted', id: 'd0' });
    expect(live.scansUnderWay).toBe(3);
    // a host's scan followed by this browser (started elsewhere) counts once with its job
    live.trackScan('d1', scans[1].id);
    live.trackScan('d9', 'j-unknown');
    expect(live.scansUnderWay).toBe(4);
    live.apply({ type: 'job', job: { ...scans[1], status: 'succeeded' } });
    expect(live.scansUnderWay).toBe(3);
    live.reset();
    expect(live.scansUnderWay).toBe(0);
    live.apply({ type: 'job', job: job({ kind: 'scan', hostId: 'd2', status: 'queued' }) });
    expect(live.scansUnderWay).toBe(1);
  });
});

describe('live: the jobs it remembers', () => {
  afterEach(() => vi.useRealTimers());

  it('forgets the oldest finished jobs beyond FINISHED_JOBS_KEPT, never one still running or a host\'s latest; looks once a minute', () => {
    vi.useFakeTimers();
    const running = job({ kind: 'upgrade', hostId: 'old', status: 'running' });
    live.apply({ type: 'job', job: running });
    const first = job({ kind: 'scan', hostId: 'h0', status: 'succeeded' });
    live.apply({ type: 'job', job: first });
    // hourly scans of ten hosts, long enough for the map to be pruned more than once
    const all: Job[] = [];
    for (let i = 0; i < FINISHED_JOBS_KEPT * 3; i++) {
      const j = job({ kind: 'scan', hostId: `h${1 + (i % 10)}`, status: 'succeeded' });
      all.push(j);
      live.apply({ type: 'job', job: j });
    }
    // within the minute nothing was forgotten
    expect(Object.keys(live.jobs)).toHaveLength(FINISHED_JOBS_KEPT * 3 + 2);
    vi.advanceTimersByTime(JOBS_PRUNE_EVERY_MS);
    live.apply({ type: 'job', job: first });
    const kept = Object.keys(live.jobs);
    expect(kept.length).toBeLessThanOrEqual(FINISHED_JOBS_KEPT * 1.5);
    expect(kept.length).toBeGreaterThanOrEqual(FINISHED_JOBS_KEPT);
    expect(live.jobs[running.id]?.status).toBe('running');
    // h0's only scan is its latest: kept, however old
    expect(live.jobs[first.id]).toBeDefined();
    // the newest are all there, the oldest gone
    for (const j of all.slice(-FINISHED_JOBS_KEPT)) expect(live.jobs[j.id]).toBeDefined();
    expect(live.jobs[all[0].id]).toBeUndefined();
  });
});

describe('live: the host list', () => {
  const host = (id: string, name: string, updatesCount = 0) => ({ id, name, updatesCount }) as Host;

  it('applies a batch of host events in order: updated in place, renamed and new ones in name order, deleted ones gone', () => {
    live.applyAll([host('a', 'alpha'), host('c', 'charlie'), host('b', 'bravo')].map((h) => ({ type: 'host' as const, host: h })));
    expect(live.hosts.map((h) => h.name)).toEqual(['alpha', 'bravo', 'charlie']);
    const before = live.hosts;
    live.applyAll([
      { type: 'host', host: host('b', 'bravo', 3) },
      { type: 'host', host: host('a', 'zulu') },
      { type: 'host', host: host('d', 'delta') },
      { type: 'host', host: host('b', 'bravo', 5) },
      { type: 'host.deleted', id: 'c' },
      { type: 'host', host: host('e', 'echo') },
    ]);
    expect(live.hosts.map((h) => h.name)).toEqual(['bravo', 'delta', 'echo', 'zulu']);
    expect(live.hosts.find((h) => h.id === 'b')?.updatesCount).toBe(5);
    // a new list (the page re-renders), the old one untouched
    expect(before.map((h) => h.name)).toEqual(['alpha', 'bravo', 'charlie']);
  });
});
