/**
 * The chunk size registration plans a job with: from the file's size, the profile and what loads into the same
 * table measured (migration 20261216000000_chunk_sizes_from_measured_cost.sql).
 *
 * - A profile's `chunk_size_bytes` is the operator's choice and is kept as it is.
 * - Otherwise the size is CHUNK_SIZE, lowered when the measured work per row (the table's recent loads, or for a
 *   table without any, other tables' work per field times this file's fields: csv_import.measured_row_cost),
 *   times this file's rows per MiB (counted in the head registration already read), says a chunk of CHUNK_SIZE
 *   would do more than CHUNK_WORK_MS of synchronous work: then the whole MiBs that fit it, never below
 *   CHUNK_SIZE_MIN. Never raised above CHUNK_SIZE: a load holds its range in memory, and CHUNK_SIZE is the size
 *   whose memory was measured inside the budget (platform/config.ts).
 * - Then {@link boundedChunkSize}: raised as far as MAX_CHUNKS_PER_JOB needs, on whole code units.
 *
 * Invariants: every function here is pure; the planned size is at least 1 and a multiple of `unitBytes`; with no
 * measurement, or with the cost switched off (CHUNK_WORK_MS = 0), the plan is what it was before costs existed.
 */
import { type CsvFormat } from "../csv/format.ts";
import { createScanner } from "../csv/scan.ts";

const MIB = 1024 * 1024;

/** Fewest records a head must hold for its rows per MiB to stand for the file's. */
const MIN_SAMPLE_RECORDS = 16;

/** What the chunk size was chosen from (logged with the plan). */
export interface ChunkCost {
  /** Measured synchronous work per row, ms (csv_import.measured_row_cost). */
  msPerRow: number;
  /** This file's rows per MiB, from its head. */
  rowsPerMiB: number;
}

/** The settings the choice reads (platform/config.ts). */
export interface ChunkSizeSettings {
  chunkSize: number;
  chunkSizeMin: number;
  chunkWorkMs: number;
  maxChunksPerJob: number;
}

/**
 * The chunk size for a job of `dataBytes` (see the module doc). `profileChunkSize`: the profile's
 * `chunk_size_bytes`, or null; `cost`: null when nothing was measured or the head has too few rows to count.
 */
export function plannedChunkSize(
  dataBytes: number,
  profileChunkSize: number | null,
  cost: ChunkCost | null,
  settings: ChunkSizeSettings,
  unitBytes = 1,
): number {
  const requested = profileChunkSize ?? costedChunkSize(cost, settings);
  return boundedChunkSize(dataBytes, requested, settings.maxChunksPerJob, unitBytes);
}

/** CHUNK_SIZE, or the whole MiBs of work CHUNK_WORK_MS allows when fewer (module doc). */
export function costedChunkSize(cost: ChunkCost | null, settings: ChunkSizeSettings): number {
  const { chunkSize, chunkSizeMin, chunkWorkMs } = settings;
  if (cost === null || chunkWorkMs === 0 || !(cost.msPerRow > 0) || !(cost.rowsPerMiB > 0)) return chunkSize;
  const msPerMiB = cost.msPerRow * cost.rowsPerMiB;
  if (msPerMiB * (chunkSize / MIB) <= chunkWorkMs) return chunkSize;
  const fitting = Math.floor(chunkWorkMs / msPerMiB) * MIB;
  return Math.min(chunkSize, Math.max(chunkSizeMin, fitting));
}

/**
 * The chunk size a job of `dataBytes` gets: the requested one, raised just enough that the job has at most
 * `maxChunks` load chunks (MAX_CHUNKS_PER_JOB), so one job's chunk rows cannot slow every other job's claims;
 * then up to a whole number of `unitBytes`, so that every chunk edge falls between two code units (2 in UTF-16,
 * whose data starts at an even offset: a 2-byte BOM, then whole units).
 */
export function boundedChunkSize(
  dataBytes: number,
  requested: number,
  maxChunks: number,
  unitBytes = 1,
): number {
  const size = Math.max(requested, Math.ceil(Math.max(dataBytes, 0) / maxChunks), 1);
  return Math.ceil(size / unitBytes) * unitBytes;
}

/**
 * Rows per MiB of `sample` (bytes of the file's data, from a record's start), counted as line breaks: a quoted
 * line break counts too, which only makes a file of multi-line records look costlier (smaller chunks), never
 * cheaper. Null when the sample holds fewer than MIN_SAMPLE_RECORDS line breaks.
 */
export function sampleRowsPerMiB(sample: Uint8Array, format: CsvFormat): number | null {
  if (sample.length === 0) return null;
  const scanner = createScanner(format);
  scanner.push(sample);
  const { newlineCount } = scanner.finish();
  if (newlineCount < MIN_SAMPLE_RECORDS) return null;
  return newlineCount / (sample.length / MIB);
}
