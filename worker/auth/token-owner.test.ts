// An API token never outlives, nor outranks, the person who made it.
import { beforeEach, describe, expect, it } from 'vitest';
import { api } from '../test/helpers.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const PASSWORD = 'correct horse battery';

async function userWithSession(username: string, role: string): Promise<{ id: string; cookie: string }> {
  const made = await api('/api/users', { method: 'POST', json: { username, role, password: PASSWORD } });
  expect(made.status).toBe(201);
  const res = await api('/api/auth/login', { method: 'POST', anonymous: true, json: { username, password: PASSWORD } });
  expect(res.status).toBe(200);
  const cookie = /^(__Host-patchman_session=[^;]+)/.exec(res.headers.get('Set-Cookie') ?? '')![1];
  return { id: (await json(made)).id, cookie };
}

async function tokenOf(headers: Record<string, string>, role: string, name = 'script'): Promise<string> {
  const res = await api('/api/tokens', { method: 'POST', json: { name, role }, headers: { 'Sec-Fetch-Site': 'same-origin', ...headers } });
  expect(res.status).toBe(201);
  return (await json(res)).secret;
}

const as = (secret: string) => ({ Authorization: `Bearer ${secret}` });
const canAdminister = async (secret: string) => (await api('/api/relays', { method: 'POST', json: { name: 'r' }, headers: as(secret) })).status;
const canRead = async (secret: string) => (await api('/api/hosts', { headers: as(secret) })).status;

describe('API tokens and their creators', () => {
  // another admin, so that the one under test may be demoted, disabled or deleted
  beforeEach(async () => {
    expect((await api('/api/users', { method: 'POST', json: { username: 'keeper', role: 'admin', password: PASSWORD } })).status).toBe(201);
  });

  it("a token's rights follow its creator's current role (never more than the token's own)", async () => {
    const alice = await userWithSession('alice', 'admin');
    const token = await tokenOf({ Cookie: alice.cookie }, 'admin');
    expect(await canAdminister(token)).toBe(201);
    expect((await api(`/api/users/${alice.id}`, { method: 'PATCH', json: { role: 'viewer' } })).status).toBe(200);
    expect(await canRead(token)).toBe(200);
    const refused = await api('/api/relays', { method: 'POST', json: { name: 'r' }, headers: as(token) });
    expect(refused.status).toBe(403);
    expect((await json(refused)).error.message).toMatch(/viewer/);
    expect((await api(`/api/users/${alice.id}`, { method: 'PATCH', json: { role: 'admin' } })).status).toBe(200);
    expect(await canAdminister(token)).toBe(201);
    // and a viewer token of an admin stays a viewer token
    const viewerToken = await tokenOf({ Cookie: alice.cookie }, 'viewer', 'ro');
    expect(await canAdminister(viewerToken)).toBe(403);
  });

  it("deleting the creator revokes their tokens, and the tokens those tokens made", async () => {
    const bob = await userWithSession('bob', 'admin');
    const token = await tokenOf({ Cookie: bob.cookie }, 'admin');
    const child = await tokenOf(as(token), 'operator', 'child');
    expect(await canRead(child)).toBe(200);
    expect((await api(`/api/users/${bob.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await canRead(token)).toBe(401);
    expect(await canRead(child)).toBe(401);
    const list = (await json(api('/api/tokens'))) as any[];
    expect(list.map((t) => t.name)).not.toContain('script');
    expect(list.map((t) => t.name)).not.toContain('child');
  });

  it('disabling the creator revokes their tokens for good (enabling them again does not bring the tokens back)', async () => {
    const carol = await userWithSession('carol', 'admin');
    const token = await tokenOf({ Cookie: carol.cookie }, 'viewer');
    expect(await canRead(token)).toBe(200);
    expect((await api(`/api/users/${carol.id}`, { method: 'PATCH', json: { disabled: true } })).status).toBe(200);
    expect(await canRead(token)).toBe(401);
    expect((await api(`/api/users/${carol.id}`, { method: 'PATCH', json: { disabled: false } })).status).toBe(200);
    expect(await canRead(token)).toBe(401);
  });
});
