// A small fleet for policy and rollout tests: one fake relay, N apt hosts scanned with the
// fixture scan, and a relay that answers upgrades, scans and reboots the way a real one does.
import { expect } from 'vitest';
import { api, createRelay, FakeRelay, until } from './helpers.ts';
import { scanResult } from './fixtures.ts';

export const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

export function upgradeResult(changes: { name: string; from: string | null; to: string | null }[], extra: Record<string, unknown> = {}) {
  return {
    packageManager: 'apt',
    mode: 'selective',
    exitCode: 0,
    changes,
    logBytes: 20,
    logTail: 'Setting up openssl\n',
    durationMs: 1000,
    reboot: { required: false, reason: null },
    warnings: [],
    ...extra,
  };
}

/** Answer every scan request in the inbox with `result` (or the fixture scan). */
export async function answerScans(relay: FakeRelay, count: number, result: (hostAddress: string) => unknown = () => scanResult) {
  for (let i = 0; i < count; i++) {
    const req = await relay.next(10_000);
    expect(req.op).toBe('scan');
    relay.send({ type: 'response', id: req.id, ok: true, result: result(req.params.target.address) });
  }
}

export async function fleet(n: number, opts: { tags?: string[]; prefix?: string } = {}) {
  const { id: relayId, token } = await createRelay();
  const relay = await FakeRelay.connect(token);
  const hosts: { id: string; name: string; address: string }[] = [];
  for (let i = 0; i < n; i++) {
    const address = `192.0.2.${10 + i}`;
    const res = await api('/api/hosts', { method: 'POST', json: { relayId, name: `${opts.prefix ?? 'web'}${String(i + 1).padStart(2, '0')}`, address, tags: opts.tags ?? ['web'] } });
    expect(res.status).toBe(201);
    hosts.push(await json(res));
  }
  const { jobIds } = await json(api('/api/scans', { method: 'POST', json: { hostIds: hosts.map((h) => h.id) } }));
  await answerScans(relay, n);
  await until(async () => {
    const list = await json(api('/api/hosts'));
    return list.filter((h: any) => h.lastScanAt).length === n;
  }, 10_000);
  expect(jobIds).toHaveLength(n);
  return { relayId, relay, hosts };
}

export async function createPolicy(body: Record<string, unknown>) {
  const res = await api('/api/policies', { method: 'POST', json: { name: 'web security', selector: { tags: ['web'] }, ...body } });
  if (res.status !== 201) throw new Error(`create policy: ${res.status} ${await res.text()}`);
  return json(res);
}
