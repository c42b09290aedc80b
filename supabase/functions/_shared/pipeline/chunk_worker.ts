/**
 * The work of one chunk invocation: a scan (summarise the chunk's bytes for later chunks) or a load (parse,
 * validate and write the records the chunk owns, in atomic batches), and the invocation loop that takes on the
 * next ready chunk while its budget lasts (runInvocation).
 *
 * The parts: chunk_context.ts (what the invocation knows about its chunk), chunk_reads.ts (Storage reads),
 * row_source.ts (records → COPY pieces), chunk_batch.ts (one batch: begin, write, commit); this file
 * orchestrates them and reports the outcome to SQL.
 *
 * Invariants:
 * - Exactly-once rows: each batch is one transaction (chunk_batch.ts), so a retried, duplicated or replayed
 *   chunk resumes after its last committed batch and never writes a row twice.
 * - Ownership: the chunk loads exactly the records whose first byte lies in [start, end) of its range
 *   (supabase/functions/_shared/csv/chunk.ts), reading past the end to finish its last record; it reports
 *   where its first owned record starts and where the next chunk's first record starts, which
 *   csv_import.finalize_job checks for exact tiling.
 * - Nothing is lost silently: every parsed record becomes a loaded row, a skipped duplicate or a reject (line
 *   number, column, reason, raw text; a NUL in the text is stored as U+FFFD); rows parsed = loaded + rejected
 *   + skipped per batch (a row a BEFORE trigger dropped counts as skipped: loaded is what the table got).
 * - Whatever the target refuses per row (a constraint, a trigger's RAISE, a policy; deferred constraints are
 *   checked before commit_batch, see DeferredRefusal) becomes a reject; the rows are written with the rights
 *   csv_import.load_writer names (the uploader's for tables with RLS: docs/security.md).
 * - Bounded memory: one network read, two pieces of COPY lines (the one the database is taking, the one being
 *   parsed) and the batch's rejects; plus, when a load scans its own range first (below), that range, at most
 *   csv_import.inline_scan_max_bytes(), or a small range read whole (READ_WHOLE_MAX_BYTES); never the file.
 * - Inline scan: a load whose range is not scanned yet reads the range once into memory, reports its summary
 *   (csv_import.complete_inline_scan, which makes the next load ready at once: `deps.onScanned`), then loads
 *   from those bytes; the same summary a scan invocation would report, without its invocation or second read.
 * - Version-bound: every range read must carry the ETag of the job's object version (storage.ts), and every batch
 *   is refused by csv_import.begin_batch / commit_batch once the object holds another version. A response of
 *   another version is never parsed: when the database says the job's version is gone, the chunk is handed back
 *   and the job stopped as superseded (csv_import.release_stopped_chunk); otherwise (a stale CDN copy) it is
 *   retried like any transient failure.
 * - Liveness: a heartbeat renews the lease every LEASE_SECONDS / 4 (csv_import.renew_lease) while the chunk is
 *   processed; a batch transaction carries statement and idle timeouts, so a frozen worker's row lock is
 *   released by the database and its chunk taken over.
 * - Interrupted (the runtime announces it is stopping this isolate: `beforeunload`, deps.signal): the open batch
 *   is rolled back at its next piece (chunk_batch.ts writePieces) and the chunk handed back at once with its
 *   attempt given back (csv_import.yield_chunk), then csv-import-dispatch is kicked over HTTP, which the runtime
 *   routes to a fresh worker (this one is retired), so the chunk resumes after its last committed batch within
 *   seconds, not when its lease expires. Why roll back rather than finish the batch: after beforeunload "cpu" the
 *   isolate has 10 % of its hard CPU limit left (200 ms locally), shared by every chunk open in it; finishing a
 *   batch may still need up to a batch of parsing (~70 ms of CPU per 4 MiB) per chunk, while a rollback costs
 *   the worker nothing and loses no progress that counts: the committed marker is where the next worker resumes.
 * - One work account per isolate (`isolateWork`, isolate_budget.ts): every chunk an isolate takes on adds its
 *   work bytes, and an invocation keeps the next chunk for itself only while the isolate's total is below
 *   WORKER_INVOCATION_BUDGET_BYTES. Several invocations run in one isolate at once and its CPU adds up across them
 *   (edge-runtime per_worker); past the budget, every next chunk goes to the runtime as a new request, which
 *   lands on a fresh worker once this one is retired. Once the isolate's chunks have done WORKER_ISOLATE_WORK_MS
 *   of synchronous work (it is then past the runtime's soft limit, so retired), its open loads hand the rest of
 *   their chunk on at their next batch and a chunk taken on after that goes straight back, so a retired isolate
 *   does not run on towards the hard limit.
 * - Chunk slots: an isolate processes at most WORKER_CHUNKS_PER_ISOLATE chunks at once (isolate_budget.ts); a chunk
 *   request beyond them waits for a slot holding its lease, and one let through because the runtime is stopping
 *   the isolate is handed straight back (processChunk), so what a retired isolate still runs is bounded.
 * - Failures: the file's fault (record too large, unterminated quote) fails the job via csv_import.fail_chunk
 *   (fatal); anything else is retried in place, then reported as a transient failure and SQL decides between
 *   retry with backoff and dead-letter. A lost lease or a stopped job ends the invocation without writing.
 *
 * Speed (measured on the 1M-row reference file, 8 MiB chunks, 2 cores shared with the database): the database
 * takes one COPY piece while the worker parses the next; plain records go from the file's bytes to COPY bytes
 * without strings (fast_row.ts; every record of that file, its quoted notes included); batches grow from
 * WORKER_BATCH_SIZE rows up to WORKER_BATCH_BYTES. Per load invocation: 140–220 ms CPU and at most ~30 MB
 * (mostly under 10); one chunk alone takes 300–400 ms wall (docs/performance.md).
 */
import { createChunkReader } from "../csv/chunk.ts";
import type { ChunkReader } from "../csv/chunk.ts";
import { CompressionError } from "../compression/inflate.ts";
import { CsvError } from "../csv/errors.ts";
import type { CopyPiece } from "../load/copy_piece.ts";
import { runInBackground } from "../platform/edge_runtime.ts";
import { log, redact } from "../platform/log.ts";
import { withRetry } from "../platform/retry.ts";
import { ObjectChangedError } from "../platform/storage.ts";
import { commitFinalMarker, DeferredRefusal, type Load, openLoad, runBatch } from "./chunk_batch.ts";
import {
  type ChunkContext,
  type ChunkDeps,
  chunkWorkBytes,
  readChunkContext,
  StopChunk,
  type WorkDeps,
} from "./chunk_context.ts";
import {
  giveBackRangeBuffer,
  readAndScan,
  readFileBytes,
  readOwned,
  takeRangeBuffer,
} from "./chunk_reads.ts";
import { readInflated } from "./compressed_reads.ts";
import { dispatch, type DispatchDeps, invokeFunction } from "./dispatch.ts";
import { FUNCTION_NAMES } from "./function_names.ts";
import { inflateStep } from "./inflate_step.ts";
import { buildPieceText, type PieceTextSource } from "./piece_text.ts";
import { ChunkSlots, isolateSpent, isolateWork } from "./isolate_budget.ts";
import { RowSource } from "./row_source.ts";
import type {
  ChunkStatus,
  FailDecision,
  LeaseRenewal,
  ScanReply,
  StopReason,
  YieldReply,
} from "./sql_replies.ts";

export type { ChunkDeps } from "./chunk_context.ts";

export type ChunkOutcome =
  | {
    outcome: "scanned" | "loaded" | "yielded" | "inflated";
    rows?: number;
    rejected?: number;
    /** A load: its synchronous work (parsing, converting, encoding; WorkMeter), up to where it yielded if it did. */
    workMs?: number;
    jobFinished?: boolean;
    /** A load: its fast-path COPY pieces by format (CopyPiece.binary), and how many built deferred text. */
    pieces?: { binary: number; text: number; textBuilt: number };
    /** A compressed job's chunk: how it inflated (an inflate step's ranges, bytes and engine; a load's legs). */
    inflate?: Record<string, number | string>;
  }
  | { outcome: Exclude<StopReason, "missing"> | "interrupted" | "handed_back" }
  | { outcome: "failed"; fatal: boolean; error: string; decision: FailDecision };

/** A chunk's outcome and the work it was (0 when the chunk was not processed). */
export type ChunkResult = ChunkOutcome & { workBytes: number };

/** A chunk claimed for this invocation (csv_import.reclaim_and_claim_chunks). */
export interface ChunkClaim {
  chunk_id: number;
  lease_token: string;
}

/** The isolate's chunk slots (WORKER_CHUNKS_PER_ISOLATE), made by its first invocation (isolate_budget.ts). */
let isolateSlots: ChunkSlots | undefined;

/**
 * One chunk invocation: processes `first`, then, while the isolate's work account is below
 * WORKER_INVOCATION_BUDGET_BYTES, the next ready chunk, which it claims for itself when it dispatches; the other
 * chunks claimed with it go to new invocations. A load's inline scan dispatches at once (the next loads became
 * ready). Once the runtime announces shutdown (`deps.signal`) it takes on nothing more; a chunk it interrupted
 * was handed back, and dispatch is kicked so a fresh worker picks it up. `takeMore: false` (register's inline
 * load of a small file): `first` only; the next ready chunks all go to chunk invocations. `takeMore: { jobId }`
 * (register's inline run of a small compressed file): only that job's chunks (its chain, then its load).
 */
export async function runInvocation(
  deps: Omit<ChunkDeps, "onScanned">,
  first: ChunkClaim,
  opts: { takeMore?: boolean | { jobId: number } } = {},
): Promise<void> {
  const slots = isolateSlots ??= new ChunkSlots(deps.config.chunksPerIsolate, deps.signal);
  let next: ChunkClaim | null = first;
  while (next !== null) {
    const current: ChunkClaim = next;
    await slots.acquire();
    let result: ChunkResult;
    try {
      result = await processChunk(
        {
          ...deps,
          onScanned: () => runInBackground(dispatch(deps, `chunk ${current.chunk_id} scanned inline`)),
        },
        current.chunk_id,
        current.lease_token,
      );
    } finally {
      slots.release();
    }
    if (result.outcome === "interrupted" || result.outcome === "handed_back" || deps.signal?.aborted) {
      // Stopping or retired: nothing more for this isolate; the next chunks (and a handed-back one) go to a fresh
      // worker.
      await kickDispatch(deps, `chunk ${current.chunk_id} ${result.outcome}, isolate stopping or retired`);
      return;
    }
    const more = result.outcome !== "yielded" && isolateWork.bytes < deps.config.invocationBudgetBytes;
    const keep = more && (opts.takeMore ?? true);
    next = (await dispatch(deps, `chunk ${current.chunk_id} finished`, { keep })).kept;
  }
}

/**
 * Asks csv-import-dispatch (a new request: the runtime gives it a worker that is not stopping) to claim and hand
 * out ready chunks, this isolate's handed-back ones among them. A failure is logged: the reconciler's kick and
 * lease expiry remain.
 */
async function kickDispatch(deps: Pick<DispatchDeps, "config" | "fetch">, reason: string): Promise<void> {
  try {
    const status = await invokeFunction(deps, FUNCTION_NAMES.dispatch, { reason });
    if (status !== 200) log("warn", "dispatch_kick_failed", { reason, status });
  } catch (error) {
    log("warn", "dispatch_kick_failed", { reason, error });
  }
}

/**
 * Hands a chunk back at once (csv_import.yield_chunk: pending, ready now, its attempt given back), when it was
 * interrupted or its invocation's work budget is spent; the chunk's status after ("yielded", or "lease_lost" when
 * it was no longer this worker's).
 */
async function handBack(deps: ChunkDeps, ctx: ChunkContext): Promise<YieldReply> {
  const [{ state }] = await withRetry(() =>
    deps.sql<{ state: YieldReply }[]>`
      select csv_import.yield_chunk(p_chunk_id => ${ctx.chunk.id}, p_lease_token => ${ctx.chunk.leaseToken}::uuid)
        as state`
  );
  return state;
}

/** The file's problem as the job's error: sentence case, with the line when the message lacks it. */
function describeCsvError(error: CsvError): string {
  const text = error.message.charAt(0).toUpperCase() + error.message.slice(1);
  return error.line !== undefined && !/\bline \d/.test(error.message) ? `Line ${error.line}: ${text}` : text;
}

export async function processChunk(
  deps: ChunkDeps,
  chunkId: number,
  leaseToken: string,
): Promise<ChunkResult> {
  const { sql } = deps;
  const ctx = await readChunkContext(sql, chunkId, leaseToken);
  if (!ctx) return { outcome: "lease_lost", workBytes: 0 };
  const workBytes = chunkWorkBytes(ctx, deps.config.inflateStepBytes);
  const started = performance.now();
  const chunkLog = {
    job: ctx.chunk.jobId,
    chunk: ctx.chunk.index,
    kind: ctx.chunk.kind,
    attempt: `${ctx.chunk.attempts}/${ctx.chunk.maxAttempts}`,
  };
  if (deps.signal?.aborted) {
    // Taken on while the runtime is stopping this isolate: straight back, for a fresh worker.
    const state = await handBack(deps, ctx);
    log("warn", "chunk_interrupted", { ...chunkLog, reason: String(deps.signal.reason), handed_back: state });
    return { outcome: "interrupted", workBytes: 0 };
  }
  if (isolateSpent(deps.config)) {
    // Taken on after this isolate's work budget was spent (it is retired): straight back, for a fresh worker.
    const state = await handBack(deps, ctx);
    log("info", "chunk_handed_back", {
      ...chunkLog,
      reason: "isolate work budget spent",
      handed_back: state,
    });
    return { outcome: "handed_back", workBytes: 0 };
  }
  isolateWork.bytes += workBytes;
  const heartbeat = startHeartbeat(deps, ctx);
  const work: WorkDeps = { ...deps, leaseLost: heartbeat.lost };
  try {
    const result = ctx.chunk.kind === "scan"
      ? await scan(work, ctx)
      : ctx.chunk.kind === "inflate"
      ? await inflate(work, ctx)
      : await load(work, ctx);
    log("info", `chunk_${result.outcome}`, {
      ...chunkLog,
      bytes: ctx.range.end - ctx.range.start,
      ...("rows" in result ? { rows: result.rows, rejected: result.rejected } : {}),
      ...("pieces" in result
        ? {
          binary_pieces: result.pieces?.binary,
          text_pieces: result.pieces?.text,
          text_built: result.pieces?.textBuilt,
        }
        : {}),
      ...("workMs" in result ? { work_ms: result.workMs } : {}),
      ...("inflate" in result ? { inflate: result.inflate } : {}),
      ms: Math.round(performance.now() - started),
    });
    // A yielded chunk spent this invocation's budget: it takes on nothing more (runInvocation).
    return { ...result, workBytes: result.outcome === "yielded" ? Number.MAX_SAFE_INTEGER : workBytes };
  } catch (thrown) {
    // A response of another version: superseded when the job's version is gone, else a stale copy (transient).
    const error = thrown instanceof ObjectChangedError && !(await versionIsCurrent(deps, ctx))
      ? new StopChunk("superseded")
      : thrown;
    if (error instanceof StopChunk) {
      // A stopped job's chunk (or one whose object changed) is handed back now, not when its lease expires.
      const released = error.reason === "stopped" || error.reason === "superseded"
        ? await releaseStoppedChunk(deps, ctx)
        : undefined;
      log("info", "chunk_stopped", {
        ...chunkLog,
        outcome: error.reason,
        ...(released ? { chunk_status: released } : {}),
      });
      return { outcome: error.reason === "missing" ? "lease_lost" : error.reason, workBytes };
    }
    if (deps.signal?.aborted) {
      // The open batch has rolled back; the chunk resumes after its last committed one, in a fresh worker.
      const state = await handBack(deps, ctx);
      log("warn", "chunk_interrupted", {
        ...chunkLog,
        reason: String(deps.signal.reason),
        handed_back: state,
        ms: Math.round(performance.now() - started),
      });
      return { outcome: "interrupted", workBytes };
    }
    // The file's fault: bad CSV, or a corrupt, truncated or oversized compressed stream.
    const fatal = error instanceof CsvError || error instanceof CompressionError;
    // Stored on the chunk and shown on the job: masked like a log line (a driver error may quote a URL).
    const message = redact(
      error instanceof CsvError
        ? describeCsvError(error)
        : error instanceof Error
        ? error.message
        : String(error),
    );
    const [{ decision }] = await withRetry(() =>
      sql<{ decision: FailDecision }[]>`
        select csv_import.fail_chunk(p_chunk_id => ${chunkId}, p_lease_token => ${leaseToken}::uuid,
          p_error => ${message}, p_fatal => ${fatal}) as decision`
    );
    log(fatal ? "info" : "warn", "chunk_failed", {
      ...chunkLog,
      fatal,
      decision,
      error: message,
      ms: Math.round(performance.now() - started),
    });
    return { outcome: "failed", fatal, error: message, decision, workBytes };
  } finally {
    heartbeat.stop();
  }
}

/**
 * Renews the chunk's lease every LEASE_SECONDS / 4 while it is processed. `lost()` turns true once the database
 * says the lease is no longer this worker's (the chunk was taken over): the load stops at its next batch.
 * A failed renewal is only logged: the next one, or the next batch commit, renews it.
 */
function startHeartbeat(deps: ChunkDeps, ctx: ChunkContext) {
  let lost = false;
  const seconds = deps.config.leaseSeconds;
  const { id, leaseToken, jobId, index } = ctx.chunk;
  const timer = setInterval(() => {
    deps.sql<{ state: LeaseRenewal }[]>`
      select csv_import.renew_lease(${id}, ${leaseToken}::uuid, make_interval(secs => ${seconds})) as state`
      .then(([row]) => {
        if (row?.state === "lost") lost = true;
      })
      .catch((error) => log("warn", "lease_renewal_failed", { job: jobId, chunk: index, error }));
  }, (seconds * 1000) / 4);
  return { lost: () => lost, stop: () => clearInterval(timer) };
}

/** Whether the job's object version is still the object's (a differing ETag then means a stale CDN copy). */
async function versionIsCurrent(deps: ChunkDeps, ctx: ChunkContext): Promise<boolean> {
  const { bucket, name, version } = ctx.object;
  const [{ current }] = await withRetry(() =>
    deps.sql<{ current: boolean }[]>`
      select csv_import.object_is_current(${bucket}, ${name}, ${version}) as current`
  );
  return current;
}

/** Hands a chunk of a stopped or superseded job back (csv_import.release_stopped_chunk); its status after. */
async function releaseStoppedChunk(deps: ChunkDeps, ctx: ChunkContext): Promise<ChunkStatus> {
  const [{ status }] = await withRetry(() =>
    deps.sql<{ status: ChunkStatus }[]>`
      select csv_import.release_stopped_chunk(${ctx.chunk.id}, ${ctx.chunk.leaseToken}::uuid) as status`
  );
  return status;
}

/**
 * A compressed job's inflate chain, one invocation of it (inflate_step.ts); when it has done its share, the chain
 * is handed on (yield_chunk: pending, ready at once, its attempt given back) for a fresh invocation.
 */
async function inflate(deps: WorkDeps, ctx: ChunkContext): Promise<ChunkOutcome> {
  const step = await inflateStep(deps, ctx);
  if (step.outcome === "yielded") {
    const state = await handBack(deps, ctx);
    if (state !== "yielded") throw new StopChunk("lease_lost");
  }
  return { outcome: step.outcome, inflate: { ranges: step.ranges, bytes: step.bytes, engine: step.engine } };
}

async function scan(deps: WorkDeps, ctx: ChunkContext): Promise<ChunkOutcome> {
  const summary = await readAndScan(deps.storage, ctx, "reuse");
  const [{ result }] = await withRetry(() =>
    deps.sql<{ result: ScanReply }[]>`
      select csv_import.complete_scan(p_chunk_id => ${ctx.chunk.id},
        p_lease_token => ${ctx.chunk.leaseToken}::uuid, p_quote_parity => ${summary.quoteParity}::smallint,
        p_newline_count => ${summary.newlineCount}::bigint, p_ends_with_terminator => ${summary.endsWithTerminator}) as result`
  );
  if (result !== "ok") throw new StopChunk("lease_lost");
  return { outcome: "scanned" };
}

/**
 * Reads the load's whole range into `buffer`, reports its scan summary and returns the range's bytes (a view of
 * `buffer`) for loading. Throws StopChunk when the lease is gone.
 */
async function scanInline(deps: ChunkDeps, ctx: ChunkContext, buffer: Uint8Array): Promise<Uint8Array> {
  const summary = await readAndScan(deps.storage, ctx, buffer);
  const [{ result }] = await withRetry(() =>
    deps.sql<{ result: ScanReply }[]>`
      select csv_import.complete_inline_scan(p_load_chunk_id => ${ctx.chunk.id},
        p_lease_token => ${ctx.chunk.leaseToken}::uuid, p_quote_parity => ${summary.quoteParity}::smallint,
        p_newline_count => ${summary.newlineCount}::bigint,
        p_ends_with_terminator => ${summary.endsWithTerminator}) as result`
  );
  if (result !== "ok") throw new StopChunk("lease_lost");
  deps.onScanned?.();
  return buffer.subarray(0, ctx.range.end - ctx.range.start);
}

/**
 * A load of at most this many bytes that has no scan to report reads its whole range at once, while the load
 * opens (openLoad's query), rather than inside its first batch: a small file's one chunk otherwise waited for its
 * read between `begin_batch` and its COPY, 36 ms (p50) in issue 14's burst of small files, with its transaction
 * open. Bigger ranges stream: their first rows need not wait for the whole range (a load that scans inline holds
 * its range anyway). 1 MiB: REGISTER_INLINE_LOAD_BYTES's default, a small file.
 */
const READ_WHOLE_MAX_BYTES = 1024 * 1024;

async function load(deps: WorkDeps, ctx: ChunkContext): Promise<ChunkOutcome> {
  if (ctx.resume.offset !== null) return await loadRange(deps, ctx, Promise.resolve(null));
  if (ctx.scanInline) {
    const buffer = takeRangeBuffer(ctx.range.end - ctx.range.start);
    const scanned = scanInline(deps, ctx, buffer);
    try {
      return await loadRange(deps, ctx, scanned);
    } finally {
      // Another load may take the buffer only once the scan no longer writes into it.
      await scanned.catch(() => {});
      giveBackRangeBuffer(buffer, deps.config.chunksPerIsolate);
    }
  }
  const small = ctx.compressed === null && ctx.range.end - ctx.range.start <= READ_WHOLE_MAX_BYTES;
  const whole = small
    ? readFileBytes(deps.storage, ctx, null, ctx.range.start, ctx.range.end)
    : Promise.resolve(null);
  return await loadRange(deps, ctx, whole);
}

/**
 * Loads the chunk's records; `range`: its range's bytes when the load reads them whole (the read runs while the
 * load opens), else null.
 */
async function loadRange(
  deps: WorkDeps,
  ctx: ChunkContext,
  range: Promise<Uint8Array | null>,
): Promise<ChunkOutcome> {
  const [scanned, opened] = await Promise.all([range, openLoad(deps, ctx)]);
  const load: Load = { ...opened, scanned };
  const { committed } = load;
  if (committed !== null && committed.offset >= ctx.range.end) {
    // Every owned record is committed; only the final marker is missing.
    await withRetry(() => commitFinalMarker(load, committed));
    return { outcome: "loaded", rows: 0, rejected: 0, jobFinished: load.jobFinished };
  }
  const from = committed?.offset ?? ctx.range.start;
  // A transient failure (Storage, database) rolls back the open batch; the retry resumes after the last
  // committed one, in place.
  const ended = await withRetry(() => loadToEnd(load), {
    onRetry: (error, n) =>
      log("warn", "batch_retry", {
        job: ctx.chunk.jobId,
        chunk: ctx.chunk.index,
        batch: load.seq,
        attempt: n,
        error,
      }),
  });
  if (ended === "yield") {
    const state = await handBack(deps, ctx);
    if (state !== "yielded") throw new StopChunk("lease_lost");
    await recordCost(deps, ctx, load, (load.committed?.offset ?? from) - from);
    return { outcome: "yielded", rows: load.rows, rejected: load.rejected, workMs: Math.round(load.work.ms) };
  }
  await recordCost(deps, ctx, load, ctx.range.end - from);
  return {
    outcome: "loaded",
    rows: load.rows,
    rejected: load.rejected,
    jobFinished: load.jobFinished,
    pieces: load.loader.piecesSent,
    workMs: Math.round(load.work.ms),
    ...(ctx.compressed !== null
      ? { inflate: { members: load.inflateLegs.members, members_fallback: load.inflateLegs.membersFallback } }
      : {}),
  };
}

/**
 * Records what this invocation's load cost (csv_import.record_load_cost: the bytes it covered, its rows and
 * rejects, the fields per row, its synchronous work), from which registration sizes later files' chunks
 * (chunk_size.ts). Only chunks of at least CHUNK_SIZE_MIN stand for a chunk's cost (every invocation of one
 * records its part, so a chunk's parts add up to its range); small files pay no statement. Best effort: a failure
 * is logged, never the load's.
 */
async function recordCost(deps: WorkDeps, ctx: ChunkContext, load: Load, bytes: number): Promise<void> {
  if (ctx.range.end - ctx.range.start < deps.config.chunkSizeMin || bytes < 1) return;
  try {
    await deps.sql`
      select csv_import.record_load_cost(p_chunk_id => ${ctx.chunk.id}, p_bytes => ${bytes}::bigint,
        p_rows => ${load.rows}::bigint, p_rejected => ${load.rejected}::bigint,
        p_fields => ${ctx.target.columns.expected_fields}::int, p_work_ms => ${load.work.ms}::real)`;
  } catch (error) {
    log("warn", "load_cost_not_recorded", { job: ctx.chunk.jobId, chunk: ctx.chunk.index, error });
  }
}

/** Loads from the last committed marker to the chunk's end; a batch whose deferred constraints refused a row is
 * redone with constraints checked per statement (DeferredRefusal). */
async function loadToEnd(load: Load): Promise<"done" | "yield"> {
  for (;;) {
    try {
      return await loadFromMarker(load);
    } catch (error) {
      if (!(error instanceof DeferredRefusal)) throw error;
      load.immediateBatch = load.seq;
      log("info", "batch_redo_immediate", {
        job: load.ctx.chunk.jobId,
        chunk: load.ctx.chunk.index,
        batch: load.seq,
      });
    }
  }
}

/**
 * How a load's pieces build their COPY TEXT only when they need it (piece_text.ts), or null: only where pieces
 * go in binary (the fast path, COPY BINARY, the pipeline's own rights). The bytes are read again at the pieces'
 * offsets: the file's, or a compressed job's inflated data (again from the chunk's checkpoint).
 */
function deferredText(load: Load): ((piece: CopyPiece) => Promise<void>) | null {
  const { deps, ctx } = load;
  const fastRow = load.fastRow;
  if (fastRow === null || deps.config.copyFormat !== "binary" || !load.loader.canWriteFast) return null;
  const source: PieceTextSource = {
    readBytes: (from, to) => readFileBytes(deps.storage, ctx, load.scanned, from, to),
    format: ctx.target.dialect,
    dataStart: ctx.object.dataStart,
    maxRecordBytes: deps.config.maxRecordBytes,
    fastRow,
    converter: load.converter,
    work: load.work,
  };
  return (piece) => buildPieceText(source, piece);
}

/**
 * Reads from the last committed marker to the chunk's end, one transaction per batch. "yield": the invocation
 * nears its CPU or reject limit (WORKER_INVOCATION_WORK_MS, WORKER_INVOCATION_MAX_REJECTS) or its isolate's
 * work budget is spent (WORKER_ISOLATE_WORK_MS), and it hands the rest of the chunk to a fresh invocation.
 */
async function loadFromMarker(load: Load): Promise<"done" | "yield"> {
  const { deps, ctx } = load;
  const { config } = deps;
  const from = load.committed;
  const start = from?.offset ?? ctx.range.start;
  let reader!: ChunkReader;
  const source = new RowSource(
    (hooks) =>
      reader = createChunkReader({
        format: ctx.target.dialect,
        start,
        end: ctx.range.end,
        dataStart: ctx.object.dataStart,
        entry: from ? { entryParity: 0, linesBefore: from.line - 1, atRecordStart: true } : {
          entryParity: ctx.entry.parity ?? 0,
          linesBefore: ctx.entry.linesBefore ?? 0,
          atRecordStart: ctx.entry.atRecordStart ?? false,
        },
        maxRecordBytes: config.maxRecordBytes,
        ...hooks,
      }),
    ctx.compressed !== null
      ? readInflated(deps.storage, ctx, { from: start, done: () => reader.done, legs: load.inflateLegs })
      : readOwned(deps.storage, ctx, { from: start, done: () => reader.done, inMemory: load.scanned }),
    load.converter,
    load.fastRow,
    load.work,
    deferredText(load),
  );
  try {
    for (;;) {
      if (deps.signal?.aborted) throw deps.signal.reason;
      const batch = await runBatch(load, source, reader);
      load.seq++;
      load.batches++;
      load.rows += batch.parsed;
      load.rejected += batch.rejected;
      load.jobFinished = batch.jobFinished;
      if (batch.next.offset !== null && batch.next.line !== null) {
        load.committed = { offset: batch.next.offset, line: batch.next.line };
      }
      if (batch.final) return "done";
      if (
        load.work.ms >= config.invocationWorkMs || isolateSpent(config) ||
        load.rejected >= config.invocationMaxRejects
      ) {
        return "yield";
      }
    }
  } finally {
    await source.close(2 * config.chunksPerIsolate);
  }
}
