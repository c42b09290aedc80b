/**
 * Pass 1 (SCAN): summarise a chunk's bytes so every chunk can learn its exact entry state without parsing
 * anything before it.
 *
 * Invariants:
 * - Quote state at a byte is the parity of the number of quote bytes before it in the file (the quote doubles
 *   as its own escape, so `""` toggles twice; PostgreSQL's COPY CSV line splitter does exactly this).
 * - A chunk `[start, end)` is summarised from its own bytes only: `quoteParity` = number of quote bytes mod 2,
 *   `newlineCount` = number of terminator bytes (LF, or CR in lone-CR files), quoted or not, `bytes` = length,
 *   `endsWithTerminator` = whether its last byte is the terminator byte. (UTF-16: code units instead of bytes,
 *   through utf16.ts; `bytes` stays the chunk's byte length, and chunk edges are even.)
 * - Summaries compose by a prefix fold ({@link composeEntries}): entry parity of chunk k = XOR of the parities
 *   of chunks before it (and of the origin), lines before chunk k = sum of their newline counts. The fold is
 *   exact for any chunk sizes, including 1-byte chunks, because both quantities are plain counts.
 * - A record starts exactly at chunk k's first byte iff the byte before it is a terminator at even parity:
 *   `atRecordStart` = previous chunk `endsWithTerminator` and entry parity 0. (Without this bit a chunk would
 *   have to read the byte before its start.)
 */

import { textCodec } from "./encoding.ts";
import { type CsvFormat, formatBytes } from "./format.ts";
import { Utf16Narrower } from "./utf16.ts";

export interface ChunkSummary {
  readonly quoteParity: 0 | 1;
  readonly newlineCount: number;
  readonly bytes: number;
  readonly endsWithTerminator: boolean;
}

export interface Scanner {
  /** Feeds the next piece of the chunk (pieces must be contiguous and in order). */
  push(piece: Uint8Array): void;
  /** The summary of everything pushed so far. */
  finish(): ChunkSummary;
}

export function createScanner(format: CsvFormat): Scanner {
  if (textCodec(format.encoding).unitBytes === 1) return createByteScanner(format);
  // UTF-16: the same counts on narrowed code units (utf16.ts), which hold the quotes and line breaks of the text;
  // `bytes` stays the chunk's byte length. (A wrapper, so that the byte scanner's loop stays as fast as it was.)
  const narrower = new Utf16Narrower(format.encoding === "utf-16be");
  const units = createByteScanner(format);
  let bytes = 0;
  return {
    push(raw) {
      bytes += raw.length;
      units.push(narrower.push(raw).narrow);
    },
    finish() {
      return { ...units.finish(), bytes };
    },
  };
}

/**
 * Counts the quote and terminator bytes of b[s, e) one byte at a time: the reference that {@link countBytes}
 * must equal (scan_test.ts compares them), and what it does for the bytes around its aligned words.
 */
export function countBytesSimply(
  b: Uint8Array,
  s: number,
  e: number,
  q: number,
  t: number,
): [number, number] {
  let nq = 0;
  let nt = 0;
  for (let i = s; i < e; i++) {
    const c = b[i];
    if (c === q) nq++;
    else if (c === t) nt++;
  }
  return [nq, nt];
}

/**
 * Counts the quote and terminator bytes of `b`, four bytes at a time: a word in which no byte equals either is
 * skipped after one test (the classic "has a zero byte" test, `(v - 0x01010101) & ~v & 0x80808080`, on the word
 * XOR the byte repeated; it never misses a zero byte), and a word that may hold one is counted byte by byte.
 * Why not the plain loop: a load scans its whole range before parsing it (1M-row file: 7–8 % of a chunk
 * isolate's CPU, docs/performance.md); on the reference data this takes 5.8 ms per 8 MiB against 12 ms, and
 * 16 ms against 15 ms on the worst case (every other byte a line break). `Uint8Array.indexOf` per byte found was
 * 7.7 ms, but 82 ms on that worst case.
 */
export function countBytes(b: Uint8Array, q: number, t: number): [number, number] {
  const n = b.length;
  const head = Math.min(n, (4 - (b.byteOffset & 3)) & 3);
  const words = (n - head) >>> 2;
  let [nq, nt] = countBytesSimply(b, 0, head, q, t);
  if (words > 0) {
    const w32 = new Uint32Array(b.buffer, b.byteOffset + head, words);
    const qs = q * 0x01010101;
    const ts = t * 0x01010101;
    for (let w = 0; w < words; w++) {
      const x = w32[w];
      const a = x ^ qs;
      const c = x ^ ts;
      if (((((a - 0x01010101) & ~a) | ((c - 0x01010101) & ~c)) & 0x80808080) === 0) continue;
      for (let i = head + (w << 2), e = i + 4; i < e; i++) {
        const v = b[i];
        if (v === q) nq++;
        else if (v === t) nt++;
      }
    }
  }
  const [tq, tt] = countBytesSimply(b, head + (words << 2), n, q, t);
  return [nq + tq, nt + tt];
}

function createByteScanner(format: CsvFormat): Scanner {
  const { quote, terminator } = formatBytes(format);
  let quotes = 0;
  let newlines = 0;
  let bytes = 0;
  let last = -1;
  return {
    push(piece) {
      const [nq, nt] = countBytes(piece, quote, terminator);
      quotes ^= nq & 1;
      newlines += nt;
      bytes += piece.length;
      if (piece.length > 0) last = piece[piece.length - 1];
    },
    finish() {
      return {
        quoteParity: quotes as 0 | 1,
        newlineCount: newlines,
        bytes,
        endsWithTerminator: last === terminator,
      };
    },
  };
}

/** Summarises a chunk delivered as a stream (e.g. a ranged fetch body) or any iterable of pieces. */
export async function scanChunk(
  pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  format: CsvFormat,
): Promise<ChunkSummary> {
  const scanner = createScanner(format);
  for await (const piece of pieces) scanner.push(piece);
  return scanner.finish();
}

/** Where a chunk enters the file: what the loader needs before it can find its first owned record. */
export interface ChunkEntry {
  /** Quote parity of all bytes before the chunk's start (1 = the chunk starts inside a quoted section). */
  readonly entryParity: 0 | 1;
  /** Number of terminator bytes before the chunk's start; the chunk's first byte is on line `linesBefore + 1`. */
  readonly linesBefore: number;
  /** True when the byte before the chunk's start is a terminator at even parity: a record starts at `start`. */
  readonly atRecordStart: boolean;
}

export interface Composition {
  readonly entries: ChunkEntry[];
  /**
   * Quote parity at end of file. 1 means the file ends inside a quoted field: it has an unterminated quote and
   * the job should fail (the chunk that owns that record also throws `unterminated_quote` when it reaches EOF).
   */
  readonly finalParity: 0 | 1;
}

/**
 * Prefix fold of the summaries of contiguous chunks, in file order. `origin` is the state at the first
 * chunk's start: the default (parity 0, 0 lines) for a chunk starting at byte 0; for chunks starting at the
 * data start, parity 0 and the dialect's `linesBeforeData` (the data start itself is a record start by
 * definition, whatever `atRecordStart` says).
 */
export function composeEntries(
  summaries: readonly ChunkSummary[],
  origin: ChunkEntry = { entryParity: 0, linesBefore: 0, atRecordStart: false },
): Composition {
  let parity = origin.entryParity;
  let lines = origin.linesBefore;
  let atRecordStart = origin.atRecordStart;
  const entries: ChunkEntry[] = [];
  for (const s of summaries) {
    entries.push({ entryParity: parity, linesBefore: lines, atRecordStart });
    parity = (parity ^ s.quoteParity) as 0 | 1;
    lines += s.newlineCount;
    if (s.bytes > 0) atRecordStart = s.endsWithTerminator && parity === 0;
  }
  return { entries, finalParity: parity };
}
