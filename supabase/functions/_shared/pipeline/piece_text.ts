/**
 * The COPY TEXT of a piece whose text was deferred (CopyPiece.textDeferred), built when it is needed: the piece
 * turned to text (a value without a binary form, a record of the string path) or the database refused it and
 * its rows are bisected as text (load/loader.ts). A piece that goes in binary never builds it.
 *
 * How: the file's bytes from the piece's first row to its last row's end are parsed again, by the same chunk
 * reader, fast row function and string converter as the load's, into a new piece that builds its text as it
 * goes; the piece then takes that text (CopyPiece.adoptText).
 *
 * Invariants:
 * - The text is the one an eager piece of the same rows would hold: the same bytes go through the same
 *   functions, starting at a record start outside quotes (each row's offset is where its record starts) on
 *   the row's own line; records between the rows that were rejected the first time are rejected again and
 *   dropped.
 * - The rebuilt rows must be the piece's rows (count, offsets, lines) or adoptText throws, and the chunk is
 *   retried as for any transient failure: never a text that does not match its rows.
 * - Reads only [first row, last row's end + 2) (the +2 covers the last record's terminator, CRLF included),
 *   from the range the load holds when it covers that, else from Storage with the job's version (ETag); a
 *   compressed job's data is inflated again from the chunk's checkpoint (its offsets are the inflated data's).
 */
import { createChunkReader } from "../csv/chunk.ts";
import type { CsvFormat } from "../csv/format.ts";
import { CopyPiece } from "../load/copy_piece.ts";
import type { FastRow } from "../load/fast_row.ts";
import type { RowConverter } from "../load/row_converter.ts";
import type { WorkMeter } from "./isolate_budget.ts";

/** What rebuilding a piece's text needs: the file's bytes and the load's own parsing. */
export interface PieceTextSource {
  /** The file's (or a compressed job's inflated data's) bytes [from, to), fewer only where it ends. */
  readBytes(from: number, to: number): Promise<Uint8Array>;
  readonly format: CsvFormat;
  readonly dataStart: number;
  readonly maxRecordBytes: number;
  readonly fastRow: FastRow | null;
  readonly converter: RowConverter;
  /** The load's work account: parsing again is synchronous work like the first parse. */
  readonly work: WorkMeter;
}

/** Builds the text of `piece` from the file (see the module doc). */
export async function buildPieceText(source: PieceTextSource, piece: CopyPiece): Promise<void> {
  if (piece.count === 0) return;
  const first = piece.place(0);
  const last = piece.place(piece.count - 1);
  const from = first.offset;
  const bytes = await source.readBytes(from, last.offset + last.byteLength + 2);
  const built = new CopyPiece();
  const { fastRow, converter } = source;
  const started = performance.now();
  const reader = createChunkReader({
    format: source.format,
    start: from,
    // Records that start after the last row's start belong to later pieces.
    end: last.offset + 1,
    dataStart: source.dataStart,
    entry: { entryParity: 0, linesBefore: first.line - 1, atRecordStart: true },
    maxRecordBytes: source.maxRecordBytes,
    fastRecord: fastRow === null ? undefined : (work, bs, be, line, offset, quoted) => {
      if (!fastRow(work, bs, be, built, quoted)) return false;
      built.endRow(line, offset, be - bs);
      return true;
    },
    onRecord: (record) => {
      const converted = converter.convert(record);
      if (typeof converted === "string") built.add(converted, record.line, record.offset, record.byteLength);
    },
  });
  reader.push(bytes);
  if (!reader.done) reader.finish();
  source.work.add(performance.now() - started);
  piece.adoptText(built);
}
