// The dashboard's host list state lives in the URL (`?filter=…&q=…&sort=…&dir=…`), so a
// filtered view is shareable and Back works. This module reads/writes that state and does the
// filtering and sorting itself: the list is kept current by live events, so filtering locally
// (with the same rules as `GET /api/hosts?filter=`) keeps a filtered view live too.
import type { Host, HostFilter } from '$protocol/api.ts';
import type { HostGroup } from '$protocol/host-query.ts';
import { HOST_GROUP_KEYS, HOST_SORT_DEFAULT_DIR, HOST_SORT_KEYS, type HostGroupKey, type HostSortKey } from '$protocol/host-list-keys.ts';
import { distroLabel } from './distro.ts';

/** One collator for every comparison: `localeCompare` with options builds one per call,
 * which is most of the cost of sorting 1,000 hosts. */
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** The API's filters, plus `pending`: the hosts with updates, most packages first. */
export type ListFilter = HostFilter | 'pending' | 'guests';
export const LIST_FILTERS: readonly ListFilter[] = ['needs-updates', 'pending', 'security', 'needs-reboot', 'offline', 'guests'];

/** The same keys as GET /api/hosts?sort= */
export type SortKey = HostSortKey;
export type SortDir = 'asc' | 'desc';
export const SORT_KEYS: readonly SortKey[] = HOST_SORT_KEYS;
/** The direction a column sorts in when first clicked: biggest problems / newest first. */
export const DEFAULT_DIR: Record<SortKey, SortDir> = HOST_SORT_DEFAULT_DIR;

/** What the hosts a filter keeps have in common: [said of one host, said of several]. */
const FILTER_WORDS: Record<ListFilter, [string, string]> = {
  'needs-updates': ['needs updates', 'need updates'],
  pending: ['has pending packages', 'have pending packages'],
  security: ['has security updates', 'have security updates'],
  'needs-reboot': ['needs a reboot', 'need a reboot'],
  offline: ['is offline or failing', 'are offline or failing'],
  guests: ['is a Proxmox guest reached through its node', 'are Proxmox guests reached through their node'],
};

/** "that need updates" for `count` hosts ("that needs updates" for one). */
export function filterLabel(filter: ListFilter, count: number): string {
  return `that ${FILTER_WORDS[filter][count === 1 ? 0 : 1]}`;
}

export interface ListState {
  filter: ListFilter | null;
  q: string;
  sort: SortKey;
  dir: SortDir;
  /** Whether the sort came from the URL (else it is the filter's default). */
  explicitSort: boolean;
  /** Rows grouped by tag, OS, package manager or relay, or not grouped. */
  group: HostGroupKey | null;
}

export function readListState(url: { searchParams: { get(name: string): string | null } }): ListState {
  const p = url.searchParams;
  const f = p.get('filter');
  const filter = LIST_FILTERS.includes(f as ListFilter) ? (f as ListFilter) : null;
  const s = p.get('sort');
  const explicitSort = SORT_KEYS.includes(s as SortKey);
  const sort: SortKey = explicitSort ? (s as SortKey) : filter === 'pending' ? 'updates' : 'name';
  const d = p.get('dir');
  const dir: SortDir = d === 'asc' || d === 'desc' ? d : DEFAULT_DIR[sort];
  const g = p.get('group');
  const group = HOST_GROUP_KEYS.includes(g as HostGroupKey) ? (g as HostGroupKey) : null;
  return { filter, q: p.get('q') ?? '', sort, dir, explicitSort, group };
}

/** The dashboard URL for a list state; defaults are left out. Pass `sort` only when the
 * user chose it (an implied sort must not stick when the filter changes). */
export function listHref(
  state: { filter?: ListFilter | null; q?: string; sort?: SortKey; dir?: SortDir; group?: HostGroupKey | null },
  base = '/',
): string {
  const p = new URLSearchParams();
  if (state.filter) p.set('filter', state.filter);
  if (state.q?.trim()) p.set('q', state.q.trim());
  if (state.group) p.set('group', state.group);
  if (state.sort) {
    const implicit: SortKey = state.filter === 'pending' ? 'updates' : 'name';
    const dir = state.dir ?? DEFAULT_DIR[state.sort];
    if (state.sort !== implicit || dir !== DEFAULT_DIR[state.sort]) p.set('sort', state.sort);
    if (dir !== DEFAULT_DIR[state.sort]) p.set('dir', dir);
  }
  const s = p.toString();
  return s ? `${base}?${s}` : base;
}

export function matchesFilter(h: Host, filter: ListFilter | null): boolean {
  switch (filter) {
    case 'needs-updates':
    case 'pending':
      return (h.updatesCount ?? 0) > 0;
    case 'security':
      return (h.securityCount ?? 0) > 0;
    case 'needs-reboot':
      return h.rebootRequired === true;
    case 'offline':
      return h.status === 'offline' || h.status === 'error';
    case 'guests':
      return h.guest !== null;
    default:
      return true;
  }
}

/** Host objects are replaced, never changed, on every update: the text of each is worked out once. */
const haystacks = new WeakMap<Host, string>();

function haystack(h: Host): string {
  let text = haystacks.get(h);
  if (text === undefined) haystacks.set(h, (text = buildHaystack(h)));
  return text;
}

function buildHaystack(h: Host): string {
  return [
    h.name,
    h.address,
    h.user,
    h.os?.prettyName,
    h.os?.name,
    h.os?.id,
    h.os?.version,
    h.os ? distroLabel(h) : '',
    h.proxmox ? `proxmox ${h.proxmox.product} ${h.proxmox.product === 'pve' ? 'proxmox ve' : 'proxmox backup server'} ${h.proxmox.version}` : '',
    h.kernel,
    h.status,
    h.guest ? `guest ${h.guest.type} ${h.guest.vmid} ${h.guest.type === 'lxc' ? 'container' : 'vm'}` : '',
    ...h.tags,
  ]
    .filter(Boolean)
    .join('\n')
    .toLowerCase();
}

/** Every whitespace-separated term must occur in the host's name, address, OS or tags. */
export function matchesQuery(h: Host, q: string): boolean {
  const terms = q.toLowerCase().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return true;
  const text = haystack(h);
  return terms.every((t) => text.includes(t));
}

const exposureRank = (h: Host) => (h.oldestSecurityFirstSeenAt ? -Date.parse(h.oldestSecurityFirstSeenAt) : -Number.MAX_SAFE_INTEGER);

const STATUS_RANK: Record<Host['status'], number> = { online: 0, unknown: 1, offline: 2, error: 3 };
const byName = (a: Host, b: Host) => collator.compare(a.name, b.name);

function compare(key: SortKey, a: Host, b: Host): number {
  switch (key) {
    case 'name':
      return byName(a, b);
    case 'os': {
      // hosts never scanned sort after every OS in ascending order
      if (!a.os || !b.os) return (a.os ? 0 : 1) - (b.os ? 0 : 1);
      const la = `${a.proxmox ? 'Proxmox ' + a.proxmox.product : distroLabel(a)} ${a.os.prettyName}`;
      const lb = `${b.proxmox ? 'Proxmox ' + b.proxmox.product : distroLabel(b)} ${b.os.prettyName}`;
      return collator.compare(la, lb);
    }
    case 'updates':
      return (a.updatesCount ?? -1) - (b.updatesCount ?? -1) || (a.securityCount ?? -1) - (b.securityCount ?? -1);
    case 'status':
      return STATUS_RANK[a.status] - STATUS_RANK[b.status] || Number(!!a.rebootRequired) - Number(!!b.rebootRequired);
    case 'lastScan':
      return (a.lastScanAt ? Date.parse(a.lastScanAt) : 0) - (b.lastScanAt ? Date.parse(b.lastScanAt) : 0);
    case 'exposure':
      // as GET /api/hosts?sort=exposure: the older the oldest pending security fix, the more exposed; none is least
      return exposureRank(a) - exposureRank(b);
  }
}

export function applyListState(hosts: Host[], state: ListState): Host[] {
  const out = hosts.filter((h) => matchesFilter(h, state.filter) && matchesQuery(h, state.q));
  const sign = state.dir === 'asc' ? 1 : -1;
  return out.sort((a, b) => sign * compare(state.sort, a, b) || byName(a, b));
}

// ---- groups ------------------------------------------------------------------------------

export const GROUP_LABELS: Record<HostGroupKey, string> = { tag: 'Tag', os: 'Operating system', packageManager: 'Package manager', relay: 'Relay' };
/** What the group of hosts without a key is called (as GET /api/hosts/groups calls it). */
const NO_KEY_LABEL: Record<HostGroupKey, string> = { tag: 'No tag', os: 'Not scanned yet', packageManager: 'Not scanned yet', relay: 'No relay' };

/** The keys a host is grouped under: each of its tags (a host with two tags is in both groups). */
function groupKeys(h: Host, by: HostGroupKey): (string | null)[] {
  switch (by) {
    case 'tag':
      return h.tags.length ? h.tags : [null];
    case 'os':
      return [h.os?.id ?? null];
    case 'packageManager':
      return [h.packageManager];
    case 'relay':
      return [h.relayId];
  }
}

function groupLabel(h: Host, by: HostGroupKey, key: string, relayName: (id: string) => string | null): string {
  switch (by) {
    case 'os':
      return h.os?.name || key;
    case 'relay':
      return relayName(key) ?? key;
    default:
      return key;
  }
}

/** The hosts of one group, in the list's order, with the counts GET /api/hosts/groups gives. */
export interface GroupedHosts extends HostGroup {
  rows: Host[];
}

/** Split the (filtered, sorted) list into groups in label order, the one without a key last;
 * each keeps the list's order. */
export function groupHosts(hosts: Host[], by: HostGroupKey, relayName: (id: string) => string | null = () => null): GroupedHosts[] {
  const groups = new Map<string | null, GroupedHosts>();
  for (const h of hosts) {
    for (const key of groupKeys(h, by)) {
      let g = groups.get(key);
      if (!g) {
        g = { key, label: key === null ? NO_KEY_LABEL[by] : groupLabel(h, by, key, relayName), hosts: 0, needUpdates: 0, security: 0, needReboot: 0, rows: [] };
        groups.set(key, g);
      }
      g.rows.push(h);
      g.hosts++;
      if ((h.updatesCount ?? 0) > 0) g.needUpdates++;
      if ((h.securityCount ?? 0) > 0) g.security++;
      if (h.rebootRequired) g.needReboot++;
    }
  }
  return [...groups.values()].sort((a, b) => Number(a.key === null) - Number(b.key === null) || collator.compare(a.label, b.label));
}
