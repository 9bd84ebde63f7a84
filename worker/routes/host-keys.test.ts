// A changed SSH host key blocks the host until an admin accepts the fingerprint the host
// now offers (Worker side; the relay's half is relay/ops/accept-host-key.test.ts).
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, until } from '../test/helpers.ts';
import { scanResult } from '../test/fixtures.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
const PINNED = 'SHA256:' + 'A'.repeat(43);
const OFFERED = 'SHA256:' + 'B'.repeat(43);

describe('host key changed', () => {
  it('records the pinned key, blocks changes when another is offered, and unblocks when an admin accepts exactly that key', async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const host = await json(api('/api/hosts', { method: 'POST', json: { relayId, address: '192.0.2.50' } }));
    const scan = async (answer: (id: string) => unknown) => {
      const { jobId } = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
      expect((await relay.next()).op).toBe('scan');
      relay.send(answer(jobId));
      await until(async () => ['succeeded', 'failed'].includes((await json(api(`/api/jobs/${jobId}`))).status));
    };
    await scan((id) => ({ type: 'response', id, ok: true, result: { ...scanResult, hostKey: PINNED } }));
    expect(await json(api(`/api/hosts/${host.id}`))).toMatchObject({ hostKey: PINNED, hostKeyOffered: null });

    await scan((id) => ({
      type: 'response',
      id,
      ok: false,
      error: { code: 'host-key-changed', message: `The host key of 192.0.2.50:22 has changed: pinned ${PINNED}, now offered ${OFFERED}.`, hostKey: { pinned: PINNED, offered: OFFERED } },
    }));
    const blocked = await json(api(`/api/hosts/${host.id}`));
    expect(blocked).toMatchObject({ status: 'error', hostKey: PINNED, hostKeyOffered: OFFERED });
    expect(blocked.statusReason).toMatch(/has changed/);
    const refused = await api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true } });
    expect(refused.status).toBe(409);
    expect((await json(refused)).error.code).toBe('host-key-changed');

    // only the key the host offered can be accepted
    const wrong = await api(`/api/hosts/${host.id}/accept-host-key`, { method: 'POST', json: { fingerprint: 'SHA256:' + 'C'.repeat(43) } });
    expect(wrong.status).toBe(409);
    expect((await json(api(`/api/hosts/${host.id}/accept-host-key`, { method: 'POST', json: { fingerprint: 'md5:aa' } }))).error.field).toBe('fingerprint');

    const accepting = api(`/api/hosts/${host.id}/accept-host-key`, { method: 'POST', json: { fingerprint: OFFERED } });
    const req = await relay.next();
    expect(req).toMatchObject({ op: 'accept-host-key', params: { target: { address: '192.0.2.50', port: 22, user: 'root' }, fingerprint: OFFERED } });
    relay.send({ type: 'response', id: req.id, ok: true, result: { hostKey: OFFERED } });
    const res = await accepting;
    expect(res.status).toBe(200);
    expect((await json(res)).host).toMatchObject({ hostKey: OFFERED, hostKeyOffered: null, status: 'unknown' });
    expect((await relay.next()).op).toBe('scan'); // and it looks at the host again
  });
});
