// A job's output log: chunks in job_output, in arrival order; once the job has finished,
// its chunks are replaced by one gzip-compressed row (upgrade logs are the fastest-growing
// data in D1, and apt/dnf output compresses about 6–10×).
import { and, asc, eq, gte, isNull, lte, notInArray, sql } from 'drizzle-orm';
import { ACTIVE_STATUSES } from '../protocol/api.ts';
import { schema, type Db } from './db/index.ts';

const { jobOutput, jobs } = schema;

/** Most output kept per job (characters); the rest is dropped with a visible marker, and the
 * relay's last 16 KiB are appended at the end. */
export const LOG_CAP = 2 * 1024 * 1024;

/** Logs shorter than this stay plain text (gzip's header would outweigh the saving). */
export const COMPRESS_MIN_CHARS = 512;

/** The statement that appends one chunk to a job's log (sequence numbers in arrival order),
 * for a batch. */
export function appendChunkStatement(db: Db, jobId: string, data: string) {
  return db.insert(jobOutput).values({ jobId, seq: sql`(select coalesce(max(seq), 0) + 1 from job_output where job_id = ${jobId})`, data });
}

/** Append one chunk of output to a job's log. */
export async function appendChunk(db: Db, jobId: string, data: string): Promise<void> {
  await appendChunkStatement(db, jobId, data);
}

async function gzip(text: string): Promise<Buffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return Buffer.from(await new Response(stream).arrayBuffer());
}

async function gunzip(bytes: Uint8Array): Promise<string> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}

type Row = { seq: number; data: string; gz: Buffer | null };
const rowText = (r: Row) => (r.gz ? gunzip(r.gz) : Promise.resolve(r.data));

async function rowsOf(db: Db, jobId: string): Promise<Row[]> {
  return db.select({ seq: jobOutput.seq, data: jobOutput.data, gz: jobOutput.gz }).from(jobOutput).where(eq(jobOutput.jobId, jobId)).orderBy(asc(jobOutput.seq));
}

/** The whole stored log of a job (compressed or not). */
export async function readLog(db: Db, jobId: string): Promise<string> {
  return (await Promise.all((await rowsOf(db, jobId)).map(rowText))).join('');
}

/** Finished jobs whose logs are still plain chunks (finished without a response: timed
 * out, lost, expired), at most `limit`, for the scheduled run to compact. */
export async function uncompactedLogs(db: Db, limit = 50): Promise<string[]> {
  const rows = await db
    .selectDistinct({ id: jobOutput.jobId })
    .from(jobOutput)
    .innerJoin(jobs, eq(jobs.id, jobOutput.jobId))
    .where(and(isNull(jobOutput.gz), notInArray(jobs.status, [...ACTIVE_STATUSES]), gte(jobs.logBytes, COMPRESS_MIN_CHARS)))
    .limit(limit);
  return rows.map((r) => r.id);
}

/** Replace each finished job's log chunks by one compressed row (one transaction per job:
 * a reader sees the chunks or the compressed row, never neither). Jobs must be finished:
 * nothing may append to them meanwhile. */
export async function compactLogs(db: Db, jobIds: string[]): Promise<void> {
  for (const jobId of jobIds) {
    const rows = await rowsOf(db, jobId);
    if (rows.length === 0 || (rows.length === 1 && rows[0].gz)) continue;
    const text = (await Promise.all(rows.map(rowText))).join('');
    if (text.length < COMPRESS_MIN_CHARS) continue;
    const last = rows[rows.length - 1].seq;
    await db.batch([
      db.delete(jobOutput).where(and(eq(jobOutput.jobId, jobId), lte(jobOutput.seq, last))),
      db.insert(jobOutput).values({ jobId, seq: last, data: '', gz: await gzip(text) }),
    ]);
  }
}

