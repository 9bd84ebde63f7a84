import { describe, expect, it, vi } from 'vitest';
import { PendingRequests, RequestFailed } from './pending.ts';

describe('PendingRequests', () => {
  it('settles a request by its id and only that one', async () => {
    const p = new PendingRequests<string>();
    const a = p.wait('a', 1000);
    const b = p.wait('b', 1000);
    expect(p.settle('b', 'B')).toBe(true);
    expect(p.settle('nobody', 'x')).toBe(false);
    expect(await b).toBe('B');
    expect(p.has('a')).toBe(true);
    p.settle('a', 'A');
    expect(await a).toBe('A');
    expect(p.size).toBe(0);
  });

  it('times a request out with a readable error and forgets it', async () => {
    vi.useFakeTimers();
    try {
      const p = new PendingRequests();
      const w = p.wait('slow', 30_000);
      vi.advanceTimersByTime(30_001);
      await expect(w).rejects.toMatchObject({ code: 'timeout', message: 'no answer within 30 s' });
      expect(p.settle('slow', 1)).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails every pending request at once when the connection drops', async () => {
    const p = new PendingRequests();
    const all = [p.wait('1', 1000), p.wait('2', 1000), p.wait('3', 1000)];
    p.failAll(new RequestFailed('relay-disconnected', 'the relay disconnected'));
    for (const w of all) await expect(w).rejects.toMatchObject({ code: 'relay-disconnected' });
    expect(p.size).toBe(0);
  });

  it('refuses a duplicate id', async () => {
    const p = new PendingRequests();
    p.wait('x', 1000).catch(() => {});
    await expect(p.wait('x', 1000)).rejects.toThrow(/duplicate/);
    p.failAll(new Error('done'));
  });
});
