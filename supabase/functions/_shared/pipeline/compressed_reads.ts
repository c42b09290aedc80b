/**
 * Reads of a compressed job's data (issue 16): the decompressed bytes a load needs, inflated from the checkpoint
 * at or before where it starts (csv_import.inflate_checkpoints, chosen by chunk_context), and the object's
 * compressed bytes they come from.
 *
 * Invariants:
 * - Every Storage read carries the ETag of the job's object version (ctx.object.etag), as plain reads do.
 * - Offsets handed out are decompressed offsets: a load's range, its resume marker and its rejects are offsets of
 *   the decompressed data, never of the object.
 * - A load reads the compressed bytes up to its end checkpoint in one request, then TAIL_READ_BYTES at a time until
 *   its reader has its last record: never the rest of the stream (a chunk's records end shortly after its range).
 * - What is inflated is checked as it is inflated (pako, compression/inflate.ts): a corrupt stream throws
 *   CompressionError with the compressed offset; trailers (CRC-32, sizes) are checked when a read reaches them.
 */
import { type Checkpoint, inflateFrom, resumeByte, startCheckpoint } from "../compression/inflate.ts";
import type { StorageClient } from "../platform/storage.ts";
import type { ChunkContext, ObjectVersion } from "./chunk_context.ts";

/** Compressed bytes read at a time past a load's end checkpoint (or when it is unknown). */
const TAIL_READ_BYTES = 256 * 1024;

type CompressedCtx = Pick<ChunkContext, "object" | "compressed">;

/** Where inflation of this chunk starts: its checkpoint, or the stream's start. */
export function chunkCheckpoint(ctx: CompressedCtx): Checkpoint {
  const c = ctx.compressed!;
  return c.checkpoint ?? startCheckpoint(c.stream.codec, c.stream.data_offset);
}

/**
 * The object's compressed bytes from `from` to `end` (the stream's end), in order: [from, firstEnd) in one request
 * (null: none), then `pieceBytes` per request. `consumed` counts what was handed out (the ratio check's measure).
 */
export async function* compressedBytes(
  storage: StorageClient,
  object: Pick<ObjectVersion, "bucket" | "name" | "etag">,
  range: { from: number; end: number; firstEnd: number | null },
  pieceBytes = TAIL_READ_BYTES,
  consumed?: { bytes: number },
): AsyncGenerator<Uint8Array> {
  const version = { etag: object.etag };
  const { end, firstEnd } = range;
  let at = range.from;
  const read = async function* (to: number) {
    for await (const piece of storage.readRange(object.bucket, object.name, at, to, "fresh", version)) {
      if (consumed) consumed.bytes += piece.byteLength;
      yield piece;
    }
  };
  if (firstEnd !== null && firstEnd > at) {
    const to = Math.min(firstEnd, end);
    yield* read(to);
    at = to;
  }
  for (; at < end; at += pieceBytes) yield* read(Math.min(at + pieceBytes, end));
}

/**
 * The decompressed bytes from `from` on, inflated from the chunk's checkpoint (skipping what lies before `from`),
 * until `done()` says the reader has its last record or the data ends. Pieces are views valid until the next read
 * (the load parses each before it reads on).
 */
export function readInflated(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "compressed">,
  opts: { from: number; done: () => boolean },
): ReadableStream<Uint8Array> {
  const c = ctx.compressed!;
  const checkpoint = chunkCheckpoint(ctx);
  // Up to a little past the end checkpoint: the last record ends shortly after it, usually in the same read.
  const firstEnd = c.endCheckpointIn === null ? null : c.endCheckpointIn + TAIL_READ_BYTES;
  async function* pieces() {
    const events = inflateFrom(
      c.stream.codec,
      checkpoint,
      compressedBytes(storage, ctx.object, {
        from: resumeByte(checkpoint),
        end: c.stream.data_end,
        firstEnd,
      }),
      { end: c.stream.data_end, expected: c.stream.expected ?? undefined },
    );
    for await (const event of events) {
      if (event.kind !== "data") continue;
      const end = event.out + event.bytes.byteLength;
      if (end <= opts.from) continue;
      yield event.out >= opts.from ? event.bytes : event.bytes.subarray(opts.from - event.out);
      if (opts.done()) return;
    }
  }
  return ReadableStream.from(pieces());
}

/**
 * The decompressed bytes of each [from, to) (sorted by `from`), in one pass from the chunk's checkpoint: the raw text
 * of rows the database refused, which the fast path keeps no copy of.
 */
export async function inflatedSlices(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "compressed">,
  slices: { from: number; to: number }[],
): Promise<Uint8Array[]> {
  const out = slices.map((s) => new Uint8Array(Math.max(s.to - s.from, 0)));
  if (slices.length === 0) return out;
  const last = Math.max(...slices.map((s) => s.to));
  const checkpoint = chunkCheckpoint(ctx);
  const c = ctx.compressed!;
  const events = inflateFrom(
    c.stream.codec,
    checkpoint,
    compressedBytes(storage, ctx.object, {
      from: resumeByte(checkpoint),
      end: c.stream.data_end,
      firstEnd: c.endCheckpointIn,
    }),
    { end: c.stream.data_end, expected: c.stream.expected ?? undefined },
  );
  for await (const event of events) {
    if (event.kind !== "data") continue;
    const pieceEnd = event.out + event.bytes.byteLength;
    slices.forEach((s, i) => {
      const from = Math.max(s.from, event.out);
      const to = Math.min(s.to, pieceEnd);
      if (from < to) out[i].set(event.bytes.subarray(from - event.out, to - event.out), from - s.from);
    });
    if (pieceEnd >= last) break;
  }
  return out;
}
