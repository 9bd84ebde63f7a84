import { beforeEach, describe, expect, it } from 'vitest';
import { api, createRelay, testEnv } from './test/helpers.ts';
import { openDb, schema } from './db/index.ts';
import { HostListItem } from '../protocol/host-query.ts';

type Row = Omit<typeof schema.hosts.$inferInsert, 'createdAt' | 'updatedAt'>;

/** Six hosts over two relays, with tags, OSes and counts to filter, sort and group by. */
async function seed() {
  const a = await createRelay('alpha');
  const b = await createRelay('beta');
  const now = Date.now();
  const base = { port: 22, user: 'root', createdAt: now, updatedAt: now };
  const rows: Row[] = [
    { id: 'h1', name: 'web1', address: '10.0.0.1', relayId: a.id, tags: ['web', 'prod'], status: 'online', osId: 'debian', osName: 'Debian GNU/Linux', osPrettyName: 'Debian GNU/Linux 12 (bookworm)', packageManager: 'apt', updatesCount: 5, securityCount: 2, rebootRequired: true, lastScanAt: now - 1000 },
    { id: 'h2', name: 'web2', address: '10.0.0.2', relayId: a.id, tags: ['web'], status: 'online', osId: 'debian', osName: 'Debian GNU/Linux', osPrettyName: 'Debian GNU/Linux 12 (bookworm)', packageManager: 'apt', updatesCount: 0, securityCount: 0, rebootRequired: false, lastScanAt: now - 2000 },
    { id: 'h3', name: 'db1', address: '10.0.1.1', relayId: b.id, tags: ['db', 'prod'], status: 'offline', osId: 'rocky', osName: 'Rocky Linux', osPrettyName: 'Rocky Linux 9.4', packageManager: 'dnf', updatesCount: 12, securityCount: 0, rebootRequired: false, lastScanAt: now - 3000 },
    { id: 'h4', name: 'db2', address: '10.0.1.2', relayId: b.id, tags: [], status: 'error', osId: 'arch', osName: 'Arch Linux', osPrettyName: 'Arch Linux', packageManager: 'pacman', updatesCount: 1, securityCount: 1, rebootRequired: null, lastScanAt: now - 500 },
    { id: 'h5', name: 'new_host', address: 'fresh.lan', relayId: a.id, tags: [], status: 'unknown' },
    { id: 'h6', name: 'web10', address: '10.0.0.10', relayId: a.id, tags: ['web'], status: 'online', osId: 'debian', osName: 'Debian GNU/Linux', osPrettyName: 'Debian GNU/Linux 12 (bookworm)', packageManager: 'apt', updatesCount: 3, securityCount: 0, lastScanAt: now - 100 },
  ];
  // one row per statement: D1 allows 100 bound parameters
  const db = openDb(testEnv.DB);
  for (const r of rows) await db.insert(schema.hosts).values({ ...base, ...r });
  return { alpha: a.id, beta: b.id };
}

async function get(path: string) {
  const res = await api(path);
  return { status: res.status, body: (await res.json()) as any };
}

describe('GET /api/hosts: paging, search, sort, facets', () => {
  let relays: { alpha: string; beta: string };
  beforeEach(async () => {
    relays = await seed();
  });

  it("a page's rows are the list's fields, read from the list's columns: the same values as the whole host has", async () => {
    const page = await get('/api/hosts?limit=50');
    const whole = await get('/api/hosts');
    const fields = Object.keys(HostListItem.entries).sort();
    for (const row of page.body.hosts) {
      expect(Object.keys(row).sort()).toEqual(fields);
      const full = whole.body.find((h: any) => h.id === row.id);
      expect(row).toEqual(Object.fromEntries(fields.map((k) => [k, full[k]])));
    }
    expect(page.body.hosts).toHaveLength(6);
  });

  it('without limit answers the whole array of full hosts, as before', async () => {
    const { status, body } = await get('/api/hosts');
    expect(status).toBe(200);
    expect(Array.isArray(body)).toBe(true);
    expect(body.map((h: any) => h.name)).toEqual(['db1', 'db2', 'new_host', 'web1', 'web10', 'web2']);
    expect(body[0]).toHaveProperty('held');
    const filtered = await get('/api/hosts?filter=security');
    expect(filtered.body.map((h: any) => h.id).sort()).toEqual(['h1', 'h4']);
  });

  it('with limit answers a page of light rows and the total', async () => {
    const first = await get('/api/hosts?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.total).toBe(6);
    expect(first.body.hosts.map((h: any) => h.name)).toEqual(['db1', 'db2']);
    expect(first.body.hosts[0]).not.toHaveProperty('held');
    expect(first.body.hosts[0]).not.toHaveProperty('hostKey');
    expect(first.body.hosts[0]).toMatchObject({ id: 'h3', updatesCount: 12, os: { id: 'rocky' }, tags: ['db', 'prod'] });
    const next = await get('/api/hosts?limit=2&offset=2');
    expect(next.body.hosts.map((h: any) => h.name)).toEqual(['new_host', 'web1']);
    const past = await get('/api/hosts?limit=2&offset=10');
    expect(past.body).toEqual({ hosts: [], total: 6 });
  });

  it('sorts by each key and direction, name breaking ties', async () => {
    const names = async (qs: string) => (await get(`/api/hosts?limit=10&${qs}`)).body.hosts.map((h: any) => h.name);
    expect(await names('sort=updates')).toEqual(['db1', 'web1', 'web10', 'db2', 'web2', 'new_host']);
    expect(await names('sort=updates&dir=asc')).toEqual(['new_host', 'web2', 'db2', 'web10', 'web1', 'db1']);
    expect(await names('sort=status')).toEqual(['db2', 'db1', 'new_host', 'web1', 'web10', 'web2']);
    expect(await names('sort=lastScan')).toEqual(['web10', 'db2', 'web1', 'web2', 'db1', 'new_host']);
    expect(await names('sort=os')).toEqual(['db2', 'web1', 'web10', 'web2', 'db1', 'new_host']);
    expect(await names('sort=name&dir=desc')).toEqual(['web2', 'web10', 'web1', 'new_host', 'db2', 'db1']);
  });

  it('searches every term in name, address, OS and tags; % and _ are literal', async () => {
    const ids = async (q: string) => (await get(`/api/hosts?limit=10&q=${encodeURIComponent(q)}`)).body.hosts.map((h: any) => h.id);
    expect(await ids('WEB')).toEqual(['h1', 'h6', 'h2']);
    expect(await ids('web prod')).toEqual(['h1']);
    expect(await ids('rocky')).toEqual(['h3']);
    expect(await ids('10.0.1.')).toEqual(['h3', 'h4']);
    expect(await ids('bookworm 10.0.0.1')).toEqual(['h1', 'h6']);
    expect(await ids('new_')).toEqual(['h5']);
    expect(await ids('%')).toEqual([]);
    expect(await ids('w_b')).toEqual([]);
  });

  it('narrows by tag, os, package manager and relay, with the filter', async () => {
    const ids = async (qs: string) => {
      const r = await get(`/api/hosts?limit=10&${qs}`);
      expect(r.body.total).toBe(r.body.hosts.length);
      return r.body.hosts.map((h: any) => h.id);
    };
    expect(await ids('tag=prod')).toEqual(['h3', 'h1']);
    expect(await ids('tag=web&filter=needs-updates')).toEqual(['h1', 'h6']);
    expect(await ids('os=debian&filter=needs-reboot')).toEqual(['h1']);
    expect(await ids('packageManager=dnf')).toEqual(['h3']);
    expect(await ids(`relayId=${relays.beta}`)).toEqual(['h3', 'h4']);
    expect(await ids('filter=offline')).toEqual(['h3', 'h4']);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['limit=ten', 'limit'],
    ['limit=5&offset=-1', 'offset'],
    ['sort=size', 'sort'],
    ['sort=name&dir=up', 'dir'],
    ['filter=broken', 'filter'],
    ['tag=no%20spaces', 'tag'],
    ['os=Debian%20GNU', 'os'],
    ['packageManager=brew', 'packageManager'],
    ['relayId=..%2F', 'relayId'],
    [`q=${'x'.repeat(201)}`, 'q'],
    ['limit=5&page=2', 'page'],
  ])('refuses %s with a 400 naming %s', async (qs, field) => {
    const { status, body } = await get(`/api/hosts?${qs}`);
    expect(status).toBe(400);
    expect(body.error.field).toBe(field);
  });
});

describe('GET /api/hosts/groups and /api/hosts/ids', () => {
  let relays: { alpha: string; beta: string };
  beforeEach(async () => {
    relays = await seed();
  });

  it('counts hosts, updates, security and reboots per tag (untagged last)', async () => {
    const { status, body } = await get('/api/hosts/groups?by=tag');
    expect(status).toBe(200);
    expect(body).toEqual({
      by: 'tag',
      groups: [
        { key: 'db', label: 'db', hosts: 1, needUpdates: 1, security: 0, needReboot: 0 },
        { key: 'prod', label: 'prod', hosts: 2, needUpdates: 2, security: 1, needReboot: 1 },
        { key: 'web', label: 'web', hosts: 3, needUpdates: 2, security: 1, needReboot: 1 },
        { key: null, label: 'No tag', hosts: 2, needUpdates: 1, security: 1, needReboot: 0 },
      ],
    });
  });

  it('groups by OS, package manager and relay, narrowed like the list', async () => {
    const os = (await get('/api/hosts/groups?by=os')).body.groups;
    expect(os.map((g: any) => [g.key, g.label, g.hosts])).toEqual([
      ['arch', 'Arch Linux', 1],
      ['debian', 'Debian GNU/Linux', 3],
      ['rocky', 'Rocky Linux', 1],
      [null, 'Not scanned yet', 1],
    ]);
    const pm = (await get('/api/hosts/groups?by=packageManager&filter=needs-updates')).body.groups;
    expect(pm.map((g: any) => [g.key, g.hosts, g.needUpdates])).toEqual([
      ['apt', 2, 2],
      ['dnf', 1, 1],
      ['pacman', 1, 1],
    ]);
    const relay = (await get('/api/hosts/groups?by=relay&q=db')).body.groups;
    expect(relay).toEqual([{ key: relays.beta, label: 'beta', hosts: 2, needUpdates: 2, security: 1, needReboot: 0 }]);
  });

  it('lists every matching id for "select all N matching"', async () => {
    expect((await get('/api/hosts/ids?tag=web')).body).toEqual({ ids: ['h1', 'h6', 'h2'], total: 3 });
    expect((await get('/api/hosts/ids')).body.total).toBe(6);
    expect((await get('/api/hosts/ids?q=nothing-matches')).body).toEqual({ ids: [], total: 0 });
  });

  it.each([
    ['/api/hosts/groups', 'by'],
    ['/api/hosts/groups?by=colour', 'by'],
    ['/api/hosts/groups?by=tag&limit=5', 'limit'],
    ['/api/hosts/ids?sort=name', 'sort'],
    ['/api/hosts/ids?filter=nope', 'filter'],
  ])('%s is a 400 naming %s', async (path, field) => {
    const { status, body } = await get(path);
    expect(status).toBe(400);
    expect(body.error.field).toBe(field);
  });

  it('a viewer may read them; anonymous may not', async () => {
    expect((await api('/api/hosts/groups?by=os', { anonymous: true })).status).toBe(401);
    expect((await api('/api/hosts/ids', { anonymous: true })).status).toBe(401);
  });
});
