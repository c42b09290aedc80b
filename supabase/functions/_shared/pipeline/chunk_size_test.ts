import assert from "node:assert/strict";
import { loadConfig } from "../platform/config.ts";
import { boundedChunkSize, costedChunkSize, plannedChunkSize, sampleRowsPerMiB } from "./chunk_size.ts";

Deno.test("boundedChunkSize keeps the requested size until the job would exceed the chunk bound", () => {
  const cases: [dataBytes: number, requested: number, maxChunks: number, expected: number][] = [
    [300, 1, 10_000, 1], // tiny chunks on a small file: kept (300 chunks)
    [10_000, 1, 10_000, 1], // exactly at the bound
    [10_001, 1, 10_000, 2], // one byte over: 5,001 chunks of 2 bytes
    [5_000_000, 1, 10_000, 500], // the 5 MB file: 10,000 chunks, not 5 million
    [5_000_001, 1, 10_000, 501],
    [50 * 1024 ** 3, 8 * 1024 ** 2, 10_000, 8 * 1024 ** 2], // default chunk size, largest file: kept
    [0, 8, 10_000, 8], // header-only file
  ];
  for (const [dataBytes, requested, maxChunks, expected] of cases) {
    const size = boundedChunkSize(dataBytes, requested, maxChunks);
    assert.equal(size, expected, `${dataBytes} bytes, ${requested} requested, at most ${maxChunks} chunks`);
    assert.ok(Math.ceil(dataBytes / size) <= maxChunks);
  }
});

Deno.test("boundedChunkSize keeps UTF-16 chunk edges between code units", () => {
  assert.equal(boundedChunkSize(1000, 2047, 10_000, 2), 2048);
  assert.equal(boundedChunkSize(1000, 2048, 10_000, 2), 2048);
  assert.equal(boundedChunkSize(10_001, 1, 10_000, 2), 2); // raised to 2 by the bound, already even
  assert.equal(boundedChunkSize(30_001, 1, 10_000, 2), 4); // raised to 4 (3 is odd)
});

Deno.test("MAX_CHUNKS_PER_JOB: 10,000 by default, settable up to the SQL ceiling", () => {
  const base = {
    SUPABASE_URL: "http://x",
    SUPABASE_DB_URL: "postgresql://u@h/d",
    SUPABASE_SERVICE_ROLE_KEY: "k",
  };
  assert.equal(loadConfig(base).maxChunksPerJob, 10_000);
  assert.equal(loadConfig({ ...base, MAX_CHUNKS_PER_JOB: "500" }).maxChunksPerJob, 500);
  assert.throws(() => loadConfig({ ...base, MAX_CHUNKS_PER_JOB: "100001" }), /MAX_CHUNKS_PER_JOB must be/);
  assert.throws(() => loadConfig({ ...base, MAX_CHUNKS_PER_JOB: "0" }), /MAX_CHUNKS_PER_JOB must be/);
});

const MIB = 1024 * 1024;
const SETTINGS = { chunkSize: 8 * MIB, chunkSizeMin: MIB, chunkWorkMs: 300, maxChunksPerJob: 10_000 };

Deno.test("costedChunkSize: CHUNK_SIZE unless the measured work of such a chunk passes CHUNK_WORK_MS", () => {
  // The 1M-row reference file on the slower machine: ~0.0024 ms a row, ~8,000 rows per MiB = ~19 ms per MiB,
  // ~155 ms per 8 MiB chunk: kept.
  assert.equal(costedChunkSize({ msPerRow: 0.0024, rowsPerMiB: 8_065 }, SETTINGS), 8 * MIB);
  // Exactly at the target: kept (37.5 ms per MiB × 8 = 300).
  assert.equal(costedChunkSize({ msPerRow: 0.0375, rowsPerMiB: 1_000 }, SETTINGS), 8 * MIB);
  // Narrow rows, 100 ms per MiB: the whole MiBs that fit 300 ms.
  assert.equal(costedChunkSize({ msPerRow: 0.001, rowsPerMiB: 100_000 }, SETTINGS), 3 * MIB);
  // 70 ms per MiB: 4.28 MiB of work fit, 4 whole MiBs planned.
  assert.equal(costedChunkSize({ msPerRow: 0.0007, rowsPerMiB: 100_000 }, SETTINGS), 4 * MIB);
  // So costly that not a MiB fits: never below CHUNK_SIZE_MIN.
  assert.equal(costedChunkSize({ msPerRow: 0.01, rowsPerMiB: 500_000 }, SETTINGS), MIB);
  // A smaller CHUNK_SIZE is never raised by a cheap file.
  assert.equal(
    costedChunkSize({ msPerRow: 0.0001, rowsPerMiB: 1_000 }, { ...SETTINGS, chunkSize: 2 * MIB }),
    2 * MIB,
  );
  // No measurement, the cost switched off, or nonsense measurements: CHUNK_SIZE.
  assert.equal(costedChunkSize(null, SETTINGS), 8 * MIB);
  assert.equal(
    costedChunkSize({ msPerRow: 0.001, rowsPerMiB: 100_000 }, { ...SETTINGS, chunkWorkMs: 0 }),
    8 * MIB,
  );
  assert.equal(costedChunkSize({ msPerRow: Number.NaN, rowsPerMiB: 100_000 }, SETTINGS), 8 * MIB);
  assert.equal(costedChunkSize({ msPerRow: 0, rowsPerMiB: 100_000 }, SETTINGS), 8 * MIB);
});

Deno.test("plannedChunkSize: the profile's size wins, then the cost, then the chunk bound and code units", () => {
  const narrow = { msPerRow: 0.001, rowsPerMiB: 100_000 };
  assert.equal(
    plannedChunkSize(100 * MIB, 16 * MIB, narrow, SETTINGS),
    16 * MIB,
    "a profile's choice is kept",
  );
  assert.equal(plannedChunkSize(100 * MIB, null, narrow, SETTINGS), 3 * MIB);
  assert.equal(plannedChunkSize(100 * MIB, null, null, SETTINGS), 8 * MIB);
  // MAX_CHUNKS_PER_JOB still raises a costed size: 100 MiB in at most 10 chunks.
  assert.equal(plannedChunkSize(100 * MIB, null, narrow, { ...SETTINGS, maxChunksPerJob: 10 }), 10 * MIB);
  // A costed size that is odd in code units is rounded up (UTF-16): rows so costly that CHUNK_SIZE_MIN applies.
  const costly = { msPerRow: 0.01, rowsPerMiB: 500_000 };
  assert.equal(plannedChunkSize(100 * MIB, null, costly, { ...SETTINGS, chunkSizeMin: MIB + 1 }), MIB + 1);
  assert.equal(plannedChunkSize(100 * MIB, null, costly, { ...SETTINGS, chunkSizeMin: MIB + 1 }, 2), MIB + 2);
});

Deno.test("sampleRowsPerMiB counts line breaks per MiB, in each newline style and in UTF-16", () => {
  const rows = (n: number, newline: string) =>
    Array.from({ length: n }, (_, i) => `${i},x${i}`).join(newline) + newline;
  const lf = new TextEncoder().encode(rows(1000, "\n"));
  const format = { delimiter: ",", quote: '"', newline: "\n", encoding: "utf-8" } as const;
  assert.equal(sampleRowsPerMiB(lf, format), 1000 / (lf.length / MIB));
  const crlf = new TextEncoder().encode(rows(1000, "\r\n"));
  assert.equal(sampleRowsPerMiB(crlf, { ...format, newline: "\r\n" }), 1000 / (crlf.length / MIB));
  const cr = new TextEncoder().encode(rows(1000, "\r"));
  assert.equal(sampleRowsPerMiB(cr, { ...format, newline: "\r" }), 1000 / (cr.length / MIB));
  const text = rows(1000, "\n");
  const utf16 = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) utf16[2 * i] = text.charCodeAt(i);
  assert.equal(sampleRowsPerMiB(utf16, { ...format, encoding: "utf-16le" }), 1000 / (utf16.length / MIB));
  // Too few records to stand for the file.
  assert.equal(sampleRowsPerMiB(new TextEncoder().encode(rows(15, "\n")), format), null);
  assert.equal(sampleRowsPerMiB(new Uint8Array(0), format), null);
});
