import { describe, expect, it } from 'vitest';
import { describeRefusals, RefusalMeter } from './relay-refusals.ts';

describe('RefusalMeter', () => {
  it('tolerates a few refusals, trips past the limit within the window, then starts over', () => {
    const m = new RefusalMeter(10, 1000);
    expect(m.record(4, 0)).toBe(false);
    expect(m.record(6, 500)).toBe(false); // exactly the limit
    expect(m.record(1, 900)).toBe(true);
    expect(m.record(10, 950)).toBe(false);
  });

  it('a window that has passed forgets earlier refusals', () => {
    const m = new RefusalMeter(10, 1000);
    expect(m.record(10, 0)).toBe(false);
    expect(m.record(10, 1500)).toBe(false);
    expect(m.record(0, 1600)).toBe(false);
  });
});

describe('describeRefusals', () => {
  it('one line: how many, the first three, and how many more', () => {
    const r = Array.from({ length: 5 }, (_, i) => ({ id: `j${i}`, type: 'output', reason: 'unknown job' }));
    expect(describeRefusals('r1', r)).toBe('relay r1: dropped 5 reports: output for job j0 (unknown job), output for job j1 (unknown job), output for job j2 (unknown job) and 2 more');
    expect(describeRefusals('r1', r.slice(0, 1))).toBe('relay r1: dropped 1 report: output for job j0 (unknown job)');
  });
});
