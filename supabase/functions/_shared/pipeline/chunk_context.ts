/**
 * What one chunk invocation knows about its chunk: csv_import.chunk_context's reply, read once per chunk and
 * grouped by what each step needs (the chunk and its lease, its byte range, the object version it reads, where
 * the parser enters the range, where a retried load resumes, what a load writes), and what it runs with.
 *
 * Invariants:
 * - A context exists only while the chunk is running under this invocation's lease token: no context from the
 *   database means the lease is gone, and nothing is read or written.
 * - Byte ranges are half-open file offsets, [start, end); offsets, sizes and line numbers are below 2^53, so
 *   they are plain numbers (platform/db.ts; chunk_context returns them inside jsonb, as JSON numbers).
 * - The object version is fixed per job: every Storage read of the chunk carries `object.etag`.
 */
import { type Checkpoint, checkpointFromJson, type Codec } from "../compression/inflate.ts";
import type { CsvFormat } from "../csv/format.ts";
import type { ConflictMode } from "../load/loader.ts";
import type { JobColumns } from "../load/row_converter.ts";
import type { Config } from "../platform/config.ts";
import type { Sql } from "../platform/db.ts";
import { withRetry } from "../platform/retry.ts";
import type { StorageClient } from "../platform/storage.ts";
import type { ChunkKind, StopReason } from "./sql_replies.ts";

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
export interface WorkDeps extends ChunkDeps {
  leaseLost: () => boolean;
}

/** The object version a job loads: every range read must carry its ETag (platform/storage.ts). */
export interface ObjectVersion {
  bucket: string;
  name: string;
  version: string;
  etag: string | null;
  size: number;
  /** Where the data starts (after the header record). */
  dataStart: number;
}

/**
 * A compressed upload's stream (csv_import.jobs.compression), as registration planned it: offsets are the
 * object's (compressed) bytes; the job's ranges, markers and rejects are offsets of the decompressed data.
 */
export interface JobCompression {
  codec: Codec;
  /** Where the compressed stream starts in the object (a zip member's data; 0 for gzip). */
  data_offset: number;
  /** Where it ends (exclusive): a zip member's data end, the object's size for gzip. */
  data_end: number;
  /** A zip member's name (null for gzip). */
  member: string | null;
  /** A zip member's CRC-32 and size from the central directory, checked at the end (null for gzip). */
  expected: { crc32: number; size: number } | null;
  /** The decompressed data may not be larger (MAX_FILE_BYTES, or the profile's max_file_bytes). */
  max_data_bytes: number;
  /** COMPRESSION_MAX_RATIO, judged once ratio_after_bytes are out. */
  max_ratio: number;
  ratio_after_bytes: number;
}

/** A job's import profile, as far as a load uses it; null when the job has none. */
export interface LoadProfile {
  on_conflict: ConflictMode;
  conflict_columns: string[] | null;
  date_style: "iso" | "dmy" | "mdy";
  max_stored_rejects?: number | null;
}

export interface ChunkContext {
  /** The chunk and the lease this invocation holds on it. */
  chunk: {
    id: number;
    jobId: number;
    kind: ChunkKind;
    index: number;
    leaseToken: string;
    attempts: number;
    maxAttempts: number;
  };
  /** The chunk's bytes: [start, end) of the object. */
  range: { start: number; end: number };
  object: ObjectVersion;
  /** How the parser enters the range (from the scans of the chunks before it); null until they are known. */
  entry: { parity: 0 | 1 | null; linesBefore: number | null; atRecordStart: boolean | null };
  /** A load's progress: batches committed, and the marker after the last one (null: none committed yet). */
  resume: { batches: number; offset: number | null; line: number | null };
  /** A load only: scan the range inline first (its scan is not done; the range is small enough to hold). */
  scanInline: boolean;
  /**
   * A compressed job: its stream, the checkpoint this chunk resumes inflating from (null: the data's start), a
   * load's checkpoint at its range's end (null: the last range), the decompressed size once known, and the job's
   * chunk size (the chain's ranges).
   */
  compressed: {
    stream: JobCompression;
    checkpoint: Checkpoint | null;
    endCheckpoint: Checkpoint | null;
    dataSize: number | null;
    chunkSize: number;
    /** Object bytes the chain had consumed when the chunk was claimed. */
    inflatedIn: number;
  } | null;
  /** What a load writes, and how. */
  target: {
    table: string;
    dialect: CsvFormat;
    columns: JobColumns;
    profile: LoadProfile | null;
    /** Rejects the job had stored when the chunk was claimed. */
    rejectsStored: number;
  };
}

/** csv_import.chunk_context's jsonb, as the database spells it. */
interface ChunkContextRow {
  chunk_id: number;
  job_id: number;
  kind: ChunkKind;
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
  scan_inline: boolean;
  bucket_id: string;
  object_name: string;
  object_version: string;
  object_etag: string | null;
  rejects_stored: number | null;
  object_size: number;
  data_start: number;
  target_table: string;
  dialect: CsvFormat;
  columns: JobColumns;
  profile: LoadProfile | null;
  compression: JobCompression | null;
  checkpoint: Parameters<typeof checkpointFromJson>[0] | null;
  end_checkpoint: Parameters<typeof checkpointFromJson>[0] | null;
  data_size: number | null;
  chunk_size: number;
  inflated_in: number;
}

/**
 * The context of a chunk this invocation holds the lease of, or null when it does not (any more). Retried in
 * place like every other statement: a connection the database just dropped (a restart) must not end the
 * invocation before it can report anything (tests/faults_recovery_test.ts).
 */
export async function readChunkContext(
  sql: Sql,
  chunkId: number,
  leaseToken: string,
): Promise<ChunkContext | null> {
  const [row] = await withRetry(() =>
    sql<{ context: ChunkContextRow | null }[]>`
      select csv_import.chunk_context(${chunkId}, ${leaseToken}::uuid) as context`
  );
  const c = row?.context;
  if (!c) return null;
  return {
    chunk: {
      id: c.chunk_id,
      jobId: c.job_id,
      kind: c.kind,
      index: c.chunk_index,
      leaseToken,
      attempts: c.attempts,
      maxAttempts: c.max_attempts,
    },
    range: { start: c.start_offset, end: c.end_offset },
    object: {
      bucket: c.bucket_id,
      name: c.object_name,
      version: c.object_version,
      etag: c.object_etag,
      size: c.object_size,
      dataStart: c.data_start,
    },
    entry: { parity: c.entry_parity, linesBefore: c.lines_before, atRecordStart: c.at_record_start },
    resume: { batches: c.batches_committed, offset: c.resume_offset, line: c.resume_line },
    scanInline: c.scan_inline,
    compressed: c.compression === null ? null : {
      stream: c.compression,
      checkpoint: c.checkpoint === null ? null : checkpointFromJson(c.checkpoint),
      endCheckpoint: c.end_checkpoint === null ? null : checkpointFromJson(c.end_checkpoint),
      dataSize: c.data_size,
      chunkSize: c.chunk_size,
      inflatedIn: c.inflated_in,
    },
    target: {
      table: c.target_table,
      dialect: c.dialect,
      columns: c.columns,
      profile: c.profile,
      rejectsStored: c.rejects_stored ?? 0,
    },
  };
}

/**
 * How much work a chunk is, in load bytes: what an invocation's budget counts. A scanned byte counts 1/8; so does a
 * byte an inflate step puts out (pako inflates and the scan counts ~150 MB/s here, a load ~20 MB/s), of at most
 * INFLATE_STEP_BYTES, and of what is left to inflate at up to 16 times the compressed bytes left (a small file's
 * chain is little work).
 */
export function chunkWorkBytes(
  ctx: Pick<ChunkContext, "chunk" | "range" | "compressed">,
  inflateStepBytes: number,
): number {
  if (ctx.chunk.kind === "inflate") {
    const left = ctx.compressed === null ? 0 : ctx.compressed.stream.data_end - ctx.compressed.inflatedIn;
    return Math.ceil(Math.min(inflateStepBytes, Math.max(left, 0) * 16) / 8);
  }
  const bytes = ctx.range.end - ctx.range.start;
  return ctx.chunk.kind === "scan" ? Math.ceil(bytes / 8) : bytes;
}

/** Ends the invocation without writing: the lease moved on, the job stopped, or another invocation won. */
export class StopChunk extends Error {
  constructor(readonly reason: StopReason) {
    super(reason);
  }
}
