import assert from "node:assert/strict";
import fc from "fast-check";
import { sniffDialect } from "./dialect.ts";
import {
  columnNames,
  createTableSql,
  FALLBACK_TABLE_NAME,
  fitsType,
  identifierFrom,
  inferColumns,
  INFERRED_TYPES,
  type InferredType,
  inferType,
  recordsFromWindows,
  sampleWindows,
  tableNameFromPath,
  validatorFor,
} from "./infer_schema.ts";

/** The type inferred for one column of these values (null = NULL). */
function typeOf(...values: (string | null)[]): InferredType {
  return inferColumns(["c"], values.map((v) => [v]))[0].type;
}

Deno.test("each type is inferred from its plain form, and the narrowest type that every value fits wins", () => {
  const cases: [InferredType, (string | null)[]][] = [
    ["bigint", ["1", "-42", "0", "9223372036854775807", "-9223372036854775808"]],
    ["bigint", ["1", "0", "1", "0"]], // 1/0 only: numbers, not booleans
    ["numeric", ["9223372036854775808"]], // beyond bigint
    ["numeric", ["1", "2.5", "-0.125", ".5"]], // mixed integers and decimals: exact
    ["numeric", ["1.50", "123456789012345678901234567890.123456789"]],
    ["double precision", ["1e5", "2.5", "3"]],
    ["double precision", ["NaN", "1.5"]],
    ["double precision", ["Infinity", "-inf", "2"]],
    ["numeric", ["1e5", "1.23456789012345678"]], // 18 digits: a double would not print it back
    ["numeric", ["1e400"]], // beyond double's range
    ["numeric", ["1e-310"]], // subnormal double
    ["boolean", ["true", "false", "TRUE", "False"]],
    ["boolean", ["t", "f", "T", "F"]],
    ["boolean", ["yes", "no", "Yes", "NO"]],
    ["text", ["y", "n"]], // DuckDB's choice too
    ["text", ["on", "off"]],
    ["text", ["true", "1"]], // PostgreSQL would read both, but `1` is a number here
    ["date", ["2024-01-05", "1999-12-31", "2024-2-29"]],
    ["date", ["2024/01/05", "2024/1/6"]],
    ["text", ["2024-02-30"]], // no such day: the validator refuses it
    ["text", ["01/02/2024"]], // DateStyle decides: never a date
    ["text", ["13/02/2024", "2024-01-05"]],
    ["text", ["Jan 5 2024"]], // PostgreSQL reads it, DuckDB does not: not inferred
    ["text", ["20240105x"]],
    ["bigint", ["20240105"]],
    ["timestamp", ["2024-01-05 10:00:00", "2024-01-05T10:00", "2024-01-05 23:59:59.123456"]],
    ["timestamp", ["2024-01-05", "2024-01-05 10:00"]], // dates and timestamps mixed
    ["timestamptz", ["2024-01-05T10:00:00Z", "2024-01-05 10:00:00+01", "2024-01-05 10:00:00-05:30"]],
    ["timestamptz", ["2024-01-05 10:00:00 UTC", "2024-01-05 10:00:00+0100"]],
    ["text", ["2024-01-05 10:00:00+01", "2024-01-05 10:00:00"]], // zoned and unzoned mixed
    ["text", ["2024-01-05 10:00:00 America/New_York"]],
    ["time", ["10:30", "23:59:59", "00:00:00.5"]],
    ["text", ["10:30 PM"]],
    ["text", ["10:30:00+01"]], // a zone on a time would be dropped
    ["text", ["25:00"]],
    ["uuid", ["123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000"]],
    ["text", ["{123e4567-e89b-12d3-a456-426614174000}"]],
    ["jsonb", ['{"a": 1}', "[1, 2]", "[]"]],
    ["text", ['{"a": 1', "[1, 2]"]], // one value is not JSON
    ["text", ['"just a string"']], // JSON, but not an object or array
    ["text", ['{"a": "\\u0000"}']], // jsonb refuses \u0000
    ["text", ["1", "x"]],
    ["text", ["hello"]],
  ];
  for (const [expected, values] of cases) {
    assert.equal(typeOf(...values), expected, JSON.stringify(values));
  }
});

Deno.test("a value far from the others decides: one text value anywhere makes the column text", () => {
  const values = Array.from({ length: 10_000 }, (_, i) => String(i));
  assert.equal(typeOf(...values), "bigint");
  values[9_876] = "n/a";
  const [column] = inferColumns(["id"], values.map((v) => [v]));
  assert.equal(column.type, "text");
  assert.equal(column.evidence.ruledOut.bigint, "n/a");
  assert.equal(column.evidence.ruledOut.numeric, "n/a");
});

Deno.test("leading zeros, a plus sign and grouping keep numbers text; surrounding spaces do not", () => {
  assert.equal(typeOf("007", "12"), "text");
  assert.equal(typeOf("00.5"), "text");
  assert.equal(typeOf("+12"), "text");
  assert.equal(typeOf("1,234"), "text");
  assert.equal(typeOf("1_000"), "text");
  assert.equal(typeOf("0x1F"), "text");
  assert.equal(typeOf("12%"), "text");
  assert.equal(typeOf("0", "-0", "10"), "bigint");
  assert.equal(typeOf(" 12", "13 "), "bigint"); // PostgreSQL ignores them, as DuckDB does
  assert.equal(typeOf(" 2024-01-05"), "date");
  assert.equal(typeOf(" "), "text");
});

Deno.test("NULLs are skipped, an empty string is a value only text holds, an all-NULL column is text", () => {
  const [a, b, c] = inferColumns(["a", "b", "c"], [
    ["1", null, null],
    [null, "", null],
    ["2", "3", null],
  ]);
  assert.equal(a.type, "bigint");
  assert.deepEqual(a.evidence, { sampled: 3, nulls: 1, emptyStrings: 0, example: "1", ruledOut: {} });
  assert.equal(b.type, "text"); // COPY refuses "" for bigint
  assert.equal(b.evidence.emptyStrings, 1);
  assert.equal(b.evidence.ruledOut.bigint, "");
  assert.equal(c.type, "text");
  assert.deepEqual(c.evidence, { sampled: 3, nulls: 3, emptyStrings: 0, example: null, ruledOut: {} });
  assert.equal(inferColumns(["x"], [])[0].type, "text");
});

Deno.test("quoted numbers are numbers: CSV quotes carry no type", () => {
  const head = new TextEncoder().encode('id,amount\n"1","2.50"\n"2","3"\n');
  const dialect = sniffDialect(head, { fileSize: head.length });
  const records = recordsFromWindows([{ start: 0, bytes: head }], dialect, {
    dataStart: dialect.dataStart,
    fileSize: head.length,
  });
  const columns = inferColumns(dialect.header, records);
  assert.deepEqual(columns.map((c) => [c.name, c.type]), [["id", "bigint"], ["amount", "numeric"]]);
});

Deno.test("records of another field count are skipped; without a header the most common count decides", () => {
  const records = [["1", "a"], ["2", "b", "extra"], ["3", "c"]];
  const columns = inferColumns(null, records);
  assert.deepEqual(columns.map((c) => [c.name, c.type, c.sourceName]), [
    ["column_1", "bigint", null],
    ["column_2", "text", null],
  ]);
  assert.equal(columns[0].evidence.sampled, 2);
  assert.equal(inferColumns(["a", "b", "c"], records)[2].evidence.sampled, 1);
  assert.equal(inferColumns(null, records, { columnCount: 3 })[2].evidence.example, "extra");
});

Deno.test("column names: normalised, reserved words and system columns suffixed, empties and repeats filled", () => {
  assert.deepEqual(
    columnNames(
      [
        "ID",
        "First Name",
        " Sales Amount ($) ",
        "",
        "id",
        "ID",
        "order",
        "user",
        "xmin",
        "2019",
        "a-b",
        "_x_",
      ],
      13,
    ),
    [
      "id",
      "first_name",
      "sales_amount",
      "column_4",
      "id_2",
      "id_3",
      "order_",
      "user_",
      "xmin_",
      "c_2019",
      "a_b",
      "_x_",
      "column_13",
    ],
  );
  // Unicode letters stay (lower-cased, NFKC); only other characters become `_`.
  assert.deepEqual(columnNames(["Température", "Ｎａｍｅ", "名前", "Straße №", "😀"], 5), [
    "température",
    "name",
    "名前",
    "straße_no",
    "column_5",
  ]);
  // A name the numbering would repeat gets the next free number.
  assert.deepEqual(columnNames(["a", "a", "a_2"], 3), ["a", "a_2", "a_2_2"]);
  // At most 63 bytes, cut at a character boundary, also with a repeat's suffix.
  const long = "é".repeat(40); // 80 bytes
  const [first, second] = columnNames([long, long], 2);
  assert.equal(first, "é".repeat(31));
  assert.equal(second, "é".repeat(30) + "_2");
  for (const n of [first, second]) assert.ok(new TextEncoder().encode(n).length <= 63);
  assert.equal(identifierFrom("x".repeat(100), "f"), "x".repeat(63));
});

Deno.test("table names from object paths", () => {
  const cases: [string, string][] = [
    ["uploads/2024/Sales Report.csv", "sales_report"],
    ["a/b/data.CSV", "data"],
    ["export.tsv", "export"],
    ["notes.txt", "notes"],
    ["big.csv.gz", "big"],
    ["archive.tar", "archive_tar"],
    ["2024-orders.csv", "t_2024_orders"],
    ["user.csv", "user_"],
    [".csv", FALLBACK_TABLE_NAME],
    ["folder/", FALLBACK_TABLE_NAME],
    ["x".repeat(80) + ".csv", "x".repeat(63)],
  ];
  for (const [path, expected] of cases) assert.equal(tableNameFromPath(path), expected, path);
});

Deno.test("createTableSql quotes every identifier and refuses what PostgreSQL would", () => {
  assert.equal(
    createTableSql("public", 'we"ird', [{ name: "id", type: "bigint" }, { name: "at", type: "timestamptz" }]),
    'create table "public"."we""ird" (\n  "id" bigint,\n  "at" timestamptz\n)',
  );
  const columns = inferColumns(["Amount", "When"], [["1.5", "2024-01-05"]]);
  assert.equal(
    createTableSql("imports", "t", columns),
    'create table "imports"."t" (\n  "amount" numeric,\n  "when_" date\n)',
  );
  assert.throws(() => createTableSql("s", "t", []), RangeError);
  assert.throws(() => createTableSql("s", "t", [{ name: "a", type: "text" }, { name: "a", type: "text" }]), {
    message: 'Column name "a" appears twice',
  });
});

Deno.test("sampleWindows: the whole file when small, else evenly spaced windows from dataStart to the end", () => {
  assert.deepEqual(sampleWindows(0), []);
  assert.deepEqual(sampleWindows(100, { dataStart: 10 }), [{ start: 10, end: 100 }]);
  assert.deepEqual(sampleWindows(20 * 65536), [{ start: 0, end: 20 * 65536 }]);
  const windows = sampleWindows(10_000_000, { dataStart: 50 });
  assert.equal(windows.length, 20);
  assert.deepEqual(windows[0], { start: 50, end: 50 + 65536 });
  assert.equal(windows[19].end, 10_000_000);
  for (let i = 1; i < windows.length; i++) assert.ok(windows[i].start >= windows[i - 1].end);
  assert.deepEqual(sampleWindows(1000, { windowBytes: 100, maxWindows: 3 }), [
    { start: 0, end: 100 },
    { start: 450, end: 550 },
    { start: 900, end: 1000 },
  ]);
  assert.deepEqual(sampleWindows(1000, { windowBytes: 100, maxWindows: 1 }), [{ start: 0, end: 100 }]);
  assert.throws(() => sampleWindows(1000, { windowBytes: 0 }), RangeError);
});

Deno.test("recordsFromWindows: records start after a window's first line break; cut records are dropped", () => {
  const text = "a,b\n" + Array.from({ length: 200 }, (_, i) => `${i},"x${i}"`).join("\n") + "\n";
  const file = new TextEncoder().encode(text);
  const dialect = sniffDialect(file, { fileSize: file.length });
  const windows = sampleWindows(file.length, {
    dataStart: dialect.dataStart,
    windowBytes: 64,
    maxWindows: 5,
  });
  const pieces = windows.map((w) => ({ start: w.start, bytes: file.subarray(w.start, w.end) }));
  const records = recordsFromWindows(pieces, dialect, {
    dataStart: dialect.dataStart,
    fileSize: file.length,
  });
  assert.deepEqual(records[0], ["0", "x0"]);
  assert.deepEqual(records.at(-1), ["199", "x199"]);
  for (const r of records) {
    assert.equal(r.length, 2);
    assert.equal(r[1], `x${r[0]}`); // every record whole, none cut
  }
  assert.ok(records.length > 10 && records.length < 200);
  // A file without a final line break: its last record counts in the window that ends the file.
  const noEnd = new TextEncoder().encode("a\n1\n2");
  assert.deepEqual(
    recordsFromWindows([{ start: 0, bytes: noEnd }], { delimiter: ",", quote: '"', newline: "\n" }, {
      dataStart: 2,
      fileSize: noEnd.length,
    }),
    [["1"], ["2"]],
  );
});

// ---- properties -------------------------------------------------------------------------------------------

/** Values of every shape inference knows, near misses, and arbitrary text. */
const valueArb: fc.Arbitrary<string> = fc.oneof(
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.integer({ min: -99, max: 99 }).map((n) => String(n).padStart(3, "0")),
  fc.double({ noDefaultInfinity: false }).map(String),
  fc.tuple(fc.integer({ min: -1e6, max: 1e6 }), fc.nat(999_999)).map(([a, b]) => `${a}.${b}`),
  fc.constantFrom(
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "1e400",
    "1e-310",
    "true",
    "False",
    "t",
    "F",
    "yes",
    "No",
  ),
  fc.constantFrom("y", "n", "on", "1", "0", "", " ", "+1", " 7 ", "1_000", "0x10"),
  fc.date({ min: new Date(-62135596800000), max: new Date(253402300799000), noInvalidDate: true })
    .chain((d) =>
      fc.constantFrom(
        d.toISOString(),
        d.toISOString().slice(0, 10),
        d.toISOString().slice(0, 19).replace("T", " "),
        d.toISOString().slice(0, 16) + "+05:30",
        d.toISOString().slice(11, 19),
        d.toISOString().slice(0, 10).replaceAll("-", "/"),
      )
    ),
  fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 70 }), fc.integer({ min: 0, max: 70 }))
    .map(([h, m, s]) => `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`),
  fc.tuple(
    fc.integer({ min: 1, max: 9999 }),
    fc.integer({ min: 0, max: 13 }),
    fc.integer({ min: 0, max: 32 }),
  )
    .map(([y, m, d]) => `${String(y).padStart(4, "0")}-${m}-${d}`),
  fc.uuid(),
  fc.json(),
  fc.string(),
);

Deno.test("property: every sampled value is accepted by the loader's validator for the inferred type", () => {
  fc.assert(
    fc.property(fc.array(fc.option(valueArb, { nil: null, freq: 5 }), { maxLength: 12 }), (values) => {
      const { type } = inferType(values);
      const validator = validatorFor(type);
      for (const v of values) {
        if (v === null) continue;
        assert.equal(typeof validator(v), "string", `${JSON.stringify(v)} as ${type}`);
        assert.ok(fitsType(v, type));
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("property: the inferred type is the narrowest: each type before it refuses some sampled value", () => {
  fc.assert(
    fc.property(fc.array(fc.option(valueArb, { nil: null, freq: 5 }), { maxLength: 12 }), (values) => {
      const { type } = inferType(values);
      const present = values.filter((v): v is string => v !== null);
      if (present.length === 0) return assert.equal(type, "text"); // all NULL
      for (const narrower of INFERRED_TYPES.slice(0, INFERRED_TYPES.indexOf(type))) {
        // numeric reads every double's value too; double is chosen over it when a value has an exponent,
        // NaN or infinity (module doc), so numeric is not "narrower" there.
        if (narrower === "numeric" && type === "double precision") continue;
        assert.ok(
          present.some((v) => !fitsType(v, narrower)),
          `${JSON.stringify(present)} all fit ${narrower}, inferred ${type}`,
        );
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("property: adding values only widens a column, along the number and date nestings or to text", () => {
  // The types that can follow one another as values are added (besides staying the same or becoming text):
  // a double column falls back to numeric when a value has more digits than a double keeps.
  const widenings = new Set([
    "bigint>numeric",
    "bigint>double precision",
    "numeric>double precision",
    "double precision>numeric",
    "date>timestamp",
  ]);
  fc.assert(
    fc.property(fc.array(valueArb, { minLength: 1, maxLength: 8 }), (values) => {
      let before = inferType(values.slice(0, 1)).type;
      for (let k = 2; k <= values.length; k++) {
        const after = inferType(values.slice(0, k)).type;
        assert.ok(
          after === before || after === "text" || widenings.has(`${before}>${after}`),
          `${before} then ${after} for ${JSON.stringify(values.slice(0, k))}`,
        );
        before = after;
      }
    }),
    { numRuns: 1000 },
  );
});

Deno.test("property: names are unique, lower-case, at most 63 bytes and never need a keyword quote", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.string(), fc.constantFrom("id", "ID", "order", "xmin", "")), {
        maxLength: 10,
      }),
      (header) => {
        const names = columnNames(header, header.length);
        assert.equal(new Set(names).size, names.length);
        for (const n of names) {
          assert.ok(n.length > 0);
          assert.equal(n, n.toLowerCase());
          assert.ok(new TextEncoder().encode(n).length <= 63);
          assert.ok(!/^[0-9]/.test(n));
          assert.ok(!["order", "xmin", "user"].includes(n));
        }
      },
    ),
    { numRuns: 500 },
  );
});
