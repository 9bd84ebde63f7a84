// The host list's query: `GET /api/hosts` with paging, search, sort and facets, the groups
// (`GET /api/hosts/groups`) and every matching id (`GET /api/hosts/ids`). One schema per
// query string, shared by the Worker (validation) and the dashboard (types).
import * as v from 'valibot';
import { Id, Tag } from './fields.ts';
import { PackageManagerName } from './relay.ts';
import { Host, HostFilter } from './api.ts';
import { HOST_GROUP_KEYS, HOST_SORT_KEYS } from './host-list-keys.ts';

export { HOST_GROUP_KEYS, HOST_SORT_KEYS };
export const HostSortKey = v.picklist(HOST_SORT_KEYS, 'must be name, os, updates, status, lastScan or exposure');
export type HostSortKey = v.InferOutput<typeof HostSortKey>;

export const HostGroupKey = v.picklist(HOST_GROUP_KEYS, 'must be tag, os, packageManager or relay');
export type HostGroupKey = v.InferOutput<typeof HostGroupKey>;

/** Most rows one page may hold. */
export const HOST_PAGE_MAX = 500;
const HOST_OFFSET_MAX = 100_000;

const count = (max: number, min: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d{1,6}$/, `must be ${min}–${max}`),
    v.transform(Number),
    v.minValue(min, `must be ${min}–${max}`),
    v.maxValue(max, `must be ${min}–${max}`),
  );

/** An OS id as os-release spells it (`debian`, `opensuse-leap`). */
const OsId = v.pipe(v.string(), v.regex(/^[a-z0-9._-]{1,64}$/, 'must be an os-release id (a-z, 0-9, . _ -)'));

/** What narrows the list: the same for a page, the groups and the ids. */
const HostMatch = {
  filter: v.optional(HostFilter),
  /** Every whitespace-separated term must occur in the name, address, user, OS, kernel, status or a tag. */
  q: v.optional(v.pipe(v.string(), v.maxLength(200, 'at most 200 characters'))),
  tag: v.optional(Tag),
  os: v.optional(OsId),
  packageManager: v.optional(PackageManagerName),
  relayId: v.optional(Id),
  /** Proxmox guests: `guest` only hosts adopted through a node, `direct` only the others. */
  reach: v.optional(v.picklist(['guest', 'direct'], 'must be guest or direct')),
  /** Only the guests adopted through this node (a host id). */
  guestOf: v.optional(Id),
};

/** GET /api/hosts: without `limit` the whole list as before (an array of hosts); with it a
 * page `{ hosts, total }` of light rows. */
export const HostListQuery = v.strictObject({
  ...HostMatch,
  sort: v.optional(HostSortKey),
  dir: v.optional(v.picklist(['asc', 'desc'], 'must be asc or desc')),
  limit: v.optional(count(HOST_PAGE_MAX, 1)),
  offset: v.optional(count(HOST_OFFSET_MAX, 0)),
});
export type HostListQuery = v.InferOutput<typeof HostListQuery>;

export const HostMatchQuery = v.strictObject(HostMatch);
export type HostMatchQuery = v.InferOutput<typeof HostMatchQuery>;

export const HostGroupsQuery = v.strictObject({ ...HostMatch, by: HostGroupKey });
export type HostGroupsQuery = v.InferOutput<typeof HostGroupsQuery>;

/** A host as the list shows it: what a row needs, without held packages, scan warnings,
 * boot id and the pinned key (those are on `GET /api/hosts/:id`). */
export const HostListItem = v.object({
  ...v.pick(Host, [
    'id',
    'name',
    'address',
    'port',
    'user',
    'relayId',
    'tags',
    'monitorOnly',
    'status',
    'statusReason',
    'os',
    'packageManager',
    'proxmox',
    'docker',
    'updatesCount',
    'securityCount',
    'rebootRequired',
    'lastScanAt',
    'oldestSecurityFirstSeenAt',
    'hostKeyOffered',
    'guest',
  ]).entries,
});
export type HostListItem = v.InferOutput<typeof HostListItem>;

export const HostPage = v.object({ hosts: v.array(HostListItem), total: v.number() });
export type HostPage = v.InferOutput<typeof HostPage>;

/** One group of `GET /api/hosts/groups`: `key` null holds the hosts without one (no tag, not scanned, no relay). */
export const HostGroup = v.object({
  key: v.nullable(v.string()),
  label: v.string(),
  hosts: v.number(),
  needUpdates: v.number(),
  security: v.number(),
  needReboot: v.number(),
});
export type HostGroup = v.InferOutput<typeof HostGroup>;
export const HostGroups = v.object({ by: HostGroupKey, groups: v.array(HostGroup) });
export type HostGroups = v.InferOutput<typeof HostGroups>;

/** GET /api/hosts/ids: every host matching, for "select all N matching". */
export const HostIds = v.object({ ids: v.array(v.string()), total: v.number() });
export type HostIds = v.InferOutput<typeof HostIds>;
