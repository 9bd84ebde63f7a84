// `npm start` keeps the local relay running the way systemd's Restart= would: a relay that
// dies is started again after a growing pause; a stopped supervisor starts nothing more.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { supervise } from './supervise.ts';

const node = (code: string) => () => spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
const until = async (fn: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('supervise', () => {
  it('restarts a process that dies, with a growing pause, and says so', async () => {
    const lines: string[] = [];
    const starts: number[] = [];
    const s = supervise({
      name: 'relay',
      spawn: () => (starts.push(Date.now()), node('process.exit(3)')()),
      log: (l) => lines.push(l),
      initialDelayMs: 100,
      maxDelayMs: 400,
      random: () => 1,
    });
    await until(() => starts.length >= 4);
    s.stop();
    const pauses = starts.slice(1).map((t, i) => t - starts[i]);
    expect(pauses[0]).toBeGreaterThanOrEqual(100);
    expect(pauses[1]).toBeGreaterThanOrEqual(200);
    expect(pauses[2]).toBeGreaterThanOrEqual(400);
    expect(lines[0]).toMatch(/^relay exited \(3\); restarting in 0\.1 s$/);
    const n = starts.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(starts.length).toBe(n); // stopped: nothing more
  });

  it('restarts after a kill too, and the pause starts small again after a long enough run', async () => {
    const lines: string[] = [];
    let starts = 0;
    const s = supervise({ name: 'relay', spawn: () => (starts++, node('setTimeout(() => {}, 60000)')()), log: (l) => lines.push(l), initialDelayMs: 50, maxDelayMs: 1000, stableMs: 200, random: () => 1 });
    await until(() => s.current() !== null);
    await new Promise((r) => setTimeout(r, 300)); // ran "long enough"
    s.current()!.kill('SIGKILL');
    await until(() => starts === 2);
    expect(lines).toEqual(['relay exited (SIGKILL); restarting in 0.05 s']);
    s.stop();
    expect(s.current()).toBeNull();
  });
});
