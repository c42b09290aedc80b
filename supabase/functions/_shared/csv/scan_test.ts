import assert from "node:assert/strict";
import type { CsvFormat } from "./format.ts";
import { composeEntries, countBytes, countBytesSimply, createScanner, scanChunk } from "./scan.ts";

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

Deno.test("countBytes (four bytes at a time) counts exactly what the byte loop counts", () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pairs = [[0x22, 0x0a], [0x27, 0x0d], [0x7c, 0x0a], [0x22, 0x0d]];
  // Alphabets: the two counted bytes among their neighbours and the bytes where a word test could go wrong
  // (0x00, 0x01, 0x80, 0xff, the counted bytes with one bit flipped), dense line breaks, and any byte.
  const alphabets = (q: number, t: number) => [
    [q, t, 0x00, 0x01, 0x80, 0xff, q ^ 1, t ^ 1, q ^ 0x80, t ^ 0x80, 0x41],
    [t, 0x61],
    Array.from({ length: 256 }, (_, i) => i),
  ];
  const backing = new Uint8Array(4096 + 8);
  for (let round = 0; round < 3000; round++) {
    const [q, t] = pairs[round % pairs.length];
    const alphabet = alphabets(q, t)[round % 3];
    const offset = rnd(8); // every alignment of the piece in its buffer
    const length = rnd(round % 10 === 0 ? 4096 : 40);
    const piece = backing.subarray(offset, offset + length);
    for (let i = 0; i < length; i++) piece[i] = alphabet[rnd(alphabet.length)];
    assert.deepEqual(
      countBytes(piece, q, t),
      countBytesSimply(piece, 0, length, q, t),
      `round ${round}: offset ${offset}, length ${length}`,
    );
  }
  // Every byte value in every position of an aligned word, alone among others.
  for (let v = 0; v < 256; v++) {
    for (let at = 0; at < 8; at++) {
      const piece = new Uint8Array(8).fill(0x41);
      piece[at] = v;
      assert.deepEqual(
        countBytes(piece, 0x22, 0x0a),
        countBytesSimply(piece, 0, 8, 0x22, 0x0a),
        `${v} at ${at}`,
      );
    }
  }
});
