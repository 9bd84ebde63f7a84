import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBatches } from './event-batches.ts';

const TIMING = { batchMs: 50, minGapMs: 250 };

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_000_000);
});
afterEach(() => vi.useRealTimers());

/** Batches applied, each with the time (ms since the start) it was applied at. */
function recorder() {
  const t0 = Date.now();
  const applied: { at: number; events: string[] }[] = [];
  const batches = new EventBatches<string>((events) => applied.push({ at: Date.now() - t0, events }), TIMING);
  return { batches, applied };
}

describe('EventBatches', () => {
  it('gathers what arrives within batchMs of the first event into one batch, in order', () => {
    const { batches, applied } = recorder();
    batches.push('a');
    vi.advanceTimersByTime(20);
    batches.push('b');
    batches.push('c');
    vi.advanceTimersByTime(29);
    expect(applied).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(applied).toEqual([{ at: 50, events: ['a', 'b', 'c'] }]);
  });

  it('under a stream, applies at most once per minGapMs and loses nothing', () => {
    const { batches, applied } = recorder();
    const sent: string[] = [];
    // an event every 10 ms for 2 s: what a fleet-wide scan looks like
    for (let i = 0; i < 200; i++) {
      sent.push(`e${i}`);
      batches.push(`e${i}`);
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(300);
    const gaps = applied.slice(1).map((b, i) => b.at - applied[i].at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(250);
    expect(applied.length).toBeLessThanOrEqual(9); // 2.3 s / 250 ms; it was 40 at one batch per 50 ms
    expect(applied.flatMap((b) => b.events)).toEqual(sent);
  });

  it('spaces the batches out from when minGapMs is changed', () => {
    const { batches, applied } = recorder();
    for (let i = 0; i < 100; i++) {
      if (i === 50) batches.minGapMs = 600;
      batches.push(`e${i}`);
      vi.advanceTimersByTime(20);
    }
    vi.advanceTimersByTime(700);
    const gaps = applied.slice(1).map((b, i) => b.at - applied[i].at);
    // 250 ms apart for the first second, 600 after
    expect(gaps.slice(0, 3)).toEqual([250, 250, 250]);
    expect(gaps.at(-1)).toBeGreaterThanOrEqual(600);
    expect(applied.flatMap((b) => b.events)).toHaveLength(100);
  });

  it('after a quiet spell, the next batch waits batchMs again, not minGapMs', () => {
    const { batches, applied } = recorder();
    batches.push('a');
    vi.advanceTimersByTime(1000);
    batches.push('b');
    vi.advanceTimersByTime(50);
    expect(applied.map((b) => b.at)).toEqual([50, 1050]);
  });

  it('an urgent event (a job output) goes at once when nothing waits, and at most batchMs behind what does', () => {
    const { batches, applied } = recorder();
    batches.push('line 1', true);
    expect(applied).toEqual([{ at: 0, events: ['line 1'] }]);
    batches.push('a');
    vi.advanceTimersByTime(60); // a went at 50: the next plain batch is due at 300…
    batches.push('x');
    vi.advanceTimersByTime(40);
    batches.push('y');
    vi.advanceTimersByTime(10);
    // …but output behind them does not wait that long, and keeps its place after x and y
    batches.push('line 2', true);
    vi.advanceTimersByTime(50);
    expect(applied.slice(1)).toEqual([
      { at: 50, events: ['a'] },
      { at: 160, events: ['x', 'y', 'line 2'] },
    ]);
  });

  it('clear drops what waits', () => {
    const { batches, applied } = recorder();
    batches.push('a');
    batches.clear();
    vi.advanceTimersByTime(1000);
    expect(applied).toEqual([]);
    expect(batches.waiting).toBe(0);
  });
});
