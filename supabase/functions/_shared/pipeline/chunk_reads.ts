/**
 * A chunk's reads from Storage: its whole range for a scan (or a load's inline scan), the bytes a load owns and
 * the tail that finishes its last record, and the raw text of rows the database refused.
 *
 * Invariants:
 * - Every read carries the ETag of the job's object version (ctx.object.etag): a response of another version
 *   is never parsed (platform/storage.ts throws ObjectChangedError).
 * - Ranges are half-open [start, end); platform/storage.ts is the one place that turns them into HTTP's
 *   inclusive `Range`.
 * - A range held in memory (`inMemory`) starts at the chunk's first byte; whatever it covers is never read
 *   from Storage again.
 * - Buffers are taken and given back synchronously, so loads running at once in one instance never share one.
 */
import { textCodec } from "../csv/encoding.ts";
import { type ChunkSummary, scanChunk } from "../csv/scan.ts";
import type { RowReject } from "../load/loader.ts";
import { withRetry } from "../platform/retry.ts";
import type { ReadTarget, StorageClient } from "../platform/storage.ts";
import type { ChunkContext } from "./chunk_context.ts";
import { inflatedSlices } from "./compressed_reads.ts";

/** Reads the chunk's whole range into `target` and summarises it (retried in place); checks it got every byte. */
export async function readAndScan(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "range" | "target">,
  target: ReadTarget,
): Promise<ChunkSummary> {
  const { object, range } = ctx;
  const length = range.end - range.start;
  const summary = await withRetry(() =>
    scanChunk(
      storage.readRange(object.bucket, object.name, range.start, range.end, target, { etag: object.etag }),
      ctx.target.dialect,
    )
  );
  if (summary.bytes !== length) throw new Error(`Scan read ${summary.bytes} bytes of a ${length}-byte chunk`);
  return summary;
}

/**
 * Buffers that held a load's range while it was scanned inline, kept for the next such loads in this worker:
 * a range is read into one buffer, not into an array per network read (storage.ts ReadTarget). The largest are
 * kept, as many as the caller says (a range is at most csv_import.inline_scan_max_bytes()).
 */
const rangeBuffers: Uint8Array[] = [];

export function takeRangeBuffer(length: number): Uint8Array {
  // The smallest that fits (they are kept largest first).
  const i = rangeBuffers.findLastIndex((kept) => kept.byteLength >= length);
  return i < 0 ? new Uint8Array(length) : rangeBuffers.splice(i, 1)[0];
}

/**
 * Keeps `buffer` for a later load, among the `keep` largest: one per load an isolate runs at once
 * (WORKER_CHUNKS_PER_ISOLATE). With one kept, every wave of three loads allocated two 8 MiB ranges anew and left
 * the old ones to the collector.
 */
export function giveBackRangeBuffer(buffer: Uint8Array, keep: number): void {
  rangeBuffers.push(buffer);
  rangeBuffers.sort((a, b) => b.byteLength - a.byteLength);
  if (rangeBuffers.length > keep) rangeBuffers.length = keep;
}

/** The file's bytes [from, to) from the range a load holds (`inMemory`, from the range's start), when it covers them. */
function heldBytes(
  range: ChunkContext["range"],
  inMemory: Uint8Array | null,
  from: number,
  to: number,
): Uint8Array | null {
  return inMemory !== null && from >= range.start && to <= range.start + inMemory.byteLength
    ? inMemory.subarray(from - range.start, to - range.start)
    : null;
}

/**
 * The file's bytes [from, to), ending early only where the file (or a compressed job's data) ends: from the range
 * the load holds when it covers them (no copy), else one read from Storage (retried in place) that must bring
 * every byte, since a short read would be a hole in what a load parses or reports. A compressed job's data is
 * inflated again from the chunk's checkpoint (compressed_reads.ts inflatedSlices). For a small range read whole
 * (chunk_worker.ts READ_WHOLE_MAX_BYTES), the raw text of refused rows (fillRaw) and a piece's deferred text
 * (piece_text.ts), which reads up to two bytes past its last record.
 */
export async function readFileBytes(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "range" | "compressed">,
  inMemory: Uint8Array | null,
  from: number,
  to: number,
): Promise<Uint8Array> {
  const held = heldBytes(ctx.range, inMemory, from, to);
  if (held !== null) return held;
  if (ctx.compressed !== null) return (await inflatedSlices(storage, ctx, [{ from, to }]))[0];
  const { object } = ctx;
  const end = Math.min(to, object.size);
  const bytes = await withRetry(() =>
    storage.readBytes(object.bucket, object.name, from, end, { etag: object.etag })
  );
  if (bytes.byteLength !== end - from) {
    throw new Error(`Read ${bytes.byteLength} of ${end - from} bytes at ${from}`);
  }
  return bytes;
}

/** How far past the range's end a load reads at a time to finish its last record. */
const TAIL_READ_BYTES = 64 * 1024;
/** How much of a range held in memory is handed to the parser at a time: the batch loop cuts COPY pieces
 * between pushes, so a push must stay well under PIECE_BYTES (row_source.ts). */
const IN_MEMORY_SLICE_BYTES = 128 * 1024;

/**
 * The bytes a load needs: [from, range end) (from `inMemory` when the load holds the range, whatever its
 * marker: a retried or redone batch reads nothing again), then past it in
 * TAIL_READ_BYTES steps until `done()` says the reader has its last record. Why not one open-ended request: the
 * Storage server streams ahead of the reader by whatever the connection buffers (measured on the local
 * stand-in: megabytes per chunk), all read and sent for nothing. Storage reads reuse one scratch buffer
 * ("reuse"): the chunk reader copies what it keeps before it asks for the next piece.
 */
export function readOwned(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "range">,
  opts: { from: number; done: () => boolean; inMemory: Uint8Array | null },
): ReadableStream<Uint8Array> {
  const { object, range } = ctx;
  const { from, done, inMemory } = opts;
  const version = { etag: object.etag };
  async function* pieces() {
    if (inMemory !== null) {
      for (let at = from - range.start; at < inMemory.byteLength; at += IN_MEMORY_SLICE_BYTES) {
        yield inMemory.subarray(at, at + IN_MEMORY_SLICE_BYTES);
      }
    } else if (from < range.end) {
      yield* storage.readRange(object.bucket, object.name, from, range.end, "reuse", version);
    }
    for (let at = Math.max(from, range.end); !done() && at < object.size; at += TAIL_READ_BYTES) {
      const to = Math.min(at + TAIL_READ_BYTES, object.size);
      yield* storage.readRange(object.bucket, object.name, at, to, "reuse", version);
    }
  }
  return ReadableStream.from(pieces());
}

/** Most bytes one read of fillRaw fetches: refused rows close together share a read. */
const RAW_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Fills in the raw text of rows the database refused (the fast path keeps no raw text per row): from the range's
 * bytes when the load holds them (`inMemory`), else by reading the file once per window of at most
 * RAW_WINDOW_BYTES that covers refused rows, not once per row: a chunk of 30,000 refused rows (a re-imported
 * file) read one request per row ran past the CPU limit on every attempt.
 */
export async function fillRaw(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "range" | "target" | "compressed">,
  rejects: RowReject[],
  inMemory: Uint8Array | null,
): Promise<void> {
  const codec = textCodec(ctx.target.dialect.encoding);
  const missing = rejects.filter((r) =>
    r.raw === null && r.offset !== undefined && r.byteLength !== undefined
  );
  if (missing.length === 0) return;
  const toRead: RowReject[] = [];
  for (const reject of missing) {
    const held = heldBytes(ctx.range, inMemory, reject.offset!, reject.offset! + reject.byteLength!);
    if (held !== null) reject.raw = codec.lossy(held);
    else toRead.push(reject);
  }
  toRead.sort((a, b) => a.offset! - b.offset!);
  if (ctx.compressed !== null) {
    // A compressed job: one pass of inflation from the chunk's checkpoint covers every refused row.
    const slices = await inflatedSlices(
      storage,
      ctx,
      toRead.map((r) => ({ from: r.offset!, to: r.offset! + r.byteLength! })),
    );
    toRead.forEach((reject, i) => reject.raw = codec.lossy(slices[i]));
    return;
  }
  for (let i = 0; i < toRead.length;) {
    const from = toRead[i].offset!;
    let to = from + toRead[i].byteLength!;
    let j = i + 1;
    while (j < toRead.length && toRead[j].offset! + toRead[j].byteLength! - from <= RAW_WINDOW_BYTES) {
      to = Math.max(to, toRead[j].offset! + toRead[j].byteLength!);
      j++;
    }
    const bytes = await readFileBytes(storage, ctx, null, from, to);
    for (const reject of toRead.slice(i, j)) {
      reject.raw = codec.lossy(
        bytes.subarray(reject.offset! - from, reject.offset! - from + reject.byteLength!),
      );
    }
    i = j;
  }
}
