// Which relay messages the Worker believes: a relay reports only on jobs that were
// dispatched to that very relay, and only while the report can still apply. Anything else
// (another relay's token, a replay of old messages, a report for a job never sent) is
// dropped and logged in one line — never the payload, which may be forged and large.
import type { JobRow } from './db/index.ts';

export type RelayReport = 'output' | 'response';

/** Job states in which each kind of report makes sense: the job is out on the relay. */
const EXPECTED: Record<RelayReport, readonly JobRow['status'][]> = {
  output: ['dispatched', 'running'],
  response: ['dispatched', 'running'],
};

/** May relay `relayId` send this report about `job`? Logs the drop when it may not. */
export function relayMayReport(job: Pick<JobRow, 'id' | 'relayId' | 'status'> | undefined | null, relayId: string, report: RelayReport, jobId: string): job is JobRow {
  let why: string | null = null;
  if (!job) why = 'no such job';
  else if (job.relayId !== relayId) why = 'the job was dispatched to another relay';
  else if (!EXPECTED[report].includes(job.status)) why = `the job is ${job.status}`;
  if (why) console.warn(`relay ${relayId.slice(0, 40)}: dropped ${report} for job ${jobId.slice(0, 40)}: ${why}`);
  return why === null;
}
