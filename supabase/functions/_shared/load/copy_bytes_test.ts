/**
 * copyBytes: the same bytes at the same place whichever way it copies (byte by byte up to LOOP_MAX_BYTES, one
 * native copy past it), and the offset after them.
 */
import assert from "node:assert/strict";
import { copyBytes, LOOP_MAX_BYTES } from "./copy_bytes.ts";

Deno.test("copyBytes writes src[s, e) at o and returns o + (e - s), short runs and long alike", () => {
  const src = Uint8Array.from({ length: 3 * LOOP_MAX_BYTES }, (_, i) => (i * 7 + 3) & 0xff);
  for (const length of [0, 1, 24, 130, LOOP_MAX_BYTES, LOOP_MAX_BYTES + 1, 2 * LOOP_MAX_BYTES]) {
    const s = 5;
    const o = 11;
    const dst = new Uint8Array(o + length + 4).fill(0xee);
    assert.equal(copyBytes(src, s, s + length, dst, o), o + length);
    assert.deepEqual(dst.subarray(o, o + length), src.subarray(s, s + length), `length ${length}`);
    // Nothing outside [o, o + length) is touched.
    assert.ok(dst.subarray(0, o).every((x) => x === 0xee), `before, length ${length}`);
    assert.ok(dst.subarray(o + length).every((x) => x === 0xee), `after, length ${length}`);
  }
});
