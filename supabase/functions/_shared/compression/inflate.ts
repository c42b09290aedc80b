/**
 * Resumable decompression of a gzip object (one or more members) or a ZIP member's data (deflate or stored),
 * in the manner of zlib's `zran.c`: a sequential pass records checkpoints at deflate block boundaries, and
 * any later invocation can restart inflation from one of them with only the object bytes from that point on.
 *
 * A chain of invocations calls {@link inflateFrom} with `checkpointAt` to collect checkpoints (roughly every
 * 8 MiB of output); parallel loaders each call it from one checkpoint without `checkpointAt` (full speed),
 * best with `stopAt` = the next checkpoint: a range inside one deflate stream then runs in the runtime's
 * DecompressionStream (inflate_native.ts, 1.6–1.8× pako), and output stops exactly at that checkpoint.
 *
 * Invariants:
 * - Output offsets (`out`) count decompressed bytes of the whole object (all gzip members together);
 *   compressed offsets (`in`, error offsets) are absolute offsets in the object.
 * - A checkpoint is a place where a fresh inflater can start: a deflate block boundary inside a stream (with
 *   the 0–7 leftover bits of the partly read byte and the last ≤ 32 KiB of output as the window), a later gzip
 *   member's start just after its header (its first block boundary: window empty, byte-aligned, the member's
 *   check at zero), or for stored data any offset. `member` is null only at the object's start, before the
 *   first header. Never inside a gzip trailer, never after a final block.
 * - The starting checkpoint is never emitted again; every emitted checkpoint has `out` ≥ the offset
 *   `checkpointAt()` asked for, and is the first boundary that qualifies.
 * - Events come in output order: all data before a checkpoint's `out` is emitted before the checkpoint. Data
 *   events' bytes are views into a reused buffer, valid until the next event is pulled.
 * - `member` carries the running CRC-32 and byte count of the current gzip member (or ZIP member) across
 *   checkpoints, so a resumed inflater still verifies the member's trailer (or `expected`) at its end.
 * - Everything wrong with the data is a {@link CompressionError} naming the compressed byte; `end` is yielded
 *   only after every check passed.
 * - With `stopAt`, output ends exactly at `stopAt.out` and no end event follows (the range was not checked
 *   against a trailer; the chain's sequential pass checked the whole stream). Both engines give the same
 *   bytes.
 */

import { crc32 } from "./crc32.ts";
import {
  copyWindow,
  DATA_TYPE_AT_BOUNDARY,
  DATA_TYPE_LAST_BLOCK,
  inflate,
  newRawInflater,
  type PakoZStream,
  primeRawInflater,
  Z_BLOCK,
  Z_BUF_ERROR,
  Z_DATA_ERROR,
  Z_NO_FLUSH,
  Z_STREAM_END,
} from "./pako_zlib.ts";
import { InputCursor } from "./input_cursor.ts";
import { inflateNative, nativeFits } from "./inflate_native.ts";

/** gzip: a whole object of one or more members; deflate/stored: a ZIP member's raw data. */
export type Codec = "gzip" | "deflate" | "stored";

/** Running check of the member being decompressed. */
export interface MemberCheck {
  /** CRC-32 of the member's output so far. */
  crc: number;
  /** Bytes of the member's output so far (not reduced mod 2^32). */
  size: number;
  /** Compressed offset where the member starts (gzip: its header; ZIP: its data), for messages. */
  start: number;
}

export interface Checkpoint {
  /** Decompressed offset of the next output byte. */
  out: number;
  /** Compressed offset of the first byte the inflater has not read at all. */
  in: number;
  /** 0–7 unused (high) bits of byte `in - 1`; 0: byte-aligned, resume reading at `in`. */
  bits: number;
  /** Last ≤ 32 KiB of output of the current deflate stream (empty at a stream or member start). */
  window: Uint8Array;
  /**
   * The current member's running check; null when the next byte is a gzip member header. For deflate/stored
   * it is the ZIP member's running check (so `expected` can be verified after a resume).
   */
  member: MemberCheck | null;
}

export class CompressionError extends Error {
  override readonly name = "CompressionError";
  /** @param offset the compressed byte the error refers to */
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

export type InflateEvent =
  | { kind: "data"; bytes: Uint8Array; out: number }
  | { kind: "checkpoint"; checkpoint: Checkpoint }
  | { kind: "end"; out: number; in: number };

export interface InflateOptions {
  /**
   * Next wanted output offset: a checkpoint is emitted at the first boundary whose `out` is at least this.
   * Called at the start and after each checkpoint; null (or no function): no more checkpoints, full speed.
   */
  checkpointAt?: () => number | null;
  /** Compressed end offset (exclusive): a ZIP member's data end; for gzip the object size. */
  end?: number;
  /** ZIP central-directory CRC-32 and size of the member's output, verified at the end (deflate/stored). */
  expected?: { crc32: number; size: number };
  /** Largest data event, in bytes (default 64 KiB). */
  pieceBytes?: number;
  /**
   * A later checkpoint (of the same pass) where output stops: the last data event ends at `stopAt.out` and no
   * end event follows. A loader's range; lets a range inside one deflate stream use the native fast path.
   */
  stopAt?: Checkpoint;
  /**
   * "auto" (default): DecompressionStream where it fits (no `checkpointAt`; a range inside one deflate
   * stream, or a ZIP member to its `end` with `expected`), else pako. "pako": always pako.
   */
  engine?: "auto" | "pako";
}

/** The checkpoint at the start of a codec's data: output offset 0 at compressed offset `dataOffset`. */
export function startCheckpoint(codec: Codec, dataOffset: number): Checkpoint {
  return {
    out: 0,
    in: dataOffset,
    bits: 0,
    window: new Uint8Array(0),
    member: codec === "gzip" ? null : { crc: 0, size: 0, start: dataOffset },
  };
}

/** Whether `cp` is a gzip member's start just after its header (nothing out of the member yet, no window). */
export function atMemberStart(cp: Checkpoint): cp is Checkpoint & { member: MemberCheck } {
  return cp.member !== null && cp.member.size === 0 && cp.bits === 0 && cp.window.length === 0;
}

/**
 * The part of a data piece at or after output offset `at` (a view), or null when it lies wholly before: for a reader
 * that goes on from where an earlier pass stopped, or wants only what follows `at`.
 */
export function dataFrom<T extends { bytes: Uint8Array; out: number }>(piece: T, at: number): T | null {
  if (piece.out + piece.bytes.byteLength <= at) return null;
  return piece.out >= at ? piece : { ...piece, out: at, bytes: piece.bytes.subarray(at - piece.out) };
}

/** The first object byte a resumer must read: the partly used byte when `bits` > 0. */
export function resumeByte(cp: Checkpoint): number {
  return cp.bits > 0 ? cp.in - 1 : cp.in;
}

/** The checkpoint as stored in Postgres (jsonb): plain numbers and the window in base64. */
export interface CheckpointJson {
  out: number;
  in: number;
  bits: number;
  window: string;
  member: MemberCheck | null;
}

export function checkpointToJson(cp: Checkpoint): CheckpointJson {
  return {
    out: cp.out,
    in: cp.in,
    bits: cp.bits,
    window: bytesToBase64(cp.window),
    member: cp.member === null ? null : { crc: cp.member.crc, size: cp.member.size, start: cp.member.start },
  };
}

export function checkpointFromJson(json: unknown): Checkpoint {
  const j = json as Partial<CheckpointJson> | null;
  const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  const m = j?.member as Partial<MemberCheck> | null | undefined;
  const memberOk = m === null ||
    (typeof m === "object" && isCount(m.crc) && m.crc <= 0xffffffff && isCount(m.size) && isCount(m.start));
  if (
    j === null || typeof j !== "object" || !isCount(j.out) || !isCount(j.in) || !isCount(j.bits) ||
    j.bits > 7 || (j.bits > 0 && j.in === 0) || typeof j.window !== "string" || !memberOk
  ) {
    throw new TypeError(`Not a stored decompression checkpoint: ${JSON.stringify(json)?.slice(0, 200)}`);
  }
  const window = base64ToBytes(j.window);
  if (window.length > WINDOW_SIZE) throw new TypeError(`Checkpoint window of ${window.length} bytes`);
  return {
    out: j.out,
    in: j.in,
    bits: j.bits,
    window,
    member: m === null ? null : { crc: m.crc!, size: m.size!, start: m.start! },
  };
}

/**
 * Decompresses `codec` data from checkpoint `from`. `input` is the object's bytes from `resumeByte(from)` on,
 * in order, in pieces of any size. Stop pulling events at any time; the input iterator is then closed.
 */
export async function* inflateFrom(
  codec: Codec,
  from: Checkpoint,
  input: AsyncIterable<Uint8Array>,
  opts: InflateOptions = {},
): AsyncGenerator<InflateEvent> {
  checkStart(codec, from);
  const stopAt = opts.stopAt ?? null;
  const pieceBytes = Math.max(1, Math.floor(opts.pieceBytes ?? DEFAULT_PIECE_BYTES));
  if (
    opts.engine !== "pako" && opts.checkpointAt === undefined &&
    nativeFits(codec, from, stopAt, opts.end, opts.expected)
  ) {
    const cursor = new InputCursor(input, resumeByte(from), stopAt !== null ? stopAt.in : opts.end);
    try {
      yield* inflateNative(cursor, { from, stopAt, end: opts.end, expected: opts.expected, pieceBytes });
    } finally {
      await cursor.close();
    }
    return;
  }
  const run = new Inflation(codec, from, new InputCursor(input, resumeByte(from), opts.end), opts);
  try {
    for await (const event of run.run()) {
      if (stopAt === null) yield event;
      else if (event.kind === "data") {
        if (event.out >= stopAt.out) return;
        const room = stopAt.out - event.out;
        yield room >= event.bytes.length ? event : { ...event, bytes: event.bytes.subarray(0, room) };
        if (room <= event.bytes.length) return;
      } else if (event.kind === "checkpoint" && event.checkpoint.out < stopAt.out) yield event;
      else if (event.kind === "end" && event.out < stopAt.out) {
        throw new TypeError(`stopAt ${stopAt.out} lies after the end (${event.out})`);
      }
    }
  } finally {
    await run.cursor.close();
  }
}

// ---- implementation -------------------------------------------------------------------------------------

const WINDOW_SIZE = 32768;
const DEFAULT_PIECE_BYTES = 65536;
/** Output buffer of one inflate() call: large, so pako's per-call window copy (32 KiB) stays cheap. */
const MIN_OUTPUT_BUFFER = 256 * 1024;

const GZIP_ID1 = 0x1f;
const GZIP_ID2 = 0x8b;
const GZIP_FHCRC = 2;
const GZIP_FEXTRA = 4;
const GZIP_FNAME = 8;
const GZIP_FCOMMENT = 16;
const GZIP_RESERVED_FLAGS = 0xe0;

function checkStart(codec: Codec, from: Checkpoint): void {
  const bad = (why: string) => {
    throw new TypeError(`Cannot resume ${codec} data from this checkpoint: ${why}`);
  };
  if (!Number.isSafeInteger(from.bits) || from.bits < 0 || from.bits > 7) bad(`bits ${from.bits}`);
  if (from.bits > 0 && from.in < 1) bad("bits without a preceding byte");
  if (from.window.length > WINDOW_SIZE) bad(`window of ${from.window.length} bytes`);
  if (codec !== "gzip" && from.member === null) bad("no running check of the ZIP member");
  if (codec === "stored" && from.bits !== 0) bad("stored data is byte-aligned");
  if (from.member === null && (from.bits !== 0 || from.window.length > 0)) {
    bad("a member start is byte-aligned");
  }
}

class Inflation {
  /** Output offset of `output[0]`: everything before it has been emitted. */
  private emitted: number;
  private member: MemberCheck | null;
  private target: number | null;
  private readonly output: Uint8Array;
  private readonly pieceBytes: number;
  private readonly noun: string;

  constructor(
    private readonly codec: Codec,
    private readonly from: Checkpoint,
    readonly cursor: InputCursor,
    private readonly opts: InflateOptions,
  ) {
    this.emitted = from.out;
    this.member = from.member === null ? null : { ...from.member };
    this.pieceBytes = Math.max(1, Math.floor(opts.pieceBytes ?? DEFAULT_PIECE_BYTES));
    this.output = new Uint8Array(Math.max(MIN_OUTPUT_BUFFER, this.pieceBytes));
    this.target = this.nextTarget();
    this.noun = codec === "gzip" ? "The gzip data" : "The ZIP member's data";
  }

  async *run(): AsyncGenerator<InflateEvent> {
    if (this.codec === "stored") yield* this.stored();
    else if (this.codec === "deflate") yield* this.deflateMember();
    else yield* this.gzip();
  }

  private nextTarget(): number | null {
    return this.opts.checkpointAt?.() ?? null;
  }

  // ---- gzip ----

  private async *gzip(): AsyncGenerator<InflateEvent> {
    const cursor = this.cursor;
    if (this.member !== null) {
      // Resumed inside a member.
      yield* this.deflateStream(await this.resumedInflater());
      await this.gzipTrailer();
    } else {
      // At a member header: the object's first member, or a later one (a checkpoint at a member start).
      const first = await cursor.byte();
      if (first === -1) throw this.truncated();
      if (first !== GZIP_ID1) {
        throw new CompressionError(
          `Not gzip data: byte ${cursor.offset - 1} is 0x${hex(first)}, not the start of a gzip member`,
          cursor.offset - 1,
        );
      }
      await this.gzipMember(cursor.offset - 1);
      yield* this.deflateStream(newRawInflater());
      await this.gzipTrailer();
    }
    for (;;) {
      const endOfStream = cursor.offset;
      const b = await cursor.byte();
      if (b === -1) break;
      if (b === GZIP_ID1) {
        const start = cursor.offset - 1;
        await this.gzipMember(start);
        if (this.target !== null && this.emittedOut() >= this.target) {
          // A later member's start, after its header: inside the member at its first block boundary (no window),
          // so a loader resuming here can take the native path up to a checkpoint in the same member.
          yield* this.emitOutput();
          yield this.checkpoint({
            in: cursor.offset,
            bits: 0,
            window: new Uint8Array(0),
            member: this.member,
          });
          this.target = this.nextTarget();
        }
        yield* this.deflateStream(newRawInflater());
        await this.gzipTrailer();
        continue;
      }
      if (b === 0) {
        await this.skipZeros();
        yield* this.emitOutput();
        yield { kind: "end", out: this.emitted, in: endOfStream };
        return;
      }
      throw this.trailingData(cursor.offset - 1);
    }
    yield* this.emitOutput();
    yield { kind: "end", out: this.emitted, in: cursor.offset };
  }

  /** Reads a member header whose first byte (at `start`) has been read; afterwards `member` is set. */
  private async gzipMember(start: number): Promise<void> {
    const cursor = this.cursor;
    let headerCrc = crc32(0, Uint8Array.of(GZIP_ID1));
    const next = async (): Promise<number> => {
      const b = await cursor.byte();
      if (b === -1) throw this.truncated();
      headerCrc = crc32(headerCrc, Uint8Array.of(b));
      return b;
    };
    const id2 = await next();
    if (id2 !== GZIP_ID2) {
      throw start === this.from.in && this.from.out === 0
        ? new CompressionError(`Not gzip data: the file does not start with the gzip signature`, start)
        : this.trailingData(start);
    }
    const method = await next();
    if (method !== 8) {
      throw new CompressionError(
        `The gzip member at byte ${start} uses compression method ${method}; only deflate (8) is supported`,
        start + 2,
      );
    }
    const flags = await next();
    if (flags & GZIP_RESERVED_FLAGS) {
      throw new CompressionError(
        `The gzip member header at byte ${start} sets reserved flag bits (flags 0x${hex(flags)}); ` +
          `the file is corrupt or not gzip`,
        start + 3,
      );
    }
    for (let i = 0; i < 6; i++) await next(); // MTIME, XFL, OS
    if (flags & GZIP_FEXTRA) {
      const extraLength = (await next()) | ((await next()) << 8);
      for (let i = 0; i < extraLength; i++) await next();
    }
    if (flags & GZIP_FNAME) { while ((await next()) !== 0); }
    if (flags & GZIP_FCOMMENT) { while ((await next()) !== 0); }
    if (flags & GZIP_FHCRC) {
      const expected = (headerCrc & 0xffff) >>> 0;
      const at = cursor.offset;
      const stored = (await next()) | ((await next()) << 8);
      if (stored !== expected) {
        throw new CompressionError(
          `Header CRC check failed for the gzip member starting at byte ${start}`,
          at,
        );
      }
    }
    this.member = { crc: 0, size: 0, start };
  }

  private async gzipTrailer(): Promise<void> {
    // The trailer check needs the member's CRC over all of its output, which deflateStream has folded in.
    const member = this.member!;
    const at = this.cursor.offset;
    const bytes = new Uint8Array(8);
    for (let i = 0; i < 8; i++) {
      const b = await this.cursor.byte();
      if (b === -1) throw this.truncated();
      bytes[i] = b;
    }
    const view = new DataView(bytes.buffer);
    if (view.getUint32(0, true) !== member.crc) {
      throw new CompressionError(
        `CRC-32 check failed for the gzip member starting at byte ${member.start}: the data is corrupt`,
        at,
      );
    }
    const isize = view.getUint32(4, true);
    if (isize !== member.size % 2 ** 32) {
      throw new CompressionError(
        `Length check failed for the gzip member starting at byte ${member.start}: it decompresses to ` +
          `${member.size} bytes but its trailer says ${isize} (mod 2^32)`,
        at + 4,
      );
    }
    this.member = null;
  }

  private async skipZeros(): Promise<void> {
    const cursor = this.cursor;
    while (await cursor.next()) {
      const { buf } = cursor;
      for (let i = cursor.pos; i < buf.length; i++) {
        if (buf[i] !== 0) {
          cursor.pos = i;
          throw this.trailingData(cursor.offset);
        }
      }
      cursor.pos = buf.length;
    }
  }

  // ---- ZIP member ----

  private async *deflateMember(): AsyncGenerator<InflateEvent> {
    yield* this.deflateStream(await this.resumedInflater());
    const at = this.cursor.offset;
    if (this.cursor.end !== undefined && (await this.cursor.next())) {
      throw new CompressionError(
        `Corrupt ZIP member: its deflate data ends at byte ${at}, before the member's end at byte ` +
          `${this.cursor.end}`,
        at,
      );
    }
    yield* this.finishZipMember(at);
  }

  private async *stored(): AsyncGenerator<InflateEvent> {
    const cursor = this.cursor;
    while (await cursor.next()) {
      let piece = cursor.buf.subarray(cursor.pos, cursor.pos + this.pieceBytes);
      const out = this.emitted;
      if (this.target !== null && out < this.target && out + piece.length > this.target) {
        piece = piece.subarray(0, this.target - out);
      }
      cursor.pos += piece.length;
      this.member!.crc = crc32(this.member!.crc, piece);
      this.member!.size += piece.length;
      this.emitted += piece.length;
      yield { kind: "data", bytes: piece, out };
      if (this.target !== null && this.emitted >= this.target) {
        yield this.checkpoint({ in: cursor.offset, bits: 0, window: new Uint8Array(0), member: this.member });
        this.target = this.nextTarget();
      }
    }
    if (cursor.end !== undefined && cursor.offset < cursor.end) throw this.truncated();
    yield* this.finishZipMember(cursor.offset);
  }

  private async *finishZipMember(at: number): AsyncGenerator<InflateEvent> {
    const member = this.member!;
    const expected = this.opts.expected;
    if (expected !== undefined) {
      if (member.size !== expected.size) {
        throw new CompressionError(
          `The ZIP member decompresses to ${member.size} bytes but the archive says ${expected.size}: ` +
            `the file is corrupt`,
          at,
        );
      }
      if (member.crc !== expected.crc32 >>> 0) {
        throw new CompressionError(`CRC-32 check failed for the ZIP member: the data is corrupt`, at);
      }
    }
    yield* this.emitOutput();
    yield { kind: "end", out: this.emitted, in: at };
  }

  // ---- deflate ----

  /** The inflater for `from`: fresh at a stream start, else primed with its leftover bits and window. */
  private async resumedInflater(): Promise<PakoZStream> {
    const { bits, window } = this.from;
    if (bits === 0) return window.length === 0 ? newRawInflater() : primeRawInflater(0, 0, window);
    const partial = await this.cursor.byte();
    if (partial === -1) throw this.truncated();
    return primeRawInflater(partial >> (8 - bits), bits, window);
  }

  private emittedOut(): number {
    return this.emitted + this.pending;
  }

  /** Bytes in `output` not yet emitted. */
  private pending = 0;

  /**
   * Inflates one raw deflate stream to its end, emitting data and checkpoints; `member` accumulates its CRC.
   * Normal calls run with Z_NO_FLUSH (fastest) and output bounded to stop one byte before the wanted
   * checkpoint; from there Z_BLOCK calls stop at each block boundary until one is at or past the target.
   */
  private async *deflateStream(strm: PakoZStream): AsyncGenerator<InflateEvent> {
    const cursor = this.cursor;
    const output = this.output;
    strm.output = output;
    let inputEnded = false;
    for (;;) {
      if (this.pending === output.length) yield* this.emitOutput();
      const at = this.emitted + this.pending;
      let room = output.length - this.pending;
      let flush = Z_NO_FLUSH;
      if (this.target !== null) {
        if (at >= this.target - 1) flush = Z_BLOCK;
        else room = Math.min(room, this.target - 1 - at);
      }
      strm.next_out = this.pending;
      strm.avail_out = room;
      strm.input = cursor.buf;
      strm.next_in = cursor.pos;
      strm.avail_in = cursor.available;
      const ret = inflate(strm, flush);
      cursor.pos = strm.next_in;
      const produced = strm.next_out - this.pending;
      if (produced > 0) {
        const member = this.member!;
        member.crc = crc32(member.crc, output, this.pending, strm.next_out);
        member.size += produced;
        this.pending = strm.next_out;
      }
      if (ret === Z_STREAM_END) {
        if (strm.state.bits >= 8) throw new Error("pako kept whole input bytes past the end of a stream");
        return;
      }
      if (ret === Z_DATA_ERROR) throw this.corrupt(strm.msg);
      if (ret !== Z_BUF_ERROR && ret !== 0) throw new Error(`pako inflate returned ${ret}`);
      const dataType = strm.data_type;
      if (
        flush === Z_BLOCK && (dataType & DATA_TYPE_AT_BOUNDARY) !== 0 &&
        (dataType & DATA_TYPE_LAST_BLOCK) === 0 && this.emitted + this.pending >= this.target!
      ) {
        yield* this.emitOutput();
        yield this.checkpoint({
          in: cursor.offset,
          bits: dataType & 7,
          window: copyWindow(strm),
          member: this.member,
        });
        this.target = this.nextTarget();
        continue;
      }
      if (cursor.available === 0 && !inputEnded && !(await cursor.next())) inputEnded = true;
      if (inputEnded && ret === Z_BUF_ERROR) throw this.truncated();
    }
  }

  /** Emits the output buffer's pending bytes as data events of at most `pieceBytes`. */
  private async *emitOutput(): AsyncGenerator<InflateEvent> {
    const pending = this.pending;
    for (let start = 0; start < pending; start += this.pieceBytes) {
      const end = Math.min(pending, start + this.pieceBytes);
      const out = this.emitted;
      this.emitted += end - start;
      yield { kind: "data", bytes: this.output.subarray(start, end), out };
    }
    this.pending = 0;
  }

  /**
   * A checkpoint event at the current (fully emitted) output offset. The caller asks for the next target once the
   * event has been taken (afterCheckpoint): the consumer moves its ranges on when it sees the event, so asking
   * before would give the target of the range that just ended.
   */
  private checkpoint(at: Omit<Checkpoint, "out">): InflateEvent {
    const checkpoint: Checkpoint = {
      out: this.emitted,
      in: at.in,
      bits: at.bits,
      window: at.window,
      member: at.member === null ? null : { ...at.member },
    };
    return { kind: "checkpoint", checkpoint };
  }

  // ---- errors ----

  private truncated(): CompressionError {
    const at = this.cursor.offset;
    if (this.codec !== "gzip" && at === this.cursor.end) {
      return new CompressionError(
        `Corrupt ZIP member: its compressed data does not end within its ${at - this.member!.start} bytes`,
        at,
      );
    }
    const of = this.cursor.end !== undefined ? ` of ${this.cursor.end}` : "";
    return new CompressionError(`${this.noun} ends early at byte ${at}${of} (truncated upload?)`, at);
  }

  private corrupt(reason: string): CompressionError {
    const at = Math.max(0, this.cursor.offset - 1);
    return new CompressionError(`Corrupt deflate data at compressed byte ${at}: ${reason}`, at);
  }

  private trailingData(at: number): CompressionError {
    return new CompressionError(`Unexpected data after the end of the gzip stream at byte ${at}`, at);
  }
}

function hex(b: number): string {
  return b.toString(16).padStart(2, "0");
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return btoa(binary);
}

function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
