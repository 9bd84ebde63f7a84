// The live feed's frames (live-feed.ts): one event per frame by default, as scripts read it;
// arrays of events with ?batch=1, as the dashboard asks for; never a frame near Workers'
// 1 MiB message limit.
import { describe, expect, it } from 'vitest';
import { api, testEnv, until } from './test/helpers.ts';
import { LIVE_FRAME_MAX_CHARS, liveFrames, publish } from './live-feed.ts';
import type { LiveEvent } from '../protocol/api.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;

/** A socket on /api/live (as a script opens it: the admin's token), with every frame it got. */
async function open(query = '') {
  const res = await api(`/api/live${query}`, { headers: { Upgrade: 'websocket' } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const frames: any[] = [];
  ws.addEventListener('message', (e) => {
    frames.push(JSON.parse(String(e.data)));
  });
  return { frames, close: () => ws.close() };
}

const output = (i: number, data = `line ${i}\n`): LiveEvent => ({ type: 'job.output', jobId: 'j1', hostId: 'h1', data });

describe('/api/live frames', { timeout: 30_000 }, () => {
  it('one event per frame by default; with ?batch=1 one frame holding the broadcast, in order', async () => {
    const plain = await open();
    const batched = await open('?batch=1');
    const events = [output(1), output(2), output(3)];
    await publish(testEnv, ...events);
    await until(async () => plain.frames.length === 3 && batched.frames.length === 1);
    expect(plain.frames).toEqual(events);
    expect(batched.frames).toEqual([events]);
    plain.close();
    batched.close();
  });

  it('refuses any other value of batch, naming the field', async () => {
    const res = await api('/api/live?batch=yes', { headers: { Upgrade: 'websocket' } });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatchObject({ code: 'invalid', field: 'batch' });
  });

  it('cuts batched frames under the size limit, keeping the order; an event bigger than it goes alone', () => {
    const big = 'x'.repeat(LIVE_FRAME_MAX_CHARS / 3);
    const texts = [1, 2, 3, 4, 5].map((i) => JSON.stringify(output(i, big)));
    const huge = JSON.stringify(output(6, 'y'.repeat(LIVE_FRAME_MAX_CHARS)));
    const frames = liveFrames([...texts, huge, JSON.stringify(output(7))], true);
    // two of a third of the limit fit a frame, a third does not; the huge one goes alone
    expect(frames.map((f) => JSON.parse(f).length)).toEqual([2, 2, 1, 1, 1]);
    for (const f of [...frames.slice(0, 3), frames[4]]) expect(f.length).toBeLessThanOrEqual(LIVE_FRAME_MAX_CHARS);
    expect(frames.flatMap((f) => JSON.parse(f)).map((e: any) => (e.data.length > 100 ? e.data[0] : e.data))).toEqual(['x', 'x', 'x', 'x', 'x', 'y', 'line 7\n']);
    expect(liveFrames(texts, false)).toEqual(texts);
  });
});
