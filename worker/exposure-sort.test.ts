// The host list sorted by security exposure (GET /api/hosts?sort=exposure): every scan sets
// each host's oldest pending security fix from the update sightings, and the list's order
// and figures agree with /api/exposure for the same hosts. Scans go through a fake relay on
// a real WebSocket (the statements the Worker itself runs); sightings are backdated as rows.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, scanHost, testEnv, until } from './test/helpers.ts';
import { scanResult, scanWith } from './test/fixtures.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const DAY = 86_400_000;
const [tzdata, openssl] = scanResult.updates;

async function addHost(relayId: string, name: string, address: string) {
  const res = await api('/api/hosts', { method: 'POST', json: { relayId, name, address } });
  expect(res.status).toBe(201);
  return (await json(res)).id as string;
}

/** The host events the live socket carries (as a script opens it: the admin's token). */
async function liveHosts() {
  const res = await api('/api/live', { headers: { Upgrade: 'websocket' } });
  const ws = res.webSocket!;
  ws.accept();
  const hosts: any[] = [];
  ws.addEventListener('message', (e) => {
    const event = JSON.parse(String(e.data));
    if (event.type === 'host') hosts.push(event.host);
  });
  return { hosts, close: () => ws.close() };
}

const backdate = (hostId: string, at: number) =>
  testEnv.DB.prepare('UPDATE update_sightings SET first_seen_at = ? WHERE host_id = ? AND security = 1').bind(at, hostId).run();

const page = async (query: string) => (await json(api(`/api/hosts?limit=50&${query}`))).hosts as any[];

describe('GET /api/hosts?sort=exposure', { timeout: 30_000 }, () => {
  it('orders hosts by their oldest pending security fix, with the figures /api/exposure gives', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const recent = await addHost(relayId, 'recent', '192.0.2.1');
    const old = await addHost(relayId, 'old', '192.0.2.2');
    const calm = await addHost(relayId, 'calm', '192.0.2.3'); // pending, none of it security
    const fresh = await addHost(relayId, 'fresh', '192.0.2.4'); // never scanned
    await scanHost(relay, recent, scanResult);
    await scanHost(relay, old, scanWith({ updates: [openssl] }));
    await scanHost(relay, calm, scanWith({ updates: [tzdata] }));
    const now = Date.now();
    await backdate(recent, now - 3 * DAY);
    await backdate(old, now - 12 * DAY);
    // the next scans find one more (non-security) update each, so their lists are written
    // again (a list equal to the stored one is not): first sightings are kept, and the host
    // rows follow them
    const live = await liveHosts();
    const extra = { ...tzdata, name: 'extra-tool', security: false };
    await scanHost(relay, recent, scanWith({ updates: [...scanResult.updates, extra] }));
    await scanHost(relay, old, scanWith({ updates: [openssl, extra] }));

    const rows = await page('sort=exposure');
    expect(rows.map((h) => h.name)).toEqual(['old', 'recent', 'calm', 'fresh']);
    const exposure = await json(api('/api/exposure'));
    expect(exposure.hosts.map((h: any) => h.hostId)).toEqual(rows.map((h) => h.id));
    for (const row of rows) {
      const e = exposure.hosts.find((x: any) => x.hostId === row.id);
      expect(row.oldestSecurityFirstSeenAt).toBe(e.oldestSecurityFirstSeenAt);
    }
    expect(rows[0].oldestSecurityFirstSeenAt).toBe(new Date(now - 12 * DAY).toISOString());
    expect(exposure.hosts[0].oldestSecurityAgeDays).toBe(12);
    expect(rows.slice(2).map((h) => h.oldestSecurityFirstSeenAt)).toEqual([null, null]);
    // the full host and the live event say the same (the browser sorts its own copy)
    expect((await json(api(`/api/hosts/${old}`))).oldestSecurityFirstSeenAt).toBe(rows[0].oldestSecurityFirstSeenAt);
    await until(async () => live.hosts.some((h) => h.id === old));
    expect(live.hosts.find((h) => h.id === old).oldestSecurityFirstSeenAt).toBe(rows[0].oldestSecurityFirstSeenAt);
    live.close();
    // the exports and /metrics carry the same ages
    const exported = await json(api('/api/export/hosts.json'));
    for (const e of exposure.hosts) expect(exported.find((h: any) => h.id === e.hostId).oldestSecurityAgeDays, e.name).toBe(e.oldestSecurityAgeDays);
    const metrics = await (await api('/metrics')).text();
    const ageOf = (id: string) => Number(new RegExp(`^patchman_host_oldest_security_update_age_seconds\\{host_id="${id}"[^}]*\\} (\\d+)$`, 'm').exec(metrics)![1]);
    expect(Math.abs(ageOf(old) - 12 * 86_400)).toBeLessThan(60);
    expect(ageOf(calm)).toBe(0);

    // ascending: the least exposed first (no security fix pending), by name
    expect((await page('sort=exposure&dir=asc')).map((h) => h.name)).toEqual(['calm', 'fresh', 'recent', 'old']);
    // the whole list sorts the same way
    expect((await json(api('/api/hosts?sort=exposure'))).map((h: any) => h.name)).toEqual(['old', 'recent', 'calm', 'fresh']);

    // the old host's fix is installed: it is no longer exposed
    await scanHost(relay, old, scanWith({ updates: [] }));
    const after = await page('sort=exposure');
    expect(after.map((h) => h.name)).toEqual(['recent', 'calm', 'fresh', 'old']);
    expect(after[3].oldestSecurityFirstSeenAt).toBeNull();
    expect((await json(api('/api/exposure'))).hosts.find((h: any) => h.hostId === old).oldestSecurityAgeDays).toBeNull();
  });

  it('names the sort keys when given another', async () => {
    const res = await api('/api/hosts?limit=5&sort=age');
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('exposure');
  });
});
