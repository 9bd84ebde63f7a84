// A job's output log: chunks in job_output, in arrival order.
import { asc, eq, sql } from 'drizzle-orm';
import { schema, type Db } from './db/index.ts';

const { jobOutput } = schema;

/** Most output kept per job (characters); the rest is dropped with a visible marker, and the
 * relay's last 16 KiB are appended at the end. */
export const LOG_CAP = 2 * 1024 * 1024;

/** The statement that appends one chunk to a job's log (sequence numbers in arrival order),
 * for a batch. */
export function appendChunkStatement(db: Db, jobId: string, data: string) {
  return db.insert(jobOutput).values({ jobId, seq: sql`(select coalesce(max(seq), 0) + 1 from job_output where job_id = ${jobId})`, data });
}

/** Append one chunk of output to a job's log. */
export async function appendChunk(db: Db, jobId: string, data: string): Promise<void> {
  await appendChunkStatement(db, jobId, data);
}

/** The whole stored log of a job. */
export async function readLog(db: Db, jobId: string): Promise<string> {
  const rows = await db.select({ data: jobOutput.data }).from(jobOutput).where(eq(jobOutput.jobId, jobId)).orderBy(asc(jobOutput.seq));
  return rows.map((r) => r.data).join('');
}
