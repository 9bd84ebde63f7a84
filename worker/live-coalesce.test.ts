// coalesceEvents (live-coalesce.ts): a broadcast carries each job, host and relay once, in
// its last state, where that came; output is never merged.
import { describe, expect, it } from 'vitest';
import type { LiveEvent } from '../protocol/api.ts';
import { coalesceEvents } from './live-coalesce.ts';

const job = (id: string, status: string) => ({ type: 'job', job: { id, status } }) as unknown as LiveEvent;
const host = (id: string, updatesCount: number) => ({ type: 'host', host: { id, updatesCount } }) as unknown as LiveEvent;
const output = (jobId: string, data: string): LiveEvent => ({ type: 'job.output', jobId, hostId: 'h1', data });
const relay = (id: string, connected: boolean) => ({ type: 'relay', relay: { id, connected } }) as unknown as LiveEvent;

describe('coalesceEvents', () => {
  it("keeps each job's, host's and relay's last state, at the place of its last event, and every output", () => {
    const events = [job('a', 'queued'), host('h1', 3), output('a', 'one\n'), job('b', 'queued'), job('a', 'dispatched'), relay('r', false), output('a', 'two\n'), host('h1', 0), relay('r', true), job('a', 'succeeded')];
    expect(coalesceEvents(events)).toEqual([output('a', 'one\n'), job('b', 'queued'), output('a', 'two\n'), host('h1', 0), relay('r', true), job('a', 'succeeded')]);
  });

  it('a deleted host is its host\'s last state: its earlier updates go', () => {
    const gone: LiveEvent = { type: 'host.deleted', id: 'h2' };
    expect(coalesceEvents([host('h2', 1), host('h3', 1), gone])).toEqual([host('h3', 1), gone]);
  });

  it('gives back the same events when nothing repeats', () => {
    const events = [job('a', 'queued'), job('b', 'queued'), host('h1', 1), output('a', 'x'), output('a', 'y')];
    expect(coalesceEvents(events)).toBe(events);
  });
});
