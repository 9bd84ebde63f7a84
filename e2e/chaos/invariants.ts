// What must hold after every round of faults, read from D1 through the API and compared with
// what the simulated hosts really did (sim/upgrade.ts keeps every run: its log, exit status,
// the installed packages before it, and whether it was applied).
import type { SimMachine, SimRun } from '../../sim/upgrade.ts';
import type { FaultKind } from './faults.ts';
import { ROGUE_MARK, ROGUE_OS } from './rogue.ts';

export interface JobView {
  id: string;
  kind: string;
  hostId: string;
  relayId: string | null;
  status: string;
  exitCode: number | null;
  summary: string | null;
  error: { code: string; message: string } | null;
  changes: { name: string; from: string | null; to: string | null }[] | null;
  logBytes: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  log: string;
}

export interface Injected {
  kind: FaultKind;
  /** null: a process fault (every job can feel it). */
  hostId: string | null;
  at: number;
  until: number | null;
}

export interface Violation {
  round: number;
  invariant: string;
  jobId?: string;
  detail: string;
}

export interface RoundInput {
  round: number;
  /** The round's jobs (ended, or stuck). */
  jobs: JobView[];
  /** Every job so far, for "one terminal state" (status only). */
  allJobs?: Omit<JobView, 'log'>[];
  hosts: { id: string; name: string; osName: string | null; statusReason: string | null; updatesCount: number | null }[];
  machines: Map<string, SimMachine>;
  injected: Injected[];
  /** Job id → the terminal status it was first seen in (kept across rounds). */
  seenTerminal: Map<string, string>;
  mayLose: FaultKind[];
}

export interface RoundResult {
  misreported: number;
  lostUnexpected: number;
  lostExpected: number;
  stuck: number;
  logLinesLost: number;
  logLinesDuplicated: number;
  overlappingChanges: number;
  rogueReached: number;
  violations: Violation[];
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'lost']);
const CHANGE_KINDS = new Set(['upgrade', 'reboot', 'stack-update']);
const ms = (iso: string | null) => (iso ? Date.parse(iso) : null);

export function checkRound(r: RoundInput): RoundResult {
  const out: RoundResult = { misreported: 0, lostUnexpected: 0, lostExpected: 0, stuck: 0, logLinesLost: 0, logLinesDuplicated: 0, overlappingChanges: 0, rogueReached: 0, violations: [] };
  const fail = (invariant: string, detail: string, jobId?: string) => out.violations.push({ round: r.round, invariant, detail, ...(jobId ? { jobId } : {}) });

  // Exactly one terminal state: ended jobs carry a finish time, and never change state again.
  for (const j of r.allJobs ?? r.jobs) {
    if (!TERMINAL.has(j.status)) continue;
    if (!j.finishedAt) fail('one terminal state', `${j.kind} ${j.id} is ${j.status} without a finish time`, j.id);
    const seen = r.seenTerminal.get(j.id);
    if (seen && seen !== j.status) fail('one terminal state', `${j.kind} ${j.id} was ${seen}, is now ${j.status}`, j.id);
    if (!seen) r.seenTerminal.set(j.id, j.status);
  }

  for (const j of r.jobs) {
    const machine = r.machines.get(j.hostId);
    const faults = r.injected.filter((f) => f.hostId === null || f.hostId === j.hostId);
    const during = faults.filter((f) => overlaps(f, j));

    if (!TERMINAL.has(j.status)) {
      out.stuck++;
      fail('no job stuck', `${j.kind} ${j.id} is still ${j.status} after the faults cleared`, j.id);
      continue;
    }
    if (j.status !== 'succeeded' && j.finishedAt === null) fail('one terminal state', `${j.kind} ${j.id} has no finish time`, j.id);

    // Nothing from the rogue relay: no forged text, no forged result applied.
    const forged = `${j.log}\n${j.error?.message ?? ''}\n${j.summary ?? ''}`;
    if (forged.includes(ROGUE_MARK) || /did not validate/.test(j.error?.message ?? '')) {
      out.rogueReached++;
      fail('nothing from the rogue relay', `${j.kind} ${j.id} carries the rogue relay's message: ${(j.error?.message ?? j.log).slice(0, 120)}`, j.id);
    }

    if (j.status === 'lost') {
      if (during.some((f) => r.mayLose.includes(f.kind))) out.lostExpected++;
      else {
        out.lostUnexpected++;
        fail('lost only when unknowable', `${j.kind} ${j.id} on ${j.hostId} was lost (${j.error?.message ?? ''}) with no fault that hides its outcome (${during.map((f) => f.kind).join(', ') || 'no fault'})`, j.id);
      }
    }
    // (Docker checks are out of scope: the simulated hosts have no recorded Docker output.)
    if (j.status === 'failed' && during.length === 0 && (j.kind === 'scan' || CHANGE_KINDS.has(j.kind))) {
      out.misreported++;
      fail('failed only with a fault', `${j.kind} ${j.id} failed with no fault on its host or the system: ${j.error?.code}: ${j.error?.message}`, j.id);
    }

    if (j.kind === 'upgrade' && machine) {
      const run = machine.runs.get(j.id);
      const changed = run ? hostChanges(machine, run) : [];
      if (j.status === 'succeeded') {
        const reported = (j.changes ?? []).map((c) => `${c.name} ${c.from} → ${c.to}`).sort();
        const real = changed.map((c) => `${c.name} ${c.from} → ${c.to}`).sort();
        if (!run || !run.applied || run.exitCode !== 0 || JSON.stringify(reported) !== JSON.stringify(real)) {
          out.misreported++;
          const only = (a: string[], b: string[]) => a.filter((x) => !b.includes(x)).slice(0, 5).join(', ');
          fail('succeeded only when the host changed as reported', `upgrade ${j.id}: ${reported.length} change(s) reported, ${real.length} on the host; reported only: [${only(reported, real)}], on the host only: [${only(real, reported)}]${run ? '' : ' (no run on the host)'}`, j.id);
        }
      } else if (j.status === 'failed' && changed.length > 0) {
        out.misreported++;
        fail('succeeded only when the host changed as reported', `upgrade ${j.id} failed (${j.error?.message}) but the host changed ${changed.length} package(s)`, j.id);
      }
      checkLog(j, run, out, fail);
    }
  }

  // What a host shows after its last scan is what it has.
  for (const h of r.hosts) {
    if (h.osName === ROGUE_OS || (h.statusReason ?? '').includes(ROGUE_MARK)) {
      out.rogueReached++;
      fail('nothing from the rogue relay', `host ${h.name} shows the rogue relay's forged state`);
    }
    const machine = r.machines.get(h.id);
    const mine = (r.allJobs ?? r.jobs).filter((j) => j.hostId === h.id && j.kind !== 'docker-scan').sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
    const last = mine.at(-1);
    if (machine && last?.kind === 'scan' && last.status === 'succeeded' && h.updatesCount !== machine.pendingNames().length) {
      out.misreported++;
      fail('succeeded only when the host changed as reported', `host ${h.name} shows ${h.updatesCount} pending updates after a successful scan; it has ${machine.pendingNames().length}`);
    }
  }

  // One change per host at a time: in the job history, and on the host itself.
  const byHost = new Map<string, JobView[]>();
  for (const j of r.jobs) if (CHANGE_KINDS.has(j.kind) && j.startedAt && j.finishedAt) byHost.set(j.hostId, [...(byHost.get(j.hostId) ?? []), j]);
  for (const [hostId, list] of byHost) {
    list.sort((a, b) => ms(a.startedAt)! - ms(b.startedAt)!);
    for (let i = 1; i < list.length; i++) {
      if (ms(list[i].startedAt)! < ms(list[i - 1].finishedAt)!) {
        out.overlappingChanges++;
        fail('one change per host at a time', `${list[i - 1].id} and ${list[i].id} overlap on ${hostId}`, list[i].id);
      }
    }
  }
  for (const [hostId, m] of r.machines) {
    const runs = [...m.runs.values()].sort((a, b) => a.startedAt - b.startedAt);
    for (let i = 1; i < runs.length; i++) {
      const prevEnd = runs[i - 1].ended ? runs[i - 1].startedAt : runs[i - 1].startedAt + runs[i - 1].durationMs;
      if (runs[i].startedAt < prevEnd && runs[i - 1].bootId === runs[i].bootId) {
        out.overlappingChanges++;
        fail('one change per host at a time', `runs ${runs[i - 1].runId} and ${runs[i].runId} ran at once on ${hostId}`);
      }
    }
  }
  return out;
}

function overlaps(f: Injected, j: { createdAt: string; finishedAt: string | null }): boolean {
  const start = Date.parse(j.createdAt);
  const end = j.finishedAt ? Date.parse(j.finishedAt) : Infinity;
  // (a little slack: the Worker's and this process's clocks are the same, its timestamps not
  // quite the moment the fault hit)
  return f.at <= end + 1000 && (f.until ?? Infinity) >= start - 1000;
}

/** What a run did to the host's packages: its saved "before" listing against now. */
function hostChanges(m: SimMachine, run: SimRun): { name: string; from: string | null; to: string | null }[] {
  const parse = (text: string) => {
    const map = new Map<string, string>();
    for (const line of text.split('\n')) {
      const parts = m.group === 'apt' ? line.split('\t') : line.split(' ');
      if (parts[0] && parts[1]) map.set(parts[0], parts[1]);
    }
    return map;
  };
  const before = parse(run.before);
  const now = parse(m.installedText());
  const out: { name: string; from: string | null; to: string | null }[] = [];
  // (names as the package manager prints them, `libssl3:amd64` included, as the relay reports)
  for (const [k, v] of now) if (before.get(k) !== v) out.push({ name: k, from: before.get(k) ?? null, to: v });
  for (const [k, v] of before) if (!now.has(k)) out.push({ name: k, from: v, to: null });
  return out;
}

/** The stored log, without the relay's own notes, against the run's log file on the host:
 * every line once, in order; all of them unless the job was lost. */
function checkLog(j: JobView, run: SimRun | undefined, out: RoundResult, fail: (i: string, d: string, id?: string) => void): void {
  const stored = j.log.split('\n').filter((l) => l !== '' && !l.startsWith('[patchman]') && !l.startsWith('[patchman:'));
  const hostText = run ? run.log.subarray(0, run.ended ? run.ended.visible : run.log.length).toString('utf8') : '';
  const host = hostText.split('\n').filter((l) => l !== '');
  let i = 0;
  let dup = 0;
  let extra = 0;
  let first = '';
  for (const [n, line] of stored.entries()) {
    if (i < host.length && line === host[i]) i++;
    else {
      if (host.slice(0, i).includes(line)) dup++;
      else extra++;
      first ||= `stored line ${n + 1} ${JSON.stringify(line.slice(0, 80))} where the host's line ${i + 1} is ${JSON.stringify((host[i] ?? '(end)').slice(0, 80))}`;
    }
  }
  const lost = j.status === 'lost' ? 0 : host.length - i;
  if (dup + extra > 0) {
    out.logLinesDuplicated += dup + extra;
    fail('no log line lost or duplicated', `upgrade ${j.id} (${j.status}): ${dup} line(s) stored twice, ${extra} not where the host's log has them (${stored.length} stored, ${host.length} on the host); first: ${first}`, j.id);
  }
  if (lost > 0) {
    out.logLinesLost += lost;
    fail('no log line lost or duplicated', `upgrade ${j.id} (${j.status}): ${lost} of the host's ${host.length} log lines missing`, j.id);
  }
}
