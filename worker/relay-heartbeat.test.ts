// A relay that stops sending heartbeats (frozen, its network silently gone) is marked
// disconnected after the heartbeat timeout: its socket is closed and its in-flight jobs are
// handled as for any disconnect (scans lost, changes wait for it until their deadline).
import { describe, expect, it } from 'vitest';
import { runInDurableObject } from 'cloudflare:test';
import { api, createRelay, FakeRelay, testEnv, until } from './test/helpers.ts';
import { scanResult } from './test/fixtures.ts';
import { relayHub, type RelayHub } from './relay-hub.ts';
import { Close, HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS } from '../protocol/relay.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

/** Shorten this relay's heartbeat timeout (the test cannot wait 90 s) and re-arm its alarm. */
async function shortenTimeout(relayId: string, ms: number) {
  await runInDurableObject(relayHub(testEnv, relayId) as unknown as DurableObjectStub<RelayHub>, async (hub: RelayHub) => {
    hub.heartbeatTimeoutMs = ms;
    await hub.scheduleAlarm();
  });
}

const connected = async (relayId: string) => ((await json(api('/api/relays'))) as any[]).find((r) => r.id === relayId)?.connected;

describe('relay heartbeat timeout', () => {
  it('is several missed heartbeats long', () => {
    expect(HEARTBEAT_TIMEOUT_MS).toBeGreaterThanOrEqual(3 * HEARTBEAT_INTERVAL_MS);
  });

  it('a silent relay is disconnected: socket closed, scans lost, an upgrade waits for its deadline; a pinging relay stays', { timeout: 60_000 }, async () => {
    const silent = await createRelay('silent');
    const alive = await createRelay('alive');
    const relay = await FakeRelay.connect(silent.token);
    const other = await FakeRelay.connect(alive.token);
    const host = (await json(api('/api/hosts', { method: 'POST', json: { relayId: silent.id, address: '192.0.2.20' } })));
    // a scanned host, so that an upgrade can be asked
    const first = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: first.jobId, ok: true, result: scanResult });
    await until(async () => (await json(api(`/api/jobs/${first.jobId}`))).status === 'succeeded');
    const up = await json(api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true } }));
    expect((await relay.next()).id).toBe(up.jobId);
    const other2 = await json(api('/api/hosts', { method: 'POST', json: { relayId: silent.id, address: '192.0.2.21' } }));
    const scan = await json(api(`/api/hosts/${other2.id}/scan`, { method: 'POST' }));
    expect((await relay.next()).id).toBe(scan.jobId);

    await shortenTimeout(silent.id, 1500);
    await shortenTimeout(alive.id, 1500);
    const beat = setInterval(() => other.send({ type: 'ping' }), 300);
    try {
      const closed = await relay.waitClosed(15_000);
      expect(closed.code).toBe(Close.silent);
      await until(async () => (await connected(silent.id)) === false, 5000);
      expect((await json(api(`/api/jobs/${scan.jobId}`))).status).toBe('lost');
      expect((await json(api(`/api/jobs/${up.jobId}`))).status).toBe('dispatched');
      expect(await connected(alive.id)).toBe(true);
      expect(other.closed).toBeNull();
    } finally {
      clearInterval(beat);
    }
  });
});
