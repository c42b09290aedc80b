import assert from "node:assert/strict";
import { type BoundaryOptions, type BoundaryResult, createBoundaryFinder } from "./boundary.ts";
import { CsvError } from "./errors.ts";
import type { CsvFormat } from "./format.ts";

const LF: CsvFormat = { delimiter: ",", quote: '"', newline: "\n" };
const enc = new TextEncoder();

/** Ground truth by brute force over the whole file. */
function expected(file: Uint8Array, start: number, end: number, dataStart: number): number | null {
  let parity = 0;
  const recordStart = new Set<number>([dataStart]);
  for (let i = 0; i < file.length; i++) {
    if (file[i] === 0x22) parity ^= 1;
    else if (file[i] === 0x0a && parity === 0 && i >= dataStart) recordStart.add(i + 1);
  }
  for (let s = Math.max(start, dataStart); s < end; s++) if (recordStart.has(s)) return s;
  return null;
}

function find(
  file: Uint8Array,
  start: number,
  end: number,
  dataStart: number,
  piece: number,
): BoundaryResult {
  let parity = 0;
  for (let i = 0; i < start; i++) if (file[i] === 0x22) parity ^= 1;
  const options: BoundaryOptions = {
    format: LF,
    start,
    end,
    dataStart,
    entryParity: parity as 0 | 1,
    atRecordStart: start > 0 && file[start - 1] === 0x0a && parity === 0,
    maxRecordBytes: 1000,
  };
  const finder = createBoundaryFinder(options);
  for (let p = start; p < file.length; p += piece) {
    const r = finder.push(file.subarray(p, Math.min(file.length, p + piece)));
    if (r.kind === "found") return { ...r, index: p - start + r.index }; // index relative to `start`
    if (r.kind === "none") return r;
  }
  return finder.finish();
}

Deno.test("first owned record matches brute force for every chunk of a tricky file", () => {
  const file = enc.encode('h1,"h\n2"\na,"x\ny\n""\nz"\n\n"q"\nb,c\n"\n"\n');
  const dataStart = 9;
  for (let start = 0; start < file.length; start++) {
    for (let end = start + 1; end <= file.length; end++) {
      for (const piece of [1, 3, 64]) {
        const want = expected(file, start, end, dataStart);
        const got = find(file, start, end, dataStart, piece);
        if (want === null) assert.equal(got.kind, "none", `[${start},${end}) piece ${piece}`);
        else {
          assert.equal(got.kind, "found", `[${start},${end}) piece ${piece}`);
          if (got.kind !== "found") continue;
          assert.equal(got.offset, want);
          assert.equal(got.index, want - start);
          const skipped = file.subarray(start, want).filter((b) => b === 0x0a).length;
          assert.equal(got.linesSkipped, skipped);
        }
      }
    }
  }
});

Deno.test("a chunk inside one oversized record fails fast", () => {
  const finder = createBoundaryFinder({
    format: LF,
    start: 10,
    end: 1 << 30,
    dataStart: 0,
    entryParity: 1,
    atRecordStart: false,
    maxRecordBytes: 100,
  });
  const piece = enc.encode("x\n".repeat(32));
  let pushed = 0;
  assert.throws(() => {
    for (; pushed < 1 << 20; pushed += piece.length) finder.push(piece);
  }, (e: unknown) => e instanceof CsvError && e.code === "record_too_large");
  assert.ok(pushed < 200);
});
