// The figures of a fault-suite run, as the table docs/RELIABILITY.md keeps.
import { FAULT_KINDS } from './faults.ts';
import type { Figures } from './harness.ts';

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const secs = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(1)} s` : 'n/a');

export function formatFigures(f: Figures, command: string): string {
  const lines = [
    `seed ${f.seed}, ${f.rounds} rounds, ${f.hosts} simulated hosts, ${secs(f.durationMs)}`,
    `command: ${command}`,
    '',
    '| fault | injected |',
    '|---|---|',
    ...FAULT_KINDS.map((k) => `| ${k} | ${f.faults[k]} |`),
    `| **total** | **${f.faultsTotal}** |`,
    '',
    '| figure | value |',
    '|---|---|',
    `| jobs run | ${f.jobs} (${Object.entries(f.byStatus).map(([s, n]) => `${n} ${s}`).join(', ')}) |`,
    `| misreported | ${f.misreported} |`,
    `| lost unexpectedly | ${f.lostUnexpected} |`,
    `| lost, outcome honestly unknown (host rebooted mid-run, relay/Worker died) | ${f.lostExpected} |`,
    `| stuck (not ended after the faults cleared) | ${f.stuck} |`,
    `| log lines lost / duplicated | ${f.logLinesLost} / ${f.logLinesDuplicated} |`,
    `| changes overlapping on one host | ${f.overlappingChanges} |`,
    `| rogue relay messages sent / reached D1 | ${f.rogueMessages} / ${f.rogueReachedD1} |`,
    `| relay back after SIGKILL + restart (mean of ${f.relayReconnectMs.length}) | ${secs(mean(f.relayReconnectMs))} |`,
    `| mean time to recover after a relay kill: every job it had out ended (mean of ${f.relayRecoverMs.length}) | ${secs(mean(f.relayRecoverMs))} |`,
    `| invariant violations | ${f.violations.length} |`,
  ];
  for (const v of f.violations.slice(0, 30)) lines.push(`- round ${v.round}, ${v.invariant}: ${v.detail}`);
  return lines.join('\n');
}
