import { describe, expect, it } from 'vitest';
import { packFrames } from './batch.ts';
import { BATCH_MAX_CHARS, BATCH_MAX_MESSAGES, FromRelay, ToRelay, agreedFeatures, decode } from './relay.ts';

const response = (id: string, pad = 0) => JSON.stringify({ type: 'response', id, ok: true, result: { pad: 'x'.repeat(pad) } });
const request = (id: string) => JSON.stringify({ type: 'request', id, op: 'scan', params: {} });
/** The messages a frame carries, as the receiving end reads them. */
const unpack = (frame: string) => {
  const m = JSON.parse(frame);
  return m.type === 'batch' ? m.messages : [m];
};

describe('packFrames', () => {
  it('puts consecutive messages in one batch frame, in order, that the other end validates', () => {
    const msgs = ['a', 'b', 'c'].map((id) => response(id));
    const frames = packFrames(msgs);
    expect(frames).toHaveLength(1);
    const d = decode(FromRelay, frames[0]);
    expect(d.ok && d.value.type === 'batch' && d.value.messages.map((m) => m.id)).toEqual(['a', 'b', 'c']);
    const req = decode(ToRelay, packFrames(['r1', 'r2'].map(request))[0]);
    expect(req.ok && req.value.type === 'batch' && req.value.messages.map((m) => m.id)).toEqual(['r1', 'r2']);
  });

  it('sends a lone message as itself (what a peer without the feature sends), and nothing for none', () => {
    expect(packFrames([response('a')])).toEqual([response('a')]);
    expect(packFrames([])).toEqual([]);
  });

  it('cuts frames under BATCH_MAX_CHARS and BATCH_MAX_MESSAGES, keeping the order across them', () => {
    const big = Array.from({ length: 9 }, (_, i) => response(`b${i}`, BATCH_MAX_CHARS / 4));
    const frames = packFrames(big);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    for (const f of frames) expect(f.length).toBeLessThanOrEqual(BATCH_MAX_CHARS);
    expect(frames.flatMap(unpack).map((m: { id: string }) => m.id)).toEqual(big.map((m) => JSON.parse(m).id));

    const many = Array.from({ length: BATCH_MAX_MESSAGES + 5 }, (_, i) => response(`m${i}`));
    const cut = packFrames(many);
    expect(cut.map((f) => unpack(f).length)).toEqual([BATCH_MAX_MESSAGES, 5]);
    for (const f of cut) expect(decode(FromRelay, f).ok).toBe(true);
  });

  it('gives a message longer than the limit a frame of its own', () => {
    const huge = response('huge', BATCH_MAX_CHARS + 10);
    expect(packFrames([response('a'), huge, response('b')])).toEqual([response('a'), huge, response('b')]);
  });
});

describe('batch frames in the schemas', () => {
  it('refuse an empty batch, a batch inside a batch, and what may not travel in one', () => {
    expect(decode(FromRelay, '{"type":"batch","messages":[]}').ok).toBe(false);
    expect(decode(FromRelay, `{"type":"batch","messages":[{"type":"batch","messages":[${response('a')}]}]}`).ok).toBe(false);
    expect(decode(FromRelay, `{"type":"batch","messages":[{"type":"ping"},${response('a')}]}`).ok).toBe(false);
    expect(decode(ToRelay, `{"type":"batch","messages":[{"type":"config","concurrency":4},${request('a')}]}`).ok).toBe(false);
  });
});

describe('agreedFeatures', () => {
  it('takes only what both ends name and this end knows; an older peer names none', () => {
    expect(agreedFeatures(['batch', 'zstd'], ['batch'])).toEqual(['batch']);
    expect(agreedFeatures(['zstd'], ['zstd'])).toEqual([]);
    expect(agreedFeatures(undefined, ['batch'])).toEqual([]);
    expect(agreedFeatures(['batch'], undefined)).toEqual([]);
  });
});
