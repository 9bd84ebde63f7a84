import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from './outbox.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (frame: string) => {
  const m = JSON.parse(frame);
  return (m.type === 'batch' ? m.messages : [m]).map((x: { id: string }) => x.id);
};
const msg = (id: string, type = 'response') => JSON.stringify({ type, id, ok: true, result: null });

let boxes: Outbox[] = [];
afterEach(() => {
  for (const b of boxes) b.drop();
  boxes = [];
});
function outbox(gatherMs: number) {
  const sent: { at: number; frame: string }[] = [];
  const box = new Outbox((frame) => sent.push({ at: performance.now(), frame }), gatherMs);
  boxes.push(box);
  return { box, sent };
}

describe('Outbox', () => {
  it('sends a lone answer at once, after a pause', async () => {
    const { box, sent } = outbox(200);
    box.push(msg('a'));
    expect(sent.map((s) => s.frame)).toEqual([msg('a')]);
    await sleep(250);
    box.push(msg('b'));
    expect(sent.map((s) => s.frame)).toEqual([msg('a'), msg('b')]);
  });

  it('gathers the answers that follow within the window into one frame, sent when it ends', async () => {
    const { box, sent } = outbox(150);
    const t0 = performance.now();
    box.push(msg('a'));
    for (const id of ['b', 'c', 'd']) box.push(msg(id));
    expect(sent).toHaveLength(1);
    await sleep(300);
    expect(sent.map((s) => ids(s.frame))).toEqual([['a'], ['b', 'c', 'd']]);
    expect(sent[1].at - t0).toBeGreaterThanOrEqual(140);
    expect(box.waiting).toBe(0);
  });

  it("sends a job's output at once, with the answers queued before it, in order", async () => {
    const { box, sent } = outbox(10_000);
    box.push(msg('a'));
    box.push(msg('b'));
    box.push(msg('c'));
    box.push(msg('up', 'output'), true);
    expect(sent.map((s) => ids(s.frame))).toEqual([['a'], ['b', 'c', 'up']]);
  });

  it('forgets what waits when its socket is gone', async () => {
    const { box, sent } = outbox(100);
    box.push(msg('a'));
    box.push(msg('b'));
    box.drop();
    await sleep(200);
    expect(sent.map((s) => ids(s.frame))).toEqual([['a']]);
  });
});
