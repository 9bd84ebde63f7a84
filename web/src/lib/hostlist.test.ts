import { describe, expect, it } from 'vitest';
import { filterLabel, LIST_FILTERS } from './hostlist.ts';

describe('filterLabel', () => {
  it('agrees with the number of hosts ("1 host that is offline", "2 hosts that are offline")', () => {
    expect(filterLabel('offline', 1)).toBe('that is offline or failing');
    expect(filterLabel('offline', 2)).toBe('that are offline or failing');
    expect(filterLabel('offline', 0)).toBe('that are offline or failing');
    expect(filterLabel('needs-updates', 1)).toBe('that needs updates');
    for (const f of LIST_FILTERS) expect(filterLabel(f, 1)).not.toBe(filterLabel(f, 2));
  });
});
