import assert from "node:assert/strict";
import { type Dialect, sniffDialect, type SniffOptions, withHeaderDecision } from "./dialect.ts";
import { CsvError } from "./errors.ts";

const enc = new TextEncoder();
const bytes = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((p) => typeof p === "string" ? [...enc.encode(p)] : p));

function sniffError(head: Uint8Array, options?: SniffOptions): CsvError {
  try {
    sniffDialect(head, options);
  } catch (e) {
    if (e instanceof CsvError) return e;
    throw e;
  }
  assert.fail("expected a CsvError");
}

Deno.test("files that are not UTF-8 CSV text fail with a specific error", () => {
  const cases: [Uint8Array, string, RegExp][] = [
    [new Uint8Array(0), "empty_file", /^File is empty$/],
    [bytes([0x1f, 0x8b, 0x08, 0x00]), "compressed", /^File is gzip-compressed$/],
    [bytes([0x50, 0x4b, 0x03, 0x04, 0x14]), "binary", /ZIP archive.*xlsx/],
    [bytes("BZh9", [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]), "compressed", /bzip2/],
    [bytes([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), "compressed", /xz/],
    [bytes([0x28, 0xb5, 0x2f, 0xfd, 0x00]), "compressed", /zstd/],
    [bytes([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]), "compressed", /7-Zip/],
    [bytes("%PDF-1.7\n"), "binary", /PDF/],
    [bytes([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), "binary", /\.xls/],
    [bytes([0xff, 0xfe], "a\0,\0b\0\0"), "truncated_utf16", /^File ends in the middle of a UTF-16 character/],
    [
      bytes([0xff, 0xfe], "a\0\0\0b\0\n\0"),
      "nul_byte",
      /^File contains a NUL character at line 1 \(offset 4\)/,
    ],
    [bytes([0xff, 0xfe, 0x00, 0x00]), "utf32", /UTF-32/],
    [
      bytes("a\0,\0b\0\n\0c\0,\0d\0\n\0"),
      "utf16",
      /^File looks like UTF-16 LE without a byte-order mark \(every other byte is NUL\): set the profile's encoding to utf-16le/,
    ],
    [bytes("\0a\0,\0b\0\n\0c\0,\0d\0\n"), "utf16", /UTF-16 BE .* encoding to utf-16be/],
    [bytes("id,name\n1,bob\0\n"), "nul_byte", /^File contains a NUL byte at line 2 \(offset 13\); remove it/],
    [bytes("a,b\n", [1, 2, 3, 4, 5, 6, 7, 8, 0x10, 0x11, 0x12]), "binary", /binary data/],
    [
      bytes("a,b\n", [0, 1, 2, 0, 4, 5, 6, 7, 8, 0, 0x11, 0x12]),
      "binary",
      /^File looks like binary data \(12 /,
    ],
    [
      bytes("id,name\n1,caf", [0xe9], "\n"),
      "invalid_utf8",
      /^File is not UTF-8 text: invalid byte 0xE9 at line 2 \(offset 13\)\. It looks like Windows-1252/,
    ],
    [bytes("a,b\n", [0xc0, 0x80]), "invalid_utf8", /0xC0 at line 2 \(offset 4\)/], // overlong
    [bytes("a,b\n", [0xed, 0xa0, 0x80]), "invalid_utf8", /0xED/], // surrogate
    [bytes("a,b\n", [0xe2, 0x82]), "invalid_utf8", /0xE2 at line 2 \(offset 4\)/], // truncated at end of file
  ];
  for (const [head, code, message] of cases) {
    const e = sniffError(head);
    assert.equal(e.code, code, message.source);
    assert.match(e.message, message);
  }
  // UTF-16 with a byte-order mark is read as such, LE or BE; the offsets are the file's bytes.
  const utf16 = (text: string, be: boolean) => {
    const out = new Uint8Array(2 + text.length * 2);
    out.set(be ? [0xfe, 0xff] : [0xff, 0xfe]);
    for (let i = 0; i < text.length; i++) {
      const u = text.charCodeAt(i);
      out.set(be ? [u >> 8, u & 0xff] : [u & 0xff, u >> 8], 2 + 2 * i);
    }
    return out;
  };
  for (const be of [false, true]) {
    const d = sniffDialect(utf16("Name\tStadt\nZoë\tKöln 🏙\nJosé\tMünchen\n", be));
    assert.deepEqual(
      [d.encoding, d.bomLength, d.delimiter, d.header, d.dataStart],
      [be ? "utf-16be" : "utf-16le", 2, "\t", ["Name", "Stadt"], 2 + 2 * "Name\tStadt\n".length],
    );
    assert.throws(
      () => sniffDialect(utf16("a,b\n", be), { encoding: "windows-1252" }),
      /byte-order mark, but its profile says/,
    );
  }
  // "BZh" alone is plausible text, not bzip2.
  assert.equal(sniffDialect(bytes("BZh,x\n1,2\n")).delimiter, ",");
  // A head cut inside a multibyte character is fine when the file goes on.
  const cut = bytes("a,b\n1,", [0xe2, 0x82]);
  assert.equal(sniffDialect(cut, { fileSize: 1000 }).delimiter, ",");
  // No line break within the head of a longer file.
  assert.equal(sniffError(bytes("a".repeat(100)), { fileSize: 1000 }).code, "header_too_long");
  assert.equal(sniffError(bytes('a,"b\n\n'), {}).code, "unterminated_quote");
  assert.equal(
    sniffError(bytes('a,b\n1,2\n3,x"y\n4,5\n')).message,
    "Unterminated quoted field starting at line 3",
  );
});

function pick(d: Dialect) {
  return {
    delimiter: d.delimiter,
    quote: d.quote,
    newline: d.newline,
    hasHeader: d.hasHeader,
    header: d.header,
    dataStart: d.dataStart,
    linesBeforeData: d.linesBeforeData,
    bomLength: d.bomLength,
  };
}

Deno.test("sniffs delimiter, quote, newline, header and data start", () => {
  const cases: [string | Uint8Array, Partial<ReturnType<typeof pick>>, SniffOptions?][] = [
    ["id,name,amount\n1,ann,2.5\n2,bob,3\n", {
      delimiter: ",",
      newline: "\n",
      hasHeader: true,
      dataStart: 15,
    }],
    ["id;name;amount\r\n1;ann;2,5\r\n2;bob;3,25\r\n", { delimiter: ";", newline: "\r\n", dataStart: 16 }],
    ["id\tname\r1\tann\r2\tbob\r", { delimiter: "\t", newline: "\r", header: ["id", "name"] }],
    ["id|name\n1|a,b\n2|c\n", { delimiter: "|" }],
    ["a,b;c\n1,2;3\n", { delimiter: "," }], // tie → comma
    ["single\n1\n2\n", { delimiter: ",", header: ["single"] }], // one column → comma
    ["id,note\nO'Brien,it's\n2,rock 'n' roll\n3,the boys'\n", { quote: '"' }], // apostrophes are not quotes
    ["id,note\n1,'a, b'\n2,'c, d'\n3,'e'\n", { quote: "'", delimiter: "," }],
    ['"id","a\r\nb"\r\n1,2\r\n', {
      newline: "\r\n",
      header: ["id", "a\r\nb"],
      dataStart: 13,
      linesBeforeData: 2,
    }],
    ['"x\ny",z\r\n', { newline: "\r\n" }], // the LF is quoted
    [bytes([0xef, 0xbb, 0xbf], "id,name\n1,a\n"), { bomLength: 3, dataStart: 11, header: ["id", "name"] }],
    [bytes([0xef, 0xbb, 0xbf], "1,a\n2,b\n"), { bomLength: 3, hasHeader: false, dataStart: 3, header: null }],
    ["1,2,3\n4,5,6\n", { hasHeader: false, dataStart: 0 }], // numeric first row
    ["name,name\nx,z\n", { hasHeader: false }], // duplicate names, nothing typed
    ["name,name\nx,1\n", { hasHeader: true }], // duplicate names above typed data: a header all the same
    ["a,,c\nx,y,z\n", { hasHeader: false }], // empty name, nothing typed below
    ["a,,c\nx,1,2\n", { hasHeader: true, header: ["a", "", "c"] }], // empty name, numbers below a named column
    [",a,b\n0,1,x\n1,2,y\n", { hasHeader: true, header: ["", "a", "b"] }], // pandas' unnamed index column
    ["alice,,london\nbob,5,paris\n", { hasHeader: false }], // numbers only below the empty field: data
    ["a,,2023\nx,1,2\n", { hasHeader: false }], // a number among the names
    ["a,b,\nx,y,\n", { hasHeader: false }], // a boolean-like `y` below does not outweigh the empty name
    ["name,city\nann,paris\nbob,rome\n", { hasHeader: true }], // ambiguous → header
    ["name,city\nann,paris\n", { hasHeader: false, dataStart: 0 }, { hasHeader: false }], // caller says
    ["\n\nid,n\n1,2\n", { hasHeader: true, header: ["id", "n"], dataStart: 7, linesBeforeData: 3 }],
    ["id,name", { hasHeader: true, dataStart: 7, linesBeforeData: 0 }], // header-only file without newline
    ["id,é,😀\n1,2,3\n", { header: ["id", "é", "😀"], dataStart: 11 }],
    ["a;b\n1;2\n", { delimiter: ",", hasHeader: true }, { delimiter: "," }], // caller's delimiter wins
  ];
  for (const [input, want, options] of cases) {
    const head = typeof input === "string" ? enc.encode(input) : input;
    const got = pick(sniffDialect(head, options));
    const subset = Object.fromEntries(Object.keys(want).map((k) => [k, got[k as keyof typeof got]]));
    assert.deepEqual(subset, want, JSON.stringify(typeof input === "string" ? input : [...input]));
  }
});

Deno.test("a cut-off last record in the head is ignored", () => {
  const head = enc.encode('id,note\n1,"a\n2,x\n3,y\n4,z\n5,');
  // Quote parity: record 2 ("a\n2,x...) never closes inside the head; only complete records are sampled.
  const d = sniffDialect(head, { fileSize: 10_000 });
  assert.equal(d.delimiter, ",");
  assert.equal(d.dataStart, 8);
});

Deno.test("the header verdict says why, and keeps the first record for a caller who knows better", () => {
  const cases: [string, boolean, RegExp][] = [
    ["id,name\n1,a\n", true, /only names .* above typed values in column 1/],
    ["a,b,\nx,y,\n", false, /empty field \(field 3 of 3\)/],
    ["a,,2023\nx,1,2\n", false, /empty field \(field 2 of 3\)/],
    [",a,b\n0,1,x\n", true, /above numbers or dates in column 2 \(field 1 of 3 has no name\)/],
    ["2023,2024\n1,2\n", false, /field 1 of its first row \("2023"\) is a number/],
    ["name,name\nx,z\n", false, /repeats a value/],
  ];
  for (const [text, header, reason] of cases) {
    const d = sniffDialect(enc.encode(text));
    assert.equal(d.hasHeader, header, text);
    assert.match(d.headerReason, reason, text);
  }
  const d = sniffDialect(enc.encode("\na,b,\nx,y,\n"));
  assert.deepEqual(d.firstRecord, {
    fields: ["a", "b", ""],
    byteLength: 4,
    line: 2,
    nextOffset: 6,
    linesThrough: 2,
  });
  const flipped = withHeaderDecision(d, true, "it names the columns");
  assert.deepEqual(
    [flipped.hasHeader, flipped.header, flipped.dataStart, flipped.linesBeforeData, flipped.headerReason],
    [true, ["a", "b", ""], 6, 2, "it names the columns"],
  );
  assert.equal(withHeaderDecision(flipped, false, "no").dataStart, 0);
});
