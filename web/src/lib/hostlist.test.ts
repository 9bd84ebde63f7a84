import { describe, expect, it } from 'vitest';
import type { Host } from '$protocol/api.ts';
import { applyListState, DEFAULT_DIR, filterLabel, listHref, LIST_FILTERS, readListState } from './hostlist.ts';

describe('filterLabel', () => {
  it('agrees with the number of hosts ("1 host that is offline", "2 hosts that are offline")', () => {
    expect(filterLabel('offline', 1)).toBe('that is offline or failing');
    expect(filterLabel('offline', 2)).toBe('that are offline or failing');
    expect(filterLabel('offline', 0)).toBe('that are offline or failing');
    expect(filterLabel('needs-updates', 1)).toBe('that needs updates');
    for (const f of LIST_FILTERS) expect(filterLabel(f, 1)).not.toBe(filterLabel(f, 2));
  });
});

describe('sorting by security exposure', () => {
  const host = (name: string, oldestSecurityFirstSeenAt: string | null) => ({ name, tags: [], status: 'online', oldestSecurityFirstSeenAt }) as unknown as Host;
  const hosts = [host('none-b', null), host('week', '2026-11-26T00:00:00.000Z'), host('none-a', null), host('month', '2026-11-03T00:00:00.000Z'), host('day', '2026-12-02T00:00:00.000Z')];
  const sorted = (dir: 'asc' | 'desc') => applyListState(hosts, { filter: null, q: '', sort: 'exposure', dir, explicitSort: true, group: null }).map((h) => h.name);

  it('puts the oldest pending security fix first, hosts without one last (by name), as the API does', () => {
    expect(sorted('desc')).toEqual(['month', 'week', 'day', 'none-a', 'none-b']);
    expect(sorted('asc')).toEqual(['none-a', 'none-b', 'day', 'week', 'month']);
  });

  it('sorts most exposed first on the first click, and says so in the URL only when reversed', () => {
    expect(DEFAULT_DIR.exposure).toBe('desc');
    expect(listHref({ sort: 'exposure', dir: 'desc' })).toBe('/?sort=exposure');
    expect(listHref({ sort: 'exposure', dir: 'asc' })).toBe('/?sort=exposure&dir=asc');
    expect(readListState(new URL('http://x/?sort=exposure'))).toMatchObject({ sort: 'exposure', dir: 'desc', explicitSort: true });
  });
});
