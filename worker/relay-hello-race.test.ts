// A relay that reconnects while it is still running a job sends that job's output right
// after its hello. The hello's D1 calls let later messages in early: they must wait for the
// hello, not be taken for a relay that skipped it (which closes the socket).
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, PUBLIC_KEY, until } from './test/helpers.ts';
import { PROTOCOL_VERSION } from '../protocol/relay.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

describe('a relay that reconnects mid-run', () => {
  it('may send output right after its hello: it is stored, and the socket stays open', async () => {
    const { id: relayId, token } = await createRelay();
    const first = await FakeRelay.connect(token);
    const host = await json(api('/api/hosts', { method: 'POST', json: { relayId, address: '192.0.2.60' } }));
    const { jobId } = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
    expect((await first.next()).id).toBe(jobId);

    const again = await FakeRelay.connect(token, null); // replaces the first socket
    again.send({ type: 'hello', v: PROTOCOL_VERSION, version: '0.1.0-test', publicKey: PUBLIC_KEY, hostname: 'relaybox' });
    again.send({ type: 'output', id: jobId, stream: 'stdout', data: 'still running\n' });
    const seen: string[] = [];
    while (!seen.includes('request')) seen.push((await again.next()).type);
    expect(seen).toContain('welcome');
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).log === 'still running\n');
    expect(again.closed).toBeNull();
  });
});
