import assert from "node:assert/strict";
import { loadConfig } from "../platform/config.ts";
import { boundedChunkSize } from "./register.ts";

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
