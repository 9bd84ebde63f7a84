// The fault suite in its short seeded form (npm run chaos runs it at length): wrangler dev,
// a relay and six simulated hosts through three rounds in which every kind of fault comes up
// (SSH drops mid-scan and mid-upgrade, a host rebooting mid-upgrade, the relay killed and
// frozen past the heartbeat, the Worker restarted, slow, silent and refusing hosts, a full
// disk, a rogue relay forging and replaying), with the invariants checked after each round.
import { describe, expect, it } from 'vitest';
import { runChaos } from './chaos/harness.ts';
import { FAULT_KINDS } from './chaos/faults.ts';
import { formatFigures } from './chaos/report.ts';

describe('fault suite (seed 1, 3 rounds)', () => {
  it('every fault kind injected, and no invariant broken', async () => {
    const lines: string[] = [];
    const fig = await runChaos({ seed: 1, rounds: 3, faultsPerRound: 4, log: (l) => lines.push(l) });
    const report = `${lines.join('\n')}\n${formatFigures(fig, 'npm run chaos -- --seed 1 --rounds 3')}`;
    for (const k of FAULT_KINDS) expect(fig.faults[k], `${k}\n${report}`).toBeGreaterThan(0);
    expect(fig.violations, report).toEqual([]);
    expect(fig.jobs, report).toBeGreaterThan(20);
    expect(fig.rogueMessages, report).toBeGreaterThan(0);
    expect(fig.relayReconnectMs.length, report).toBeGreaterThan(0);
    expect({ misreported: fig.misreported, lostUnexpected: fig.lostUnexpected, stuck: fig.stuck, rogueReachedD1: fig.rogueReachedD1 }, report).toEqual({ misreported: 0, lostUnexpected: 0, stuck: 0, rogueReachedD1: 0 });
  }, 240_000);
});
