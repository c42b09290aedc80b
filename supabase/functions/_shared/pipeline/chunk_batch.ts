/**
 * A load's batches: what a load writes with (opened once per invocation), and the steps of one batch, each a
 * named function: open it (csv_import.begin_batch), write its pieces (load/loader.ts), commit it
 * (csv_import.commit_batch), all in one transaction.
 *
 * Invariants:
 * - Exactly-once rows: a batch is one transaction — begin_batch (lease and sequence check, chunk row lock),
 *   COPY of the batch's valid rows, commit_batch (progress marker, rejects, counts) — so a retried, duplicated
 *   or replayed chunk resumes after its last committed batch and never writes a row twice.
 * - Only a batch that begin_batch answered 'ok' writes; any other reply, a lost lease or a refused commit ends
 *   the invocation without writing (StopChunk).
 * - Rows parsed = loaded + rejected + skipped per batch; rejects past the job's cap are counted, not stored.
 * - A batch's transaction is bounded (DEFAULTS.BATCH_*_TIMEOUT_SECONDS): a frozen worker's chunk row is
 *   released by the database and the chunk taken over.
 * - Deferred constraints are checked before commit_batch; a refusal there redoes the batch with constraints
 *   checked per statement, where refusals are isolated (DeferredRefusal).
 * - A dry run (jobs.dry_run) writes every batch as a real load does, inside a savepoint rolled back before
 *   commit_batch: PostgreSQL checks every row (types, constraints, triggers), no row stays.
 */
import type postgres from "postgres";
import type { ChunkReader } from "../csv/chunk.ts";
import type { CopyPiece, PreparedRow } from "../load/copy_piece.ts";
import { compileFastRow, type FastRow } from "../load/fast_row.ts";
import {
  BatchLoader,
  type BatchResult,
  type InflightPiece,
  quoteIdent,
  type RowReject,
  type Writer,
} from "../load/loader.ts";
import { compileRowConverter, type RowConverter } from "../load/row_converter.ts";
import type { TargetColumn } from "../pg_types/columns.ts";
import { checkedByServer } from "../pg_types/convert.ts";
import { withRetry } from "../platform/retry.ts";
import { type ChunkContext, StopChunk, type WorkDeps } from "./chunk_context.ts";
import { fillRaw } from "./chunk_reads.ts";
import type { InflateLegs } from "./compressed_reads.ts";
import { WorkMeter } from "./isolate_budget.ts";
import type { RowSource } from "./row_source.ts";
import type { BatchCommitReply, BatchState } from "./sql_replies.ts";

type Tx = postgres.TransactionSql;

/** A progress marker: where the next record starts, and its line. */
export interface Marker {
  offset: number;
  line: number;
}

/** A load in progress: what it writes with (fixed per invocation), and the tallies its batches advance. */
export interface Load {
  readonly deps: WorkDeps;
  readonly ctx: ChunkContext;
  /** The range's bytes when the load read it whole (from the chunk's first byte), else null. */
  readonly scanned: Uint8Array | null;
  readonly converter: RowConverter;
  /** The byte-level path for plain records (load/fast_row.ts), or null when it cannot apply. */
  readonly fastRow: FastRow | null;
  readonly loader: BatchLoader;
  /** The target has constraints checked only at commit: they are checked before commit_batch. */
  readonly deferred: boolean;
  /** A dry run: every batch's rows are written, checked by PostgreSQL, and rolled back before commit_batch. */
  readonly dryRun: boolean;
  /** The job's cap on stored rejects: a profile may lower MAX_STORED_REJECTS, never raise it. */
  readonly maxStoredRejects: number;
  /** This invocation's synchronous work so far (ms): past WORKER_INVOCATION_WORK_MS the chunk is handed on. */
  readonly work: WorkMeter;
  /** How many more rejects the job may store, as far as this worker knows (commit_batch enforces it exactly). */
  storedLeft: number;
  /** The sequence number of the next batch. */
  seq: number;
  /** The last committed progress marker: where a retry (in place, or by SQL) resumes. */
  committed: Marker | null;
  /** The batch (by seq) being redone with immediate constraint checks, or -1. */
  immediateBatch: number;
  /** This invocation's totals. */
  rows: number;
  rejected: number;
  batches: number;
  jobFinished: boolean;
  /** A compressed job's load: how its reads inflated (logged with the chunk). */
  readonly inflateLegs: InflateLegs;
}

/**
 * A batch's deferred constraints refused a row when checked before its commit: the batch is rolled back and
 * redone from its marker with constraints checked per statement, where refusals are isolated.
 */
export class DeferredRefusal extends Error {}

/**
 * Sets up a load: the converters, whose rights it writes with, its reject budget and its resume marker. The
 * caller adds the range's bytes when it holds them (`scanned`: read while this runs).
 */
export async function openLoad(deps: WorkDeps, ctx: ChunkContext): Promise<Omit<Load, "scanned">> {
  const { sql, config } = deps;
  const { target } = ctx;
  // Syntax only some servers read (`1_000`, zone names) goes to this one, which decides (convert.ts).
  const converter = compileRowConverter(target.columns, {
    dateStyle: target.profile?.date_style ?? "iso",
    deferToServer: true,
  });
  // Records in plain forms skip the string path (see fast_row.ts).
  const fastRow = compileFastRow(target.columns, target.dialect, { binary: config.copyFormat === "binary" });
  // Whose rights the rows are written with and whether a signed-in uploader reads the rejects
  // (docs/security.md), and whether constraints checked only at commit are to be checked before commit_batch
  // instead (see DeferredRefusal).
  const [{ writer, uploaded_by_user, deferred, dry_run }] = await withRetry(() =>
    sql<{ writer: Writer | null; uploaded_by_user: boolean; deferred: boolean; dry_run: boolean }[]>`
      select csv_import.load_writer(${ctx.chunk.jobId}) as writer, j.owner_id is not null as uploaded_by_user,
        csv_import.has_deferred_constraints(${target.table}) as deferred, j.dry_run
      from csv_import.jobs j where j.id = ${ctx.chunk.jobId}`
  );
  const loader = new BatchLoader({
    writer,
    hideDetail: uploaded_by_user,
    table: target.table,
    columns: target.columns.mapped.map((m) => ({
      name: m.column.name,
      type: loadColumnType(m.column),
      identity: m.column.identity,
      domain: m.column.isDomain ? m.column.type : null,
    })),
    mode: target.profile?.on_conflict ?? "insert",
    conflictColumns: target.profile?.conflict_columns ?? [],
    jobId: ctx.chunk.jobId,
  });
  const profileCap = target.profile?.max_stored_rejects;
  const maxStoredRejects = profileCap == null
    ? config.maxStoredRejects
    : Math.min(config.maxStoredRejects, profileCap);
  const committed = ctx.resume.offset !== null ? { offset: ctx.resume.offset, line: ctx.resume.line! } : null;
  return {
    deps,
    ctx,
    inflateLegs: { members: 0, membersFallback: 0 },
    converter,
    fastRow,
    loader,
    deferred,
    dryRun: dry_run,
    maxStoredRejects,
    work: new WorkMeter(),
    storedLeft: maxStoredRejects - target.rejectsStored,
    seq: ctx.resume.batches,
    committed,
    immediateBatch: -1,
    rows: 0,
    rejected: 0,
    batches: 0,
    jobFinished: false,
  };
}

/** Opens batch `load.seq` in `tx` (csv_import.begin_batch), with the transaction's timeouts; StopChunk if not. */
export async function beginBatch(load: Load, tx: Tx): Promise<void> {
  const { deps, ctx } = load;
  if (deps.leaseLost()) throw new StopChunk("lease_lost");
  // set_config(…, true) lasts until the batch commits or rolls back.
  const [{ state }] = await tx<{ state: BatchState }[]>`
    select set_config('statement_timeout', ${`${deps.config.batchStatementTimeoutSeconds}s`}, true),
           set_config('idle_in_transaction_session_timeout', ${`${deps.config.batchIdleTimeoutSeconds}s`}, true),
           csv_import.begin_batch(${ctx.chunk.id}, ${ctx.chunk.leaseToken}::uuid, ${load.seq}) as state`;
  if (state !== "ok") throw new StopChunk(state);
}

/** What commit_batch records for a batch. */
export interface BatchEnd {
  /** Where the chunk's first owned record starts: reported by the chunk's first batch, else null. */
  firstRecordAt: number | null;
  /** The progress marker after the batch (null parts: the reader found no next record). */
  next: { offset: number | null; line: number | null };
  parsed: number;
  written: { loaded: number; skipped: number };
  rejects: RowReject[];
  final: boolean;
  /** Rejects beyond `rejects`, counted only. */
  countedRejects: number;
}

/**
 * Commits batch `load.seq` (csv_import.commit_batch): its marker, counts and rejects — details only for the
 * rejects the job can still store (MAX_STORED_REJECTS), the others counted. StopChunk when the job stopped.
 */
export async function commitBatch(load: Load, tx: Tx, batch: BatchEnd): Promise<{ job_finished: boolean }> {
  const { deps, ctx, work } = load;
  const { rejects, next, written } = batch;
  const detailed = rejects.length <= load.storedLeft
    ? rejects
    : rejects.slice(0, Math.max(0, load.storedLeft));
  const counted = batch.countedRejects + rejects.length - detailed.length;
  await fillRaw(deps.storage, ctx, detailed, load.scanned);
  const started = performance.now();
  const stored = JSON.stringify(detailed.map((r) => ({
    line: r.line,
    column: r.column,
    reason: noNul(r.reason),
    raw: noNul(r.raw),
  })));
  work.add(performance.now() - started);
  const [{ outcome }] = await tx<{ outcome: BatchCommitReply }[]>`
    select csv_import.commit_batch(
      p_chunk_id => ${ctx.chunk.id},
      p_lease_token => ${ctx.chunk.leaseToken}::uuid,
      p_batch_seq => ${load.seq},
      p_first_record_at => ${batch.firstRecordAt}::bigint,
      p_next_offset => ${next.offset}::bigint,
      p_next_line => ${next.line}::bigint,
      p_rows_parsed => ${batch.parsed},
      p_rows_loaded => ${written.loaded},
      p_rows_skipped => ${written.skipped},
      p_rejects => ${stored}::text::jsonb,
      p_final => ${batch.final},
      p_lease => make_interval(secs => ${deps.config.leaseSeconds}),
      p_max_stored_rejects => ${load.maxStoredRejects},
      p_rejected_unstored => ${counted}) as outcome`;
  if (outcome.refused) throw new StopChunk(outcome.refused);
  load.storedLeft = load.maxStoredRejects - (outcome.rejects_stored ?? 0);
  return outcome as { job_finished: boolean };
}

/** Commits the final marker alone: every owned record is committed, only the chunk's end is not recorded. */
export async function commitFinalMarker(load: Load, marker: Marker): Promise<void> {
  await load.deps.sql.begin(async (tx) => {
    await beginBatch(load, tx);
    const end: BatchEnd = {
      firstRecordAt: null,
      next: marker,
      parsed: 0,
      written: { loaded: 0, skipped: 0 },
      rejects: [],
      final: true,
      countedRejects: 0,
    };
    load.jobFinished = (await commitBatch(load, tx, end)).job_finished;
  });
}

/**
 * Writes the batch's rows as `source` parses them, up to `rowLimit` rows (and the batch's byte and reject
 * limits). The fast path keeps one piece ahead: the database runs the COPY of a piece while the next one is
 * parsed. Other modes collect the rows and write them through the isolating path.
 */
export async function writePieces(
  load: Load,
  tx: Tx,
  source: RowSource,
  rowLimit: number,
): Promise<BatchResult> {
  const { loader } = load;
  const { batchBytes, batchMaxRejects } = load.deps.config;
  const result: BatchResult = { loaded: 0, skipped: 0, rejects: [] };
  const add = (r: BatchResult) => {
    result.loaded += r.loaded;
    result.skipped += r.skipped;
    for (const reject of r.rejects) result.rejects.push(reject);
  };
  if (loader.canWriteFast) {
    let inflight: InflightPiece | null = null;
    const settle = async (done: InflightPiece) => {
      add(await loader.settlePiece(tx, done));
      source.release(done.piece as CopyPiece);
    };
    for (;;) {
      const { piece, last } = await source.nextPiece(rowLimit, batchBytes, batchMaxRejects);
      if (inflight) await settle(inflight);
      inflight = null;
      if (load.deps.signal?.aborted) {
        // The runtime is stopping this isolate: roll the batch back now (no COPY is open), rather than spend
        // the little CPU left on parsing the rest of it (chunk_worker.ts, "Interrupted").
        source.release(piece);
        throw load.deps.signal.reason;
      }
      if (piece.count > 0) inflight = await loader.startPiece(tx, piece);
      else {
        inflight = null;
        source.release(piece);
      }
      if (last) break;
    }
    if (inflight) await settle(inflight);
  } else {
    const rows: PreparedRow[] = [];
    for (;;) {
      const { piece, last } = await source.nextPiece(rowLimit, batchBytes, batchMaxRejects);
      for (const row of piece.rows()) rows.push(row);
      source.release(piece);
      if (last) break;
    }
    add(await loader.writeIsolating(tx, rows));
  }
  return result;
}

/** What one committed batch did. */
export interface BatchDone {
  final: boolean;
  next: { offset: number | null; line: number | null };
  parsed: number;
  rejected: number;
  jobFinished: boolean;
}

/**
 * One batch in one transaction: open, write the pieces `source` parses, check deferred constraints, commit.
 * Batches grow: the first commits quickly (first rows visible early, resumable progress), later ones amortise
 * the per-transaction cost (DEFAULTS.WORKER_BATCH_BYTES has the measurements).
 */
export async function runBatch(load: Load, source: RowSource, reader: ChunkReader): Promise<BatchDone> {
  const { deps, ctx, loader } = load;
  const rowLimit = deps.config.batchSize * 2 ** Math.min(load.batches, 20);
  source.resetBatch();
  source.detailBudget = Math.max(0, load.storedLeft);
  return await deps.sql.begin(async (tx) => {
    await beginBatch(load, tx);
    if (load.dryRun) await tx`savepoint csv_import_dry_run`;
    if (load.immediateBatch === load.seq) await loader.checkConstraintsImmediately(tx);
    const written = await writePieces(load, tx, source, rowLimit);
    const final = source.finished;
    const next = { offset: reader.nextOffset, line: reader.nextLine };
    const rejects = source.rejects.length === 0 ? written.rejects : [...source.rejects, ...written.rejects];
    const firstRecordAt = ctx.resume.offset === null ? reader.firstOffset ?? null : null;
    if (load.deferred && load.immediateBatch !== load.seq && !await loader.deferredConstraintsHold(tx)) {
      throw new DeferredRefusal();
    }
    // A dry run keeps what PostgreSQL said of the rows (loaded, refused: rejects) and none of the rows.
    if (load.dryRun) await tx`rollback to savepoint csv_import_dry_run`;
    const outcome = await commitBatch(load, tx, {
      firstRecordAt,
      next,
      parsed: source.parsed,
      written: { loaded: written.loaded, skipped: written.skipped },
      rejects,
      final,
      countedRejects: source.countedRejects,
    });
    return {
      final,
      next,
      parsed: source.parsed,
      rejected: rejects.length + source.countedRejects,
      jobFinished: outcome.job_finished,
    };
  });
}

/**
 * A reject's text with each NUL shown as U+FFFD: PostgreSQL text (and jsonb, which commit_batch receives)
 * cannot hold U+0000, and one such record would fail its whole batch at every attempt until the chunk was
 * dead-lettered.
 */
function noNul<T extends string | null>(text: T): T {
  return (text !== null && text.indexOf("\0") !== -1 ? text.replaceAll("\0", "\uFFFD") : text) as T;
}

/**
 * The type a column's staged text is cast to by the isolating INSERT (load/loader.ts, csv_import.write_keyed). A
 * column the converter validated: its own type (the value is canonical and within its typmod). A column
 * PostgreSQL validates itself (pg_types/convert.ts checkedByServer): its base type without typmod, so that the
 * INSERT's assignment applies the typmod (and a domain its checks) as COPY's input does; an explicit cast to
 * `bit(3)` or `varchar(3)[]` would cut a longer value silently where COPY refuses it.
 */
export function loadColumnType(column: TargetColumn): string {
  return checkedByServer(column)
    ? `${quoteIdent(column.baseTypeSchema)}.${quoteIdent(column.baseType)}`
    : column.type;
}
