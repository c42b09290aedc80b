/**
 * The typed surface of pako's zlib port (pako 2.1.0, `lib/zlib/`) that the inflater uses: a raw inflater that
 * can stop at deflate block boundaries (`Z_BLOCK`), be primed with leftover bits and a dictionary, and pako's
 * CRC-32. pako ships these files as untyped CommonJS; this is the one place that declares their shape.
 *
 * Invariants:
 * - Only raw deflate streams (window bits -15): headers and trailers (gzip) are parsed by our own code.
 * - `data_type` after `inflate()` holds, as in zlib: bits 0–2 the unused bits in the bit buffer, 64 when the
 *   last block has been seen, 128 when the inflater stopped at a block boundary (mode TYPE). pako writes the
 *   bit count as a plain number, so `& 7` is only right because the bit buffer holds fewer than 8 bits at a
 *   boundary (every decoding step pulls whole bytes only while it needs bits; inflate_fast returns unused
 *   whole bytes).
 * - `primeRawInflater` is what zlib's `inflatePrime` does (pako lacks it): it sets the bit buffer directly.
 * - The inflater's own 32 KiB circular window (`state.window`, `wnext`, `whave`) always holds the last
 *   output; `copyWindow` linearises it, so callers may reuse their output buffer between calls.
 */

import * as zlibInflate from "pako/lib/zlib/inflate.js";
import ZStreamJs from "pako/lib/zlib/zstream.js";
import crc32Js from "pako/lib/zlib/crc32.js";

export interface PakoInflateState {
  hold: number;
  bits: number;
  window: Uint8Array | null;
  wsize: number;
  whave: number;
  wnext: number;
}

export interface PakoZStream {
  input: Uint8Array | null;
  next_in: number;
  avail_in: number;
  output: Uint8Array | null;
  next_out: number;
  avail_out: number;
  msg: string;
  state: PakoInflateState;
  data_type: number;
}

export const Z_NO_FLUSH = 0;
export const Z_BLOCK = 5;
export const Z_OK = 0;
export const Z_STREAM_END = 1;
export const Z_DATA_ERROR = -3;
export const Z_BUF_ERROR = -5;

/** `data_type` flag: the last block has been seen. */
export const DATA_TYPE_LAST_BLOCK = 64;
/** `data_type` flag: stopped at a block boundary. */
export const DATA_TYPE_AT_BOUNDARY = 128;

const pakoInflate = zlibInflate as unknown as {
  inflateInit2(strm: PakoZStream, windowBits: number): number;
  inflate(strm: PakoZStream, flush: number): number;
  inflateSetDictionary(strm: PakoZStream, dictionary: Uint8Array): number;
};
const ZStream = ZStreamJs as unknown as new () => PakoZStream;
const pakoCrc32 = crc32Js as unknown as (crc: number, buf: Uint8Array, len: number, pos: number) => number;

/** A raw (headerless) deflate inflater with a 32 KiB window. */
export function newRawInflater(): PakoZStream {
  const strm = new ZStream();
  const ret = pakoInflate.inflateInit2(strm, -15);
  if (ret !== Z_OK) throw new Error(`pako inflateInit2 failed (${ret})`);
  return strm;
}

/**
 * A raw inflater positioned mid-stream at a block boundary: `bits` (0–7) leftover bits with value `value`
 * in the bit buffer, and `window` (≤ 32 KiB) as the preceding output.
 */
export function primeRawInflater(value: number, bits: number, window: Uint8Array): PakoZStream {
  const strm = newRawInflater();
  strm.state.hold = value;
  strm.state.bits = bits;
  if (window.length > 0) {
    const ret = pakoInflate.inflateSetDictionary(strm, window);
    if (ret !== Z_OK) throw new Error(`pako inflateSetDictionary failed (${ret})`);
  }
  return strm;
}

export function inflate(strm: PakoZStream, flush: number): number {
  return pakoInflate.inflate(strm, flush);
}

/** A copy of the inflater's last ≤ 32 KiB of output, oldest byte first. */
export function copyWindow(strm: PakoZStream): Uint8Array {
  const { window, whave, wnext, wsize } = strm.state;
  if (window === null || whave === 0) return new Uint8Array(0);
  if (whave < wsize) return window.slice(0, whave);
  const copy = new Uint8Array(wsize);
  copy.set(window.subarray(wnext, wsize), 0);
  copy.set(window.subarray(0, wnext), wsize - wnext);
  return copy;
}

/** Continues a CRC-32 (unsigned) over `bytes`. */
export function crc32(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  return pakoCrc32(crc, bytes, end - start, start) >>> 0;
}
