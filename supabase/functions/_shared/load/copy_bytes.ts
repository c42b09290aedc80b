/**
 * Copying a short run of bytes from the file's buffer into a COPY buffer, as the fast row path does for every
 * record and field.
 *
 * Why a loop and not `dst.set(src.subarray(s, e), o)`: `subarray` makes a new typed-array object each call
 * (V8 goes through the species constructor and allocates it in the young generation), which for a record of
 * ~130 bytes costs more than copying its bytes one by one, and its garbage keeps the scavenger busy. Measured
 * with `bench/bench_row_path.ts --against` (the 1M-row reference file, binary pieces, eight passes of each
 * alternated in one process): the row path's time 0.90–1.02× (median 0.96× of seven runs) with records and
 * long fields copied here instead of by `set(subarray)` past 24 bytes, and 216 scavenges in its six passes
 * instead of 813 (docs/performance.md, history). Past LOOP_MAX_BYTES the one native copy wins again.
 *
 * Invariant: writes exactly dst[o, o + (e - s)) = src[s, e) and returns o + (e - s); the caller has made room.
 */

/** Longest run copied byte by byte; longer runs go through one native copy. */
export const LOOP_MAX_BYTES = 512;

export function copyBytes(src: Uint8Array, s: number, e: number, dst: Uint8Array, o: number): number {
  if (e - s > LOOP_MAX_BYTES) {
    dst.set(src.subarray(s, e), o);
    return o + (e - s);
  }
  for (let i = s; i < e; i++) dst[o++] = src[i];
  return o;
}
