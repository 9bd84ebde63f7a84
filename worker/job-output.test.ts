// A job's log and the offset into the host's log move together: a chunk that could not be
// stored (the Worker died, D1 failed) leaves the offset where it was, so the relay's re-sent
// range fills the gap instead of being refused as already had. Found by the fault suite
// (docs/RELIABILITY.md): a Worker restart mid-upgrade left a job with lines missing.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, testEnv, until } from './test/helpers.ts';
import { scanResult } from './test/fixtures.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

describe('a job log chunk and its offset', () => {
  it('are stored together or not at all', async () => {
    const { id: relayId, token } = await createRelay('log');
    const relay = await FakeRelay.connect(token);
    const host = await json(api('/api/hosts', { method: 'POST', json: { relayId, address: '192.0.2.40' } }));
    const scan = await json(api(`/api/hosts/${host.id}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: scan.jobId, ok: true, result: scanResult });
    await until(async () => (await json(api(`/api/jobs/${scan.jobId}`))).status === 'succeeded');
    const { jobId } = await json(api(`/api/hosts/${host.id}/upgrade`, { method: 'POST', json: { confirm: true } }));
    expect((await relay.next()).id).toBe(jobId);

    // The chunk cannot be written (as if the Worker died between the two writes); a note
    // sent after it can, and shows when the chunk has been dealt with (in order).
    await testEnv.DB.prepare(`CREATE TRIGGER job_output_fails BEFORE INSERT ON job_output WHEN NEW.data LIKE 'Reading%' BEGIN SELECT RAISE(ABORT, 'no space'); END`).run();
    relay.send({ type: 'output', id: jobId, data: 'Reading package lists...\n', range: { from: 0, to: 25 } });
    relay.send({ type: 'output', id: jobId, data: '[patchman] note\n' });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).log === '[patchman] note\n');
    await testEnv.DB.prepare('DROP TRIGGER job_output_fails').run();

    // The relay re-sends from the offset the Worker still holds: the log has every line once.
    relay.send({ type: 'output', id: jobId, data: 'Reading package lists...\n', range: { from: 0, to: 25 } });
    relay.send({ type: 'output', id: jobId, data: 'Setting up zip\n', range: { from: 25, to: 40 } });
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).logBytes > 40);
    expect((await json(api(`/api/jobs/${jobId}`))).log).toBe('[patchman] note\nReading package lists...\nSetting up zip\n');
  });
});
