// The dashboard's host list state lives in the URL (`?filter=…&q=…&sort=…&dir=…`), so a
// filtered view is shareable and Back works. This module reads/writes that state and does the
// filtering and sorting itself: the list is kept current by live events, so filtering locally
// (with the same rules as `GET /api/hosts?filter=`) keeps a filtered view live too.
import type { Host, HostFilter } from '$protocol/api.ts';
import { distroLabel } from './distro.ts';

/** The API's filters, plus `pending`: the hosts with updates, most packages first. */
export type ListFilter = HostFilter | 'pending';
export const LIST_FILTERS: readonly ListFilter[] = ['needs-updates', 'pending', 'security', 'needs-reboot', 'offline'];

export type SortKey = 'name' | 'os' | 'updates' | 'status' | 'lastScan';
export type SortDir = 'asc' | 'desc';
export const SORT_KEYS: readonly SortKey[] = ['name', 'os', 'updates', 'status', 'lastScan'];
/** The direction a column sorts in when first clicked: biggest problems / newest first. */
export const DEFAULT_DIR: Record<SortKey, SortDir> = { name: 'asc', os: 'asc', updates: 'desc', status: 'desc', lastScan: 'desc' };

/** What the hosts a filter keeps have in common: [said of one host, said of several]. */
const FILTER_WORDS: Record<ListFilter, [string, string]> = {
  'needs-updates': ['needs updates', 'need updates'],
  pending: ['has pending packages', 'have pending packages'],
  security: ['has security updates', 'have security updates'],
  'needs-reboot': ['needs a reboot', 'need a reboot'],
  offline: ['is offline or failing', 'are offline or failing'],
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
  return { filter, q: p.get('q') ?? '', sort, dir, explicitSort };
}

/** The dashboard URL for a list state; defaults are left out. Pass `sort` only when the
 * user chose it (an implied sort must not stick when the filter changes). */
export function listHref(state: { filter?: ListFilter | null; q?: string; sort?: SortKey; dir?: SortDir }, base = '/'): string {
  const p = new URLSearchParams();
  if (state.filter) p.set('filter', state.filter);
  if (state.q?.trim()) p.set('q', state.q.trim());
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
    default:
      return true;
  }
}

function haystack(h: Host): string {
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

const STATUS_RANK: Record<Host['status'], number> = { online: 0, unknown: 1, offline: 2, error: 3 };
const byName = (a: Host, b: Host) => a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' });

function compare(key: SortKey, a: Host, b: Host): number {
  switch (key) {
    case 'name':
      return byName(a, b);
    case 'os': {
      // hosts never scanned sort after every OS in ascending order
      if (!a.os || !b.os) return (a.os ? 0 : 1) - (b.os ? 0 : 1);
      const la = `${a.proxmox ? 'Proxmox ' + a.proxmox.product : distroLabel(a)} ${a.os.prettyName}`;
      const lb = `${b.proxmox ? 'Proxmox ' + b.proxmox.product : distroLabel(b)} ${b.os.prettyName}`;
      return la.localeCompare(lb, undefined, { numeric: true, sensitivity: 'base' });
    }
    case 'updates':
      return (a.updatesCount ?? -1) - (b.updatesCount ?? -1) || (a.securityCount ?? -1) - (b.securityCount ?? -1);
    case 'status':
      return STATUS_RANK[a.status] - STATUS_RANK[b.status] || Number(!!a.rebootRequired) - Number(!!b.rebootRequired);
    case 'lastScan':
      return (a.lastScanAt ? Date.parse(a.lastScanAt) : 0) - (b.lastScanAt ? Date.parse(b.lastScanAt) : 0);
  }
}

export function applyListState(hosts: Host[], state: ListState): Host[] {
  const out = hosts.filter((h) => matchesFilter(h, state.filter) && matchesQuery(h, state.q));
  const sign = state.dir === 'asc' ? 1 : -1;
  return out.sort((a, b) => sign * compare(state.sort, a, b) || byName(a, b));
}
