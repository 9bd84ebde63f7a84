import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet, type Fleet } from './fleet.ts';
import { simMachine, type SimRun } from './upgrade.ts';
import { SH_COMMAND } from '../relay/pkg/shell.ts';
import { pollScript } from '../relay/run.ts';

const state = mkdtempSync(join(tmpdir(), 'patchman-sim-upgrade-'));
let fleet: Fleet;
afterAll(async () => {
  await fleet?.stop();
  rmSync(state, { recursive: true, force: true });
});

describe('a simulated run', () => {
  it('shows its log line by line as it goes: at its start only the first line, never the whole log', async () => {
    fleet = await startFleet({ hosts: [{ name: 'sim-run-1', profile: 'debian12-security' }], authorizedKeys: [], stateDir: state });
    const m = simMachine('sim-run-1');
    const log = Buffer.from('$ apt-get dist-upgrade\nline 2\nline 3\n');
    m.runs.set('r1', { runId: 'r1', startedAt: Date.now(), durationMs: 60_000, bootId: m.bootId, log, exitCode: 0, before: '', effect: null, applied: false, ended: null, dropped: false } as unknown as SimRun);
    const poll = m.answer(SH_COMMAND, pollScript('r1', 0), 'root');
    expect(String(poll?.reply.stdout)).toContain('running\nsize 23\n');
  });
});
