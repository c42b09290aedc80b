/**
 * Deferred text (piece_text.ts, CopyPiece.textDeferred) against text built as rows are parsed: for random files
 * of plain, quoted, near-miss (string path), refused and binary-less values, with LF or CRLF line ends, every
 * piece of a load that defers its text holds the same rows as the eager load's piece, and the text built for it
 * afterwards is byte for byte the eager piece's text, whether the piece went binary or not.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createChunkReader } from "../csv/chunk.ts";
import type { CsvFormat } from "../csv/format.ts";
import type { CopyPiece } from "../load/copy_piece.ts";
import { compileFastRow } from "../load/fast_row.ts";
import { compileRowConverter, type JobColumns } from "../load/row_converter.ts";
import { builtinColumn as column } from "../pg_types/columns.ts";
import { WorkMeter } from "./isolate_budget.ts";
import { buildPieceText, type PieceTextSource } from "./piece_text.ts";
import { RowSource } from "./row_source.ts";

const TARGET = [
  column("id", "int8", { notNull: true }),
  column("u", "uuid"),
  column("amount", "numeric", { numericPrecision: 8, numericScale: 2 }),
  column("paid", "bool"),
  column("at", "timestamptz"),
  column("note", "text"),
];
const COLUMNS: JobColumns = {
  expected_fields: TARGET.length,
  ignored: [],
  mapped: TARGET.map((c, field) => ({ field, header: c.name, column: c })),
};

/** Per column: plain forms (fast path, binary), near misses (string path), refusals, and forms without binary. */
const VALUES: string[][] = [
  ["1", "42", "-7", "123456789012345", "+1", " 3", "x", ""],
  ["123e4567-e89b-12d3-a456-426614174000", "{123e4567-e89b-12d3-a456-426614174000}", "nope", ""],
  ["0", "12.50", "-3.14", "1e3", "12.345", "abc", ""],
  ["t", "f", "true", "yes", "maybe", ""],
  ["2024-01-02T03:04:05Z", "2024-01-02 03:04:05+02", "2024-01-02 03:04:05", "2024-13-01", ""],
  ["plain", "with, comma", 'say ""hi""', "two\nlines", "tab\there", "back\\slash", "très", ""],
];

const FORMAT_LF: CsvFormat = { delimiter: ",", quote: '"', newline: "\n" };
const FORMAT_CRLF: CsvFormat = { delimiter: ",", quote: '"', newline: "\r\n" };

/** A field as written in the file: quoted when it must be, or when `quote` says so. */
function written(value: string, quote: boolean): string {
  const needs = /[",\r\n]/.test(value);
  return needs || (quote && value !== "") ? `"${value.replaceAll('"', '""')}"` : value;
}

const fileArb = fc.record({
  rows: fc.array(
    fc.array(fc.tuple(fc.constant(""), fc.boolean()), { minLength: VALUES.length, maxLength: VALUES.length })
      .chain((cells) =>
        fc.tuple(...cells.map((_, k) => fc.tuple(fc.constantFrom(...VALUES[k]), fc.boolean())))
      ),
    { minLength: 1, maxLength: 120 },
  ),
  crlf: fc.boolean(),
  trailingNewline: fc.boolean(),
  rowsPerBatch: fc.integer({ min: 1, max: 40 }),
  readBytes: fc.integer({ min: 1, max: 400 }),
});

function makeFile(f: { rows: [string, boolean][][]; crlf: boolean; trailingNewline: boolean }): Uint8Array {
  const nl = f.crlf ? "\r\n" : "\n";
  const lines = [
    "id,u,amount,paid,at,note",
    ...f.rows.map((r) => r.map(([v, q]) => written(v, q)).join(",")),
  ];
  return new TextEncoder().encode(lines.join(nl) + (f.trailingNewline ? nl : ""));
}

/** The file after its header in reads of `readBytes` (pieces and batches are cut between reads). */
function reads(bytes: Uint8Array, from: number, readBytes: number): ReadableStream<Uint8Array> {
  const slices: Uint8Array[] = [];
  for (let at = from; at < bytes.length; at += readBytes) slices.push(bytes.slice(at, at + readBytes));
  return ReadableStream.from(slices);
}

/** The load's RowSource over the whole file, its text deferred or not. */
function source(
  bytes: Uint8Array,
  format: CsvFormat,
  deferred: PieceTextSource | null,
  readBytes = 64,
): RowSource {
  const dataStart = bytes.indexOf(10) + 1;
  return new RowSource(
    (hooks) =>
      createChunkReader({
        format,
        start: dataStart,
        end: bytes.length,
        dataStart,
        entry: { entryParity: 0, linesBefore: 1, atRecordStart: true },
        maxRecordBytes: 1 << 20,
        ...hooks,
      }),
    reads(bytes, dataStart, readBytes),
    compileRowConverter(COLUMNS, {}),
    compileFastRow(COLUMNS, format, { binary: true }),
    new WorkMeter(),
    deferred === null ? null : (piece) => buildPieceText(deferred, piece),
  );
}

function textSource(bytes: Uint8Array, format: CsvFormat): PieceTextSource {
  return {
    readBytes: (from, to) => Promise.resolve(bytes.subarray(from, to)),
    format,
    dataStart: bytes.indexOf(10) + 1,
    maxRecordBytes: 1 << 20,
    fastRow: compileFastRow(COLUMNS, format, { binary: true }),
    converter: compileRowConverter(COLUMNS, {}),
    work: new WorkMeter(),
  };
}

const places = (p: CopyPiece) => Array.from({ length: p.count }, (_, i) => p.place(i));

Deno.test("deferred text: every piece's rows and rebuilt text equal the eager piece's", async () => {
  await fc.assert(
    fc.asyncProperty(fileArb, async (f) => {
      const bytes = makeFile(f);
      const format = f.crlf ? FORMAT_CRLF : FORMAT_LF;
      const text = textSource(bytes, format);
      const eager = source(bytes, format, null, f.readBytes);
      const deferred = source(bytes, format, text, f.readBytes);
      for (;;) {
        const a = await eager.nextPiece(f.rowsPerBatch, Infinity, Infinity);
        const b = await deferred.nextPiece(f.rowsPerBatch, Infinity, Infinity);
        assert.equal(b.piece.count, a.piece.count);
        assert.equal(b.last, a.last);
        assert.deepEqual(places(b.piece), places(a.piece));
        assert.equal(b.piece.binary, a.piece.binary);
        if (a.piece.binary) assert.deepEqual(b.piece.binData(), a.piece.binData());
        assert.equal(b.piece.textMissing, b.piece.count > 0);
        // Built directly (the source's own hook would switch the rest of the load to eager text).
        await buildPieceText(text, b.piece);
        assert.deepEqual(b.piece.data(), a.piece.data());
        assert.deepEqual(b.piece.rows(), a.piece.rows());
        assert.deepEqual([deferred.parsed, deferred.rejects], [eager.parsed, eager.rejects]);
        eager.release(a.piece);
        deferred.release(b.piece);
        if (a.last) {
          if (eager.finished) break;
          eager.resetBatch();
          deferred.resetBatch();
        }
      }
      assert.ok(deferred.finished);
    }),
    { numRuns: 300 },
  );
});

Deno.test("deferred text: a piece's text is refused until built; after one build the load builds text as it goes", async () => {
  const rows = Array.from({ length: 30 }, (_, i) => `${i + 1},,1.00,t,2024-01-02 03:04:05,"note ${i}"`);
  const bytes = new TextEncoder().encode(["id,u,amount,paid,at,note", ...rows].join("\n") + "\n");
  const deferred = source(bytes, FORMAT_LF, textSource(bytes, FORMAT_LF));
  const first = await deferred.nextPiece(10, Infinity, Infinity);
  const n = first.piece.count; // at least 10: the limit is checked between reads
  assert.ok(n >= 10 && n < 30);
  // A timestamp without zone has no binary form here: the piece goes as text, which it must build first.
  assert.equal(first.piece.binary, false);
  assert.equal(first.piece.textMissing, true);
  assert.throws(() => first.piece.data(), /not built/);
  await first.piece.ensureText();
  assert.equal(first.piece.textMissing, false);
  assert.match(
    new TextDecoder().decode(first.piece.data()),
    /^1\t\\N\t1\.00\tt\t2024-01-02 03:04:05\tnote 0\n/,
  );
  deferred.release(first.piece);
  deferred.resetBatch();
  const second = await deferred.nextPiece(10, Infinity, Infinity);
  assert.equal(second.piece.textMissing, false);
  assert.ok(second.piece.count > 0);
  assert.ok(new TextDecoder().decode(second.piece.data()).startsWith(`${n + 1}\t\\N\t`));
});

/** Five plain rows (`note(i)` the last field, "x" by default) as a file. */
function fiveRows(note: (i: number) => string = () => "x"): Uint8Array {
  const rows = Array.from({ length: 5 }, (_, i) => `${i + 1},,1.00,t,2024-01-02T03:04:05Z,${note(i)}`);
  return new TextEncoder().encode(["id,u,amount,paid,at,note", ...rows].join("\n") + "\n");
}

/**
 * Builds the text of a piece of `fiveRows()` from `other` bytes instead of the file's: the piece is filled
 * eagerly, then marked as a deferring load's piece whose text is missing.
 */
async function rebuildFrom(other: (piece: CopyPiece, bytes: Uint8Array) => Uint8Array): Promise<void> {
  const bytes = fiveRows();
  const { piece } = await source(bytes, FORMAT_LF, null).nextPiece(5, Infinity, Infinity);
  assert.ok(piece.count >= 3);
  piece.textDeferred = true;
  piece.skipText(0);
  const served = other(piece, bytes);
  await buildPieceText(
    { ...textSource(bytes, FORMAT_LF), readBytes: (from, to) => Promise.resolve(served.subarray(from, to)) },
    piece,
  );
}

Deno.test("deferred text: bytes that do not hold the piece's rows are refused, not adopted", async () => {
  // The second row's line break turned into a comma: the first two rows are one record of too many fields
  // (rejected), and the rebuilt piece has one row fewer than the piece.
  await assert.rejects(
    () =>
      rebuildFrom((piece, bytes) => {
        const other = bytes.slice();
        other[piece.place(1).offset - 1] = 0x2c;
        return other;
      }),
    /rebuilt text has \d+ rows/,
  );
});

Deno.test("deferred text: rebuilt rows at other offsets are refused even when their number matches", async () => {
  // The second row one byte longer ("xy"), the third one shorter (no note): as many rows, the third one byte on.
  const shifted = fiveRows((i) => (i === 1 ? "xy" : i === 2 ? "" : "x"));
  assert.equal(shifted.length, fiveRows().length);
  await assert.rejects(() => rebuildFrom(() => shifted), /rebuilt row 2 is at/);
});
