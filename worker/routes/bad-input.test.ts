// Hostile and malformed input against every endpoint that takes any, in the running Worker:
// each is a 400 that names the field, and nothing is stored.
import { beforeEach, describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, testEnv, until } from '../test/helpers.ts';
import { scanResult } from '../test/fixtures.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

/** Strings an attacker (or a confused script) sends. */
const INJECTIONS = [
  '-oAPT::Update::Pre-Invoke::=sh',
  '-oProxyCommand=sh',
  'pkg;id',
  '$(id)',
  '`id`',
  'a\nb',
  'a\rb',
  '../../etc/passwd',
  'a b',
  'x'.repeat(300),
  'ünïcödé',
  '\u202eevil',
  '',
  'a|b',
  'a&&b',
  "it's",
  '"quoted"',
  'a=b',
  'a/b',
];
const WRONG_TYPES = [null, 42, true, [], {}, ['x']];

let relayId: string;
let hostId: string;

async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['hosts', 'jobs', 'relays', 'users', 'api_tokens', 'settings']) {
    const r = await testEnv.DB.prepare(`SELECT count(*) AS n FROM ${t}`).first<{ n: number }>();
    out[t] = r!.n;
  }
  return out;
}

/** Every body must be refused with 400 naming `field`, and change nothing. */
async function refuses(method: string, path: string, bodies: unknown[], field: string | RegExp) {
  const before = await counts();
  for (const body of bodies) {
    const res = await api(path, { method, json: body });
    const text = await res.text();
    expect(res.status, `${method} ${path} ${JSON.stringify(body)} → ${text}`).toBe(400);
    const err = JSON.parse(text).error;
    if (typeof field === 'string') expect(err.field, `${JSON.stringify(body)}: ${text}`).toBe(field);
    else expect(err.field, `${JSON.stringify(body)}: ${text}`).toMatch(field);
    expect(err.message).toContain(err.field);
  }
  expect(await counts()).toEqual(before);
}

beforeEach(async () => {
  const relay = await createRelay();
  relayId = relay.id;
  const fake = await FakeRelay.connect(relay.token);
  const host = await json(api('/api/hosts', { method: 'POST', json: { relayId, address: '192.0.2.60' } }));
  hostId = host.id;
  const { jobId } = await json(api(`/api/hosts/${hostId}/scan`, { method: 'POST' }));
  await fake.next();
  fake.send({ type: 'response', id: jobId, ok: true, result: scanResult });
  await until(async () => (await json(api(`/api/jobs/${jobId}`))).status === 'succeeded');
});

describe('every field refuses injection strings and wrong types with a 400 naming it', () => {
  it('hosts: address, user, port, name, tags, relayId, monitorOnly, unknown fields', async () => {
    const base = { relayId, address: '192.0.2.61' };
    await refuses('POST', '/api/hosts', INJECTIONS.filter((s) => s !== 'a/b' || true).map((address) => ({ ...base, address })), 'address');
    await refuses('POST', '/api/hosts', [...INJECTIONS, 'Root', '-root'].map((user) => ({ ...base, user })), 'user');
    await refuses('POST', '/api/hosts', [0, 65536, 22.5, '22', '22;id', null, -1].map((port) => ({ ...base, port })), 'port');
    await refuses('POST', '/api/hosts', ['', 'a\nb', 'x'.repeat(65), 'nul\u0000'].map((name) => ({ ...base, name })), 'name');
    await refuses('POST', '/api/hosts', [{ ...base, tags: ['ok', 'bad tag'] }, { ...base, tags: ['ok', '$(id)'] }], 'tags.1');
    await refuses('POST', '/api/hosts', [{ ...base, tags: 'prod' }], 'tags');
    await refuses('POST', '/api/hosts', [{ ...base, relayId: '../x' }, { ...base, relayId: 'a;b' }], 'relayId');
    await refuses('POST', '/api/hosts', WRONG_TYPES.filter((x) => typeof x !== 'boolean').map((monitorOnly) => ({ ...base, monitorOnly })), 'monitorOnly');
    await refuses('POST', '/api/hosts', [{ ...base, command: 'id' }, { ...base, __proto__x: 1 }], /^(command|__proto__x)$/);
    await refuses('PATCH', `/api/hosts/${hostId}`, INJECTIONS.map((address) => ({ address })), 'address');
    await refuses('POST', '/api/hosts/test', INJECTIONS.map((address) => ({ address, relayId })), 'address');
  });

  it('upgrades: packages, confirm, hostIds', async () => {
    const pkgs = INJECTIONS.filter((s) => s !== 'a b' || true);
    await refuses('POST', `/api/hosts/${hostId}/upgrade`, pkgs.map((p) => ({ confirm: true, packages: [p] })), 'packages.0');
    await refuses('POST', `/api/hosts/${hostId}/upgrade`, WRONG_TYPES.map((packages) => ({ confirm: true, packages })), /^packages(\.0)?$/);
    await refuses('POST', `/api/hosts/${hostId}/upgrade`, [{}, { confirm: 'true' }, { confirm: 1 }, { confirm: false }], 'confirm');
    await refuses('POST', `/api/hosts/${hostId}/reboot`, [{}, { confirm: 'yes' }, { confirm: true, now: true }], /^(confirm|now)$/);
    await refuses('POST', '/api/upgrades', [{ confirm: true, hostIds: ['$(id)'] }, { confirm: true, hostIds: ['a b'] }], 'hostIds.0');
    await refuses('POST', '/api/upgrades', [{ confirm: true, hostIds: 'all' }, { confirm: true }], 'hostIds');
    await refuses('POST', '/api/scans', [{ hostIds: ['`id`'] }], 'hostIds.0');
  });

  it('relays, settings, users, tokens, login, setup, host keys', async () => {
    await refuses('POST', '/api/relays', ['', 'a\nb', 'x'.repeat(65), 42].map((name) => ({ name })), 'name');
    await refuses('PUT', '/api/settings', [{ retentionDays: '30' }, { retentionDays: 0 }, { retentionDays: 1.5 }], 'retentionDays');
    await refuses('PUT', '/api/settings', [{ scanConcurrency: 0 }, { scanConcurrency: 5000 }, { scanConcurrency: null }], 'scanConcurrency');
    await refuses('PUT', '/api/settings', [{ accessTeamDomain: 'evil.com/path' }, { accessTeamDomain: '$(id).x' }], 'accessTeamDomain');
    await refuses('PUT', '/api/settings', [{ accessAudience: 'not-hex' }], 'accessAudience');
    await refuses('PUT', '/api/settings', [{ shell: '/bin/sh' }], 'shell');
    await refuses('POST', '/api/users', INJECTIONS.filter((s) => !/^[a-z0-9][a-z0-9._@+-]{0,63}$/.test(s.toLowerCase().trim())).map((username) => ({ username, role: 'viewer' })), 'username');
    await refuses('POST', '/api/users', ['root', 'Admin ', '', null].map((role) => ({ username: 'u1', role })), 'role');
    await refuses('POST', '/api/users', [{ username: 'u1', role: 'viewer', password: 'short' }], 'password');
    await refuses('POST', '/api/tokens', [{ name: 'a\nb', role: 'admin' }, { name: '', role: 'admin' }], 'name');
    await refuses('POST', '/api/tokens', [{ name: 'ci', role: 'superuser' }], 'role');
    await refuses('POST', `/api/hosts/${hostId}/accept-host-key`, ['SHA256:x', 'md5:00', '$(id)', ''].map((fingerprint) => ({ fingerprint })), 'fingerprint');
    const login = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username: '$(id)', password: 'x' } });
    expect(login.status).toBe(400);
    expect((await json(login)).error.field).toBe('username');
  });

  it('query strings are checked too', async () => {
    for (const q of ['kind=$(id)', 'status=;', 'since=2026-13-45x', 'limit=-1', 'limit=1e9', 'hostId=../x', 'before=now']) {
      const res = await api(`/api/jobs?${q}`);
      expect(res.status, q).toBe(400);
      expect((await json(res)).error.field, q).toBe(q.split('=')[0]);
    }
    const res = await api('/api/hosts?filter=all;drop');
    expect((await json(res)).error.field).toBe('filter');
  });

  it('a body that is not JSON, or not an object, is a 400 too', async () => {
    const before = await counts();
    for (const body of ['not json', '[1,2]', '"str"', 'null', '{"address":']) {
      const res = await api('/api/hosts', { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
      expect(res.status, body).toBe(400);
    }
    expect(await counts()).toEqual(before);
  });
});
