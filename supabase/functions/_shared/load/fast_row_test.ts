/**
 * The byte-level fast path (fast_row.ts) against the string path (parser + row_converter.ts): for random
 * records of every type it takes, in tricky and plain forms, whenever the fast path takes a record, the string
 * path must accept it too and COPY must read the same values from both lines; the parser must hand over exactly
 * the records the fast path declines, with the right lines and offsets.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { CsvFormat } from "../csv/format.ts";
import { createRecordParser } from "../csv/parser.ts";
import { compileFastRow } from "./fast_row.ts";
import { CopyPiece } from "./copy_piece.ts";
import type { TargetColumn } from "../pg_types/columns.ts";
import { builtinColumn as column } from "../pg_types/columns.ts";
import { unescapeCopyText } from "../pg_types/copy_text.ts";
import { compileRowConverter, type JobColumns, RowRejection } from "./row_converter.ts";

const COLUMNS: TargetColumn[] = [
  column("i8", "int8", { notNull: true }),
  column("i4", "int4"),
  column("i2", "int2"),
  column("num", "numeric", { numericPrecision: 6, numericScale: 2 }),
  column("numfree", "numeric"),
  column("b", "bool"),
  column("d", "date"),
  column("ts", "timestamptz"),
  column("t", "time"),
  column("u", "uuid"),
  column("txt", "text"),
  column("vc", "varchar", { charLength: 3 }),
  column("mood", "mood", { baseTypeKind: "e", baseTypeSchema: "public", enumLabels: ["ok", "sad", "très"] }),
];

/** Values per column: plain forms the fast path should take, and near misses it must leave alone. */
const VALUES: Record<string, string[]> = {
  i8: [
    "0",
    "-0",
    "42",
    "-9007199254740991",
    "123456789012345",
    "1234567890123456",
    "9223372036854775807",
    "+1",
    " 1",
    "1 ",
    "1.0",
    "",
    "x",
    "-",
    "007",
  ],
  i4: ["0", "2147483647", "-2147483648", "2147483648", "-2147483649", "99999999999", "12", "", "1e3", "0x1"],
  i2: ["32767", "-32768", "32768", "-32769", "5", ""],
  num: [
    "0",
    "1234.56",
    "9999.99",
    "10000",
    "-9999.99",
    "9999.995",
    "1.234",
    "0001234.5",
    ".5",
    "5.",
    "-",
    "",
    "1e2",
    "NaN",
    "12.",
    "-0.00",
  ],
  numfree: ["1", "-1.5", "123456789012345678901234567890.123", "", "Infinity", "1e5"],
  b: ["t", "f", "true", "false", "TRUE", "yes", "1", "0", "tru", "", "on"],
  d: ["2024-02-29", "2023-02-29", "2024-13-01", "0000-01-01", "2024-1-01", "01/02/2024", "", "2024-02-28 "],
  ts: [
    "2024-06-29T00:01:16.371Z",
    "2024-06-29 00:01:16",
    "2024-06-29T24:00:00Z",
    "2024-06-29T00:01:16+02:00",
    "2024-06-29T00:01:16+16",
    "2024-06-29",
    "2024-06-29T00:01",
    "now",
    "",
    "2024-06-29T00:01:16.1234567890123456789",
  ],
  t: ["00:00", "23:59:59", "24:00:00", "12:30:00.5", "1:00", ""],
  u: [
    "02ff0fdc-fa16-4b2f-a67d-775b3d6b8da6",
    "02FF0FDC-FA16-4B2F-A67D-775B3D6B8DA6",
    "02ff0fdcfa164b2fa67d775b3d6b8da6",
    "{02ff0fdc-fa16-4b2f-a67d-775b3d6b8da6}",
    "not-a-uuid",
    "",
  ],
  txt: [
    "hello",
    "",
    "Zürich",
    "a b",
    "日本語",
    "a\\b",
    "x\ty",
    "😀",
    "'single'",
    "semi;colon",
    "\u007f",
    // Quoted whenever written (they hold a line break), and text the quote character shows up in.
    "two\nlines",
    "cr\rhere",
    "crlf\r\nhere",
    'say "hi", twice ""',
    '"',
    "a,b",
  ],
  vc: ["abc", "ab", "abcd", "abc ", "äöü", "äöüx", ""],
  mood: ["ok", "sad", "très", "happy", "OK", ""],
};

const FORMATS: CsvFormat[] = [
  { delimiter: ",", quote: '"', newline: "\n" },
  { delimiter: ",", quote: '"', newline: "\r" },
  { delimiter: ";", quote: '"', newline: "\r\n" },
  { delimiter: "\t", quote: "'", newline: "\n" },
  // Delimiters that also occur inside typed values: both paths must split (and reject) alike.
  { delimiter: "-", quote: '"', newline: "\n" },
  { delimiter: ":", quote: '"', newline: "\r\n" },
];

/**
 * A field as written to the file: raw, quoted (`mode` 5 or 6, or when the value holds a line break or the
 * quote), or quoted
 * from its second character on (`mode` 7: `a"bc"`, which CSV reads as `abc`; the fast path leaves it alone).
 */
function render(value: string, mode: number, format: CsvFormat): string {
  const q = format.quote;
  const quoted = (v: string) => q + v.replaceAll(q, q + q) + q;
  if (mode === 7 && value.length > 1 && value[0] !== q) return value[0] + quoted(value.slice(1));
  if (/[\r\n]/.test(value) || value.includes(q) || mode === 5 || mode === 6) return quoted(value);
  return value;
}

/** What COPY TEXT reads from a line, per field, with booleans in one spelling. */
function copyValues(line: string, types: string[]): (string | null)[] {
  assert.ok(line.endsWith("\n"), `a COPY line ends with a newline: ${JSON.stringify(line)}`);
  return line.slice(0, -1).split("\t").map((field, i) => {
    const value = unescapeCopyText(field);
    if (types[i] === "bool" && value !== null) return value === "true" || value === "t" ? "t" : "f";
    return value;
  });
}

Deno.test("fast path: every record it takes is the string path's, value for value", () => {
  const decoder = new TextDecoder();
  let takenTotal = 0;
  let declinedTotal = 0;
  let quotedTaken = 0;
  fc.assert(
    fc.property(
      fc.constantFrom(...FORMATS),
      fc.shuffledSubarray(COLUMNS, { minLength: 1 }),
      fc.array(
        fc.array(fc.oneof(fc.constant(0), fc.constant(1), fc.nat()), {
          minLength: COLUMNS.length,
          maxLength: COLUMNS.length,
        }),
        {
          minLength: 1,
          maxLength: 30,
        },
      ),
      fc.boolean(),
      fc.array(fc.nat(7), { minLength: 30 * (COLUMNS.length + 1), maxLength: 30 * (COLUMNS.length + 1) }),
      (format, chosen, picks, extraField, modes) => {
        // File fields: the chosen columns in order, plus maybe an unmapped one; the mapping reverses them.
        const fileCols = extraField ? [...chosen, column("ignored", "text")] : chosen;
        const columns: JobColumns = {
          expected_fields: fileCols.length,
          ignored: extraField ? ["ignored"] : [],
          mapped: chosen.map((c, i) => ({ field: i, header: c.name, column: c })).reverse(),
        };
        const fast = compileFastRow(columns, format);
        assert.ok(fast !== null);
        const convert = compileRowConverter(columns, {});
        const types = columns.mapped.map((m) => m.column.baseType);
        const lines = picks.map((p, r) =>
          fileCols.map((c, i) => {
            const values = VALUES[c.name] ?? ["x", "y, z", "new\nline"];
            return render(values[(p[i] ?? i) % values.length], modes[r * (COLUMNS.length + 1) + i], format);
          }).join(format.delimiter)
        );
        const text = lines.join(format.newline) + format.newline;
        const bytes = new TextEncoder().encode(text);

        const piece = new CopyPiece();
        const taken: { line: number; offset: number; byteLength: number }[] = [];
        const parser = createRecordParser({
          format,
          maxRecordBytes: 1 << 16,
          fastRecord: (work, bs, be, line, offset, quoted) => {
            const before = piece.length;
            if (!fast(work, bs, be, piece, quoted)) {
              assert.equal(piece.length, before, "a declined record leaves nothing behind");
              return false;
            }
            piece.endRow(line, offset, be - bs);
            taken.push({ line, offset, byteLength: be - bs });
            if (quoted) quotedTaken++;
            return true;
          },
        });
        const slow = [...parser.push(bytes), ...parser.finish()];
        const reference = createRecordParser({ format, maxRecordBytes: 1 << 16 });
        const all = [...reference.push(bytes), ...reference.finish()];
        assert.equal(taken.length + slow.length, all.length, "every record is taken or handed over");
        takenTotal += taken.length;
        declinedTotal += slow.length;
        for (const record of slow) {
          assert.ok(all.some((r) => r.offset === record.offset && r.line === record.line));
        }
        for (let k = 0; k < taken.length; k++) {
          const t = taken[k];
          const record = all.find((r) => r.offset === t.offset);
          assert.ok(record, `a record starts at ${t.offset}`);
          assert.equal(record.line, t.line);
          assert.equal(record.byteLength, t.byteLength);
          const viaStrings = convert.convert(record);
          assert.ok(
            !(viaStrings instanceof RowRejection),
            `the string path accepts what the fast path took: ${JSON.stringify(lines[record.line - 1])} (${
              viaStrings instanceof RowRejection ? viaStrings.reason : ""
            })`,
          );
          const fastLine = decoder.decode(piece.data(k, k + 1));
          assert.deepEqual(copyValues(fastLine, types), copyValues(viaStrings as string, types));
        }
      },
    ),
    { numRuns: 400 },
  );
  // The generator must exercise both outcomes (plain values come first in each list, so picks favour them).
  assert.ok(
    takenTotal > 200 && declinedTotal > 200 && quotedTaken > 100,
    `taken ${takenTotal} (${quotedTaken} with quotes), declined ${declinedTotal}`,
  );
});

Deno.test("fast path: plain records are taken, in the mapped order, NULL as \\N", () => {
  const columns: JobColumns = {
    expected_fields: 3,
    ignored: [],
    mapped: [
      { field: 2, header: "c", column: column("c", "text") },
      { field: 0, header: "a", column: column("a", "int4") },
    ],
  };
  const fast = compileFastRow(columns, { delimiter: ",", quote: '"', newline: "\n" })!;
  const piece = new CopyPiece();
  const row = new TextEncoder().encode("17,skipped,");
  assert.ok(fast(row, 0, row.length, piece));
  piece.endRow(2, 0, row.length);
  assert.equal(new TextDecoder().decode(piece.data()), "\\N\t17\n");
});

Deno.test("fast path: declines types it does not know and non-ASCII delimiters", () => {
  const cols = (c: TargetColumn): JobColumns => ({
    expected_fields: 1,
    ignored: [],
    mapped: [{ field: 0, header: "x", column: c }],
  });
  const lf: CsvFormat = { delimiter: ",", quote: '"', newline: "\n" };
  assert.equal(compileFastRow(cols(column("j", "jsonb")), lf), null);
  assert.equal(compileFastRow(cols(column("f", "float8")), lf), null);
  assert.equal(compileFastRow(cols(column("t", "text")), { ...lf, delimiter: "§" }), null);
});

Deno.test("fast path: declines invalid UTF-8, control characters and backslashes in text", () => {
  const columns: JobColumns = {
    expected_fields: 2,
    ignored: [],
    mapped: [{ field: 0, header: "n", column: column("n", "int4") }, {
      field: 1,
      header: "t",
      column: column("t", "text"),
    }],
  };
  const fast = compileFastRow(columns, { delimiter: ",", quote: '"', newline: "\n" })!;
  const take = (bytes: number[]) => fast(Uint8Array.from(bytes), 0, bytes.length, new CopyPiece());
  const one = [0x31, 0x2c]; // "1,"
  assert.ok(take([...one, 0x61, 0xc3, 0xa9]), "valid two-byte sequence");
  assert.ok(take([...one, 0xf0, 0x9f, 0x98, 0x80]), "valid four-byte sequence");
  assert.ok(!take([...one, 0xc3, 0x28]), "bad continuation byte");
  assert.ok(!take([...one, 0x61, 0xc3]), "sequence cut by the record's end");
  assert.ok(!take([...one, 0xed, 0xa0, 0x80]), "UTF-16 surrogate");
  assert.ok(!take([...one, 0xc0, 0xaf]), "overlong form");
  assert.ok(!take([...one, 0xf4, 0x90, 0x80, 0x80]), "above U+10FFFF");
  assert.ok(!take([...one, 0x61, 0x0d]), "carriage return");
  assert.ok(!take([...one, 0x61, 0x5c, 0x62]), "backslash");
  assert.ok(!take([...one, 0x61, 0x09]), "tab");
  assert.ok(!take([0x31, 0x2c, 0x61, 0x2c, 0x62]), "one field too many");
});

Deno.test("fast path: with onRecord, taken and handed-over records reach the piece in file order", () => {
  const columns: JobColumns = {
    expected_fields: 2,
    ignored: [],
    mapped: [{ field: 0, header: "n", column: column("n", "int4") }, {
      field: 1,
      header: "t",
      column: column("t", "text"),
    }],
  };
  const format: CsvFormat = { delimiter: ",", quote: '"', newline: "\n" };
  const fast = compileFastRow(columns, format)!;
  const convert = compileRowConverter(columns, {});
  const piece = new CopyPiece();
  const parser = createRecordParser({
    format,
    maxRecordBytes: 1 << 16,
    fastRecord: (work, bs, be, line, offset) => {
      if (!fast(work, bs, be, piece)) return false;
      piece.endRow(line, offset, be - bs);
      return true;
    },
    onRecord: (record) => {
      const line = convert.convert(record);
      assert.equal(typeof line, "string");
      piece.add(line as string, record.line, record.offset, record.byteLength);
    },
  });
  const text = '1,a\n2,"b"\n3,c\n4,"d\ne"\n5,f\n6,g\\h\n7,i\n';
  assert.deepEqual(parser.push(new TextEncoder().encode(text)), [], "push hands everything to the hooks");
  assert.deepEqual(parser.finish(), []);
  const rows = piece.rows();
  assert.deepEqual(rows.map((r) => r.line), [1, 2, 3, 4, 6, 7, 8]);
  assert.deepEqual(rows.map((r) => r.copyLine.split("\t")[0]), ["1", "2", "3", "4", "5", "6", "7"]);
});

Deno.test("fast path: quoted fields are unquoted and escaped for COPY; other quoting is left alone", () => {
  const columns: JobColumns = {
    expected_fields: 3,
    ignored: [],
    mapped: [
      { field: 0, header: "n", column: column("n", "int4") },
      { field: 1, header: "t", column: column("t", "text") },
      {
        field: 2,
        header: "m",
        column: column("m", "mood", {
          baseTypeKind: "e",
          baseTypeSchema: "public",
          enumLabels: ["ok", 'say "hi"', 'x""y'],
        }),
      },
    ],
  };
  const fast = compileFastRow(columns, { delimiter: ",", quote: '"', newline: "\n" })!;
  const line = (record: string): string | null => {
    const piece = new CopyPiece();
    const bytes = new TextEncoder().encode(record);
    if (!fast(bytes, 0, bytes.length, piece, true)) return null;
    return new TextDecoder().decode(piece.bytes.subarray(0, piece.length));
  };
  // The reference file's quoted notes: a comma, an escaped quote and a line break.
  assert.equal(line('7,"late, ""café""\nbravo café",ok'), '7\tlate, "café"\\nbravo café\tok\n');
  assert.equal(line('"7","a\tb\\c\r\nd","ok"'), "7\ta\\tb\\\\c\\r\\nd\tok\n");
  assert.equal(line('7,"",ok'), null, 'the empty quoted field "" (an empty string, not NULL)');
  assert.equal(line('7,a"b",ok'), null, "a quote inside an unquoted field");
  assert.equal(line('7,"a"b,ok'), null, "bytes after the closing quote");
  assert.equal(line('7,"a,ok'), null, "no closing quote");
  assert.equal(line('7,"a",ok,'), null, "one field too many");
  assert.equal(line('7,"a"'), null, "one field too few");
  assert.equal(line('"7 ",a,ok'), null, "typed values keep their own checks inside quotes");
  assert.equal(line('7,"a\u0001",ok'), null, "control characters other than line breaks and tab");
  // Enum labels are compared as bytes: content that needs unescaping is the string path's.
  assert.equal(line('7,a,"say ""hi"""'), null);
  assert.equal(line('7,a,"x""y"'), null, 'the value is x"y, not the label x""y');
  assert.equal(line('7,a,"ok"'), "7\ta\tok\n");
  // A format whose quote is not printable ASCII never takes quoted records.
  const tabQuote = compileFastRow(columns, { delimiter: ",", quote: "\t", newline: "\n" })!;
  const bytes = new TextEncoder().encode("7,\ta\t,ok");
  assert.equal(tabQuote(bytes, 0, bytes.length, new CopyPiece(), true), false);
});
