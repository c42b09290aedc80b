/**
 * Reads of a compressed job's data (issue 16): the decompressed bytes a load needs, inflated from the checkpoint
 * at or before where it starts (csv_import.inflate_checkpoints, chosen by chunk_context), and the object's
 * compressed bytes they come from.
 *
 * Invariants:
 * - Every Storage read carries the ETag of the job's object version (ctx.object.etag), as plain reads do.
 * - Offsets handed out are decompressed offsets: a load's range, its resume marker and its rejects are offsets of
 *   the decompressed data, never of the object.
 * - A load reads the compressed bytes up to its end checkpoint in one request, inflated natively where the range lies
 *   in one deflate stream (compression/inflate_native.ts) or ends at a later gzip member's start (whole members,
 *   each checked against its trailer: compression/members.ts), then TAIL_READ_BYTES at a time from that checkpoint
 *   until its reader has its last record: never the rest of the stream (a chunk's records end shortly after its
 *   range).
 * - What is inflated is checked as it is inflated (pako, compression/inflate.ts): a corrupt stream throws
 *   CompressionError with the compressed offset; trailers (CRC-32, sizes) are checked when a read reaches them.
 */
import {
  atMemberStart,
  type Checkpoint,
  dataFrom,
  inflateFrom,
  resumeByte,
  startCheckpoint,
} from "../compression/inflate.ts";
import { inflateMembers, NotNative } from "../compression/members.ts";
import type { StorageClient } from "../platform/storage.ts";
import type { ChunkContext, ObjectVersion } from "./chunk_context.ts";

/** Compressed bytes read at a time past a load's end checkpoint (its last record ends shortly after it). */
const TAIL_READ_BYTES = 64 * 1024;

type CompressedCtx = Pick<ChunkContext, "object" | "compressed">;

/** How a load's ranges that end at a later gzip member went: whole members natively, or back to pako. */
export interface InflateLegs {
  members: number;
  membersFallback: number;
}

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
 * The chunk's decompressed data from its checkpoint on, as data events: up to the checkpoint at its range's end in one
 * Storage read (`stopAt`: inside one deflate stream this runs in the runtime's native inflater), then on from that
 * checkpoint, TAIL_READ_BYTES of the object at a time, to finish the last record; the last range runs to the
 * stream's end (its trailers checked). Stops when the consumer stops pulling.
 */
async function* inflatedData(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "compressed">,
  legs: InflateLegs = { members: 0, membersFallback: 0 },
): AsyncGenerator<{ bytes: Uint8Array; out: number }> {
  const c = ctx.compressed!;
  const { codec, data_end: end } = c.stream;
  const expected = c.stream.expected ?? undefined;
  const start = chunkCheckpoint(ctx);
  const stop = c.endCheckpoint;
  const read = (from: Checkpoint, firstEnd: number | null) =>
    compressedBytes(storage, ctx.object, { from: resumeByte(from), end, firstEnd });
  if (stop === null) {
    for await (const event of inflateFrom(codec, start, read(start, null), { end, expected })) {
      if (event.kind === "data") yield event;
    }
    return;
  }
  let out = start.out;
  if (codec === "gzip" && endsAtLaterMember(start, stop)) {
    // The range ends where a later gzip member starts (the chain cuts multi-member files at member starts): its
    // members run natively, each checked against its trailer (compression/members.ts). Whatever they cannot do
    // runs in pako from the range's start below, after what was handed out already.
    const until = stop.member!.start;
    try {
      for await (
        const event of inflateMembers(start, read(start, until), {
          end: until,
          endIsMember: true,
          maxMemberBytes: Number.MAX_SAFE_INTEGER,
        })
      ) {
        if (event.kind !== "data") continue;
        yield event;
        out = event.out + event.bytes.byteLength;
      }
      legs.members++;
    } catch (error) {
      if (!(error instanceof NotNative)) throw error;
      legs.membersFallback++;
    }
  }
  if (out < stop.out) {
    for await (
      const event of inflateFrom(codec, start, read(start, stop.in), { end, expected, stopAt: stop })
    ) {
      const piece = event.kind === "data" ? dataFrom(event, out) : null;
      if (piece !== null) yield piece;
    }
  }
  for await (const event of inflateFrom(codec, stop, read(stop, null), { end, expected })) {
    if (event.kind === "data") yield event;
  }
}

/** Whether `stop` is the start of a gzip member after `from`'s (just after its header, nothing out of it yet). */
function endsAtLaterMember(from: Checkpoint, stop: Checkpoint): boolean {
  return atMemberStart(stop) && (from.member === null || stop.member.start > from.member.start) &&
    stop.member.start - 8 >= from.in;
}

/**
 * The decompressed bytes from `from` on, inflated from the chunk's checkpoint (skipping what lies before `from`),
 * until `done()` says the reader has its last record or the data ends. Pieces are views valid until the next read
 * (the load parses each before it reads on).
 */
export function readInflated(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "compressed">,
  opts: { from: number; done: () => boolean; legs?: InflateLegs },
): ReadableStream<Uint8Array> {
  async function* pieces() {
    for await (const event of inflatedData(storage, ctx, opts.legs)) {
      const piece = dataFrom(event, opts.from);
      if (piece === null) continue;
      yield piece.bytes;
      if (opts.done()) return;
    }
  }
  return ReadableStream.from(pieces());
}

/**
 * The decompressed bytes of each [from, to) (sorted by `from`), in one pass from the chunk's checkpoint: the raw text
 * of rows the database refused and a piece's deferred text, which the fast path keeps no copy of. A slice ends
 * early only where the data ends (a piece's text reads up to two bytes past its last record, which the data's end
 * may not have).
 */
export async function inflatedSlices(
  storage: StorageClient,
  ctx: Pick<ChunkContext, "object" | "compressed">,
  slices: { from: number; to: number }[],
): Promise<Uint8Array[]> {
  const out = slices.map((s) => new Uint8Array(Math.max(s.to - s.from, 0)));
  const filled = slices.map(() => 0);
  if (slices.length === 0) return out;
  const last = Math.max(...slices.map((s) => s.to));
  for await (const event of inflatedData(storage, ctx)) {
    const pieceEnd = event.out + event.bytes.byteLength;
    slices.forEach((s, i) => {
      const from = Math.max(s.from, event.out);
      const to = Math.min(s.to, pieceEnd);
      if (from >= to) return;
      out[i].set(event.bytes.subarray(from - event.out, to - event.out), from - s.from);
      filled[i] = to - s.from;
    });
    if (pieceEnd >= last) break;
  }
  return out.map((bytes, i) => bytes.subarray(0, filled[i]));
}
