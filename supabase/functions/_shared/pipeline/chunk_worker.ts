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
 *   number, column, reason, raw text; a NUL in the text is stored as U+FFFD); rows parsed = loaded + rejected
 *   + skipped per batch (a row a BEFORE trigger dropped counts as skipped: loaded is what the table got).
 * - Whatever the target refuses per row (a constraint, a trigger's RAISE, a policy; deferred constraints are
 *   checked before commit_batch, see DeferredRefusal) becomes a reject; the rows are written with the rights
 *   csv_import.load_writer names (the uploader's for tables with RLS: docs/security.md).
 * - Bounded memory: one network read, two pieces of COPY lines (the one the database is taking, the one being
 *   parsed) and the batch's rejects; plus, when a load scans its own range first (below), that range, at most
 *   csv_import.inline_scan_max_bytes(); never the file.
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
 * - Failures: the file's fault (record too large, unterminated quote) fails the job via csv_import.fail_chunk
 *   (fatal); anything else is retried in place, then reported as a transient failure and SQL decides between
 *   retry with backoff and dead-letter. A lost lease or a stopped job ends the invocation without writing.
 *
 * Speed (measured on the 1M-row reference file, 8 MiB chunks, 2 cores shared with the database): the database
 * takes one COPY piece while the worker parses the next; plain records go from the file's bytes to COPY bytes
 * without strings (fast_row.ts; every record of that file, its quoted notes included); batches grow from
 * WORKER_BATCH_SIZE rows up to WORKER_BATCH_BYTES. Per load invocation: 350–420 ms CPU and ~60 MB peak before,
 * 140–220 ms and at most ~30 MB (mostly under 10) after; one chunk alone took 550–880 ms wall before, 300–400 ms
 * after.
 */
import type { Config } from "../platform/config.ts";
import type postgres from "postgres";
import { type ChunkReader, createChunkReader } from "../csv/chunk.ts";
import { CsvError } from "../csv/errors.ts";
import type { CsvFormat } from "../csv/format.ts";
import type { CsvRecord, RecordParserOptions } from "../csv/parser.ts";
import { compileFastRow, type FastRow } from "../load/fast_row.ts";
import { type ChunkSummary, scanChunk } from "../csv/scan.ts";
import type { Sql } from "../platform/db.ts";
import { CopyPiece, type PreparedRow } from "../load/copy_piece.ts";
import {
  BatchLoader,
  type BatchResult,
  type ConflictMode,
  type InflightPiece,
  type RowReject,
  type Writer,
} from "../load/loader.ts";
import { log, redact } from "../platform/log.ts";
import { compileRowConverter, type JobColumns, type RowConverter } from "../load/row_converter.ts";
import { withRetry } from "../platform/retry.ts";
import { ObjectChangedError, type ReadTarget, type StorageClient } from "../platform/storage.ts";

export interface ChunkDeps {
  sql: Sql;
  config: Config;
  storage: StorageClient;
  /** Aborts when the runtime is about to stop this instance: stop at the next batch boundary. */
  signal?: AbortSignal;
  /** Called when a load's inline scan made later chunks ready (the caller dispatches them). */
  onScanned?: () => void;
}

/** What processChunk adds for the chunk it works on: whether the heartbeat found the lease gone. */
interface WorkDeps extends ChunkDeps {
  leaseLost: () => boolean;
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
  /** A load only: scan the range inline first (its scan is not done; the range is small enough to hold). */
  scan_inline: boolean;
  bucket_id: string;
  object_name: string;
  /** The object version the job loads, and its ETag (every range response must carry it). */
  object_version: string;
  object_etag: string | null;
  /** Rejects the job had stored when the chunk was claimed. */
  rejects_stored: number | string;
  object_size: number;
  data_start: number;
  target_table: string;
  dialect: { delimiter: string; quote: string; newline: "\n" | "\r\n" | "\r" };
  columns: JobColumns;
  profile:
    | {
      on_conflict: ConflictMode;
      conflict_columns: string[] | null;
      date_style: "iso" | "dmy" | "mdy";
      max_stored_rejects?: number | string | null;
    }
    | null;
}

export type ChunkOutcome =
  | {
    outcome: "scanned" | "loaded" | "yielded";
    rows?: number;
    rejected?: number;
    /** A yielded load: the synchronous work it did before handing the rest of its chunk on. */
    workMs?: number;
    jobFinished?: boolean;
    /** A load: its fast-path COPY pieces by format (CopyPiece.binary). */
    pieces?: { binary: number; text: number };
  }
  | { outcome: "lease_lost" | "stopped" | "superseded" | "duplicate" | "interrupted" }
  | { outcome: "failed"; fatal: boolean; error: string; decision: string };

/** Ends the invocation without writing: the lease moved on, the job stopped, or another invocation won. */
class StopChunk extends Error {
  constructor(readonly reason: "lease_lost" | "stopped" | "superseded" | "duplicate" | "missing") {
    super(reason);
  }
}

/**
 * A batch's deferred constraints refused a row when checked before its commit: the batch is rolled back and
 * redone from its marker with constraints checked per statement, where refusals are isolated.
 */
class DeferredRefusal extends Error {}

/** The file's problem as the job's error: sentence case, with the line when the message lacks it. */
function describeCsvError(error: CsvError): string {
  const text = error.message.charAt(0).toUpperCase() + error.message.slice(1);
  return error.line !== undefined && !/\bline \d/.test(error.message) ? `Line ${error.line}: ${text}` : text;
}

const numberOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** How much work a chunk is, in load bytes (a scanned byte counts 1/8): what an invocation's budget counts. */
export function chunkWorkBytes(ctx: Pick<ChunkContext, "kind" | "start_offset" | "end_offset">): number {
  const bytes = Number(ctx.end_offset) - Number(ctx.start_offset);
  return ctx.kind === "scan" ? Math.ceil(bytes / 8) : bytes;
}

/** A chunk's outcome and the work it was (0 when the chunk was not processed). */
export type ChunkResult = ChunkOutcome & { workBytes: number };

export async function processChunk(
  deps: ChunkDeps,
  chunkId: number,
  leaseToken: string,
): Promise<ChunkResult> {
  const { sql } = deps;
  // Retried in place like every other statement: a connection the database just dropped (a restart) failing
  // this first read ended the invocation before it could report anything, stranding the claimed chunk until
  // its lease expired (LEASE_SECONDS; found by tests/faults_recovery_test.ts).
  const [row] = await withRetry(() =>
    sql<{ context: ChunkContext | null }[]>`
      select csv_import.chunk_context(${chunkId}, ${leaseToken}::uuid) as context`
  );
  const ctx = row?.context;
  if (!ctx) return { outcome: "lease_lost", workBytes: 0 };
  const workBytes = chunkWorkBytes(ctx);
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
  const heartbeat = startHeartbeat(deps, ctx, leaseToken);
  const work: WorkDeps = { ...deps, leaseLost: heartbeat.lost };
  try {
    const result = ctx.kind === "scan"
      ? await scan(work, ctx, leaseToken)
      : await load(work, ctx, leaseToken);
    log("info", `chunk_${result.outcome}`, {
      job: ctx.job_id,
      chunk: ctx.chunk_index,
      kind: ctx.kind,
      attempt,
      bytes: ctx.end_offset - ctx.start_offset,
      ...("rows" in result ? { rows: result.rows, rejected: result.rejected } : {}),
      ...("pieces" in result
        ? { binary_pieces: result.pieces?.binary, text_pieces: result.pieces?.text }
        : {}),
      ...("workMs" in result ? { work_ms: result.workMs } : {}),
      ms: Math.round(performance.now() - started),
    });
    // A yielded chunk spent this invocation's budget: it takes on nothing more (chunk/index.ts).
    return { ...result, workBytes: result.outcome === "yielded" ? Number.MAX_SAFE_INTEGER : workBytes };
  } catch (thrown) {
    // A response of another version: superseded when the job's version is gone, else a stale copy (transient).
    const error = thrown instanceof ObjectChangedError && !(await versionIsCurrent(deps, ctx))
      ? new StopChunk("superseded")
      : thrown;
    if (error instanceof StopChunk) {
      // A stopped job's chunk (or one whose object changed) is handed back now, not when its lease expires.
      const released = error.reason === "stopped" || error.reason === "superseded"
        ? await releaseStoppedChunk(deps, ctx, leaseToken)
        : undefined;
      log("info", "chunk_stopped", {
        job: ctx.job_id,
        chunk: ctx.chunk_index,
        kind: ctx.kind,
        attempt,
        outcome: error.reason,
        ...(released ? { chunk_status: released } : {}),
      });
      return { outcome: error.reason === "missing" ? "lease_lost" : error.reason, workBytes };
    }
    if (deps.signal?.aborted) {
      log("warn", "chunk_interrupted", {
        job: ctx.job_id,
        chunk: ctx.chunk_index,
        kind: ctx.kind,
        attempt,
        reason: String(deps.signal.reason),
      });
      return { outcome: "interrupted", workBytes };
    }
    const fatal = error instanceof CsvError;
    // Stored on the chunk and shown on the job: masked like a log line (a driver error may quote a URL).
    const message = redact(
      error instanceof CsvError
        ? describeCsvError(error)
        : error instanceof Error
        ? error.message
        : String(error),
    );
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
function startHeartbeat(deps: ChunkDeps, ctx: ChunkContext, leaseToken: string) {
  let lost = false;
  const seconds = deps.config.leaseSeconds;
  const timer = setInterval(() => {
    deps.sql<{ state: string }[]>`
      select csv_import.renew_lease(${ctx.chunk_id}, ${leaseToken}::uuid, make_interval(secs => ${seconds})) as state`
      .then(([row]) => {
        if (row?.state === "lost") lost = true;
      })
      .catch((error) =>
        log("warn", "lease_renewal_failed", { job: ctx.job_id, chunk: ctx.chunk_index, error })
      );
  }, (seconds * 1000) / 4);
  return { lost: () => lost, stop: () => clearInterval(timer) };
}

/** Whether the job's object version is still the object's (a differing ETag then means a stale CDN copy). */
async function versionIsCurrent(deps: ChunkDeps, ctx: ChunkContext): Promise<boolean> {
  const [{ current }] = await withRetry(() =>
    deps.sql<{ current: boolean }[]>`
      select csv_import.object_is_current(${ctx.bucket_id}, ${ctx.object_name}, ${ctx.object_version}) as current`
  );
  return current;
}

/** Hands a chunk of a stopped or superseded job back (csv_import.release_stopped_chunk); its status after. */
async function releaseStoppedChunk(deps: ChunkDeps, ctx: ChunkContext, leaseToken: string): Promise<string> {
  const [{ status }] = await withRetry(() =>
    deps.sql<{ status: string }[]>`
      select csv_import.release_stopped_chunk(${ctx.chunk_id}, ${leaseToken}::uuid) as status`
  );
  return status;
}

async function scan(deps: WorkDeps, ctx: ChunkContext, leaseToken: string): Promise<ChunkOutcome> {
  const summary = await readAndScan(deps, ctx, "reuse");
  const [{ result }] = await withRetry(() =>
    deps.sql<{ result: string }[]>`
      select csv_import.complete_scan(${ctx.chunk_id}, ${leaseToken}::uuid, ${summary.quoteParity}::smallint,
        ${summary.newlineCount}::bigint, ${summary.endsWithTerminator}) as result`
  );
  if (result !== "ok") throw new StopChunk("lease_lost");
  return { outcome: "scanned" };
}

/** Reads the chunk's whole range into `target` and summarises it (retried in place); checks it got every byte. */
async function readAndScan(deps: ChunkDeps, ctx: ChunkContext, target: ReadTarget): Promise<ChunkSummary> {
  const length = ctx.end_offset - ctx.start_offset;
  const summary = await withRetry(() =>
    scanChunk(
      deps.storage.readRange(ctx.bucket_id, ctx.object_name, ctx.start_offset, ctx.end_offset, target, {
        etag: ctx.object_etag,
      }),
      ctx.dialect,
    )
  );
  if (summary.bytes !== length) throw new Error(`Scan read ${summary.bytes} bytes of a ${length}-byte chunk`);
  return summary;
}

/** COPY data per fast-path piece: small enough that a refused piece wastes little, big enough that the
 * statements around it (savepoint, COPY, probe) cost nothing next to its data. Measured on the 1M-row file
 * (width 4, 3 runs each): 512 KiB → 1 MiB took the database from 3.1 to 3.0 CPU-s and the pipeline from
 * 0.63–0.66× to 0.66–0.69× of `\copy`; 2 MiB was no steadier and raised peak memory to ~55 MB. */
const PIECE_BYTES = 1024 * 1024;
/** At most this many pieces (subtransactions) per batch: PostgreSQL caches 64 subtransaction ids per backend;
 * past that every snapshot in the cluster gets slower (suboverflow). */
const MAX_PIECES_PER_BATCH = 32;

/**
 * COPY pieces kept for the next load of this worker: a piece's buffers grow to a piece's size (text ~1 MiB,
 * binary up to twice that) once, instead of once per chunk (~6 MB of allocations and copies per chunk, which
 * V8 answers with full collections). Taken and given back synchronously, so loads running at once in one
 * instance never share one; a load gives its pieces back when it closes its source, after its last COPY.
 */
const sparePieces: CopyPiece[] = [];
const SPARE_PIECES_KEPT = 2;

function takePiece(): CopyPiece {
  const piece = sparePieces.pop() ?? new CopyPiece();
  piece.reset();
  return piece;
}

function givePieceBack(piece: CopyPiece): void {
  if (sparePieces.length < SPARE_PIECES_KEPT) sparePieces.push(piece);
}

/** Most bytes parsed between two checks of the batch's limits (rows, bytes, rejects). */
const PUSH_BYTES = 32 * 1024;

/** What a reject costs beyond its text when it is held and sent (object, line, column): counted per reject. */
const REJECT_OVERHEAD_CHARS = 64;

/** A batch's rows as they are parsed: what the next COPY piece holds, and what commit_batch needs. */
class RowSource {
  readonly #reader: ChunkReader;
  readonly #input: ReadableStreamDefaultReader<Uint8Array>;
  readonly #converter: RowConverter;
  #ended = false;
  /** Two pieces take turns: one is filled while the database takes the other. */
  #spare: CopyPiece | null = takePiece();
  #spare2: CopyPiece | null = takePiece();
  readonly #pieces = [this.#spare!, this.#spare2!];
  /** The piece being filled: both paths append to it while the reader parses, in file order. */
  #current: CopyPiece | null = null;
  /** The current batch. */
  parsed = 0;
  chars = 0;
  pieces = 0;
  rejects: RowReject[] = [];
  /** The current batch's rejects' text, counted with its COPY bytes against the batch's byte limit. */
  rejectChars = 0;
  /** Rejects of the current batch past `detailBudget`: counted only (the job stores no more of them). */
  countedRejects = 0;
  /** How many rejects the job may still store (set by the caller): past it, rejects are counted only. */
  detailBudget = Number.POSITIVE_INFINITY;
  /** The invocation's synchronous work (ms), which parsing adds to (WORKER_INVOCATION_WORK_MS). */
  readonly #work: { ms: number };
  /** The part of the last read not parsed yet (see #read). */
  #unparsed: Uint8Array | null = null;

  constructor(
    makeReader: (hooks: Pick<RecordParserOptions, "fastRecord" | "onRecord">) => ChunkReader,
    input: ReadableStream<Uint8Array>,
    converter: RowConverter,
    fastRow: FastRow | null,
    work: { ms: number },
  ) {
    this.#work = work;
    this.#reader = makeReader({
      // Plain records go straight from bytes into the piece; the others come back as records, in between,
      // so that the piece holds every row in file order (which row of two duplicates wins depends on it).
      fastRecord: fastRow === null ? undefined : (work, bs, be, line, offset, quoted) => {
        const piece = this.#current!;
        if (!fastRow(work, bs, be, piece, quoted)) return false;
        piece.endRow(line, offset, be - bs);
        this.parsed++;
        return true;
      },
      onRecord: (record) => this.#take(record, this.#current!),
    });
    this.#input = input.getReader();
    this.#converter = converter;
  }

  /** True when every owned record has been handed out. */
  get finished(): boolean {
    return this.#ended;
  }

  /** Starts a new batch (counters only; the reader goes on where it is). */
  resetBatch(): void {
    this.parsed = 0;
    this.chars = 0;
    this.pieces = 0;
    this.rejects = [];
    this.rejectChars = 0;
    this.countedRejects = 0;
  }

  /** Gives back a piece once the database is done with it (settled), for reuse. */
  release(piece: CopyPiece): void {
    piece.reset();
    if (this.#spare === null) this.#spare = piece;
    else this.#spare2 = piece;
  }

  /**
   * The next piece of the current batch: returns once PIECE_BYTES of COPY data are ready, or the batch is
   * full (`rows` parsed or `maxBytes` of COPY data), or the chunk has no more records; all checked between
   * reads, so a batch ends where the reader's nextOffset / nextLine are exact. `last` marks the batch's final
   * piece. At most two pieces are out at a time (one being filled, one with the database): the one before the
   * previous must have been released.
   */
  async nextPiece(
    rows: number,
    maxBytes: number,
    maxRejects: number,
  ): Promise<{ piece: CopyPiece; last: boolean }> {
    const piece = this.#spare ?? this.#spare2;
    if (piece === null) throw new Error("RowSource: both pieces are still in use");
    if (piece === this.#spare) this.#spare = null;
    else this.#spare2 = null;
    this.#current = piece;
    for (;;) {
      if (
        this.#ended || this.parsed >= rows || this.chars + this.rejectChars + piece.length >= maxBytes ||
        this.rejects.length + this.countedRejects >= maxRejects ||
        this.pieces + 1 >= MAX_PIECES_PER_BATCH
      ) return this.#cut(piece, true);
      if (piece.length >= PIECE_BYTES) return this.#cut(piece, false);
      await this.#read();
    }
  }

  #cut(piece: CopyPiece, last: boolean): { piece: CopyPiece; last: boolean } {
    this.#current = null;
    if (piece.count > 0) this.pieces++;
    this.chars += piece.length;
    return { piece, last };
  }

  #take(record: CsvRecord, piece: CopyPiece): void {
    this.parsed++;
    const converted = this.#converter.convert(record);
    if (typeof converted === "string") {
      piece.add(converted, record.line, record.offset, record.byteLength);
    } else if (this.rejects.length >= this.detailBudget) {
      this.countedRejects++; // nothing held: the job has stored all the rejects it may
    } else {
      const raw = record.raw;
      this.rejects.push({ line: record.line, column: converted.column, reason: converted.reason, raw });
      this.rejectChars += raw.length + converted.reason.length + REJECT_OVERHEAD_CHARS;
    }
  }

  /** One read from Storage, parsed into the current piece (and the batch's rejects). */
  async #read(): Promise<void> {
    let value = this.#unparsed;
    if (value === null) {
      const read = await this.#input.read();
      if (read.done) {
        if (!this.#reader.done) this.#reader.finish();
        this.#ended = true;
        return;
      }
      value = read.value;
    }
    // At most PUSH_BYTES at a time, so that a batch ends near its limits however short the rows (a 256 KiB read
    // of 2-byte rows is 131,072 records). The rest waits here: the next read from the input, which may reuse the
    // buffer, comes only once it is parsed.
    this.#unparsed = value.byteLength > PUSH_BYTES ? value.subarray(PUSH_BYTES) : null;
    const started = performance.now();
    this.#reader.push(value.byteLength > PUSH_BYTES ? value.subarray(0, PUSH_BYTES) : value);
    if (this.#reader.done) this.#ended = true;
    this.#work.ms += performance.now() - started;
  }

  /** Stops the Storage read (leaving the loop early cancels the request) and gives the pieces back. */
  async close(): Promise<void> {
    await this.#input.cancel().catch(() => {});
    for (const piece of this.#pieces.splice(0)) givePieceBack(piece);
  }
}

/**
 * Buffers that held a load's range while it was scanned inline, kept for the next such load in this worker:
 * a range is read into one buffer, not into an array per network read (storage.ts ReadTarget). At most one is
 * kept, the largest so far (a range is at most csv_import.inline_scan_max_bytes()). Taken and given back
 * synchronously, so loads running at once in one instance never share one.
 */
const rangeBuffers: Uint8Array[] = [];

function takeRangeBuffer(length: number): Uint8Array {
  const kept = rangeBuffers.pop();
  if (kept !== undefined && kept.byteLength >= length) return kept;
  return new Uint8Array(length);
}

function giveBackRangeBuffer(buffer: Uint8Array): void {
  if (rangeBuffers.length === 0) rangeBuffers.push(buffer);
  else if (rangeBuffers[0].byteLength < buffer.byteLength) rangeBuffers[0] = buffer;
}

async function load(deps: WorkDeps, ctx: ChunkContext, leaseToken: string): Promise<ChunkOutcome> {
  if (!ctx.scan_inline || ctx.resume_offset !== null) return await loadRange(deps, ctx, leaseToken, null);
  const buffer = takeRangeBuffer(ctx.end_offset - ctx.start_offset);
  try {
    return await loadRange(deps, ctx, leaseToken, await scanInline(deps, ctx, leaseToken, buffer));
  } finally {
    giveBackRangeBuffer(buffer);
  }
}

/** Loads the chunk's records; `scanned`: its range's bytes when the load scanned it inline. */
async function loadRange(
  deps: WorkDeps,
  ctx: ChunkContext,
  leaseToken: string,
  scanned: Uint8Array | null,
): Promise<ChunkOutcome> {
  const { sql, config } = deps;
  const format: CsvFormat = ctx.dialect;
  const converter: RowConverter = compileRowConverter(ctx.columns, {
    dateStyle: ctx.profile?.date_style ?? "iso",
  });
  // Records in plain forms skip the string path (see fast_row.ts).
  const fastRow = compileFastRow(ctx.columns, format, { binary: config.copyFormat === "binary" });
  // Whose rights the rows are written with and whether a signed-in uploader reads the rejects
  // (docs/security.md), and whether constraints checked only at commit are to be checked before commit_batch
  // instead (see DeferredRefusal).
  const [{ writer, uploaded_by_user, deferred }] = await withRetry(() =>
    sql<{ writer: Writer | null; uploaded_by_user: boolean; deferred: boolean }[]>`
      select csv_import.load_writer(${ctx.job_id}) as writer,
        (select owner_id is not null from csv_import.jobs where id = ${ctx.job_id}) as uploaded_by_user,
        csv_import.has_deferred_constraints(${ctx.target_table}) as deferred`
  );
  const loader = new BatchLoader({
    writer,
    hideDetail: uploaded_by_user,
    table: ctx.target_table,
    columns: ctx.columns.mapped.map((m) => ({
      name: m.column.name,
      type: m.column.type,
      identity: m.column.identity,
    })),
    mode: ctx.profile?.on_conflict ?? "insert",
    conflictColumns: ctx.profile?.conflict_columns ?? [],
    jobId: ctx.job_id,
  });

  /** The batch (by seq) being redone with immediate constraint checks, if any. */
  let immediateBatch = -1;

  // A profile may lower the per-job cap on stored rejects, never raise it.
  const profileCap = ctx.profile?.max_stored_rejects;
  const maxStoredRejects = profileCap == null
    ? config.maxStoredRejects
    : Math.min(config.maxStoredRejects, Number(profileCap));
  // How many more rejects the job may store, as far as this worker knows (commit_batch enforces it exactly).
  let storedLeft = maxStoredRejects - Number(ctx.rejects_stored ?? 0);
  // This invocation's synchronous work so far (ms): past WORKER_INVOCATION_WORK_MS the chunk is handed on.
  const work = { ms: 0 };
  let seq = ctx.batches_committed;
  // The last committed progress marker: where a retry (in place, or by SQL) resumes.
  let committed: { offset: number; line: number } | null = ctx.resume_offset !== null
    ? { offset: ctx.resume_offset, line: ctx.resume_line! }
    : null;
  let totalRows = 0;
  let totalRejected = 0;
  let jobFinished = false;
  let batchesThisInvocation = 0;

  const commitBatch = async (
    tx: postgres.TransactionSql,
    firstRecordAt: number | null,
    next: { offset: number | null; line: number | null },
    parsed: number,
    written: { loaded: number; skipped: number },
    rejects: RowReject[],
    final: boolean,
    countedRejects = 0,
  ) => {
    // Details only for the rejects the job can still store (MAX_STORED_REJECTS); the others are counted.
    const detailed = rejects.length <= storedLeft ? rejects : rejects.slice(0, Math.max(0, storedLeft));
    const counted = countedRejects + rejects.length - detailed.length;
    await fillRaw(deps, ctx, detailed, scanned);
    const started = performance.now();
    const stored = JSON.stringify(detailed.map((r) => ({
      line: r.line,
      column: r.column,
      reason: noNul(r.reason),
      raw: noNul(r.raw),
    })));
    work.ms += performance.now() - started;
    const [{ outcome }] = await tx<
      {
        outcome: { job_finished?: boolean; rejects_stored?: number; refused?: "stopped" | "superseded" };
      }[]
    >`
      select csv_import.commit_batch(${ctx.chunk_id}, ${leaseToken}::uuid, ${seq}, ${firstRecordAt}::bigint,
        ${next.offset}::bigint, ${next.line}::bigint, ${parsed}, ${written.loaded}, ${written.skipped},
        ${stored}::text::jsonb, ${final}, make_interval(secs => ${config.leaseSeconds}), ${maxStoredRejects},
        ${counted}) as outcome`;
    if (outcome.refused) throw new StopChunk(outcome.refused);
    storedLeft = maxStoredRejects - Number(outcome.rejects_stored ?? 0);
    return outcome as { job_finished: boolean };
  };

  // The batch's transaction is bounded (see DEFAULTS.BATCH_*_TIMEOUT_SECONDS): a frozen worker's chunk row is
  // released by the database. set_config(…, true) lasts until the batch commits or rolls back.
  const statementTimeout = `${config.batchStatementTimeoutSeconds}s`;
  const idleTimeout = `${config.batchIdleTimeoutSeconds}s`;
  const beginBatch = async (tx: postgres.TransactionSql) => {
    if (deps.leaseLost()) throw new StopChunk("lease_lost");
    const [{ state }] = await tx<{ state: string }[]>`
      select set_config('statement_timeout', ${statementTimeout}, true),
             set_config('idle_in_transaction_session_timeout', ${idleTimeout}, true),
             csv_import.begin_batch(${ctx.chunk_id}, ${leaseToken}::uuid, ${seq}) as state`;
    if (state !== "ok") throw new StopChunk(state as StopChunk["reason"]);
  };

  // The range's bytes when the load scanned it inline: the first read from the chunk's start takes them.
  let prefetched = committed === null ? scanned : null;

  if (committed !== null && committed.offset >= ctx.end_offset) {
    // Every owned record is committed; only the final marker is missing.
    await withRetry(() =>
      sql.begin(async (tx) => {
        await beginBatch(tx);
        jobFinished =
          (await commitBatch(tx, null, committed!, 0, { loaded: 0, skipped: 0 }, [], true)).job_finished;
      })
    );
    return { outcome: "loaded", rows: 0, rejected: 0, jobFinished };
  }

  /** Reads from the last committed marker to the chunk's end, one transaction per batch. */
  const loadFromMarker = async () => {
    const from = committed;
    const inMemory = from === null ? prefetched : null;
    prefetched = null;
    let reader!: ChunkReader;
    const source = new RowSource(
      (hooks) =>
        reader = createChunkReader({
          format,
          start: from?.offset ?? ctx.start_offset,
          end: ctx.end_offset,
          dataStart: ctx.data_start,
          entry: from ? { entryParity: 0, linesBefore: from.line - 1, atRecordStart: true } : {
            entryParity: ctx.entry_parity ?? 0,
            linesBefore: ctx.lines_before ?? 0,
            atRecordStart: ctx.at_record_start ?? false,
          },
          maxRecordBytes: config.maxRecordBytes,
          ...hooks,
        }),
      readOwned(deps.storage, ctx, from?.offset ?? ctx.start_offset, () => reader.done, inMemory),
      converter,
      fastRow,
      work,
    );
    try {
      for (;;) {
        if (deps.signal?.aborted) throw deps.signal.reason;
        // Batches grow: the first commits quickly (first rows visible early, resumable progress), later ones
        // amortise the per-transaction cost. See DEFAULTS.WORKER_BATCH_BYTES for the measurements.
        const rowLimit = config.batchSize * 2 ** Math.min(batchesThisInvocation, 20);
        source.resetBatch();
        source.detailBudget = Math.max(0, storedLeft);
        const result = await sql.begin(async (tx) => {
          await beginBatch(tx);
          if (immediateBatch === seq) await loader.checkConstraintsImmediately(tx);
          const written = { loaded: 0, skipped: 0 };
          const dbRejects: RowReject[] = [];
          const add = (r: BatchResult) => {
            written.loaded += r.loaded;
            written.skipped += r.skipped;
            for (const reject of r.rejects) dbRejects.push(reject);
          };
          if (loader.canWriteFast) {
            // One piece ahead: the database runs the COPY of a piece while the next one is parsed.
            let inflight: InflightPiece | null = null;
            const settle = async (done: InflightPiece) => {
              add(await loader.settlePiece(tx, done));
              source.release(done.piece as CopyPiece);
            };
            for (;;) {
              const { piece, last } = await source.nextPiece(
                rowLimit,
                config.batchBytes,
                config.batchMaxRejects,
              );
              if (inflight) await settle(inflight);
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
              const { piece, last } = await source.nextPiece(
                rowLimit,
                config.batchBytes,
                config.batchMaxRejects,
              );
              for (const row of piece.rows()) rows.push(row);
              source.release(piece);
              if (last) break;
            }
            add(await loader.writeIsolating(tx, rows));
          }
          const final = source.finished;
          const next = { offset: reader.nextOffset, line: reader.nextLine };
          const rejects = source.rejects.length === 0 ? dbRejects : [...source.rejects, ...dbRejects];
          const firstRecordAt = ctx.resume_offset === null ? reader.firstOffset ?? null : null;
          if (deferred && immediateBatch !== seq && !await loader.deferredConstraintsHold(tx)) {
            throw new DeferredRefusal();
          }
          const outcome = await commitBatch(
            tx,
            firstRecordAt,
            next,
            source.parsed,
            written,
            rejects,
            final,
            source.countedRejects,
          );
          return {
            outcome,
            final,
            next,
            rejected: rejects.length + source.countedRejects,
            parsed: source.parsed,
          };
        });
        seq++;
        batchesThisInvocation++;
        totalRows += result.parsed;
        totalRejected += result.rejected;
        jobFinished = result.outcome.job_finished;
        if (result.next.offset !== null && result.next.line !== null) {
          committed = { offset: result.next.offset, line: result.next.line };
        }
        if (result.final) return "done";
        // Hand the rest to a fresh invocation before this one nears its CPU or memory limit
        // (WORKER_INVOCATION_WORK_MS, WORKER_INVOCATION_MAX_REJECTS).
        if (work.ms >= config.invocationWorkMs || totalRejected >= config.invocationMaxRejects) {
          return "yield";
        }
      }
    } finally {
      await source.close();
    }
  };

  // A transient failure (Storage, database) rolls back the open batch; the retry resumes after the last
  // committed one, in place.
  const loadToEnd = async () => {
    for (;;) {
      try {
        return await loadFromMarker();
      } catch (error) {
        if (!(error instanceof DeferredRefusal)) throw error;
        immediateBatch = seq;
        log("info", "batch_redo_immediate", { job: ctx.job_id, chunk: ctx.chunk_index, batch: seq });
      }
    }
  };
  const ended = await withRetry(loadToEnd, {
    onRetry: (error, n) =>
      log("warn", "batch_retry", { job: ctx.job_id, chunk: ctx.chunk_index, batch: seq, attempt: n, error }),
  });
  if (ended === "yield") {
    const [{ state }] = await withRetry(() =>
      sql<{ state: string }[]>`select csv_import.yield_chunk(${ctx.chunk_id}, ${leaseToken}::uuid) as state`
    );
    if (state !== "yielded") throw new StopChunk("lease_lost");
    return { outcome: "yielded", rows: totalRows, rejected: totalRejected, workMs: Math.round(work.ms) };
  }
  return {
    outcome: "loaded",
    rows: totalRows,
    rejected: totalRejected,
    jobFinished,
    pieces: loader.piecesSent,
  };
}

/**
 * Reads the load's whole range into `buffer`, reports its scan summary and returns the range's bytes (a view of
 * `buffer`) for loading. Throws StopChunk when the lease is gone.
 */
async function scanInline(
  deps: ChunkDeps,
  ctx: ChunkContext,
  leaseToken: string,
  buffer: Uint8Array,
): Promise<Uint8Array> {
  const summary = await readAndScan(deps, ctx, buffer);
  const [{ result }] = await withRetry(() =>
    deps.sql<{ result: string }[]>`
      select csv_import.complete_inline_scan(${ctx.chunk_id}, ${leaseToken}::uuid,
        ${summary.quoteParity}::smallint, ${summary.newlineCount}::bigint, ${summary.endsWithTerminator}) as result`
  );
  if (result !== "ok") throw new StopChunk("lease_lost");
  deps.onScanned?.();
  return buffer.subarray(0, ctx.end_offset - ctx.start_offset);
}

/** How far past end_offset a load reads at a time to finish its last record. */
const TAIL_READ_BYTES = 64 * 1024;
/** How much of a range held in memory is handed to the parser at a time: the batch loop cuts COPY pieces
 * between pushes, so a push must stay well under PIECE_BYTES. */
const IN_MEMORY_SLICE_BYTES = 128 * 1024;

/**
 * The bytes a load needs: [from, end_offset) (from the range's bytes when the load holds them: `inMemory`,
 * which starts at the chunk's start), then past it in TAIL_READ_BYTES steps until the reader has its last
 * record. Why not one open-ended request: the Storage server streams ahead of the reader by whatever the
 * connection buffers (measured on the local stand-in: megabytes per chunk), all read and sent for nothing.
 * Storage reads reuse one scratch buffer ("reuse"): the chunk reader copies what it keeps before it asks for
 * the next piece.
 */
function readOwned(
  storage: StorageClient,
  ctx: ChunkContext,
  from: number,
  done: () => boolean,
  inMemory: Uint8Array | null,
): ReadableStream<Uint8Array> {
  const version = { etag: ctx.object_etag };
  async function* pieces() {
    if (inMemory !== null) {
      for (let at = 0; at < inMemory.byteLength; at += IN_MEMORY_SLICE_BYTES) {
        yield inMemory.subarray(at, at + IN_MEMORY_SLICE_BYTES);
      }
    } else if (from < ctx.end_offset) {
      yield* storage.readRange(ctx.bucket_id, ctx.object_name, from, ctx.end_offset, "reuse", version);
    }
    for (let at = Math.max(from, ctx.end_offset); !done() && at < ctx.object_size; at += TAIL_READ_BYTES) {
      const to = Math.min(at + TAIL_READ_BYTES, ctx.object_size);
      yield* storage.readRange(ctx.bucket_id, ctx.object_name, at, to, "reuse", version);
    }
  }
  return ReadableStream.from(pieces());
}

/** Most bytes one read of fillRaw fetches: refused rows close together share a read. */
const RAW_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Fills in the raw text of rows the database refused (the fast path keeps no raw text per row): from the range's
 * bytes when the load holds them (`inMemory`, which starts at the chunk's start), else by reading the file once
 * per window of at most RAW_WINDOW_BYTES that covers refused rows. It used to read every row on its own, inside
 * the batch's transaction: a chunk of 30,000 refused rows (a re-imported file) ran past the CPU limit on every
 * attempt until it was dead-lettered.
 */
async function fillRaw(
  deps: ChunkDeps,
  ctx: ChunkContext,
  rejects: RowReject[],
  inMemory: Uint8Array | null,
): Promise<void> {
  const missing = rejects.filter((r) =>
    r.raw === null && r.offset !== undefined && r.byteLength !== undefined
  );
  if (missing.length === 0) return;
  const inRange = (r: RowReject) =>
    inMemory !== null && r.offset! >= ctx.start_offset &&
    r.offset! + r.byteLength! <= ctx.start_offset + inMemory.byteLength;
  const toRead: RowReject[] = [];
  for (const reject of missing) {
    if (inRange(reject)) {
      const at = reject.offset! - ctx.start_offset;
      reject.raw = LOSSY.decode(inMemory!.subarray(at, at + reject.byteLength!));
    } else {
      toRead.push(reject);
    }
  }
  toRead.sort((a, b) => a.offset! - b.offset!);
  for (let i = 0; i < toRead.length;) {
    const from = toRead[i].offset!;
    let to = from + toRead[i].byteLength!;
    let j = i + 1;
    while (j < toRead.length && toRead[j].offset! + toRead[j].byteLength! - from <= RAW_WINDOW_BYTES) {
      to = Math.max(to, toRead[j].offset! + toRead[j].byteLength!);
      j++;
    }
    const bytes = await deps.storage.readBytes(ctx.bucket_id, ctx.object_name, from, to, {
      etag: ctx.object_etag,
    });
    for (const reject of toRead.slice(i, j)) {
      reject.raw = LOSSY.decode(
        bytes.subarray(reject.offset! - from, reject.offset! - from + reject.byteLength!),
      );
    }
    i = j;
  }
}

const LOSSY = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A reject's text with each NUL shown as U+FFFD: PostgreSQL text (and jsonb, which commit_batch receives)
 * cannot hold U+0000, and one such record used to fail its whole batch, over and over, until the chunk was
 * dead-lettered.
 */
function noNul<T extends string | null>(text: T): T {
  return (text !== null && text.indexOf("\0") !== -1 ? text.replaceAll("\0", "\uFFFD") : text) as T;
}
