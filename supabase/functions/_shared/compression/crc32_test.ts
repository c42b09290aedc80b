import assert from "node:assert/strict";
import { crc32 } from "./crc32.ts";
import { crc32 as pakoCrc32 } from "./pako_zlib.ts";
import { prng } from "./test_support.ts";

Deno.test("crc32 equals pako's for random data, lengths, offsets and continued CRCs", () => {
  const random = prng(11);
  const bytes = new Uint8Array(100_000).map(() => Math.floor(random() * 256));
  assert.equal(crc32(0, new TextEncoder().encode("123456789")), 0xcbf43926); // the standard check value
  assert.equal(crc32(0, new Uint8Array(0)), 0);
  for (let i = 0; i < 300; i++) {
    const start = Math.floor(random() * 1000);
    const end = start + Math.floor(random() * (i < 100 ? 20 : 90_000));
    const seed = Math.floor(random() * 2 ** 32);
    assert.equal(
      crc32(seed, bytes, start, end),
      pakoCrc32(seed, bytes, start, end),
      `${seed} ${start} ${end}`,
    );
  }
  const split = 33_333;
  assert.equal(crc32(crc32(0, bytes, 0, split), bytes, split), crc32(0, bytes));
});
