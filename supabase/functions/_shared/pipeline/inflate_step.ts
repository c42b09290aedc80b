/**
 * One invocation of a compressed job's inflate chain (issue 16; the design: migration
 * 20261211000100_compressed_uploads.sql). It resumes inflating from the chain's last checkpoint, cuts the
 * decompressed data into ranges of about the job's chunk size at deflate block boundaries, scans each range as it
 * goes (quote parity, newlines: csv/scan.ts, the summary a scan chunk reports) and commits each range at once
 * (csv_import.commit_inflate_step: its checkpoint, its load chunk and its scan), then dispatches, so the range's
 * load starts while the chain inflates the next. After INFLATE_STEP_BYTES it hands the chain on (yield_chunk) and a
 * fresh invocation resumes it from the checkpoint it committed last.
 *
 * A step that starts at a gzip member's start (or the data's) goes member by member in the runtime's native
 * inflater while each member ends within half a chunk past the next range end (compression/members.ts: a file of
 * many small members, as bgzip or `split | gzip` make them, never touches pako); then, and for anything else, pako
 * with checkpoints at block boundaries (sequentialPass below). Both make the same checkpoints at member starts.
 *
 * Invariants:
 * - Exactly once: a range is committed with the chain's progress marker in one transaction, guarded by the lease
 *   and the marker (commit_inflate_step), so a chain that dies, is stopped or is taken over resumes from its last
 *   committed checkpoint, and no range is created twice or skipped.
 * - Range edges are checkpoints (block boundaries), chosen at the first boundary at or after start + chunk size, so
 *   each load resumes inflating at its own range's start; UTF-16 data takes only even boundaries (chunk edges fall
 *   between code units).
 * - Limits, checked as the data comes out (fatal: the job fails with the numbers): the decompressed data may not
 *   exceed the job's max_data_bytes (MAX_FILE_BYTES or the profile's), and past ratio_after_bytes it may not be
 *   more than max_ratio times the compressed bytes read (a decompression bomb). A corrupt or truncated stream
 *   fails with its compressed offset (CompressionError).
 * - Bounded work: at most INFLATE_STEP_BYTES of output per invocation plus one range; memory: one inflater, one
 *   read, one window per checkpoint until it is committed.
 */
import {
  atMemberStart,
  type Checkpoint,
  checkpointToJson,
  type Codec,
  CompressionError,
  dataFrom,
  type InflateEvent,
  inflateFrom,
  resumeByte,
} from "../compression/inflate.ts";
import { inflateMembers, NotNative } from "../compression/members.ts";
import { textCodec } from "../csv/encoding.ts";
import { createScanner, type Scanner } from "../csv/scan.ts";
import type postgres from "postgres";
import { runInBackground } from "../platform/edge_runtime.ts";
import { withRetry } from "../platform/retry.ts";
import { type ChunkContext, type JobCompression, StopChunk, type WorkDeps } from "./chunk_context.ts";
import { chunkCheckpoint, compressedBytes } from "./compressed_reads.ts";
import { dispatch } from "./dispatch.ts";
import type { InflateStepReply } from "./sql_replies.ts";

/**
 * Compressed bytes per Storage request of the chain (a step reads ~10 MiB for its 32 MiB of output). The ratio check
 * still sees a bomb early: a request is handed to the inflater as the network delivers it, so what has been handed
 * out runs at most one network read ahead of what was inflated.
 */
const CHAIN_READ_BYTES = 8 * 1024 * 1024;

interface RangeReport {
  start: number;
  end: number;
  quote_parity: 0 | 1;
  newline_count: number;
  ends_with_terminator: boolean;
}

/** What one step did: ranges committed, bytes inflated, and how (see sequentialPass). */
export type InflateOutcome = {
  outcome: "inflated" | "yielded";
  ranges: number;
  bytes: number;
  engine: string;
};

/**
 * Compressed bytes searched for a member's end before a step gives up on whole members (a single-member file):
 * at least this, else the chunk size.
 */
const MIN_NATIVE_MEMBER_SEARCH = 1024 * 1024;

export async function inflateStep(deps: WorkDeps, ctx: ChunkContext): Promise<InflateOutcome> {
  const c = ctx.compressed!;
  const { stream, chunkSize } = c;
  const from = chunkCheckpoint(ctx);
  const marker = ctx.resume.offset ?? 0;
  if (from.out !== marker) {
    throw new Error(`The inflate chain is at ${marker} but its checkpoint is at ${from.out}`);
  }
  const dataStart = ctx.object.dataStart;
  const evenEdges = textCodec(ctx.target.dialect.encoding).unitBytes === 2;
  const read = { bytes: 0 };
  const inBefore = resumeByte(from);

  let committedOut = from.out;
  let rangeStart = Math.max(from.out, dataStart);
  let scanner: Scanner = createScanner(ctx.target.dialect);
  let ranges = 0;

  const commit = async (
    range: RangeReport | null,
    checkpoint: Checkpoint | null,
    toOut: number,
    inOffset: number,
    ended: boolean,
  ) => {
    const [{ state }] = await withRetry(() =>
      deps.sql<{ state: InflateStepReply }[]>`
        select csv_import.commit_inflate_step(p_chunk_id => ${ctx.chunk.id},
          p_lease_token => ${ctx.chunk.leaseToken}::uuid, p_from_out => ${committedOut}, p_to_out => ${toOut},
          p_in_offset => ${inOffset},
          p_ranges => ${deps.sql.json((range ? [range] : []) as unknown as postgres.JSONValue)},
          p_checkpoints => ${
        deps.sql.json((checkpoint ? [checkpointToJson(checkpoint)] : []) as unknown as postgres.JSONValue)
      },
          p_ended => ${ended}) as state`
    );
    if (state === "stopped") throw new StopChunk("stopped");
    if (state !== "ok") throw new StopChunk("lease_lost");
    committedOut = toOut;
    if (range) ranges++;
    // The range's load is ready: hand it out now, while the chain inflates the next one. After the last range the
    // invocation's own dispatch does (and the register function's inline run of a small file keeps it).
    if (!ended) runInBackground(dispatch(deps, `chunk ${ctx.chunk.id} inflated to ${toOut}`));
  };

  const summary = (end: number): RangeReport => {
    const s = scanner.finish();
    return {
      start: rangeStart,
      end,
      quote_parity: s.quoteParity,
      newline_count: s.newlineCount,
      ends_with_terminator: s.endsWithTerminator,
    };
  };

  const target = () => (Math.floor(rangeStart / chunkSize) + 1) * chunkSize;
  const pass = sequentialPass(
    stream.codec,
    from,
    compressedBytes(
      deps.storage,
      ctx.object,
      { from: inBefore, end: stream.data_end, firstEnd: null },
      CHAIN_READ_BYTES,
      read,
    ),
    {
      end: stream.data_end,
      expected: stream.expected ?? undefined,
      // On a grid of chunk sizes from the data's first byte, not from each range's start: ranges of a multi-member
      // file cut into pieces of the chunk size then end where members start (compressed_reads.ts inflates such a
      // range natively to its member's end).
      checkpointAt: target,
      // Whole members natively while each ends within half a chunk past the next range end (else pako cuts it).
      accept: (outEnd) => outEnd <= target() + chunkSize / 2,
      maxMemberBytes: Math.max(chunkSize, MIN_NATIVE_MEMBER_SEARCH),
    },
  );
  for await (const event of pass.events) {
    if (event.kind === "data") {
      const end = event.out + event.bytes.byteLength;
      checkLimits(stream, end, inBefore + read.bytes - stream.data_offset, ctx.object.size);
      if (end > rangeStart) {
        scanner.push(event.out >= rangeStart ? event.bytes : event.bytes.subarray(rangeStart - event.out));
      }
    } else if (event.kind === "checkpoint") {
      const cp = event.checkpoint;
      checkLimits(stream, cp.out, cp.in - stream.data_offset, ctx.object.size); // exact: what the inflater took
      // In UTF-16 a boundary inside a code unit is passed over: the next one qualifies.
      // Native passes report every member start; a range ends at the first one at or past the grid's next point.
      if (cp.out <= rangeStart || cp.out < target() || (evenEdges && cp.out % 2 !== 0)) continue;
      await commit(summary(cp.out), cp, cp.out, cp.in, false);
      rangeStart = cp.out;
      scanner = createScanner(ctx.target.dialect);
      if (
        committedOut - from.out >= deps.config.inflateStepBytes || deps.signal?.aborted || deps.leaseLost()
      ) {
        // Hand the chain on: the caller yields the chunk (a fresh invocation resumes from this checkpoint).
        return { outcome: "yielded", ranges, bytes: committedOut - from.out, engine: pass.engine() };
      }
    } else {
      // The stream is complete and verified: the last range, and the decompressed size.
      const last = event.out > rangeStart ? summary(event.out) : null;
      await commit(last, null, event.out, event.in, true);
      return { outcome: "inflated", ranges, bytes: event.out - from.out, engine: pass.engine() };
    }
  }
  throw new Error("The inflater ended without an end event");
}

/** The decompressed size limit and the compression-ratio bound (a decompression bomb), as the data comes out. */
function checkLimits(
  stream: JobCompression,
  out: number,
  compressedRead: number,
  objectSize: number,
): void {
  if (out > stream.max_data_bytes) {
    throw new CompressionError(
      `The decompressed data is larger than ${stream.max_data_bytes} bytes (MAX_FILE_BYTES or the profile's ` +
        `max_file_bytes): ${out} bytes out of the first ${compressedRead} compressed bytes of ${objectSize}`,
      compressedRead + stream.data_offset,
    );
  }
  if (out > stream.ratio_after_bytes && out > stream.max_ratio * Math.max(compressedRead, 1)) {
    throw new CompressionError(
      `The file inflates more than ${stream.max_ratio} times its compressed size (COMPRESSION_MAX_RATIO): ` +
        `${out} bytes out of the first ${compressedRead} compressed bytes, a likely decompression bomb`,
      compressedRead + stream.data_offset,
    );
  }
}

/**
 * The chain's sequential pass from `from`: whole gzip members natively (compression/members.ts) when the step starts
 * at a member's start (or the data's), else, and from wherever that pass cannot go on, pako with checkpoints at
 * block boundaries (compression/inflate.ts). `engine()` says which ran: "members", "pako", or "members+pako: why".
 *
 * Output continues exactly where the native pass stopped: pako resumes at the member's start, its data already
 * handed out is skipped, and so are its checkpoints before that point (the ranges' scans have seen that data).
 */
function sequentialPass(
  codec: Codec,
  from: Checkpoint,
  input: AsyncIterable<Uint8Array>,
  opts: {
    end: number;
    expected: { crc32: number; size: number } | undefined;
    checkpointAt: () => number;
    accept: (outEnd: number) => boolean;
    maxMemberBytes: number;
  },
): { events: AsyncGenerator<InflateEvent>; engine: () => string } {
  let engine = codec === "gzip" && (from.member === null || atMemberStart(from)) ? "members" : "pako";
  async function* events(): AsyncGenerator<InflateEvent> {
    let at = from;
    let rest = input;
    let skip = from.out;
    if (engine === "members") {
      try {
        yield* inflateMembers(from, input, { ...opts, endIsMember: false });
        return;
      } catch (error) {
        if (!(error instanceof NotNative)) throw error;
        engine = `members+pako: ${error.message}`;
        at = error.at;
        rest = error.rest;
        skip = error.out;
      }
    }
    for await (const event of inflateFrom(codec, at, rest, opts)) {
      if (event.kind === "data") {
        const piece = dataFrom(event, skip);
        if (piece !== null) yield piece;
      } else if (event.kind === "end" || event.checkpoint.out >= skip) yield event;
    }
  }
  return { events: events(), engine: () => engine };
}
