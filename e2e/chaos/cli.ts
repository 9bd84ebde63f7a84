// `npm run chaos -- --seed 7 --rounds 20`: the fault suite at length, with its figures.
//   --seed N     the PRNG seed (default 1)
//   --rounds N   rounds of jobs and faults (default 10)
//   --hosts N    simulated hosts (default 6)
//   --faults N   faults per round (default 4)
//   --kinds a,b  only these fault kinds
//   --json FILE  also write the figures as JSON
import { writeFileSync } from 'node:fs';
import { runChaos } from './harness.ts';
import { FAULT_KINDS, type FaultKind } from './faults.ts';
import { formatFigures } from './report.ts';

function args(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log('usage: npm run chaos -- [--seed N] [--rounds N] [--hosts N] [--faults N] [--kinds a,b] [--json FILE]');
      process.exit(0);
    }
    if (!a.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${a}`);
    m.set(a.slice(2), argv[++i]);
  }
  return m;
}

function num(m: Map<string, string>, k: string, d: number): number {
  const s = m.get(k);
  if (s === undefined) return d;
  if (!/^\d+$/.test(s)) throw new Error(`--${k} must be a whole number`);
  return Number(s);
}

const a = args(process.argv.slice(2));
const kinds = a.get('kinds')?.split(',') as FaultKind[] | undefined;
for (const k of kinds ?? []) if (!FAULT_KINDS.includes(k)) throw new Error(`unknown fault kind ${k} (have ${FAULT_KINDS.join(', ')})`);
const seed = num(a, 'seed', 1);
const rounds = num(a, 'rounds', 10);
const fig = await runChaos({
  seed,
  rounds,
  hosts: num(a, 'hosts', 6),
  faultsPerRound: num(a, 'faults', 4),
  kinds,
  log: (l) => console.log(`[chaos] ${l}`),
});
console.log(formatFigures(fig, `npm run chaos -- --seed ${seed} --rounds ${rounds}`));
const json = a.get('json');
if (json) writeFileSync(json, JSON.stringify(fig, null, 2) + '\n');
process.exit(fig.violations.length === 0 ? 0 : 1);
