// The invariants catch what they are for: fed a round in which each one is broken, each
// says so (the whole suite in e2e/chaos.test.ts only shows they hold).
import { describe, expect, it } from 'vitest';
import type { SimMachine, SimRun } from '../../sim/upgrade.ts';
import { checkRound, type Injected, type JobView, type RoundInput } from './invariants.ts';
import { MAY_LOSE } from './faults.ts';
import { ROGUE_MARK, ROGUE_OS } from './rogue.ts';

const t = (s: number) => new Date(1_000_000 + s * 1000).toISOString();

function job(over: Partial<JobView>): JobView {
  return { id: 'j1', kind: 'upgrade', hostId: 'h1', relayId: 'r1', status: 'succeeded', exitCode: 0, summary: null, error: null, changes: [{ name: 'zip', from: '1', to: '2' }], logBytes: 0, createdAt: t(0), startedAt: t(1), finishedAt: t(5), log: 'line 1\nline 2\n', ...over };
}

/** A host whose run j1 upgraded zip 1 → 2 and logged two lines. */
function machine(over: Partial<SimRun> = {}, installed = 'zip\t2\tinstalled\n'): SimMachine {
  const run = { runId: 'j1', startedAt: 1_001_000, durationMs: 1000, bootId: 'b', log: Buffer.from('line 1\nline 2\n'), exitCode: 0, before: 'zip\t1\tinstalled\n', applied: true, ended: null, ...over } as SimRun;
  return { group: 'apt', runs: new Map([['j1', run]]), installedText: () => installed, pendingNames: () => [] } as unknown as SimMachine;
}

function check(jobs: JobView[], o: Partial<RoundInput> = {}) {
  return checkRound({ round: 1, jobs, hosts: [], machines: new Map([['h1', machine()]]), injected: [], seenTerminal: new Map(), mayLose: MAY_LOSE, ...o });
}

const names = (r: ReturnType<typeof check>) => r.violations.map((v) => v.invariant);

describe('chaos invariants', () => {
  it('a clean round passes', () => {
    expect(check([job({})]).violations).toEqual([]);
  });

  it('a job still running is stuck', () => {
    expect(names(check([job({ status: 'running', finishedAt: null })]))).toEqual(['no job stuck']);
  });

  it('a job that changes terminal state is caught', () => {
    const seen = new Map([['j1', 'failed']]);
    expect(names(check([job({})], { seenTerminal: seen }))).toContain('one terminal state');
  });

  it('succeeded while the host did not change (or changed otherwise) is misreported', () => {
    expect(names(check([job({})], { machines: new Map([['h1', machine({ applied: false }, 'zip\t1\tinstalled\n')]]) }))).toContain('succeeded only when the host changed as reported');
    expect(names(check([job({ changes: [{ name: 'zip', from: '1', to: '3' }] })]))).toContain('succeeded only when the host changed as reported');
    expect(names(check([job({ status: 'failed', error: { code: 'command-failed', message: 'x' } })], { injected: [{ kind: 'disk-full', hostId: 'h1', at: 1_000_000, until: 1_010_000 }] }))).toContain('succeeded only when the host changed as reported');
  });

  it('log lines stored twice, missing or forged are caught', () => {
    expect(check([job({ log: 'line 1\nline 1\nline 2\n' })]).logLinesDuplicated).toBe(1);
    expect(check([job({ log: 'line 1\n' })]).logLinesLost).toBe(1);
    expect(check([job({ log: '[patchman] re-attached\nline 1\nline 2\n' })]).violations).toEqual([]);
  });

  it('lost is fine after a relay kill, not without a fault', () => {
    const lost = job({ status: 'lost', changes: null, error: { code: 'lost', message: 'x' }, log: 'line 1\n' });
    const m = new Map([['h1', machine({ applied: false, ended: { why: 'killed', visible: 7 } }, 'zip\t1\tinstalled\n')]]);
    expect(check([lost], { machines: m }).lostUnexpected).toBe(1);
    const kill: Injected = { kind: 'relay-kill', hostId: null, at: 1_002_000, until: 1_003_000 };
    const r = check([lost], { machines: m, injected: [kill] });
    expect([r.lostExpected, r.violations]).toEqual([1, []]);
  });

  it('anything from the rogue relay in D1 is caught', () => {
    expect(check([job({ log: `line 1\nline 2\n${ROGUE_MARK} forged\n` })]).rogueReached).toBe(1);
    expect(check([job({})], { hosts: [{ id: 'h1', name: 'h1', osName: ROGUE_OS, statusReason: null, updatesCount: 0 }] }).rogueReached).toBe(1);
  });

  it('two changes at once on a host are caught', () => {
    const a = job({ id: 'a', kind: 'reboot', changes: null, log: '' });
    const b = job({ id: 'b', kind: 'reboot', changes: null, startedAt: t(3), finishedAt: t(8), log: '' });
    expect(check([a, b], { machines: new Map() }).overlappingChanges).toBe(1);
  });
});
