import assert from "node:assert/strict";
import { CsvError } from "./errors.ts";
import type { CsvFormat } from "./format.ts";
import { createRecordParser, type CsvRecord, type RecordParserOptions } from "./parser.ts";

const LF: CsvFormat = { delimiter: ",", quote: '"', newline: "\n" };
const CRLF: CsvFormat = { ...LF, newline: "\r\n" };
const CR: CsvFormat = { ...LF, newline: "\r" };
const enc = new TextEncoder();

function bytesOf(input: string | Uint8Array): Uint8Array {
  return typeof input === "string" ? enc.encode(input) : input;
}

/** Parses all of `input`, pushed in pieces of `piece` bytes. */
function parseAll(
  input: string | Uint8Array,
  options: Partial<RecordParserOptions> = {},
  piece = 1 << 20,
): { records: CsvRecord[]; blankLines: number; nextOffset: number; nextLine: number } {
  const bytes = bytesOf(input);
  const p = createRecordParser({ format: LF, maxRecordBytes: 1 << 20, ...options });
  const records: CsvRecord[] = [];
  for (let i = 0; i < bytes.length; i += piece) records.push(...p.push(bytes.subarray(i, i + piece)));
  records.push(...p.finish());
  return { records, blankLines: p.blankLines, nextOffset: p.nextOffset, nextLine: p.nextLine };
}

const fields = (input: string | Uint8Array, options: Partial<RecordParserOptions> = {}, piece?: number) =>
  parseAll(input, options, piece).records.map((r) => r.fields);

Deno.test("field semantics follow PostgreSQL COPY CSV", () => {
  const cases: [string, (string | null)[][]][] = [
    ['a,,"",d\n', [["a", null, "", "d"]]], // unquoted empty → NULL, quoted empty → ""
    [",\n", [[null, null]]],
    ['""\n', [[""]]],
    ['"a""b"\n', ['a"b'].map((f) => [f])], // doubled quote → one quote
    ['"a,b\nc"\n', [["a,b\nc"]]], // delimiter and newline inside quotes
    ['ab"c,d"e,f\n', [["abc,de", "f"]]], // a quote inside an unquoted field opens a quoted section
    ['a""b\n', [["ab"]]], // ...and the quote bytes are dropped
    ['"x"y"z"\n', [["xyz"]]],
    ['"""",x\n', [['"', "x"]]],
    [" a , b \n", [[" a ", " b "]]], // spaces are data
    ["a,b", [["a", "b"]]], // last record without terminator
  ];
  for (const [input, expected] of cases) {
    assert.deepEqual(fields(input), expected, JSON.stringify(input));
    assert.deepEqual(fields(input, {}, 1), expected, `${JSON.stringify(input)} in 1-byte pieces`);
  }
});

Deno.test("delimiters, quote char and line endings", () => {
  assert.deepEqual(fields("a;b;'c;d'\n", { format: { delimiter: ";", quote: "'", newline: "\n" } }), [[
    "a",
    "b",
    "c;d",
  ]]);
  assert.deepEqual(fields("a\tb\n", { format: { ...LF, delimiter: "\t" } }), [["a", "b"]]);
  assert.deepEqual(fields("a,b\r\nc,\r\n", { format: CRLF }), [["a", "b"], ["c", null]]);
  assert.deepEqual(fields('a,"b\r\nc"\r\nd\r\n', { format: CRLF }, 1), [["a", "b\r\nc"], ["d"]]);
  assert.deepEqual(fields('a,b\rc,"d\re\nf"\r', { format: CR }), [["a", "b"], ["c", "d\re\nf"]]);
});

Deno.test("blank lines are skipped and counted; line numbers are physical lines", () => {
  const { records, blankLines, nextLine } = parseAll('\na\n\n"x\ny"\n\n\nb\n');
  assert.deepEqual(records.map((r) => [r.fields, r.line, r.offset, r.byteLength]), [
    [["a"], 2, 1, 1],
    [["x\ny"], 4, 4, 5],
    [["b"], 8, 12, 1],
  ]);
  assert.equal(blankLines, 4);
  assert.equal(nextLine, 9);
  const crlf = parseAll("a\r\n\r\nb\r\n", { format: CRLF });
  assert.deepEqual(crlf.records.map((r) => [r.fields, r.line]), [[["a"], 1], [["b"], 3]]);
  assert.equal(crlf.blankLines, 1);
});

Deno.test("startOffset/startLine shift positions; stopAt bounds ownership", () => {
  const input = "a\nb\nc\n";
  const { records } = parseAll(input, { startOffset: 100, startLine: 10 });
  assert.deepEqual(records.map((r) => [r.offset, r.line]), [[100, 10], [102, 11], [104, 12]]);

  const p = createRecordParser({ format: LF, maxRecordBytes: 100, startOffset: 100, stopAt: 103 });
  const got = p.push(enc.encode(input));
  assert.deepEqual(got.map((r) => r.fields), [["a"], ["b"]]); // b starts at 102 < 103; c at 104 is not ours
  assert.equal(p.done, true);
  assert.equal(p.nextOffset, 104);
  assert.deepEqual(p.push(enc.encode("more")), []);
  assert.deepEqual(p.finish(), []);

  // The last owned record may run far past stopAt.
  const q = createRecordParser({ format: LF, maxRecordBytes: 100, stopAt: 1 });
  assert.deepEqual(q.push(enc.encode('"x\ny\nz"\nnext\n')).map((r) => r.fields), [["x\ny\nz"]]);
  assert.equal(q.nextOffset, 8);
});

Deno.test("raw text and multibyte characters split across pieces", () => {
  const input = 'id,"名前 😀",x""y\n2,é,\n';
  for (const piece of [1, 2, 3, 5, 1 << 20]) {
    const { records } = parseAll(input, {}, piece);
    assert.deepEqual(records.map((r) => r.fields), [["id", "名前 😀", "xy"], ["2", "é", null]]);
    assert.deepEqual(records.map((r) => r.raw), ['id,"名前 😀",x""y', "2,é,"]);
    assert.deepEqual(records.map((r) => r.byteLength), [enc.encode('id,"名前 😀",x""y').length, 5]);
  }
  // A BOM inside the data is data (only the dialect's dataStart skips a leading BOM).
  assert.deepEqual(fields("\uFEFFa\n"), [["\uFEFFa"]]);
});

Deno.test("invalid UTF-8 flags the record, not the batch", () => {
  const bad = new Uint8Array([...enc.encode("ok,1\nbad,"), 0xff, 0x41, ...enc.encode("\n\u00e9,2\nx")]);
  for (const piece of [1, 4, 1 << 20]) {
    const { records } = parseAll(bad, {}, piece);
    assert.deepEqual(records.map((r) => [r.fields, r.issue?.code ?? null, r.line]), [
      [["ok", "1"], null, 1],
      [[], "invalid_utf8", 2],
      [["é", "2"], null, 3],
      [["x"], null, 4],
    ]);
    assert.equal(records[1].raw, "bad,\uFFFDA");
    assert.equal(records[1].issue?.message, "invalid UTF-8: byte 0xFF at offset 9");
  }
  // Truncated sequence at end of file.
  const { records } = parseAll(new Uint8Array([0x61, 0x0a, 0xe2, 0x82]));
  assert.equal(records[1].issue?.code, "invalid_utf8");
});

Deno.test("line breaks that PostgreSQL rejects flag the record", () => {
  const lf = parseAll("a\rb,c\nd\r\ne\n");
  assert.deepEqual(lf.records.map((r) => [r.fields, r.issue?.code ?? null]), [
    [["a\rb", "c"], "unquoted_cr"],
    [["d\r"], "unquoted_cr"],
    [["e"], null],
  ]);
  const crlf = parseAll('a\nb\r\n"c\r",d\re\r\n', { format: CRLF });
  assert.deepEqual(crlf.records.map((r) => [r.fields, r.issue?.code ?? null]), [
    [["a"], "bare_lf"],
    [["b"], null],
    [["c\r", "d\re"], "unquoted_cr"],
  ]);
  const cr = parseAll("a\nb\rc\r", { format: CR });
  assert.deepEqual(cr.records.map((r) => [r.fields, r.issue?.code ?? null]), [
    [["a\nb"], "unquoted_lf"],
    [["c"], null],
  ]);
});

function throwsCsv(fn: () => unknown, code: string, message?: RegExp): CsvError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CsvError, `expected CsvError ${code}, got ${caught}`);
  assert.equal(caught.code, code);
  if (message) assert.match(caught.message, message);
  return caught;
}

Deno.test("unterminated quote at end of file", () => {
  const e = throwsCsv(
    () => parseAll('a,b\n1,"x\ny\n2,3\n', {}, 3),
    "unterminated_quote",
    /^unterminated quoted field starting at line 2$/,
  );
  assert.equal(e.offset, 4);
  throwsCsv(() => parseAll('a\nb"\n\nc'), "unterminated_quote", /line 2$/);
  // The opening quote's line is reported, not the record's.
  throwsCsv(() => parseAll('a,"b\nc",d,"e\nf'), "unterminated_quote", /line 2$/);
});

Deno.test("record over maxRecordBytes fails fast with bounded memory", () => {
  throwsCsv(
    () => parseAll("short\n" + "x".repeat(50) + "\n", { maxRecordBytes: 10 }),
    "record_too_large",
    /line 2/,
  );
  throwsCsv(() => parseAll('"' + "x\n".repeat(30) + '"\n', { maxRecordBytes: 10 }, 4), "record_too_large");
  // Exactly at the limit is fine; CRLF's CR is not counted.
  assert.equal(parseAll("x".repeat(10) + "\r\n", { maxRecordBytes: 10, format: CRLF }).records.length, 1);
  assert.equal(parseAll("x".repeat(10), { maxRecordBytes: 10 }).records.length, 1);

  // A 256 MB stream without a newline: the error comes after ~maxRecordBytes, not after reading everything.
  const p = createRecordParser({ format: LF, maxRecordBytes: 1 << 20 });
  const piece = new Uint8Array(64 * 1024).fill(0x61);
  let pushed = 0;
  throwsCsv(() => {
    for (; pushed < 256 * 1024 * 1024; pushed += piece.length) p.push(piece);
  }, "record_too_large");
  assert.ok(pushed <= (1 << 20) + piece.length, `failed only after ${pushed} bytes`);
});
