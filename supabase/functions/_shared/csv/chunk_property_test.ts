/**
 * The central property: scan → compose → load per chunk, for any chunking and any piece sizes, yields exactly
 * the records of a single-pass parse, with exact line numbers and offsets, and every byte owned once.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { parse } from "csv-parse/sync";
import { createChunkReader } from "./chunk.ts";
import { sniffDialect } from "./dialect.ts";
import type { CsvFormat, Newline } from "./format.ts";
import type { CsvRecord } from "./parser.ts";
import { composeEntries, createScanner } from "./scan.ts";

type Field = { kind: "null" } | { kind: "plain"; text: string } | { kind: "quoted"; text: string };
type Row = Field[] | "blank";

interface Expected {
  fields: (string | null)[];
  line: number;
  offset: number;
  byteLength: number;
}

interface Sample {
  format: CsvFormat;
  bytes: Uint8Array;
  dataStart: number;
  linesBeforeData: number;
  expected: Expected[];
  blankLines: number;
  hasHeader: boolean;
}

const enc = new TextEncoder();

/** The text's bytes in the format's encoding (UTF-8, or UTF-16 LE/BE). */
function encodeText(text: string, format: CsvFormat): Uint8Array {
  if (format.encoding !== "utf-16le" && format.encoding !== "utf-16be") return enc.encode(text);
  const be = format.encoding === "utf-16be";
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    out[2 * i] = be ? u >> 8 : u & 0xff;
    out[2 * i + 1] = be ? u & 0xff : u >> 8;
  }
  return out;
}

/** A byte-order mark in the format's encoding. */
function bomOf(format: CsvFormat): number[] {
  return format.encoding === "utf-16le"
    ? [0xff, 0xfe]
    : format.encoding === "utf-16be"
    ? [0xfe, 0xff]
    : [0xef, 0xbb, 0xbf];
}

const PLAIN_CHARS = ["a", "b", "Z", "0", "7", " ", "-", "é", "ß", "中", "😀", "👍🏽", "\t", ",", ";", "|"];
const QUOTED_EXTRA = ['"', "\n", "\r\n", "\r"];

function fieldArb(format: CsvFormat): fc.Arbitrary<Field> {
  const plainChars = PLAIN_CHARS.filter((c) => c !== format.delimiter);
  const plain = fc.array(fc.constantFrom(...plainChars), { minLength: 1, maxLength: 6 }).map((cs) =>
    cs.join("")
  );
  const quoted = fc.array(fc.constantFrom(...PLAIN_CHARS, ...QUOTED_EXTRA), { maxLength: 8 }).map((cs) =>
    cs.join("")
  );
  return fc.oneof(
    fc.constant<Field>({ kind: "null" }),
    plain.map((text): Field => ({ kind: "plain", text })),
    quoted.map((text): Field => ({ kind: "quoted", text })),
  );
}

function render(field: Field): string {
  if (field.kind === "null") return "";
  if (field.kind === "plain") return field.text;
  return '"' + field.text.replaceAll('"', '""') + '"';
}

function build(
  format: CsvFormat,
  header: Field[] | null,
  bom: boolean,
  rows: Row[],
  finalNewline: boolean,
): Sample {
  const T = format.newline === "\r" ? "\r" : "\n";
  const parts: string[] = [];
  const bomBytes = bom ? bomOf(format) : [];
  let offset = bomBytes.length;
  let lines = 0;
  const countLines = (s: string) => s.split(T).length - 1;
  let dataStart = offset;
  if (header) {
    const text = header.map(render).join(format.delimiter) + format.newline;
    parts.push(text);
    offset += encodeText(text, format).length;
    lines += countLines(text);
    dataStart = offset;
  }
  const linesBeforeData = lines;
  const expected: Expected[] = [];
  let blankLines = 0;
  rows.forEach((row, i) => {
    const last = i === rows.length - 1;
    const content = row === "blank" ? "" : row.map(render).join(format.delimiter);
    const text = content + (last && !finalNewline ? "" : format.newline);
    if (row === "blank") {
      if (text !== "") blankLines++;
    } else {
      expected.push({
        fields: row.map((f) => f.kind === "null" ? null : f.text),
        line: lines + 1,
        offset,
        byteLength: encodeText(content, format).length,
      });
    }
    parts.push(text);
    offset += encodeText(text, format).length;
    lines += countLines(text);
  });
  const body = encodeText(parts.join(""), format);
  const bytes = new Uint8Array(bomBytes.length + body.length);
  bytes.set(bomBytes);
  bytes.set(body, bomBytes.length);
  return { format, bytes, dataStart, linesBeforeData, expected, blankLines, hasHeader: header !== null };
}

const formatArb: fc.Arbitrary<CsvFormat> = fc.record({
  delimiter: fc.constantFrom(",", ";", "\t", "|"),
  quote: fc.constant('"'),
  newline: fc.constantFrom<Newline>("\n", "\r\n", "\r"),
});

const utf16FormatArb: fc.Arbitrary<CsvFormat> = formatArb.chain((f) =>
  fc.constantFrom<CsvFormat["encoding"]>("utf-16le", "utf-16be").map((encoding) => ({ ...f, encoding }))
);

const sampleArb = samplesOf(formatArb);

function samplesOf(formats: fc.Arbitrary<CsvFormat>): fc.Arbitrary<Sample> {
  return formats.chain((format) => {
    const field = fieldArb(format);
    // A row that is a single unquoted empty field would be a blank line; make it a quoted empty string.
    const row = fc.array(field, { minLength: 1, maxLength: 5 }).map((fs): Row =>
      fs.length === 1 && fs[0].kind === "null" ? [{ kind: "quoted", text: "" }] : fs
    );
    const rowOrBlank = fc.oneof({ weight: 9, arbitrary: row }, {
      weight: 1,
      arbitrary: fc.constant<Row>("blank"),
    });
    return fc.tuple(
      fc.option(row.filter((r): r is Field[] => r !== "blank"), { nil: null }),
      fc.boolean(),
      fc.array(rowOrBlank, { minLength: 0, maxLength: 20 }),
      fc.boolean(),
    ).map(([header, bom, rows, finalNewline]) => build(format, header, bom, rows, finalNewline));
  });
}

/** Deterministic piece sizes from a seed: mostly tiny, sometimes large. */
function pieceSizes(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % 4 === 0 ? 1 + ((s >>> 12) % 64) : 1 + ((s >>> 12) % 5);
  };
}

interface ChunkResult {
  records: CsvRecord[];
  firstOffset: number | null;
  nextOffset: number | null;
  blankLines: number;
}

function loadChunked(sample: Sample, cuts: number[], fromZero: boolean, seed: number): ChunkResult[] {
  const { bytes, format } = sample;
  const first = fromZero ? 0 : sample.dataStart;
  // Chunk edges fall between code units (the planner's are even in UTF-16 files); pieces may split one.
  const unit = format.encoding?.startsWith("utf-16") ? 2 : 1;
  const bounds = [
    first,
    ...cuts.filter((c) => c > first && c < bytes.length && c % unit === 0),
    bytes.length,
  ];
  const chunks = bounds.slice(0, -1).map((start, k) => ({ start, end: bounds[k + 1] }));
  const nextSize = pieceSizes(seed);

  // Pass 1: every chunk scans only its own bytes, in pieces.
  const summaries = chunks.map(({ start, end }) => {
    const scanner = createScanner(format);
    for (let p = start; p < end;) {
      const q = Math.min(end, p + nextSize());
      scanner.push(bytes.subarray(p, q));
      p = q;
    }
    return scanner.finish();
  });
  const { entries, finalParity } = fromZero
    ? composeEntries(summaries)
    : composeEntries(summaries, { entryParity: 0, linesBefore: sample.linesBeforeData, atRecordStart: true });
  assert.equal(finalParity, 0);

  // Pass 2: every chunk reads from its start, past its end as needed.
  return chunks.map(({ start, end }, k) => {
    const reader = createChunkReader({
      format,
      start,
      end,
      dataStart: sample.dataStart,
      entry: entries[k],
      maxRecordBytes: 1 << 16,
    });
    const records: CsvRecord[] = [];
    let p = start;
    while (!reader.done && p < bytes.length) {
      const q = Math.min(bytes.length, p + nextSize());
      records.push(...reader.push(bytes.subarray(p, q)));
      p = q;
    }
    if (!reader.done) records.push(...reader.finish());
    return {
      records,
      firstOffset: reader.firstOffset,
      nextOffset: reader.nextOffset,
      blankLines: reader.blankLines,
    };
  });
}

function csvParseRecords(sample: Sample): string[][] {
  const text = new TextDecoder(sample.format.encoding ?? "utf-8").decode(
    sample.bytes.subarray(sample.dataStart),
  );
  return parse(text, {
    delimiter: sample.format.delimiter,
    quote: sample.format.quote,
    escape: sample.format.quote,
    record_delimiter: sample.format.newline,
    skip_empty_lines: true,
    relax_column_count: true,
  });
}

/** The sniffer, told delimiter, quote and header presence, finds the same data start and line ending. */
function checkSniff(sample: Sample): void {
  const { format, hasHeader } = sample;
  if (sample.bytes.length === 0) return; // "File is empty" (dialect_test)
  const d = sniffDialect(sample.bytes, {
    delimiter: format.delimiter,
    quote: format.quote,
    hasHeader,
    ...(format.encoding ? { encoding: format.encoding } : {}),
  });
  const bom = bomOf(format);
  assert.equal(d.bomLength, bom.every((b, i) => sample.bytes[i] === b) ? bom.length : 0);
  assert.equal(d.dataStart, sample.dataStart);
  assert.equal(d.linesBeforeData, sample.linesBeforeData);
  const unquotedBreak = sample.expected.length + sample.blankLines + (hasHeader ? 1 : 0) > 1 ||
    sample.bytes.at(-1) === format.newline.charCodeAt(format.newline.length - 1);
  if (unquotedBreak) assert.equal(d.newline, format.newline);
}

function checkSample(sample: Sample, cuts: number[], fromZero: boolean, seed: number): void {
  checkSniff(sample);
  const results = loadChunked(sample, cuts, fromZero, seed);
  const records = results.flatMap((r) => r.records);
  const actual: Expected[] = records.map((r) => ({
    fields: r.fields,
    line: r.line,
    offset: r.offset,
    byteLength: r.byteLength,
  }));
  assert.deepEqual(actual, sample.expected);
  for (const r of records) assert.equal(r.issue, null);

  // Same values as an independent single-pass parser (which cannot tell NULL from "").
  assert.deepEqual(
    records.map((r) => r.fields.map((f) => f ?? "")),
    csvParseRecords(sample),
  );

  // Raw text is the record's bytes without the terminator.
  const dec = new TextDecoder(sample.format.encoding ?? "utf-8", { ignoreBOM: true });
  for (const r of records) {
    assert.equal(r.raw, dec.decode(sample.bytes.subarray(r.offset, r.offset + r.byteLength)));
  }

  // Every data byte owned exactly once: owned ranges are contiguous from dataStart to EOF.
  const owned = results.filter((r) => r.firstOffset !== null);
  let at = sample.dataStart;
  for (const r of owned) {
    assert.equal(r.firstOffset, at);
    at = r.nextOffset!;
  }
  assert.equal(at, owned.length > 0 ? sample.bytes.length : sample.dataStart);
  assert.equal(results.reduce((n, r) => n + r.blankLines, 0), sample.blankLines);
}

const cutsArb = (size: number) =>
  fc.oneof(
    fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, size) }), { maxLength: 24 }).map((cs) =>
      cs.sort((a, b) => a - b)
    ),
    fc.integer({ min: 1, max: 7 }).map((step) =>
      Array.from({ length: Math.ceil(size / step) }, (_, i) => i * step)
    ),
  );

Deno.test("chunked load equals a single-pass parse for any chunking (property)", () => {
  fc.assert(
    fc.property(
      sampleArb.chain((sample) =>
        fc.tuple(fc.constant(sample), cutsArb(sample.bytes.length), fc.boolean(), fc.integer({ min: 1 }))
      ),
      ([sample, cuts, fromZero, seed]) => checkSample(sample, cuts, fromZero, seed),
    ),
    { numRuns: 1000 },
  );
});

Deno.test("UTF-16 LE/BE: chunked load equals a single-pass parse for any chunking (property)", () => {
  fc.assert(
    fc.property(
      samplesOf(utf16FormatArb).chain((sample) =>
        fc.tuple(fc.constant(sample), cutsArb(sample.bytes.length), fc.boolean(), fc.integer({ min: 1 }))
      ),
      ([sample, cuts, fromZero, seed]) => checkSample(sample, cuts, fromZero, seed),
    ),
    { numRuns: 500 },
  );
});

Deno.test("1-byte chunks over a file full of quoted line breaks", () => {
  const rows: Row[] = [
    [{ kind: "quoted", text: "a\nb" }, { kind: "quoted", text: '""\r\n"' }],
    [{ kind: "null" }, { kind: "quoted", text: "" }, { kind: "plain", text: "😀é" }],
    "blank",
    [{ kind: "quoted", text: "\r\n\r\n,;|\t" }],
  ];
  for (const newline of ["\n", "\r\n", "\r"] as const) {
    const sample = build(
      { delimiter: ",", quote: '"', newline },
      [{ kind: "plain", text: "h" }],
      true,
      rows,
      false,
    );
    const everyByte = Array.from({ length: sample.bytes.length }, (_, i) => i);
    checkSample(sample, everyByte, false, 7);
    checkSample(sample, everyByte, true, 11);
  }
});

Deno.test("an invalid UTF-8 byte flags exactly its own record under any chunking (property)", () => {
  const replaceable = new Set(enc.encode("abZ07 -"));
  fc.assert(
    fc.property(
      sampleArb.chain((sample) =>
        fc.tuple(fc.constant(sample), cutsArb(sample.bytes.length), fc.nat(), fc.integer({ min: 1 }))
      ),
      ([sample, cuts, pick, seed]) => {
        const candidates = sample.expected.flatMap((r) =>
          Array.from({ length: r.byteLength }, (_, i) => r.offset + i).filter((o) =>
            replaceable.has(sample.bytes[o])
          )
        );
        if (candidates.length === 0) return;
        const at = candidates[pick % candidates.length];
        const bytes = sample.bytes.slice();
        bytes[at] = 0xff;
        const records = loadChunked({ ...sample, bytes }, cuts, false, seed).flatMap((r) => r.records);
        assert.equal(records.length, sample.expected.length);
        records.forEach((r, i) => {
          const want = sample.expected[i];
          assert.deepEqual([r.line, r.offset, r.byteLength], [want.line, want.offset, want.byteLength]);
          const hit = at >= want.offset && at < want.offset + want.byteLength;
          assert.equal(r.issue?.code ?? null, hit ? "invalid_utf8" : null);
          assert.deepEqual(r.fields, hit ? [] : want.fields);
          if (hit) assert.equal(r.issue?.message, `invalid UTF-8: byte 0xFF at offset ${at}`);
        });
      },
    ),
    { numRuns: 300 },
  );
});
