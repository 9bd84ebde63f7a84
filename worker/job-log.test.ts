// Finished logs are stored gzip-compressed in D1 and read back as text, against the real
// Worker in workerd (local D1) with a fake relay on a real WebSocket.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, testEnv, until } from './test/helpers.ts';
import { scanResult } from './test/fixtures.ts';
import { openDb, schema } from './db/index.ts';
import { appendChunk, readLog } from './job-log.ts';
import { runScheduled } from './scheduled.ts';
import { newId } from './lib/crypto.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

// A real full-upgrade log (sim/fixtures: pacman on Arch, recorded), repeated to a bigger size.
import RUN_LOG from '../sim/fixtures/arch/run-full-upgrade.log?raw';

describe('compressed logs', () => {
  it('an upgrade log is stored as one gzip row once the job ends; GET /api/jobs/:id still returns the exact text', { timeout: 60_000 }, async () => {
    const { id: relayId, token } = await createRelay();
    const relay = await FakeRelay.connect(token);
    const host = json(api('/api/hosts', { method: 'POST', json: { relayId, name: 'z1', address: '192.0.2.77' } }));
    const { id: hostId } = await host;
    const { jobId: scanId } = await json(api(`/api/hosts/${hostId}/scan`, { method: 'POST' }));
    await relay.next();
    relay.send({ type: 'response', id: scanId, ok: true, result: scanResult });
    await until(async () => (await json(api(`/api/jobs/${scanId}`))).status === 'succeeded');

    const { jobId } = await json(api(`/api/hosts/${hostId}/upgrade`, { method: 'POST', json: { confirm: true } }));
    expect((await relay.next()).op).toBe('upgrade');
    const chunks = Array.from({ length: 40 }, (_, i) => `[pass ${i}] ${RUN_LOG}`);
    let at = 0;
    for (const c of chunks) {
      relay.send({ type: 'output', id: jobId, data: c, range: { from: at, to: at + c.length } });
      at += c.length;
    }
    const text = chunks.join('');
    await until(async () => (await json(api(`/api/jobs/${jobId}`))).logBytes === text.length, 20_000);
    // while it runs: plain chunks
    const plain = await testEnv.DB.prepare('select count(*) as n, sum(gz is not null) as z from job_output where job_id = ?').bind(jobId).first<{ n: number; z: number }>();
    expect(plain!.z).toBe(0);

    relay.send({
      type: 'response',
      id: jobId,
      ok: true,
      result: { packageManager: 'apt', mode: 'full', exitCode: 0, changes: [], logBytes: at, logTail: '', durationMs: 10, reboot: { required: false, reason: null }, warnings: [] },
    });
    const row = await until(async () => {
      const r = await testEnv.DB.prepare('select count(*) as n, max(length(gz)) as gz, max(length(data)) as data from job_output where job_id = ?').bind(jobId).first<{ n: number; gz: number | null; data: number }>();
      return r && r.n === 1 && r.gz !== null && r;
    }, 20_000);
    expect(row.data).toBe(0);
    expect(row.gz).toBeLessThan(text.length / 5);
    const done = await json(api(`/api/jobs/${jobId}`));
    expect(done.status).toBe('succeeded');
    expect(done.log).toBe(text);
  });

  it('the scheduled run compresses the logs of jobs that ended without a response (timed out, lost)', { timeout: 30_000 }, async () => {
    const { id: relayId } = await createRelay('lost-logs');
    const { id: hostId } = await json(api('/api/hosts', { method: 'POST', json: { relayId, name: 'z2', address: '192.0.2.78' } }));
    const db = openDb(testEnv.DB);
    const id = newId();
    const text = Array.from({ length: 30 }, (_, i) => `[pass ${i}] ${RUN_LOG}`);
    const logBytes = text.join('').length;
    await db.insert(schema.jobs).values({ id, kind: 'upgrade', hostId, relayId, status: 'lost', errorCode: 'lost', createdAt: Date.now(), finishedAt: Date.now(), logBytes });
    for (const chunk of text) await appendChunk(db, id, chunk);
    const r = await runScheduled(testEnv);
    expect(r.logsCompressed).toBeGreaterThanOrEqual(1);
    const row = await testEnv.DB.prepare('select count(*) as n, sum(gz is not null) as z from job_output where job_id = ?').bind(id).first<{ n: number; z: number }>();
    expect(row).toEqual({ n: 1, z: 1 });
    expect(await readLog(db, id)).toBe(text.join(''));
  });
});
