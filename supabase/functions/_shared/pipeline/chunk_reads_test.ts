/**
 * readOwned: a load that holds its range in memory reads none of it from Storage again, whatever marker it
 * resumes from (a retried or redone batch); only the tail past the range's end comes from Storage.
 * readFileBytes: bytes the load holds come from memory; others from Storage with the job's ETag, and a short read
 * is an error, not a span with a hole; a compressed job's are inflated again and end where its data ends.
 */
import assert from "node:assert/strict";
import type { StorageClient } from "../platform/storage.ts";
import { giveBackRangeBuffer, readFileBytes, readOwned, takeRangeBuffer } from "./chunk_reads.ts";

const FILE = new TextEncoder().encode("id\n1,a\n2,b\n3,c\n4,d\n5,e\n");
const range = { start: 3, end: 15 }; // "1,a\n2,b\n3,c\n"
const ctx = {
  object: { bucket: "b", name: "f.csv", version: "v", etag: '"e"', size: FILE.byteLength, dataStart: 3 },
  range,
  compressed: null,
};

/** A Storage client that serves FILE and records each range it is asked for. */
function recordingStorage(reads: string[]): StorageClient {
  return {
    readRange(_bucket: string, _name: string, start: number, end?: number) {
      reads.push(`${start}-${end}`);
      return ReadableStream.from([FILE.slice(start, end)]);
    },
  } as unknown as StorageClient;
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part.slice());
  return new TextDecoder().decode(new Uint8Array(parts.flatMap((p) => [...p])));
}

Deno.test("readOwned: from a marker inside a range held in memory, nothing of the range is read again", async () => {
  const reads: string[] = [];
  const inMemory = FILE.slice(range.start, range.end);
  const text = await collect(readOwned(recordingStorage(reads), ctx, {
    from: 7, // the marker after the first committed batch ("2,b\n…")
    done: () => true, // the range ends on a record boundary: no tail needed
    inMemory,
  }));
  assert.equal(text, "2,b\n3,c\n");
  assert.deepEqual(reads, []);
});

Deno.test("readOwned: past the range's end the tail comes from Storage; without memory the range does too", async () => {
  const reads: string[] = [];
  let tail = 0;
  const fromMemory = await collect(readOwned(recordingStorage(reads), ctx, {
    from: range.start,
    done: () => tail++ > 0,
    inMemory: FILE.slice(range.start, range.end),
  }));
  assert.equal(fromMemory, "1,a\n2,b\n3,c\n4,d\n5,e\n");
  assert.deepEqual(reads, [`15-${FILE.byteLength}`]);

  reads.length = 0;
  tail = 0;
  const fromStorage = await collect(readOwned(recordingStorage(reads), ctx, {
    from: 7,
    done: () => tail++ > 0,
    inMemory: null,
  }));
  assert.equal(fromStorage, "2,b\n3,c\n4,d\n5,e\n");
  assert.deepEqual(reads, ["7-15", `15-${FILE.byteLength}`]);
});

Deno.test("range buffers: as many as asked are kept, the largest, and a load gets the smallest big enough", () => {
  const sizes = [4000, 3000, 2000, 1000];
  const given = sizes.map((size) => takeRangeBuffer(size));
  for (const buffer of given) giveBackRangeBuffer(buffer, 3);
  // Three loads at once each get a kept buffer, the smallest that fits; the smallest buffer was not kept.
  assert.equal(takeRangeBuffer(2500), given[1]);
  assert.equal(takeRangeBuffer(1500), given[2]);
  assert.equal(takeRangeBuffer(1000), given[0]);
  const fresh = takeRangeBuffer(1000);
  assert.equal(given.includes(fresh), false, "a new buffer: nothing kept is left");
  assert.equal(fresh.byteLength, 1000);
  // One load at a time (WORKER_CHUNKS_PER_ISOLATE=1): only the largest is kept.
  for (const buffer of given) giveBackRangeBuffer(buffer, 1);
  assert.equal(takeRangeBuffer(500), given[0]);
  assert.equal(given.includes(takeRangeBuffer(500)), false, "the others were not kept");
});

Deno.test("readFileBytes: held bytes from memory, the rest from Storage with the job's ETag; a short read fails", async () => {
  const asked: unknown[] = [];
  const storage = (served: (start: number, end: number) => Uint8Array) =>
    ({
      readBytes(bucket: string, name: string, start: number, end: number, options: unknown) {
        asked.push([bucket, name, start, end, options]);
        return Promise.resolve(served(start, end));
      },
    }) as unknown as StorageClient;
  const whole = storage((start, end) => FILE.slice(start, end));
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const held = FILE.slice(range.start, range.end);
  // Inside the held range: no request.
  assert.equal(decode(await readFileBytes(whole, ctx, held, 7, 15)), "2,b\n3,c\n");
  assert.deepEqual(asked, []);
  // Past it, or nothing held: one request for exactly the span, with the version.
  assert.equal(decode(await readFileBytes(whole, ctx, held, 11, 19)), "3,c\n4,d\n");
  assert.equal(decode(await readFileBytes(whole, ctx, null, range.start, range.end)), "1,a\n2,b\n3,c\n");
  assert.deepEqual(asked, [["b", "f.csv", 11, 19, { etag: '"e"' }], ["b", "f.csv", 3, 15, { etag: '"e"' }]]);
  // Past the file's end (a piece's text reads two bytes past its last record): what there is, asked as such.
  asked.length = 0;
  assert.equal(decode(await readFileBytes(whole, ctx, null, 19, FILE.byteLength + 2)), "5,e\n");
  assert.deepEqual(asked, [["b", "f.csv", 19, FILE.byteLength, { etag: '"e"' }]]);
  await assert.rejects(
    readFileBytes(storage((start, end) => FILE.slice(start, end - 1)), ctx, null, range.start, range.end),
    /Read 11 of 12 bytes at 3/,
  );
});

Deno.test("readFileBytes: a compressed job's bytes are inflated again, ending where the data ends", async () => {
  const gz = new Uint8Array(
    await new Response(new Blob([FILE]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  const reads: string[] = [];
  const storage = {
    readRange(_bucket: string, _name: string, start: number, end?: number) {
      reads.push(`${start}-${end}`);
      return ReadableStream.from([gz.slice(start, end)]);
    },
  } as unknown as StorageClient;
  const compressedCtx = {
    object: { ...ctx.object, name: "f.csv.gz", size: gz.byteLength },
    range,
    compressed: {
      stream: {
        codec: "gzip" as const,
        data_offset: 0,
        data_end: gz.byteLength,
        member: null,
        expected: null,
        max_data_bytes: 1 << 30,
        max_ratio: 1000,
        ratio_after_bytes: 1 << 30,
      },
      checkpoint: null,
      endCheckpoint: null,
      dataSize: null,
      chunkSize: 8 << 20,
      inflatedIn: 0,
    },
  };
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  // Offsets are the inflated data's, not the object's.
  assert.equal(decode(await readFileBytes(storage, compressedCtx, null, 7, 15)), "2,b\n3,c\n");
  assert.ok(reads.length > 0, "read from Storage");
  // A piece's text reads up to two bytes past its last record: at the data's end it gets what there is, not
  // zeros that would join the last record.
  const tail = await readFileBytes(storage, compressedCtx, null, 19, FILE.byteLength + 2);
  assert.equal(decode(tail), "5,e\n");
  // Held bytes still come from memory.
  reads.length = 0;
  assert.equal(
    decode(await readFileBytes(storage, compressedCtx, FILE.slice(range.start, range.end), 7, 11)),
    "2,b\n",
  );
  assert.deepEqual(reads, []);
});
