import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, PUBLIC_KEY, testEnv, until } from '../test/helpers.ts';
import { Close } from '../../protocol/relay.ts';
import { sha256Hex } from '../lib/crypto.ts';

describe('relays', () => {
  it('creates a relay whose token is shown once and stored only as a hash', async () => {
    const { id, token } = await createRelay('vlan-10');
    expect(token).toMatch(/^pmr_[A-Za-z0-9_-]{43}$/);
    const row = await testEnv.DB.prepare('SELECT * FROM relays WHERE id = ?').bind(id).first<Record<string, unknown>>();
    expect(row!.token_hash).toBe(await sha256Hex(token));
    expect(JSON.stringify(row)).not.toContain(token);
    const list = await (await api('/api/relays')).json();
    expect(JSON.stringify(list)).not.toContain(token);
    expect(JSON.stringify(list)).not.toContain(row!.token_hash as string);
  });

  it('rejects a relay name that is empty, with the field named', async () => {
    const res = await api('/api/relays', { method: 'POST', json: { name: '' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.field).toBe('name');
  });

  it('refuses /relay/connect without a token, with a wrong token, and without an upgrade', async () => {
    const { token } = await createRelay();
    expect((await api('/relay/connect', { headers: { Upgrade: 'websocket' } })).status).toBe(401);
    expect((await api('/relay/connect', { headers: { Upgrade: 'websocket', Authorization: 'Bearer pmr_wrong' } })).status).toBe(401);
    expect((await api('/relay/connect', { headers: { Authorization: `Bearer ${token}` } })).status).toBe(426);
  });

  it('a connected relay is listed live with its version and public key, and disconnected after it closes', async () => {
    const { id, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const list = (await (await api('/api/relays')).json()) as any[];
    const mine = list.find((r) => r.id === id);
    expect(mine).toMatchObject({ connected: true, version: '0.1.0-test', publicKey: PUBLIC_KEY, hostname: 'relaybox' });
    expect(Date.parse(mine.lastSeenAt)).toBeGreaterThan(Date.now() - 10_000);
    relay.ws.close(1000, 'bye');
    await until(async () => {
      const l = (await (await api('/api/relays')).json()) as any[];
      return l.find((r) => r.id === id)?.connected === false;
    });
  });

  it('answers the heartbeat', async () => {
    const { token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    relay.send('{"type":"ping"}');
    expect(await relay.next()).toEqual({ type: 'pong' });
  });

  it('closes the socket with a reason on garbage', async () => {
    const { token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    relay.send('{"type":"launch-missiles"}');
    const closed = await relay.waitClosed();
    expect(closed.code).toBe(Close.invalidMessage);
    expect(closed.reason).toMatch(/invalid message/);
  });

  it('closes a relay that speaks another protocol version', async () => {
    const { token } = await createRelay();
    const relay = await FakeRelay.connect(token, null);
    relay.send({ type: 'hello', v: 99, version: 'x', publicKey: PUBLIC_KEY, hostname: 'h' });
    const closed = await relay.waitClosed();
    expect(closed.code).toBe(Close.versionMismatch);
  });

  it('revoking a relay closes its socket at once and its token stops working', async () => {
    const { id, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    expect((await api(`/api/relays/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await relay.waitClosed()).code).toBe(Close.revoked);
    expect((await api('/relay/connect', { headers: { Upgrade: 'websocket', Authorization: `Bearer ${token}` } })).status).toBe(401);
  });

  it('rotating a token closes the socket; the old token stops working, the new one connects', async () => {
    const { id, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const res = await api(`/api/relays/${id}/rotate`, { method: 'POST', json: {} });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.token).toMatch(/^pmr_/);
    expect(body.token).not.toBe(token);
    expect((await relay.waitClosed()).code).toBe(Close.revoked);
    expect((await api('/relay/connect', { headers: { Upgrade: 'websocket', Authorization: `Bearer ${token}` } })).status).toBe(401);
    const again = await FakeRelay.connect(body.token);
    expect(again.closed).toBeNull();
    expect((await api('/api/relays/nope/rotate', { method: 'POST', json: {} })).status).toBe(404);
  });
});
