// The host list's sort and group keys as plain lists: the dashboard needs them without the
// schemas of protocol/host-query.ts (which would bring valibot's code into the first page).
export const HOST_SORT_KEYS = ['name', 'os', 'updates', 'status', 'lastScan', 'exposure'] as const;
export type HostSortKey = (typeof HOST_SORT_KEYS)[number];
/** The direction a sort key goes when none is given (a column's first click): biggest
 * problems and newest first. */
export const HOST_SORT_DEFAULT_DIR: Record<HostSortKey, 'asc' | 'desc'> = { name: 'asc', os: 'asc', updates: 'desc', status: 'desc', lastScan: 'desc', exposure: 'desc' };

export const HOST_GROUP_KEYS = ['tag', 'os', 'packageManager', 'relay'] as const;
export type HostGroupKey = (typeof HOST_GROUP_KEYS)[number];
