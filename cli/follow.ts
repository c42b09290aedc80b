/**
 * Watching a job: its progress row (csv_import.job_progress joined to the job), a follow loop that draws a
 * progress bar until the job ends, and the outcome report whose status becomes the CLI's exit status.
 *
 * Invariants:
 * - `follow` polls every 500 ms, ends when the job is terminal and its rejects file is written (or 30 s after
 *   the end when it is not), and never waits past --timeout.
 * - `report` throws a CliError (exit 1) unless the job succeeded, with or without rejects, or validated its file
 *   (a dry run).
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import process from "node:process";
import {
  CliError,
  formatBytes,
  formatCount,
  printableJson,
  safe,
  type Sql,
  SUCCESS,
  TERMINAL,
} from "./common.ts";

export interface Progress {
  job_id: number;
  status: string;
  bucket_id: string;
  object_name: string;
  object_size: number | null;
  target_table: string | null;
  chunk_count: number;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  rejects_object: string | null;
  rejects_status: string;
  chunks_done: number;
  chunks_running: number;
  chunks_dead: number;
  rows_parsed: number;
  rows_loaded: number;
  rows_rejected: number;
  rows_skipped: number;
  bytes_done: number;
  bytes_total: number;
  percent: number;
  rows_per_second: number;
  /** A dry run: rows_loaded counts the rows that would load; nothing was written. */
  dry_run: boolean;
  /** The CREATE TABLE of a table the pipeline made from the file, or null. */
  table_sql: string | null;
  /** A compressed upload's codec (gzip, deflate, stored: a ZIP member), or null. */
  compression: string | null;
  /** A compressed upload: object bytes its inflate chain has read (of object_size). */
  compressed_bytes_done: number | null;
  /** Whether bytes_total is exact (false: a compressed upload's size estimated until its end is inflated). */
  data_size_known: boolean;
}

export async function progress(sql: Sql, jobId: number): Promise<Progress | undefined> {
  const [row] = await sql`
    select p.job_id::int, p.status::text, p.bucket_id, p.object_name, p.object_size::float8, p.target_table,
           p.chunk_count, p.error, p.created_at, p.started_at, p.finished_at, p.rejects_object, p.rejects_status,
           p.chunks_done::int, p.chunks_running::int, p.chunks_dead::int, p.rows_parsed::float8,
           p.rows_loaded::float8, p.rows_rejected::float8, p.rows_skipped::float8, p.bytes_done::float8,
           greatest(coalesce(p.data_bytes_total, p.object_size, 0), 0)::float8 as bytes_total,
           p.percent::float8, p.rows_per_second::float8, j.dry_run, j.table_sql,
           p.compression, p.compressed_bytes_done::float8, p.data_size_known
    from csv_import.job_progress p join csv_import.jobs j on j.id = p.job_id
    where p.job_id = ${jobId}`;
  return row as Progress | undefined;
}

export async function requireJob(sql: Sql, jobId: number): Promise<Progress> {
  const job = await progress(sql, jobId);
  if (!job) throw new CliError(`Job ${jobId} does not exist`);
  return job;
}

/** The summary printed by --json and used for the exit status. */
export function summary(job: Progress, seconds: number) {
  return {
    job_id: job.job_id,
    status: job.status,
    ok: SUCCESS.has(job.status),
    error: job.error,
    bucket: job.bucket_id,
    object: job.object_name,
    target_table: job.target_table,
    bytes: job.object_size,
    chunks: job.chunk_count,
    rows_parsed: job.rows_parsed,
    rows_loaded: job.rows_loaded,
    dry_run: job.dry_run,
    table_sql: job.table_sql,
    rows_rejected: job.rows_rejected,
    rows_skipped: job.rows_skipped,
    rejects_object: job.rejects_object,
    seconds: Math.round(seconds * 10) / 10,
    rows_per_second: job.rows_per_second,
  };
}

export interface FollowOptions {
  quiet: boolean;
  timeoutSeconds?: number;
}

/**
 * Polls the job's progress until it ends (and its rejects file, if any, is written or 30 s passed), drawing a
 * progress bar on a terminal, or one line per status change otherwise. Returns the final progress.
 */
export async function follow(sql: Sql, jobId: number, o: FollowOptions): Promise<Progress> {
  const deadline = o.timeoutSeconds ? Date.now() + o.timeoutSeconds * 1000 : Infinity;
  const tty = Deno.stderr.isTerminal();
  const bar = !o.quiet && tty
    ? new cliProgress.SingleBar({
      format:
        "job {job} {bar} {percentage}% | {done} of {size} | {rows} rows | {rate} rows/s | ETA {eta_formatted}" +
        " | {rejects} rejects | {status}",
      hideCursor: true,
      etaBuffer: 20,
      stream: process.stderr,
    }, cliProgress.Presets.shades_classic)
    : null;
  let started = false;
  let lastLine = "";
  let endedAt = 0;
  try {
    for (;;) {
      const job = await requireJob(sql, jobId);
      const payload = {
        job: job.job_id,
        done: formatBytes(job.bytes_done),
        size: formatBytes(job.bytes_total),
        rows: formatCount(job.rows_loaded),
        rate: formatCount(job.rows_per_second),
        rejects: formatCount(job.rows_rejected),
        status: job.status,
      };
      if (bar) {
        if (!started) bar.start(Math.max(job.bytes_total, 1), 0, payload);
        started = true;
        bar.setTotal(Math.max(job.bytes_total, 1));
        bar.update(
          TERMINAL.has(job.status) && SUCCESS.has(job.status) ? job.bytes_total : job.bytes_done,
          payload,
        );
      } else if (!o.quiet) {
        const line = safe`job ${job.job_id}: ${job.status}, ${job.percent}%, ${payload.rows} rows loaded, ` +
          safe`${payload.rejects} rejected`;
        if (line !== lastLine) console.error(lastLine = line);
      }
      if (TERMINAL.has(job.status)) {
        endedAt ||= Date.now();
        if (job.rejects_status !== "pending" || Date.now() - endedAt > 30_000) return job;
      }
      if (Date.now() > deadline) {
        throw new CliError(
          `Job ${jobId} is still ${job.status} after ${o.timeoutSeconds} s (${job.percent}% done)`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    bar?.stop();
  }
}

/** Prints the outcome of a followed job and throws (exit 1) unless it succeeded. */
export function report(job: Progress, seconds: number, json: boolean): void {
  const s = summary(job, seconds);
  if (json) console.log(printableJson(s));
  else {
    console.log(
      safe`Job ${job.job_id} ${job.status} in ${s.seconds} s: ${formatCount(job.rows_loaded)} rows ${
        job.dry_run ? "valid for (dry run: nothing written to)" : "loaded into"
      } ` +
        safe`${job.target_table ?? "?"}, ${formatCount(job.rows_rejected)} rejected, ${
          formatCount(job.rows_skipped)
        } ` +
        safe`skipped (${formatCount(job.rows_per_second)} rows/s)`,
    );
    if (job.rejects_object) console.log(safe`Rejects: ${job.bucket_id}/${job.rejects_object}`);
    if (job.table_sql) {
      console.log("Table made from the file:");
      for (const line of job.table_sql.split("\n")) console.log(safe`  ${line}`);
    }
  }
  if (!s.ok) throw new CliError(`Job ${job.job_id} ${job.status}: ${job.error ?? "no reason recorded"}`);
}
