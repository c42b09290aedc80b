/**
 * UTF-16 files (LE or BE) read by the byte-level machinery (scan, boundary finding, parsing) without converting
 * the file: each 2-byte code unit is "narrowed" to one byte that keeps the CSV structure — the unit itself when
 * it is ASCII (delimiter, quote, CR, LF and every other ASCII character), {@link NON_ASCII} otherwise — and the
 * units themselves are kept beside it for decoding fields.
 *
 * Invariants:
 * - Narrowing is exact for the structure: a narrowed byte is a quote, a delimiter or a line break iff the code
 *   unit is that character (a non-ASCII unit, a surrogate included, is never structural), so quote parity, line
 *   counts and record boundaries computed on narrowed bytes are those of the text.
 * - Position k of a narrowed piece is the unit at file offset `origin + 2k`: callers scale their offsets by 2.
 * - A piece may end in the middle of a unit: its odd byte is carried into the next piece (a {@link Utf16Narrower}
 *   holds it), so pushes may split the file anywhere; a file that ends on an odd byte leaves one byte carried,
 *   which `finish` callers report.
 */

/** What a non-ASCII code unit narrows to: never a delimiter, quote or line break (all ASCII). */
export const NON_ASCII = 0x80;

/** The platform's Uint16Array byte order (TextDecoder reads a Uint16Array's bytes as they are in memory). */
export const NATIVE_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface Narrowed {
  /** One byte per complete unit (ASCII, or NON_ASCII). */
  readonly narrow: Uint8Array;
  /** The units, in the platform's byte order. */
  readonly units: Uint16Array;
}

/** Narrows a stream of UTF-16 bytes piece by piece, carrying an odd byte between pieces. */
export class Utf16Narrower {
  #carry = -1;
  constructor(readonly bigEndian: boolean) {}

  /** True when a byte waits for the next piece (the pieces so far end inside a code unit). */
  get pending(): boolean {
    return this.#carry !== -1;
  }

  push(bytes: Uint8Array): Narrowed {
    const carried = this.#carry === -1 ? 0 : 1;
    const count = (bytes.length + carried) >> 1;
    const narrow = new Uint8Array(count);
    const units = new Uint16Array(count);
    const be = this.bigEndian;
    let i = 0;
    let k = 0;
    if (carried === 1 && count > 0) {
      const a = this.#carry;
      const b = bytes[0];
      units[0] = be ? (a << 8) | b : (b << 8) | a;
      i = 1;
      k = 1;
    }
    for (; k < count; k++, i += 2) {
      units[k] = be ? (bytes[i] << 8) | bytes[i + 1] : (bytes[i + 1] << 8) | bytes[i];
    }
    this.#carry = i < bytes.length ? bytes[i] : carried === 1 && count === 0 ? this.#carry : -1;
    for (let j = 0; j < count; j++) {
      const u = units[j];
      narrow[j] = u < 0x80 ? u : NON_ASCII;
    }
    return { narrow, units };
  }
}

/** The first index `i >= from`, `i - from` even, where the unit at bytes[i, i+2) is `unit`; -1 when none. */
export function indexOfUnit(bytes: Uint8Array, unit: number, bigEndian: boolean, from = 0): number {
  const hi = unit >> 8;
  const lo = unit & 0xff;
  const [first, second] = bigEndian ? [hi, lo] : [lo, hi];
  for (let i = from; i + 1 < bytes.length; i += 2) {
    if (bytes[i] === first && bytes[i + 1] === second) return i;
  }
  return -1;
}
