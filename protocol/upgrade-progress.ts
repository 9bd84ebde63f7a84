// How far a running upgrade has got, read from the package manager's own output (the live
// log the dashboard already has): "12 of 40 packages". Each reader is tested on real output
// kept in relay/pkg/fixtures and sim/fixtures. A package manager without a reader shows no
// count, never a made-up one.
import type * as v from 'valibot';
import type { PackageManagerName } from './relay.ts';

export interface UpgradeProgress {
  /** Packages the package manager has finished with so far. */
  done: number;
  /** How many it said it would handle, when its output has said so yet. */
  total: number | null;
}

type Reader = (log: string) => UpgradeProgress | null;

/** apt: "3 upgraded, 1 newly installed, …" says how many; each "Setting up pkg (ver) ..."
 * is one finished (a package is configured once per run). */
const apt: Reader = (log) => {
  const plan = /^(\d+) upgraded, (\d+) newly installed,/m.exec(log);
  const done = log.match(/^Setting up \S+ /gm)?.length ?? 0;
  if (!plan && done === 0) return null;
  const total = plan ? Number(plan[1]) + Number(plan[2]) : null;
  return { done: total === null ? done : Math.min(done, total), total };
};

/** pacman: "Packages (5) a-1 b-2 …" says how many; each "upgrading pkg..." (or, on a
 * terminal, "(3/5) upgrading pkg") is one under way — counted as done when the next starts
 * or the transaction's hooks run. */
const pacman: Reader = (log) => {
  const plan = /^Packages \((\d+)\)/m.exec(log);
  const started = log.match(/^(?:\(\s*\d+\/\d+\) )?(?:upgrading|installing|reinstalling|downgrading) \S+?(?:\.\.\.)?$/gm)?.length ?? 0;
  if (!plan && started === 0) return null;
  const total = plan ? Number(plan[1]) : null;
  const finished = /^:: Running post-transaction hooks/m.test(log) ? started : Math.max(0, started - 1);
  return { done: total === null ? finished : Math.min(finished, total), total };
};

const READERS: Partial<Record<v.InferOutput<typeof PackageManagerName>, Reader>> = { apt, pacman };

/** How far the upgrade whose output so far is `log` has got, or null when it cannot say. */
export function upgradeProgress(manager: v.InferOutput<typeof PackageManagerName> | null | undefined, log: string): UpgradeProgress | null {
  const read = manager ? READERS[manager] : undefined;
  return read ? read(log) : null;
}
