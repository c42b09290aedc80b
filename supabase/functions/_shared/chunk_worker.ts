/**
 * The work of one chunk invocation: a scan (summarise the chunk's bytes for later chunks) or a load (parse,
 * validate and write the records the chunk owns, in atomic batches).
 *
 * Invariants:
 * - Exactly-once rows: each batch is one transaction — csv_import.begin_batch (lease and sequence check, row
 *   lock), COPY of the batch's valid rows, csv_import.commit_batch (progress marker, rejects, counts) — so a
 *   retried, duplicated or replayed chunk resumes after its last committed batch and never writes a row twice.
 * - Ownership: the chunk loads exactly the records whose first byte lies in [start_offset, end_offset)
 *   (supabase/functions/_shared/csv/chunk.ts), reading past end_offset to finish its last record; it reports
 *   where its first owned record starts and where the next chunk's first record starts, which
 *   csv_import.finalize_job checks for exact tiling.
 * - Nothing is lost silently: every parsed record becomes a loaded row, a skipped duplicate or a reject (line
 *   number, column, reason, raw text); rows parsed = loaded + rejected + skipped per batch.
 * - Bounded memory: one network read, one batch of COPY lines and its rejects; never the chunk or the file.
 * - Failures: the file's fault (record too large, unterminated quote) fails the job via csv_import.fail_chunk
 *   (fatal); anything else is retried in place, then reported as a transient failure and SQL decides between
 *   retry with backoff and dead-letter. A lost lease or a stopped job ends the invocation without writing.
 */
import type { Config } from "./config.ts";
import { createChunkReader } from "./csv/chunk.ts";
import { CsvError } from "./csv/errors.ts";
import type { CsvFormat } from "./csv/format.ts";
import type { CsvRecord } from "./csv/parser.ts";
import { createScanner } from "./csv/scan.ts";
import type { Sql } from "./db.ts";
import {
  BatchLoader,
  type ConflictMode,
  isFastPathRefusal,
  type PreparedRow,
  type RowReject,
} from "./loader.ts";
import { log } from "./log.ts";
import { compileRowConverter, type JobColumns, type RowConverter } from "./row_converter.ts";
import { withRetry } from "./retry.ts";
import type { StorageClient } from "./storage.ts";

export interface ChunkDeps {
  sql: Sql;
  config: Config;
  storage: StorageClient;
  /** Aborts when the runtime is about to stop this instance: stop at the next batch boundary. */
  signal?: AbortSignal;
}

export interface ChunkContext {
  chunk_id: number;
  job_id: number;
  kind: "scan" | "load";
  chunk_index: number;
  start_offset: number;
  end_offset: number;
  attempts: number;
  max_attempts: number;
  entry_parity: 0 | 1 | null;
  lines_before: number | null;
  at_record_start: boolean | null;
  batches_committed: number;
  resume_offset: number | null;
  resume_line: number | null;
  first_record_at: number | null;
  bucket_id: string;
  object_name: string;
  object_size: number;
  data_start: number;
  target_table: string;
  dialect: { delimiter: string; quote: string; newline: "\n" | "\r\n" | "\r" };
  columns: JobColumns;
  profile:
    | { on_conflict: ConflictMode; conflict_columns: string[] | null; date_style: "iso" | "dmy" | "mdy" }
    | null;
}

export type ChunkOutcome =
  | { outcome: "scanned" | "loaded"; rows?: number; rejected?: number; jobFinished?: boolean }
  | { outcome: "lease_lost" | "stopped" | "duplicate" | "interrupted" }
  | { outcome: "failed"; fatal: boolean; error: string; decision: string };

/** Ends the invocation without writing: the lease moved on, the job stopped, or another invocation won. */
class StopChunk extends Error {
  constructor(readonly reason: "lease_lost" | "stopped" | "duplicate" | "missing") {
    super(reason);
  }
}

/** The file's problem as the job's error: sentence case, with the line when the message lacks it. */
function describeCsvError(error: CsvError): string {
  const text = error.message.charAt(0).toUpperCase() + error.message.slice(1);
  return error.line !== undefined && !/\bline \d/.test(error.message) ? `Line ${error.line}: ${text}` : text;
}

const numberOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export async function processChunk(
  deps: ChunkDeps,
  chunkId: number,
  leaseToken: string,
): Promise<ChunkOutcome> {
  const { sql } = deps;
  const [row] = await sql<{ context: ChunkContext | null }[]>`
    select csv_import.chunk_context(${chunkId}, ${leaseToken}::uuid) as context`;
  const ctx = row?.context;
  if (!ctx) return { outcome: "lease_lost" };
  for (
    const key of [
      "start_offset",
      "end_offset",
      "object_size",
      "data_start",
      "lines_before",
      "resume_offset",
      "resume_line",
      "first_record_at",
    ] as const
  ) {
    (ctx as unknown as Record<string, unknown>)[key] = numberOrNull(ctx[key]);
  }
  const started = performance.now();
  const attempt = `${ctx.attempts}/${ctx.max_attempts}`;
  try {
    const result = ctx.kind === "scan"
      ? await scan(deps, ctx, leaseToken)
      : await load(deps, ctx, leaseToken);
    log("info", `chunk_${result.outcome}`, {
      job: ctx.job_id,
      chunk: ctx.chunk_index,
      kind: ctx.kind,
      attempt,
      bytes: ctx.end_offset - ctx.start_offset,
      ...("rows" in result ? { rows: result.rows, rejected: result.rejected } : {}),
      ms: Math.round(performance.now() - started),
    });
    return result;
  } catch (error) {
    if (error instanceof StopChunk) {
      log("info", "chunk_stopped", {
        job: ctx.job_id,
        chunk: ctx.chunk_index,
        kind: ctx.kind,
        attempt,
        outcome: error.reason,
      });
      return { outcome: error.reason === "missing" ? "lease_lost" : error.reason };
    }
    if (deps.signal?.aborted) {
      log("warn", "chunk_interrupted", {
        job: ctx.job_id,
        chunk: ctx.chunk_index,
        kind: ctx.kind,
        attempt,
        reason: String(deps.signal.reason),
      });
      return { outcome: "interrupted" };
    }
    const fatal = error instanceof CsvError;
    const message = error instanceof CsvError
      ? describeCsvError(error)
      : error instanceof Error
      ? error.message
      : String(error);
    const [{ decision }] = await withRetry(() =>
      sql<
        { decision: string }[]
      >`select csv_import.fail_chunk(${chunkId}, ${leaseToken}::uuid, ${message}, ${fatal}) as decision`
    );
    log(fatal ? "info" : "warn", "chunk_failed", {
      job: ctx.job_id,
      chunk: ctx.chunk_index,
      kind: ctx.kind,
      attempt,
      fatal,
      decision,
      error: message,
      ms: Math.round(performance.now() - started),
    });
    return { outcome: "failed", fatal, error: message, decision };
  }
}

async function scan(deps: ChunkDeps, ctx: ChunkContext, leaseToken: string): Promise<ChunkOutcome> {
  const summary = await withRetry(async () => {
    const scanner = createScanner(ctx.dialect);
    for await (
      const piece of deps.storage.readRange(ctx.bucket_id, ctx.object_name, ctx.start_offset, ctx.end_offset)
    ) {
      scanner.push(piece);
    }
    return scanner.finish();
  });
  if (summary.bytes !== ctx.end_offset - ctx.start_offset) {
    throw new Error(`Scan read ${summary.bytes} bytes of a ${ctx.end_offset - ctx.start_offset}-byte chunk`);
  }
  const [{ result }] = await withRetry(() =>
    deps.sql<{ result: string }[]>`
      select csv_import.complete_scan(${ctx.chunk_id}, ${leaseToken}::uuid, ${summary.quoteParity}::smallint,
        ${summary.newlineCount}::bigint, ${summary.endsWithTerminator}) as result`
  );
  if (result !== "ok") throw new StopChunk("lease_lost");
  return { outcome: "scanned" };
}

interface Batch {
  rows: PreparedRow[];
  rejects: RowReject[];
  parsed: number;
}

async function load(deps: ChunkDeps, ctx: ChunkContext, leaseToken: string): Promise<ChunkOutcome> {
  const { sql, config } = deps;
  const format: CsvFormat = ctx.dialect;
  const converter: RowConverter = compileRowConverter(ctx.columns, {
    dateStyle: ctx.profile?.date_style ?? "iso",
  });
  const loader = new BatchLoader({
    table: ctx.target_table,
    columns: ctx.columns.mapped.map((m) => ({ name: m.column.name, type: m.column.type })),
    mode: ctx.profile?.on_conflict ?? "insert",
    conflictColumns: ctx.profile?.conflict_columns ?? [],
  });

  const resuming = ctx.resume_offset !== null;
  const readStart = resuming ? ctx.resume_offset! : ctx.start_offset;
  let seq = ctx.batches_committed;
  // Where the chunk's first owned record starts; already recorded when resuming (commit_batch keeps the first).
  let firstRecordAt: number | null = null;
  let totalRows = 0;
  let totalRejected = 0;
  let jobFinished = false;

  const commitOnce = (
    batch: Batch,
    next: { offset: number | null; line: number | null },
    final: boolean,
    isolate: boolean,
  ) =>
    sql.begin(async (tx) => {
      const [{ state }] = await tx<{ state: string }[]>`
          select csv_import.begin_batch(${ctx.chunk_id}, ${leaseToken}::uuid, ${seq}) as state`;
      if (state !== "ok") throw new StopChunk(state as StopChunk["reason"]);
      const written = isolate
        ? await loader.writeIsolating(tx, batch.rows)
        : await loader.writeFast(tx, batch.rows);
      const rejects = [...batch.rejects, ...written.rejects];
      const [{ outcome }] = await tx<{ outcome: { job_finished: boolean } }[]>`
          select csv_import.commit_batch(${ctx.chunk_id}, ${leaseToken}::uuid, ${seq}, ${firstRecordAt}::bigint,
            ${next.offset}::bigint, ${next.line}::bigint, ${batch.parsed}, ${written.loaded}, ${written.skipped},
            ${
        tx.json(rejects.map((r) => ({ line: r.line, column: r.column, reason: r.reason, raw: r.raw })))
      },
            ${final}, make_interval(secs => ${config.leaseSeconds}), ${config.maxStoredRejects}) as outcome`;
      return { outcome, rejected: rejects.length, loaded: written.loaded };
    });

  const commit = async (
    batch: Batch,
    next: { offset: number | null; line: number | null },
    final: boolean,
  ) => {
    const result = await withRetry(async () => {
      if (!loader.canWriteFast) return await commitOnce(batch, next, final, true);
      try {
        return await commitOnce(batch, next, final, false);
      } catch (error) {
        if (!isFastPathRefusal(error)) throw error;
        // The database refused a row of the plain COPY: redo the batch row-isolating, in a new transaction.
        return await commitOnce(batch, next, final, true);
      }
    }, {
      onRetry: (error, n) =>
        log("warn", "batch_retry", {
          job: ctx.job_id,
          chunk: ctx.chunk_index,
          batch: seq,
          attempt: n,
          error,
        }),
    });
    seq++;
    totalRows += batch.parsed;
    totalRejected += result.rejected;
    jobFinished = result.outcome.job_finished;
  };

  if (resuming && readStart >= ctx.end_offset) {
    // Every owned record is committed; only the final marker is missing.
    await commit({ rows: [], rejects: [], parsed: 0 }, { offset: readStart, line: ctx.resume_line }, true);
    return { outcome: "loaded", rows: 0, rejected: 0, jobFinished };
  }

  const reader = createChunkReader({
    format,
    start: readStart,
    end: ctx.end_offset,
    dataStart: ctx.data_start,
    entry: resuming ? { entryParity: 0, linesBefore: ctx.resume_line! - 1, atRecordStart: true } : {
      entryParity: ctx.entry_parity ?? 0,
      linesBefore: ctx.lines_before ?? 0,
      atRecordStart: ctx.at_record_start ?? false,
    },
    maxRecordBytes: config.maxRecordBytes,
  });

  let batch: Batch = { rows: [], rejects: [], parsed: 0 };
  const take = (records: CsvRecord[]) => {
    for (const record of records) {
      batch.parsed++;
      const converted = converter.convert(record);
      if (converted.ok) batch.rows.push({ copyLine: converted.copyLine, line: record.line, raw: record.raw });
      else {batch.rejects.push({
          line: record.line,
          column: converted.column,
          reason: converted.reason,
          raw: record.raw,
        });}
    }
  };

  // Open-ended read: the chunk's last record may end past end_offset; leaving the loop cancels the request.
  for await (const piece of deps.storage.readRange(ctx.bucket_id, ctx.object_name, readStart)) {
    take(reader.push(piece));
    if (reader.done) break;
    if (!resuming && firstRecordAt === null) firstRecordAt = reader.firstOffset;
    if (batch.rows.length + batch.rejects.length >= config.batchSize) {
      if (deps.signal?.aborted) throw deps.signal.reason;
      await commit(batch, { offset: reader.nextOffset, line: reader.nextLine }, false);
      batch = { rows: [], rejects: [], parsed: 0 };
    }
  }
  if (!reader.done) take(reader.finish());
  if (!resuming && firstRecordAt === null) firstRecordAt = reader.firstOffset;
  await commit(batch, { offset: reader.nextOffset, line: reader.nextLine }, true);
  return { outcome: "loaded", rows: totalRows, rejected: totalRejected, jobFinished };
}
