// The host list's query in SQL: filter, search, facets, sort, paging, groups and ids
// (`GET /api/hosts`, `/api/hosts/groups`, `/api/hosts/ids`). The search follows the
// dashboard's own (web/src/lib/hostlist.ts): every term must occur somewhere in the host.
import { and, asc, desc, eq, isNotNull, isNull, sql, type SQL } from 'drizzle-orm';
import { type HostListItem, type HostGroup, type HostGroupKey, type HostListQuery, type HostMatchQuery, type HostSortKey } from '../protocol/host-query.ts';
import { HOST_SORT_DEFAULT_DIR } from '../protocol/host-list-keys.ts';
import { schema, type Db } from './db/index.ts';
import { HOST_LIST_COLUMNS, hostListJson, type HostListRow } from './lib/serialize.ts';
import { filterCondition } from './hosts.ts';

const { hosts, relays } = schema;

/** More terms than this are ignored (each is one bound parameter; D1 allows 100). */
const MAX_TERMS = 16;

/** The text a search term is looked for in, lower-cased (one LIKE per term). */
const haystack = sql`lower(${hosts.name} || char(10) || ${hosts.address} || char(10) || ${hosts.user} || char(10) ||
  coalesce(${hosts.osPrettyName}, '') || char(10) || coalesce(${hosts.osName}, '') || char(10) ||
  coalesce(${hosts.osId}, '') || char(10) || coalesce(${hosts.osVersion}, '') || char(10) ||
  coalesce(${hosts.kernel}, '') || char(10) || ${hosts.status} || char(10) || ${hosts.tags} || char(10) ||
  case when ${hosts.proxmox} is null then '' else 'proxmox ' || ${hosts.proxmox} end || char(10) ||
  case when ${hosts.guestOf} is null then '' else 'guest ' || ${hosts.guestKind} || ' ' || ${hosts.guestVmid} end)`;

/** `%`, `_` and `\` are literal in a search term. */
const likeTerm = (t: string) => `%${t.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export function searchCondition(q: string | undefined): SQL | undefined {
  const terms = (q ?? '').toLowerCase().split(/\s+/).filter(Boolean).slice(0, MAX_TERMS);
  if (terms.length === 0) return undefined;
  return and(...terms.map((t) => sql`${haystack} like ${likeTerm(t)} escape '\\'`));
}

/** Everything that narrows the list: filter, search and the facets. */
export function matchCondition(m: HostMatchQuery): SQL | undefined {
  return and(
    filterCondition(m.filter),
    searchCondition(m.q),
    m.tag !== undefined ? sql`exists (select 1 from json_each(${hosts.tags}) where value = ${m.tag})` : undefined,
    m.os !== undefined ? eq(hosts.osId, m.os) : undefined,
    m.packageManager !== undefined ? eq(hosts.packageManager, m.packageManager) : undefined,
    m.relayId !== undefined ? eq(hosts.relayId, m.relayId) : undefined,
    m.reach === undefined ? undefined : m.reach === 'guest' ? isNotNull(hosts.guestOf) : isNull(hosts.guestOf),
    m.guestOf !== undefined ? eq(hosts.guestOf, m.guestOf) : undefined,
  );
}

const byName = sql`${hosts.name} collate nocase`;

/** Sort keys as the dashboard's columns sort (hosts never scanned after every OS). */
function sortTerms(key: HostSortKey): SQL[] {
  switch (key) {
    case 'name':
      return [byName];
    case 'os':
      return [sql`coalesce(${hosts.osPrettyName}, ${hosts.osId}, '~') collate nocase`];
    case 'updates':
      return [sql`coalesce(${hosts.updatesCount}, -1)`, sql`coalesce(${hosts.securityCount}, -1)`];
    case 'status':
      return [
        sql`case ${hosts.status} when 'online' then 0 when 'unknown' then 1 when 'offline' then 2 else 3 end`,
        sql`coalesce(${hosts.rebootRequired}, 0)`,
      ];
    case 'lastScan':
      return [sql`coalesce(${hosts.lastScanAt}, 0)`];
    case 'exposure':
      // the age of the oldest pending security fix: hosts without one count as the least exposed
      return [sql`${hosts.oldestSecurityAt} is not null`, sql`-${hosts.oldestSecurityAt}`];
  }
}

function orderBy(key: HostSortKey = 'name', dir = HOST_SORT_DEFAULT_DIR[key]): SQL[] {
  const by = dir === 'asc' ? asc : desc;
  return [...sortTerms(key).map((t) => by(t)), asc(byName), asc(hosts.id)];
}


/** Every matching host in order (the answer without paging), as a query for a D1 batch. */
export function hostListQuery(db: Db, q: HostListQuery) {
  return db.select().from(hosts).where(matchCondition(q)).orderBy(...orderBy(q.sort, q.dir));
}

/** One page of rows and how many match in all: two queries for one D1 batch (hostPage reads
 * their results). */
export function hostPageQueries(db: Db, q: HostListQuery & { limit: number }) {
  const where = matchCondition(q);
  return [
    db.select({ total: sql<number>`count(*)` }).from(hosts).where(where),
    db
      .select(HOST_LIST_COLUMNS)
      .from(hosts)
      .where(where)
      .orderBy(...orderBy(q.sort, q.dir))
      .limit(q.limit)
      .offset(q.offset ?? 0),
  ] as const;
}

/** The page hostPageQueries read: light rows and the total. */
export function hostPage([[{ total }], rows]: [{ total: number }[], HostListRow[]]): { hosts: HostListItem[]; total: number } {
  return { hosts: rows.map(hostListJson), total };
}

/** Every matching id, in name order. */
export async function matchingIds(db: Db, m: HostMatchQuery): Promise<string[]> {
  const rows = await db.select({ id: hosts.id }).from(hosts).where(matchCondition(m)).orderBy(asc(byName), asc(hosts.id));
  return rows.map((r) => r.id);
}

const counts = {
  hosts: sql<number>`count(*)`,
  needUpdates: sql<number>`coalesce(sum(${hosts.updatesCount} > 0), 0)`,
  security: sql<number>`coalesce(sum(${hosts.securityCount} > 0), 0)`,
  needReboot: sql<number>`coalesce(sum(${hosts.rebootRequired} = 1), 0)`,
};

/** What a group without a key is called. */
const NO_KEY_LABEL: Record<HostGroupKey, string> = { tag: 'No tag', os: 'Not scanned yet', packageManager: 'Not scanned yet', relay: 'No relay' };

type GroupRow = { key: string | null; label: string | null; hosts: number; needUpdates: number; security: number; needReboot: number };

/** The matching hosts counted per tag, OS, package manager or relay, as one query for a D1
 * batch (hostGroupsFrom orders and labels its rows): a host with two tags is in two groups.
 * Every column has its own name (`as`): inside a D1 batch drizzle reads rows by column name. */
export function hostGroupsQuery(db: Db, by: HostGroupKey, m: HostMatchQuery) {
  const where = matchCondition(m);
  switch (by) {
    case 'tag': {
      // one row per (host, tag): json_each spreads the tags out; then the untagged hosts
      const w = where ?? sql`1`;
      const cols = sql`${counts.hosts} as hosts, ${counts.needUpdates} as needUpdates, ${counts.security} as security, ${counts.needReboot} as needReboot`;
      return db.all<GroupRow>(
        sql`select tag.value as key, tag.value as label, ${cols} from ${hosts}, json_each(${hosts.tags}) as tag where ${w} group by tag.value
          union all
          select null as key, null as label, ${cols} from ${hosts} where ${w} and json_array_length(${hosts.tags}) = 0 having count(*) > 0`,
      );
    }
    case 'os':
      return db
        .select({ key: hosts.osId, label: sql<string | null>`max(coalesce(nullif(${hosts.osName}, ''), ${hosts.osId}))`.as('label'), ...counts })
        .from(hosts)
        .where(where)
        .groupBy(hosts.osId);
    case 'packageManager':
      return db
        .select({ key: hosts.packageManager, label: sql<string | null>`${hosts.packageManager}`.as('label'), ...counts })
        .from(hosts)
        .where(where)
        .groupBy(hosts.packageManager);
    case 'relay':
      return db
        .select({ key: hosts.relayId, label: sql<string | null>`max(${relays.name})`.as('label'), ...counts })
        .from(hosts)
        .leftJoin(relays, eq(relays.id, hosts.relayId))
        .where(where)
        .groupBy(hosts.relayId);
  }
}

/** The groups hostGroupsQuery counted: in label order, the one without a key last. */
export function hostGroupsFrom(by: HostGroupKey, rows: GroupRow[]): HostGroup[] {
  const groups = rows.map((r) => ({ ...r, label: r.key === null ? NO_KEY_LABEL[by] : (r.label ?? r.key) }));
  return groups.sort((a, b) => Number(a.key === null) - Number(b.key === null) || a.label.localeCompare(b.label, undefined, { numeric: true, sensitivity: 'base' }));
}
