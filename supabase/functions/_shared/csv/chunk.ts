/**
 * Reads the records one chunk owns: boundary finding ({@link createBoundaryFinder}) followed by parsing
 * ({@link createRecordParser}) with `stopAt = end`.
 *
 * Contract: push the file's bytes from `start` onwards, in order, until `done` (reading past `end` as needed to
 * finish the last owned record), then call `finish()` if the file ended first. The records returned are exactly
 * those whose first byte lies in `[start, end)`; `firstOffset` is the first owned record's offset (null when the
 * chunk owns none) and `nextOffset` the offset just past the last one, so for consecutive chunks that own
 * records, one chunk's `nextOffset` equals the next one's `firstOffset`.
 */

import { createBoundaryFinder } from "./boundary.ts";
import type { CsvFormat } from "./format.ts";
import { createRecordParser, type CsvRecord, type RecordParser, type RecordParserOptions } from "./parser.ts";
import type { ChunkEntry } from "./scan.ts";

export interface ChunkReaderOptions {
  readonly format: CsvFormat;
  readonly start: number;
  readonly end: number;
  /** Offset of the first data record (after BOM and header). */
  readonly dataStart: number;
  /** The chunk's entry state from `composeEntries`. */
  readonly entry: ChunkEntry;
  readonly maxRecordBytes: number;
  /** Passed to the record parser (see RecordParserOptions.fastRecord). */
  readonly fastRecord?: RecordParserOptions["fastRecord"];
  /** Passed to the record parser (see RecordParserOptions.onRecord). */
  readonly onRecord?: RecordParserOptions["onRecord"];
}

export interface ChunkReader {
  push(piece: Uint8Array): CsvRecord[];
  finish(): CsvRecord[];
  /** True when no further input is needed. */
  readonly done: boolean;
  readonly firstOffset: number | null;
  /** Offset just past the last owned record (null while no record was found). */
  readonly nextOffset: number | null;
  /** Physical line at `nextOffset`. */
  readonly nextLine: number | null;
  readonly blankLines: number;
}

export function createChunkReader(options: ChunkReaderOptions): ChunkReader {
  const { format, start, end, dataStart, entry, maxRecordBytes } = options;
  const finder = createBoundaryFinder({
    format,
    start,
    end,
    dataStart,
    entryParity: entry.entryParity,
    atRecordStart: entry.atRecordStart,
    maxRecordBytes,
    startLine: entry.linesBefore + 1,
  });
  let parser: RecordParser | null = null;
  let empty = false;
  let firstOffset: number | null = null;

  return {
    push(piece) {
      if (parser !== null) return parser.push(piece);
      if (empty) return [];
      const r = finder.push(piece);
      if (r.kind === "more") return [];
      if (r.kind === "none") {
        empty = true;
        return [];
      }
      firstOffset = r.offset;
      parser = createRecordParser({
        format,
        maxRecordBytes,
        startOffset: r.offset,
        startLine: entry.linesBefore + 1 + r.linesSkipped,
        stopAt: end,
        fastRecord: options.fastRecord,
        onRecord: options.onRecord,
      });
      return parser.push(piece.subarray(r.index));
    },
    finish() {
      if (parser !== null) return parser.finish();
      empty = true;
      return [];
    },
    get done() {
      return parser !== null ? parser.done : empty;
    },
    get firstOffset() {
      return firstOffset;
    },
    get nextOffset() {
      return parser?.nextOffset ?? null;
    },
    get nextLine() {
      return parser?.nextLine ?? null;
    },
    get blankLines() {
      return parser?.blankLines ?? 0;
    },
  };
}
