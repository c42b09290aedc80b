/**
 * Loader fast path: resumes a deflate stream from a checkpoint with the runtime's DecompressionStream
 * ("deflate-raw", native code) instead of pako, by handing it a synthetic but valid deflate stream:
 *
 *   [fixed-Huffman blocks that output (a pad byte and) the checkpoint's window, ending at the
 *    checkpoint's bit position]
 *   + [the original compressed bytes from the checkpoint on, untouched]
 *   + (when stopping at a later checkpoint) [a final empty block in that checkpoint's leftover bits]
 *
 * The prefix's output is discarded; back-references from the original data reach into it as into the window.
 * No byte of the original is shifted: the prefix's bit length is chosen (optional 19-bit pad block, 10-bit
 * empty blocks) so that it ends exactly where the checkpoint's partly read byte continues.
 *
 * Invariants:
 * - Only used where the stream's end is known, because DecompressionStream rejects any byte after the end of
 *   the deflate data and then loses the output of that write: a ZIP member's data up to its `end`, or any
 *   deflate stream up to a later checkpoint `stopAt` in the same stream (closed there by the final block).
 * - Output is byte-identical to pako's from the same checkpoint (inflate_test.ts checks every checkpoint).
 * - Errors from the native decoder carry no position; they are reported at the range's first byte.
 * - DecompressionStream ends quietly on a stream cut short, so completeness is ours to check: a range ends in
 *   our own final block and must reach `stopAt.out` exactly; a ZIP member to its end needs `expected` (size
 *   and CRC-32).
 *
 * Kept because it is clearly faster. Measured with bench/inflate_bench.ts (100 MB CSV-like data, gzip -6,
 * loaders each inflating one range between consecutive 8 MiB checkpoints; a shared 2-CPU machine, so two
 * quiet runs): pako 129–166 MB/s of output, this path 206–308 MB/s, 1.6–1.8× in each run
 * (DecompressionStream on the whole file: 260–356 MB/s).
 */

import { crc32 } from "./crc32.ts";
import { type Checkpoint, type Codec, CompressionError, type InflateEvent } from "./inflate.ts";
import type { InputCursor } from "./input_cursor.ts";

const FIXED_CODES = makeFixedCodes();

/** Fixed-Huffman literal/length codes 0–256, bit-reversed for LSB-first writing: code | length << 16. */
function makeFixedCodes(): Uint32Array {
  const codes = new Uint32Array(257);
  for (let v = 0; v <= 256; v++) {
    let code: number, length: number;
    if (v < 144) code = 0x30 + v, length = 8;
    else if (v < 256) code = 0x190 + v - 144, length = 9;
    else code = 0, length = 7;
    let reversed = 0;
    for (let i = 0; i < length; i++) reversed |= ((code >> i) & 1) << (length - 1 - i);
    codes[v] = reversed | (length << 16);
  }
  return codes;
}

class BitWriter {
  private readonly bytes: number[] = [];
  private buffer = 0;
  private count = 0;
  bitLength = 0;

  write(value: number, length: number): void {
    this.buffer |= value << this.count;
    this.count += length;
    this.bitLength += length;
    while (this.count >= 8) {
      this.bytes.push(this.buffer & 0xff);
      this.buffer >>>= 8;
      this.count -= 8;
    }
  }

  literal(v: number): void {
    const c = FIXED_CODES[v];
    this.write(c & 0xffff, c >>> 16);
  }

  /** The bytes written; a last partial byte is included with its unused high bits zero. */
  finish(): Uint8Array {
    const out = Uint8Array.from(this.bytes.concat(this.count > 0 ? [this.buffer & 0xff] : []));
    return out;
  }
}

const FIXED_BLOCK_HEADER = 2; // BFINAL 0, BTYPE 01 (written LSB first)
const FINAL_FIXED_BLOCK_HEADER = 3; // BFINAL 1, BTYPE 01
const END_OF_BLOCK = 256;

/**
 * The synthetic start: bytes that output `discard` bytes ending with `window`, after which the decoder is
 * at a block boundary whose next bits are the high `bits` bits of `partialByte` followed by the original
 * bytes from the checkpoint's `in`. The last prefix byte already holds those high bits.
 */
export function syntheticStart(
  window: Uint8Array,
  bits: number,
  partialByte: number,
): { bytes: Uint8Array; discard: number } {
  const residue = (8 - bits) & 7; // bit position in the last byte where the original bits continue
  let windowBits = 0;
  if (window.length > 0) {
    windowBits = 3 + 7;
    for (const b of window) windowBits += FIXED_CODES[b] >>> 16;
  }
  // 19-bit pad block (3 mod 8) and 10-bit empty blocks (2 mod 8) reach any residue.
  const needed = (((residue - windowBits) % 8) + 8) % 8;
  const pad = needed % 2 === 1;
  const empties = (((needed - (pad ? 3 : 0)) % 8) + 8) % 8 / 2;
  const writer = new BitWriter();
  if (pad) {
    writer.write(FIXED_BLOCK_HEADER, 3);
    writer.literal(144); // a 9-bit literal; its output lies before the window, out of reach of any distance
    writer.literal(END_OF_BLOCK);
  }
  if (window.length > 0) {
    writer.write(FIXED_BLOCK_HEADER, 3);
    for (const b of window) writer.literal(b);
    writer.literal(END_OF_BLOCK);
  }
  for (let i = 0; i < empties; i++) {
    writer.write(FIXED_BLOCK_HEADER, 3);
    writer.literal(END_OF_BLOCK);
  }
  if (writer.bitLength % 8 !== residue) throw new Error("synthetic deflate prefix misaligned");
  const bytes = writer.finish();
  if (residue > 0) bytes[bytes.length - 1] |= partialByte & (0xff << residue) & 0xff;
  return { bytes, discard: (pad ? 1 : 0) + window.length };
}

/**
 * The synthetic end at a block boundary: replaces the stop checkpoint's partly read byte (its low
 * `8 - bits` bits are the original's; `bits` 0: no byte to replace) with a final empty block.
 */
export function syntheticEnd(bits: number, partialByte: number): Uint8Array {
  const writer = new BitWriter();
  const used = (8 - bits) & 7;
  if (used > 0) writer.write(partialByte & ((1 << used) - 1), used);
  writer.write(FINAL_FIXED_BLOCK_HEADER, 3);
  writer.literal(END_OF_BLOCK);
  return writer.finish();
}

export interface NativeRange {
  from: Checkpoint;
  /** Stop at this later checkpoint of the same deflate stream, or null: run to `end`, the stream's end. */
  stopAt: Checkpoint | null;
  end: number | undefined;
  /** ZIP member: check the running CRC against this at the end (only without `stopAt`). */
  expected: { crc32: number; size: number } | undefined;
  pieceBytes: number;
}

/** Whether the fast path can serve this range (see the invariants above). */
export function nativeFits(
  codec: Codec,
  from: Checkpoint,
  stopAt: Checkpoint | null,
  end?: number,
  expected?: { crc32: number; size: number },
): boolean {
  if (!NATIVE_RAW_INFLATE || codec === "stored" || from.member === null) return false;
  // To a ZIP member's end only with its expected size: DecompressionStream accepts a stream cut short.
  if (stopAt === null) return codec === "deflate" && end !== undefined && expected !== undefined;
  return stopAt.member !== null && stopAt.member.start === from.member.start && stopAt.out > from.out &&
    stopAt.in > from.in;
}

/**
 * Whether this runtime's DecompressionStream reads "deflate-raw" (Deno since 1.24; the Supabase Edge Runtime exposes
 * the compression streams since edge-runtime#398, 2024): where it does not, every range runs in pako.
 */
const NATIVE_RAW_INFLATE = (() => {
  try {
    new DecompressionStream("deflate-raw");
    return true;
  } catch {
    return false;
  }
})();

/** Inflates `range` with DecompressionStream; events as inflateFrom's (an end event only without stopAt). */
export async function* inflateNative(cursor: InputCursor, range: NativeRange): AsyncGenerator<InflateEvent> {
  const { from, stopAt, pieceBytes } = range;
  const truncated = () =>
    new CompressionError(
      `The compressed data ends early at byte ${cursor.offset} (truncated upload?)`,
      cursor.offset,
    );
  let partial = 0;
  if (from.bits > 0) {
    partial = await cursor.byte();
    if (partial === -1) throw truncated();
  }
  const start = syntheticStart(from.window, from.bits, partial);
  // Corrupt data can decode to a different length without a decoder error; a range knows its length.
  const changed = (at: number) =>
    new CompressionError(
      `Corrupt deflate data between compressed bytes ${from.in} and ${stopAt!.in}: it decompresses to ` +
        `${at - from.out}${at > stopAt!.out ? "+" : ""} bytes, not the ${stopAt!.out - from.out} recorded ` +
        `(was the file changed?)`,
      from.in,
    );
  const stream = new DecompressionStream("deflate-raw");
  // Pieces are plain Uint8Arrays (never over a SharedArrayBuffer); the DOM typing wants ArrayBuffer-backed
  // ones.
  const writer = stream.writable.getWriter() as unknown as WritableStreamDefaultWriter<Uint8Array>;
  const reader = stream.readable.getReader();
  let writeError: unknown = null;
  const writing = (async () => {
    try {
      if (start.bytes.length > 0) await writer.write(start.bytes);
      const stopByte = stopAt !== null && stopAt.bits > 0 ? stopAt.in - 1 : -1;
      while (await cursor.next()) {
        const pieceStart = cursor.offset;
        let piece = cursor.buf.subarray(cursor.pos);
        cursor.pos = cursor.buf.length;
        if (stopByte >= pieceStart && stopByte < pieceStart + piece.length) {
          // The stop checkpoint's partly read byte: its used bits, then a final empty block.
          const tail = syntheticEnd(stopAt!.bits, piece[stopByte - pieceStart]);
          piece = piece.subarray(0, stopByte - pieceStart);
          if (piece.length > 0) await writer.write(piece);
          await writer.write(tail);
          continue;
        }
        await writer.write(piece);
      }
      const wanted = stopAt !== null ? stopAt.in : range.end!;
      if (cursor.offset < wanted) throw truncated();
      if (stopAt !== null && stopAt.bits === 0) await writer.write(syntheticEnd(0, 0));
      await writer.close();
    } catch (error) {
      writeError = error;
      await writer.abort(error).catch(() => {});
    }
  })();
  const member = { ...from.member! };
  let out = from.out;
  let discard = start.discard;
  let finished = false;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        await writing;
        if (writeError instanceof CompressionError) throw writeError;
        throw new CompressionError(
          `Corrupt deflate data between compressed bytes ${from.in} and ${cursor.offset}: ${
            (error as Error).message
          }`,
          from.in,
        );
      }
      if (chunk.done) break;
      let bytes = chunk.value;
      if (discard > 0) {
        const skip = Math.min(discard, bytes.length);
        discard -= skip;
        bytes = bytes.subarray(skip);
      }
      if (stopAt !== null && out + bytes.length > stopAt.out) throw changed(out + bytes.length);
      if (range.expected !== undefined && stopAt === null) member.crc = crc32(member.crc, bytes);
      member.size += bytes.length;
      for (let i = 0; i < bytes.length; i += pieceBytes) {
        const piece = bytes.subarray(i, i + pieceBytes);
        yield { kind: "data", bytes: piece, out };
        out += piece.length;
      }
    }
    await writing;
    if (writeError !== null) throw writeError;
    finished = true;
  } finally {
    if (!finished) {
      await reader.cancel().catch(() => {});
      await writing;
    }
  }
  if (stopAt !== null) {
    if (out !== stopAt.out) {
      throw changed(out);
    }
    return;
  }
  const expected = range.expected;
  if (expected !== undefined) {
    if (member.size !== expected.size) {
      throw new CompressionError(
        `The ZIP member decompresses to ${member.size} bytes but the archive says ${expected.size}: ` +
          `the file is corrupt`,
        range.end!,
      );
    }
    if (member.crc !== expected.crc32 >>> 0) {
      throw new CompressionError(`CRC-32 check failed for the ZIP member: the data is corrupt`, range.end!);
    }
  }
  yield { kind: "end", out, in: range.end! };
}
