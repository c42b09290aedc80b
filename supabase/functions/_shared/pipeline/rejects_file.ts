/**
 * The downloadable rejects CSV of a job, written to Storage beside the upload as `<object>.rejects.csv`
 * (the registration trigger ignores that suffix, so it is never imported itself).
 *
 * Invariants:
 * - The database renders the file (csv_import.rejects_csv_pages, migration 20261206000000): columns line_number,
 *   column, reason, raw_record, one row per stored reject in line order, every field quoted (RFC 4180), a field
 *   starting with =, +, -, @, TAB or CR prefixed with an apostrophe (OWASP "CSV injection"), CRLF line ends.
 * - Bounded memory whatever the file's size: pages of about REJECTS_PAGE_BYTES come through a cursor one at a
 *   time; a file of at most RESUMABLE_PART_BYTES is sent as one standard upload with its length (as hosted
 *   Storage wants), a larger one as a resumable (TUS) upload in 6 MB parts (storage_resumable.ts). Why: a raw
 *   record may be up to MAX_RECORD_BYTES and 100,000 rejects are stored by default; building the file in the
 *   function cost ~0.4 s of CPU and up to 80 MB of memory at 100,000 short rejects (tests/reject_heavy_test.ts).
 * - One writer per file: a file is written only by the dispatch that claimed it (`claim_rejects_files`), so a
 *   recorded file is never replaced by a concurrent second upload while someone downloads it.
 * - The file's name always fits Storage's 1024-byte limit, and a file that cannot be written (logged) does not
 *   stop the other jobs' files from being written.
 */
import type { Sql } from "../platform/db.ts";
import { log } from "../platform/log.ts";
import type { StorageClient } from "../platform/storage.ts";
import { RESUMABLE_PART_BYTES, uploadResumable } from "../platform/storage_resumable.ts";

/** The size of the pages the database renders the file in. */
const REJECTS_PAGE_BYTES = 256 * 1024;

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

/** A job's rejects CSV as the database renders it: its size, and its bytes page by page. */
export interface RejectsCsv {
  /** The file's size in bytes. */
  readonly size: number;
  readonly pages: AsyncIterable<Uint8Array<ArrayBuffer>>;
}

/** Opens a job's rejects CSV (csv_import.rejects_csv_pages through a cursor, one page at a time). */
export async function openRejectsCsv(sql: Sql, jobId: number): Promise<RejectsCsv> {
  const encoder = new TextEncoder();
  const rows = sql<{ body: string; total_bytes: string }[]>`
    select body, total_bytes from csv_import.rejects_csv_pages(${jobId}, ${REJECTS_PAGE_BYTES})`.cursor(1);
  const iterator = rows[Symbol.asyncIterator]();
  const first = await iterator.next();
  const size = first.done ? 0 : Number(first.value[0].total_bytes);
  async function* pages(): AsyncGenerator<Uint8Array<ArrayBuffer>> {
    try {
      if (first.done) return;
      yield encoder.encode(first.value[0].body);
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield encoder.encode(next.value[0].body);
      }
    } finally {
      await iterator.return?.();
    }
  }
  return { size, pages: pages() };
}

/** Streams the rejects of a job as CSV text (the CLI's `rejects --from-db`). */
export function rejectsCsv(sql: Sql, jobId: number): ReadableStream<Uint8Array> {
  return ReadableStream.from((async function* () {
    yield* (await openRejectsCsv(sql, jobId)).pages;
  })());
}

/** Writes a job's rejects CSV to Storage as `name`: one standard upload when small, else resumably in parts. */
async function writeRejectsFile(
  sql: Sql,
  storage: StorageClient,
  job: { job_id: number; bucket_id: string },
  name: string,
): Promise<void> {
  const file = await openRejectsCsv(sql, job.job_id);
  const contentType = "text/csv; charset=utf-8";
  if (file.size <= RESUMABLE_PART_BYTES) {
    const parts: Uint8Array<ArrayBuffer>[] = [];
    for await (const page of file.pages) parts.push(page);
    await storage.upload(job.bucket_id, name, new Blob(parts), contentType);
    return;
  }
  await uploadResumable(
    storage.connection,
    { bucket: job.bucket_id, name, contentType, size: file.size },
    file.pages,
  );
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
      await writeRejectsFile(sql, storage, job, name);
      await sql`select csv_import.record_rejects_file(${job.job_id}, ${name})`;
      written++;
    } catch (error) {
      // One job's file must not hold up the others' (it stays pending; a dispatch after its claim expires retries).
      log("warn", "rejects_file_failed", { job: job.job_id, object: name, error });
    }
  }
  return written;
}
