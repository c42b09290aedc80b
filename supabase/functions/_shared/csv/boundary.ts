/**
 * Where a chunk's first owned record starts.
 *
 * Ownership rule: chunk `[start, end)` owns exactly the records whose first byte lies in `[start, end)`. The
 * first owned record start is the smallest `s` with `max(start, dataStart) <= s < end` such that `s === dataStart`
 * or byte `s - 1` is the terminator byte (LF; CR in lone-CR files) at even absolute quote parity. If there is
 * none, the chunk owns nothing (one record that began earlier covers all of it).
 *
 * Whether `s = start` qualifies depends on the byte before the chunk: the caller passes `atRecordStart` from
 * the scan composition. Beyond that the finder only needs bytes `[start, end - 1)`: a terminator at `end - 1`
 * would start a record at `end`, which belongs to the next chunk. Quote parity starts at the chunk's `entryParity` (from the scan pass) and toggles on
 * every quote byte. It also counts all terminator bytes it skips, so the first owned record's physical line is
 * `linesBefore + 1 + linesSkipped`.
 *
 * UTF-16 (encoding.ts): the same search on code units (utf16.ts), each two bytes; offsets stay file offsets and a
 * found record's `index` is where it starts in the pushed piece's bytes.
 *
 * Bounded work: if no record start appears within `maxRecordBytes` (+1 for CRLF) bytes, the record spanning
 * `start` is over the limit and `record_too_large` is thrown (naming `startLine`, the physical line of byte
 * `start`, when given); the finder never buffers.
 */

import { textCodec } from "./encoding.ts";
import { CsvError } from "./errors.ts";
import { type CsvFormat, formatBytes } from "./format.ts";
import { Utf16Narrower } from "./utf16.ts";

export interface BoundaryOptions {
  readonly format: CsvFormat;
  readonly start: number;
  readonly end: number;
  /** Offset of the first data record (after BOM and header). */
  readonly dataStart: number;
  /** Quote parity of all bytes before `start`. */
  readonly entryParity: 0 | 1;
  /** Byte `start - 1` is a terminator at even parity (from `composeEntries`). */
  readonly atRecordStart: boolean;
  readonly maxRecordBytes: number;
  /** Physical line (1-based) of byte `start`, for the error message. Default: unknown. */
  readonly startLine?: number;
}

export type BoundaryResult =
  /** Need the next piece. */
  | { readonly kind: "more" }
  /** The chunk owns no record. */
  | { readonly kind: "none" }
  /** First owned record at absolute `offset`, which is `index` bytes into the piece just pushed. */
  | {
    readonly kind: "found";
    readonly offset: number;
    readonly index: number;
    readonly linesSkipped: number;
  };

export interface BoundaryFinder {
  /** Feeds the next contiguous piece, starting at `start`. Call until the result is not "more". */
  push(piece: Uint8Array): BoundaryResult;
  /** End of file reached before a decision: the chunk owns nothing. */
  finish(): BoundaryResult;
}

const MORE: BoundaryResult = { kind: "more" };
const NONE: BoundaryResult = { kind: "none" };

export function createBoundaryFinder(options: BoundaryOptions): BoundaryFinder {
  const { quote, terminator, crlf } = formatBytes(options.format);
  const { start, end, dataStart } = options;
  // UTF-16: the search runs on narrowed code units (utf16.ts), W bytes each; chunk edges and dataStart are even.
  const W = textCodec(options.format.encoding).unitBytes;
  const narrower = W === 2 ? new Utf16Narrower(options.format.encoding === "utf-16be") : null;
  const limit = options.maxRecordBytes + (crlf ? W : 0);
  let pos = start; // absolute offset of the next byte to consume
  let parity = options.entryParity;
  let lines = 0;
  let decided: BoundaryResult | null = start >= end || dataStart >= end ? NONE : null;

  return {
    push(raw) {
      if (decided !== null) return decided;
      // `piece` holds units (W = 1: the bytes themselves); unit k starts at file offset unit0 + k * W and at
      // index k * W - carried of `raw` (a byte carried from the previous piece completes unit 0).
      const carried = narrower?.pending ? 1 : 0;
      const piece = narrower === null ? raw : narrower.push(raw).narrow;
      const unit0 = pos - carried;
      const rawIndex = (k: number) => k * W - carried;
      pos += raw.length;
      let i = 0;
      const n = piece.length;
      if (unit0 < dataStart) {
        // Before the data: skip to dataStart, which is a record start by definition.
        const skip = Math.min(n, (dataStart - unit0) / W);
        for (; i < skip; i++) if (piece[i] === terminator) lines++;
        if (unit0 + skip * W < dataStart) return MORE;
        return (decided = { kind: "found", offset: dataStart, index: rawIndex(i), linesSkipped: lines });
      }
      if (unit0 === dataStart || (unit0 === start && options.atRecordStart)) {
        return (decided = { kind: "found", offset: unit0, index: 0, linesSkipped: 0 });
      }
      const q = quote;
      const t = terminator;
      const last = Math.min(n, (end - W - unit0) / W); // units at end - W and beyond are never needed
      for (; i < last; i++) {
        const c = piece[i];
        if (c === q) parity ^= 1;
        else if (c === t) {
          lines++;
          if (parity === 0) {
            const offset = unit0 + (i + 1) * W;
            return (decided = { kind: "found", offset, index: rawIndex(i + 1), linesSkipped: lines });
          }
        }
      }
      const scanned = unit0 + i * W;
      if (scanned >= end - W) return (decided = NONE);
      if (scanned - start > limit) {
        const where = options.startLine !== undefined ? `line ${options.startLine}` : `offset ${start}`;
        throw new CsvError(
          "record_too_large",
          `record spanning ${where} is larger than the limit of ${options.maxRecordBytes} bytes (MAX_RECORD_BYTES)`,
          start,
          options.startLine,
        );
      }
      return MORE;
    },
    finish() {
      return (decided ??= NONE);
    },
  };
}
