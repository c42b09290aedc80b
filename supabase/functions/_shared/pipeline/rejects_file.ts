/**
 * The downloadable rejects CSV of a job, written to Storage beside the upload as `<object>.rejects.csv`
 * (the registration trigger ignores that suffix, so it is never imported itself).
 *
 * Invariants:
 * - Columns: line_number, column, reason, raw_record, one row per stored reject in line order; every field is
 *   quoted (RFC 4180).
 * - Formula-injection safe: a field starting with =, +, -, @, TAB or CR gets a leading apostrophe, so
 *   spreadsheet programs show it as text instead of evaluating it (OWASP "CSV injection").
 * - Streams from the database with a cursor; memory does not grow with the number of rejects.
 * - One writer per file: a file is written only by the dispatch that claimed it (`claim_rejects_files`), so a
 *   recorded file is never replaced by a concurrent second upload while someone downloads it.
 * - The file's name always fits Storage's 1024-byte limit, and a file that cannot be written (logged) does not
 *   stop the other jobs' files from being written.
 */
import type { Sql } from "../platform/db.ts";
import { log } from "../platform/log.ts";
import type { StorageClient } from "../platform/storage.ts";

export function csvField(value: string | number | null): string {
  let text = value === null ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replaceAll('"', '""')}"`;
}

/** Storage's limit on object names (hosted `limits.ts`: 1024 UTF-8 bytes). */
const MAX_OBJECT_NAME_BYTES = 1024;

/**
 * `<object>.rejects.csv`; when that would pass Storage's 1024-byte name limit (an upload whose own name is
 * near it), `job-<id>.rejects.csv` in the upload's folder (or the bucket's root, if even that is too long).
 */
export function rejectsObjectName(objectName: string, jobId?: number): string {
  const name = `${objectName}.rejects.csv`;
  const fits = (n: string) => new TextEncoder().encode(n).length <= MAX_OBJECT_NAME_BYTES;
  if (jobId === undefined || fits(name)) return name;
  const short = `${objectName.slice(0, objectName.lastIndexOf("/") + 1)}job-${jobId}.rejects.csv`;
  return fits(short) ? short : `job-${jobId}.rejects.csv`;
}

/** Streams the rejects of a job as CSV text. */
export function rejectsCsv(sql: Sql, jobId: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const rows = sql`
    select line_number, column_name, reason, raw_record from csv_import.rejects
    where job_id = ${jobId} order by line_number, id`.cursor(1000);
  const iterator = rows[Symbol.asyncIterator]();
  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        controller.enqueue(encoder.encode("line_number,column,reason,raw_record\r\n"));
        return;
      }
      const { done, value } = await iterator.next();
      if (done) {
        controller.close();
        return;
      }
      const text = value.map((r) =>
        [r.line_number, r.column_name, r.reason, r.raw_record].map(csvField).join(",") + "\r\n"
      ).join("");
      controller.enqueue(encoder.encode(text));
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

/**
 * Claims up to `limit` due rejects files (one writer per file: concurrent dispatches skip a claimed one), writes
 * each and records its name. A file that fails stays pending and is retried once its claim has expired.
 */
export async function writePendingRejectFiles(sql: Sql, storage: StorageClient, limit = 5): Promise<number> {
  const jobs = await sql<{ job_id: number; bucket_id: string; object_name: string }[]>`
    select * from csv_import.claim_rejects_files(${limit}) order by job_id`;
  let written = 0;
  for (const job of jobs) {
    const name = rejectsObjectName(job.object_name, job.job_id);
    try {
      // Buffered per job: Storage's standard upload needs a known length on hosted; stored rejects are capped.
      const body = await new Response(rejectsCsv(sql, job.job_id)).arrayBuffer();
      await storage.upload(job.bucket_id, name, body, "text/csv; charset=utf-8");
      await sql`select csv_import.record_rejects_file(${job.job_id}, ${name})`;
      written++;
    } catch (error) {
      // One job's file must not hold up the others' (it stays pending; a dispatch after its claim expires retries).
      log("warn", "rejects_file_failed", { job: job.job_id, object: name, error });
    }
  }
  return written;
}
