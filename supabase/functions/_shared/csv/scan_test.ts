import assert from "node:assert/strict";
import type { CsvFormat } from "./format.ts";
import { composeEntries, createScanner, scanChunk } from "./scan.ts";

const LF: CsvFormat = { delimiter: ",", quote: '"', newline: "\n" };
const enc = new TextEncoder();

Deno.test("scan counts quote parity, terminator bytes (quoted or not) and the last byte", async () => {
  const s = createScanner(LF);
  s.push(enc.encode('a,"b\n'));
  s.push(enc.encode('c""d'));
  s.push(new Uint8Array(0));
  assert.deepEqual(s.finish(), { quoteParity: 1, newlineCount: 1, bytes: 9, endsWithTerminator: false });

  const crlf = await scanChunk([enc.encode("a\r\nb\r\n")], { ...LF, newline: "\r\n" });
  assert.deepEqual(crlf, { quoteParity: 0, newlineCount: 2, bytes: 6, endsWithTerminator: true });
  const cr = await scanChunk([enc.encode("a\rb\n\r")], { ...LF, newline: "\r" });
  assert.deepEqual(cr, { quoteParity: 0, newlineCount: 2, bytes: 5, endsWithTerminator: true });
  const single = await scanChunk([enc.encode("'a'\n")], { ...LF, quote: "'" });
  assert.equal(single.quoteParity, 0);
});

Deno.test("scanChunk reads a ReadableStream", async () => {
  const body = new Blob(['x,"y\n', 'z"\n']).stream();
  assert.deepEqual(await scanChunk(body, LF), {
    quoteParity: 0,
    newlineCount: 2,
    bytes: 8,
    endsWithTerminator: true,
  });
});

Deno.test("composeEntries is a prefix fold", () => {
  // File: `a,"b\n` | `c"\n` | `d\n` | `"`
  const parts = ['a,"b\n', 'c"\n', "d\n", '"'];
  const summaries = parts.map((p) => {
    const s = createScanner(LF);
    s.push(enc.encode(p));
    return s.finish();
  });
  const { entries, finalParity } = composeEntries(summaries);
  assert.deepEqual(entries, [
    { entryParity: 0, linesBefore: 0, atRecordStart: false },
    { entryParity: 1, linesBefore: 1, atRecordStart: false }, // ends with LF, but inside quotes
    { entryParity: 0, linesBefore: 2, atRecordStart: true },
    { entryParity: 0, linesBefore: 3, atRecordStart: true },
  ]);
  assert.equal(finalParity, 1); // unterminated quote at EOF

  const fromData = composeEntries(summaries.slice(2), {
    entryParity: 0,
    linesBefore: 2,
    atRecordStart: true,
  });
  assert.deepEqual(fromData.entries[0], { entryParity: 0, linesBefore: 2, atRecordStart: true });
});
