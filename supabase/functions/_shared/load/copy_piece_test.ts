/**
 * CopyPiece's buffers: a piece filled just past PIECE_BYTES (where row_source.ts cuts it) keeps its rows intact
 * in a buffer a quarter larger, not twice as large.
 */
import assert from "node:assert/strict";
import { CopyPiece } from "./copy_piece.ts";

const MiB = 1024 * 1024;

Deno.test("a piece cut just past 1 MiB holds its text in at most 1.25 MiB", () => {
  const piece = new CopyPiece();
  const row = new TextEncoder().encode("x".repeat(999) + "\n");
  let rows = 0;
  while (piece.length < MiB + 20 * 1024) {
    piece.putBytes(row, 0, row.length);
    piece.endRow(rows + 1, rows * row.length, row.length);
    rows++;
  }
  assert.ok(piece.bytes.length <= MiB + MiB / 4, `text buffer ${piece.bytes.length}`);
  assert.equal(piece.count, rows);
  assert.equal(piece.data().length, rows * row.length);
  assert.equal(piece.row(rows - 1).copyLine, "x".repeat(999) + "\n");
  assert.equal(piece.row(0).line, 1);
});

Deno.test("binary data past 1 MiB grows by a quarter and keeps what was written", () => {
  const piece = new CopyPiece();
  let written = 0;
  while (piece.binLength < MiB + 8 * 1024) {
    const at = piece.binReserve(4096);
    piece.bin.fill(written % 251, at, at + 4096);
    piece.binLength = at + 4096;
    written++;
  }
  assert.ok(piece.bin.length <= MiB + MiB / 4, `binary buffer ${piece.bin.length}`);
  const data = piece.binData();
  assert.deepEqual([...data.subarray(0, 11)], [80, 71, 67, 79, 80, 89, 10, 255, 13, 10, 0]);
  for (let k = 0; k < written; k++) assert.equal(data[19 + k * 4096 + 4095], k % 251, `block ${k}`);
  assert.deepEqual([...data.subarray(data.length - 2)], [0xff, 0xff]);
});
