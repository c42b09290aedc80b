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
 * Bounded work: if no record start appears within `maxRecordBytes` (+1 for CRLF) bytes, the record spanning
 * `start` is over the limit and `record_too_large` is thrown (naming `startLine`, the physical line of byte
 * `start`, when given); the finder never buffers.
 */

import { CsvError } from "./errors.ts";
import { type CsvFormat, formatBytes } from "./format.ts";

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
  const limit = options.maxRecordBytes + (crlf ? 1 : 0);
  let pos = start; // absolute offset of the next byte to consume
  let parity = options.entryParity;
  let lines = 0;
  let decided: BoundaryResult | null = start >= end || dataStart >= end ? NONE : null;

  return {
    push(piece) {
      if (decided !== null) return decided;
      const pieceStart = pos;
      let i = 0;
      const n = piece.length;
      if (pos < dataStart) {
        // Before the data: skip to dataStart, which is a record start by definition.
        const skip = Math.min(n, dataStart - pos);
        for (; i < skip; i++) if (piece[i] === terminator) lines++;
        pos += skip;
        if (pos < dataStart) return MORE;
        return (decided = { kind: "found", offset: dataStart, index: i, linesSkipped: lines });
      }
      if (pos === dataStart || (pos === start && options.atRecordStart)) {
        return (decided = { kind: "found", offset: pos, index: 0, linesSkipped: 0 });
      }
      const q = quote;
      const t = terminator;
      const last = Math.min(n, end - 1 - pieceStart); // bytes at end - 1 and beyond are never needed
      for (; i < last; i++) {
        const c = piece[i];
        if (c === q) parity ^= 1;
        else if (c === t) {
          lines++;
          if (parity === 0) {
            const offset = pieceStart + i + 1;
            return (decided = { kind: "found", offset, index: i + 1, linesSkipped: lines });
          }
        }
      }
      pos = pieceStart + i;
      if (pos >= end - 1) return (decided = NONE);
      if (pos - start > limit) {
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
