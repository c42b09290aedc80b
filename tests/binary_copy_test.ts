/**
 * COPY BINARY from the fast path (fast_row.ts encoders, CopyPiece.bin) against COPY TEXT of the same rows, in the
 * real database: for records of every type the fast path takes, in plain, edge and quoted forms, each piece the
 * fast path could write in binary is loaded both ways into two tables of the same columns, and the tables must
 * hold the same values (compared as text by PostgreSQL). The session's time zone is not UTC, so a timestamptz
 * read from text in that zone would differ from a wrong binary conversion.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createRecordParser } from "../supabase/functions/_shared/csv/parser.ts";
import type { CsvFormat } from "../supabase/functions/_shared/csv/format.ts";
import { compileFastRow } from "../supabase/functions/_shared/load/fast_row.ts";
import { CopyPiece } from "../supabase/functions/_shared/load/copy_piece.ts";
import { copyRows } from "../supabase/functions/_shared/load/loader.ts";
import type { TargetColumn } from "../supabase/functions/_shared/pg_types/columns.ts";
import { builtinColumn as column } from "../supabase/functions/_shared/pg_types/columns.ts";
import type { JobColumns } from "../supabase/functions/_shared/load/row_converter.ts";
import { connect, E2E, unique } from "./support/stack.ts";

/** Column, its SQL type, and values (a few the fast path declines or writes only as text, on purpose). */
const SPEC: [TargetColumn, string, string[]][] = [
  [column("i8", "int8"), "bigint", [
    "0",
    "-0",
    "42",
    "-1",
    "-9007199254740991",
    "123456789012345",
    "-4294967296",
    "4294967296",
    "007",
    "",
  ]],
  [column("i4", "int4"), "integer", ["0", "2147483647", "-2147483648", "-1", "65536", ""]],
  [column("i2", "int2"), "smallint", ["32767", "-32768", "-1", "255", ""]],
  [column("num", "numeric", { numericPrecision: 12, numericScale: 2 }), "numeric(12,2)", [
    "0",
    "1.5",
    "-1.05",
    "9999999999.99",
    "0.01",
    "-0.00",
    "10000",
    "100000000",
    "0001234.5",
    "",
  ]],
  [column("nf", "numeric"), "numeric", [
    "1",
    "-1.5",
    "123456789012345678901234567890.123",
    "0.00001",
    "-0.0001000",
    "10000.0000",
    "1e5",
    "",
  ]],
  [column("b", "bool"), "boolean", ["t", "f", "true", "false", ""]],
  [column("d", "date"), "date", [
    "2024-02-29",
    "2000-01-01",
    "1999-12-31",
    "0001-01-01",
    "9999-12-31",
    "1970-01-01",
    "",
  ]],
  [column("tz", "timestamptz"), "timestamptz", [
    "2024-06-29T00:01:16.371Z",
    "2024-06-29 00:01:16+02",
    "2024-06-29T23:59:59.999999-09:30",
    "1999-12-31T23:59:59+0530",
    "2000-01-01T00:00:00Z",
    "1800-01-01T00:00:00Z",
    "2199-12-31T23:59:59.5+14:00",
    "2024-06-29T00:01:16.1234567Z",
    "2024-06-29T00:01:16.1234560Z",
    "2024-06-29T00:01",
    "2024-06-29 00:01:16",
    "2024-06-29",
    "1799-12-31T23:59:59Z",
    "",
  ]],
  [column("tz3", "timestamptz", { datetimePrecision: 3 }), "timestamptz(3)", [
    "2024-06-29T00:01:16.123456Z",
    "2024-06-29T00:01:16.9995Z",
    "",
  ]],
  [column("ts", "timestamp"), "timestamp", [
    "2024-06-29T00:01:16.371",
    "2024-06-29 00:01",
    "1969-07-20 20:17:40",
    "2024-06-29T00:01:16Z",
    "",
  ]],
  [column("t", "time"), "time", ["00:00", "23:59:59", "12:30:00.5", "23:59:59.999999", ""]],
  [column("u", "uuid"), "uuid", [
    "02ff0fdc-fa16-4b2f-a67d-775b3d6b8da6",
    "02FF0FDC-FA16-4B2F-A67D-775B3D6B8DA6",
    "00000000-0000-0000-0000-000000000000",
    "",
  ]],
  [column("txt", "text"), "text", [
    "hello",
    "Zürich",
    "日本語",
    "😀",
    "a b",
    'say "hi"',
    "two\nlines",
    "tab\there",
    "back\\slash",
    "a,b",
    "",
  ]],
  [column("vc", "varchar", { charLength: 3 }), "varchar(3)", ["abc", "ab", "äöü", ""]],
  [column("bc", "bpchar", { charLength: 4 }), "char(4)", ["ab", "abcd", "é", ""]],
  [
    column("mood", "mood", {
      baseTypeKind: "e",
      baseTypeSchema: "public",
      enumLabels: ["ok", "sad", "très"],
    }),
    "MOOD",
    ["ok", "sad", "très", ""],
  ],
  // A domain with its own typmod: domain_recv must apply numeric(8,2) as domain_in does.
  [
    column("dn", "numeric", { isDomain: true, numericPrecision: 8, numericScale: 2 }),
    "DNUM",
    ["1.5", "123456.78", "-0.5", "0", "000042", ""],
  ],
];

const FORMATS: CsvFormat[] = [
  { delimiter: ",", quote: '"', newline: "\n" },
  { delimiter: ";", quote: '"', newline: "\r\n" },
  { delimiter: "\t", quote: "'", newline: "\n" },
];

function field(value: string, quote: boolean, format: CsvFormat): string {
  const q = format.quote;
  const needs = /[\r\n]/.test(value) || value.includes(q) || value.includes(format.delimiter);
  return quote || needs ? q + value.replaceAll(q, q + q) + q : value;
}

Deno.test({ name: "COPY BINARY of the fast path loads the same values as COPY TEXT", ...E2E }, async () => {
  const sql = connect(1);
  const suffix = unique("bin").slice(4);
  const mood = `binmood_${suffix}`;
  const tables = [`bin_a_${suffix}`, `bin_b_${suffix}`];
  const dnum = `bindnum_${suffix}`;
  const ddl = SPEC.map(([c, type]) => `${c.name} ${type.replace("MOOD", mood).replace("DNUM", dnum)}`).join(
    ", ",
  );
  let binaryPieces = 0;
  let textPieces = 0;
  try {
    await sql.unsafe(`create type ${mood} as enum ('ok', 'sad', 'très')`);
    await sql.unsafe(`create domain ${dnum} as numeric(8,2)`);
    for (const t of tables) await sql.unsafe(`create table ${t} (${ddl})`);
    const list = SPEC.map(([c]) => c.name).join(", ");
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...FORMATS),
        fc.array(
          fc.array(fc.tuple(fc.nat(), fc.boolean()), { minLength: SPEC.length, maxLength: SPEC.length }),
          {
            minLength: 1,
            maxLength: 40,
          },
        ),
        async (format, rows) => {
          const columns: JobColumns = {
            expected_fields: SPEC.length,
            ignored: [],
            mapped: SPEC.map(([c], i) => ({ field: i, header: c.name, column: c })),
          };
          const fast = compileFastRow(columns, format)!;
          const text = rows.map((r) =>
            r.map(([pick, quote], i) => {
              const values = SPEC[i][2];
              return field(values[pick % values.length], quote, format);
            }).join(format.delimiter)
          ).join(format.newline) + format.newline;
          const piece = new CopyPiece();
          const parser = createRecordParser({
            format,
            maxRecordBytes: 1 << 16,
            fastRecord: (work, bs, be, line, offset, quoted) => {
              if (!fast(work, bs, be, piece, quoted)) return false;
              piece.endRow(line, offset, be - bs);
              return true;
            },
            onRecord: () => {}, // declined records are the string path's: not compared here
          });
          parser.push(new TextEncoder().encode(text));
          parser.finish();
          if (piece.count === 0) return;
          if (!piece.binary) {
            textPieces++;
            return;
          }
          binaryPieces++;
          await sql.begin(async (tx) => {
            await tx.unsafe("set local timezone = 'America/St_Johns'"); // UTC-3:30 / -2:30
            await tx.unsafe(`truncate ${tables[0]}, ${tables[1]}`);
            await copyRows(
              tx,
              `copy ${tables[0]} (${list}) from stdin with (format binary)`,
              piece.binData(),
            );
            await copyRows(tx, `copy ${tables[1]} (${list}) from stdin`, piece.data());
            const diff = await tx.unsafe(
              `select 'binary only' as side, * from (select * from ${tables[0]} except all select * from ${
                tables[1]
              }) x union all select 'text only', * from (select * from ${
                tables[1]
              } except all select * from ${tables[0]}) y`,
            );
            const [{ n }] = await tx.unsafe(`select count(*)::int as n from ${tables[0]}`);
            assert.equal(n, piece.count, "every row loaded");
            assert.equal(
              diff.length,
              0,
              `binary and text differ for ${JSON.stringify(text)}: ${JSON.stringify(diff)}`,
            );
          });
        },
      ),
      { numRuns: 250 },
    );
    // Both outcomes must occur: most pieces binary, some text (values without a binary form).
    assert.ok(
      binaryPieces > 20 && textPieces > 5,
      `binary pieces ${binaryPieces}, text pieces ${textPieces}`,
    );
  } finally {
    for (const t of tables) await sql.unsafe(`drop table if exists ${t}`);
    await sql.unsafe(`drop type if exists ${mood}`);
    await sql.unsafe(`drop domain if exists ${dnum}`);
    await sql.end();
  }
});
