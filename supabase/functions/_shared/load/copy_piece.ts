/**
 * A piece of COPY data: the buffer that the fast row path (fast_row.ts, copy_binary.ts) and the string path
 * (CopyPiece.add) fill, and that the writer (loader.ts) sends as one COPY.
 *
 * Invariants:
 * - Rows are kept in file order, each with its physical line and the byte range of its record in the file, so
 *   that a refused row can be reported (and its raw text read back) without keeping its text.
 * - `bytes[0, length)` is the COPY TEXT of rows [0, count), except in a piece whose text is deferred
 *   (`textDeferred`): there `length` only estimates it, and the text is built by `ensureText` before anything
 *   reads it (`data`, `row`, `rows` refuse while it is missing). `bin[0, binLength)` is their COPY BINARY
 *   (header, then one tuple per row) for as long as `binary` holds, and is then sent instead of the text.
 * - A piece is reused after it has settled: {@link CopyPiece.reset} empties it and keeps its buffers.
 */
import { copyBytes } from "./copy_bytes.ts";

/**
 * One row ready for COPY TEXT (fields escaped, tab-separated, newline-terminated), with what a reject needs:
 * its physical line and where its record lies in the file (the raw text of a row the database refuses is
 * read back from there, so the fast path keeps no raw text per row).
 */
export interface PreparedRow {
  copyLine: string;
  line: number;
  offset: number;
  byteLength: number;
}

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/**
 * A buffer's next size: doubled up to 1 MiB, then a quarter more at a time. Why: a piece is cut once its text
 * passes PIECE_BYTES (1 MiB, pipeline/row_source.ts) by at most one push, so doubling took every piece's text
 * buffer to 2 MiB for the few KiB past 1 MiB; the pooled pieces of a chunk isolate (two per load) held ~6 MB
 * of it (1M rows, 3 loads at once).
 */
function grownSize(size: number, need: number): number {
  return Math.max(need, size < 1024 * 1024 ? size * 2 : size + (size >> 2));
}

/**
 * COPY BINARY's header (PostgreSQL docs: COPY, Binary Format): the 11-byte signature `PGCOPY\n\377\r\n\0`,
 * a zero flags field (int32) and a zero header extension length (int32).
 */
const BINARY_HEADER = Uint8Array.from([80, 71, 67, 79, 80, 89, 10, 255, 13, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/**
 * The COPY TEXT bytes of one piece of rows, with what bisection and rejects need per row kept in typed arrays:
 * no object and no long-lived string per row. Why bytes: the rows of a piece otherwise survive as strings
 * until the piece is sent (V8 promotes them to the old generation and postgres.js re-encodes the joined text:
 * 35 ms per 8 MiB chunk in Buffer.byteLength/encode alone); a reused buffer costs one copy per byte.
 * A piece is reused after it has settled ({@link reset}).
 *
 * Beside the text, the fast path writes the same rows in COPY BINARY (`bin`) for as long as every row of the
 * piece has a binary form (`binary`; fast_row.ts says which values do): such a piece is sent in binary, which
 * spares the database its input functions (measured with `\copy` of the reference file: 3.7–4.0 CPU-s in text,
 * 2.3–2.5 in binary). The text stays the piece's reference: a piece with a row the string path converted is
 * sent as text, and so are the rows of a refused piece (bisection).
 */
export class CopyPiece {
  bytes = new Uint8Array(64 * 1024);
  length = 0;
  count = 0;
  /** COPY BINARY of the same rows: the header, then one tuple per row; valid only while `binary`. */
  bin = new Uint8Array(64 * 1024);
  binLength = BINARY_HEADER.length;
  binary = true;
  /**
   * Deferred text: while set, rows are appended without their COPY TEXT (the fast path writes only the binary
   * tuple, the string path nothing), and `length` grows by an estimate of it. Why: a piece that goes in binary
   * never needs its text; building it anyway cost ~3 % of the row path and a ~1.25 MiB buffer per piece (two
   * per load, three loads per isolate). The owner (pipeline/row_source.ts) sets it with `buildText`.
   */
  textDeferred = false;
  /** Rebuilds the text of every row from the file's bytes when it is needed (pipeline/piece_text.ts). */
  buildText: ((piece: CopyPiece) => Promise<void>) | null = null;
  /** Whether rows were appended without their text since the last reset (ensureText then builds it). */
  #textMissing = false;
  #ends = new Int32Array(1024);
  #lines = new Float64Array(1024);
  #offsets = new Float64Array(1024);
  #byteLengths = new Int32Array(1024);

  constructor() {
    this.bin.set(BINARY_HEADER);
  }

  /** Appends bytes b[s, e) to the current row. */
  putBytes(b: Uint8Array, s: number, e: number): void {
    const at = this.length;
    if (at + (e - s) > this.bytes.length) this.#grow(at + (e - s));
    this.length = copyBytes(b, s, e, this.bytes, at);
  }

  putByte(c: number): void {
    if (this.length + 1 > this.bytes.length) this.#grow(this.length + 1);
    this.bytes[this.length++] = c;
  }

  /**
   * Appends record bytes b[bs, be) as a COPY line: the delimiters before fields 1..f (at starts[k] - 1) become
   * tabs, and a newline ends it.
   */
  putRecord(b: Uint8Array, bs: number, be: number, starts: Int32Array, f: number): void {
    const at = this.length;
    const n = be - bs;
    if (at + n + 1 > this.bytes.length) this.#grow(at + n + 1);
    const bytes = this.bytes;
    copyBytes(b, bs, be, bytes, at);
    const shift = at - bs;
    for (let k = 1; k <= f; k++) bytes[starts[k] - 1 + shift] = 9;
    bytes[at + n] = 10;
    this.length = at + n + 1;
  }

  /** Counts `n` bytes of text a row would have had (deferred text: the row's text is built later, if at all). */
  skipText(n: number): void {
    this.length += n;
    this.#textMissing = true;
  }

  /** Whether the text of some rows is still to be built ({@link ensureText}). */
  get textMissing(): boolean {
    return this.#textMissing;
  }

  /** Builds the text of a piece whose rows were appended without it; false (nothing to do) when complete. */
  async ensureText(): Promise<boolean> {
    if (!this.#textMissing) return false;
    if (this.buildText === null) {
      throw new Error("CopyPiece: the text was deferred without a way to build it");
    }
    await this.buildText(this);
    return true;
  }

  /**
   * Takes the text of `built`, which holds the same rows (same count, offsets and lines) with their text: the
   * two swap text buffers (`built` keeps this piece's old one). Throws when the rows differ.
   */
  adoptText(built: CopyPiece): void {
    if (built.#textMissing || built.count !== this.count) {
      throw new Error(`CopyPiece: the rebuilt text has ${built.count} rows, the piece ${this.count}`);
    }
    for (let i = 0; i < this.count; i++) {
      if (built.#offsets[i] !== this.#offsets[i] || built.#lines[i] !== this.#lines[i]) {
        throw new Error(
          `CopyPiece: rebuilt row ${i} is at ${built.#offsets[i]}, the piece's at ${this.#offsets[i]}`,
        );
      }
    }
    [this.bytes, built.bytes] = [built.bytes, this.bytes];
    // Copied, not swapped: the four per-row arrays grow together (#growRows), so they keep one capacity.
    this.#ends.set(built.#ends.subarray(0, this.count));
    this.length = built.length;
    this.#textMissing = false;
  }

  /** Ends the row whose bytes were put since the previous row (record at `offset`, `byteLength`, `line`). */
  endRow(line: number, offset: number, byteLength: number): void {
    const k = this.count;
    if (k === this.#ends.length) this.#growRows();
    this.#ends[k] = this.length;
    this.#lines[k] = line;
    this.#offsets[k] = offset;
    this.#byteLengths[k] = byteLength;
    this.count = k + 1;
  }

  /** Makes room for `n` more bytes of binary data; returns where they go (the writer then sets binLength). */
  binReserve(n: number): number {
    const at = this.binLength;
    if (at + n > this.bin.length) {
      const grown = new Uint8Array(grownSize(this.bin.length, at + n));
      grown.set(this.bin.subarray(0, at));
      this.bin = grown;
    }
    return at;
  }

  /** The COPY BINARY data of all rows, trailer included (valid while `binary`). */
  binData(): Uint8Array {
    const at = this.binReserve(2);
    this.bin[at] = 0xff;
    this.bin[at + 1] = 0xff;
    return this.bin.subarray(0, at + 2);
  }

  /** Appends one COPY line (newline-terminated) of the record at `offset` (`byteLength` bytes, on `line`). */
  add(copyLine: string, line: number, offset: number, byteLength: number): void {
    this.binary = false; // the string path's rows have no binary form here
    if (this.textDeferred) {
      this.skipText(copyLine.length + 1);
      this.endRow(line, offset, byteLength);
      return;
    }
    const at = this.length;
    if (at + copyLine.length * 3 > this.bytes.length) this.#grow(at + copyLine.length * 3);
    this.length = at + ENCODER.encodeInto(copyLine, this.bytes.subarray(at)).written;
    this.endRow(line, offset, byteLength);
  }

  reset(): void {
    this.length = 0;
    this.count = 0;
    this.binLength = BINARY_HEADER.length;
    this.binary = true;
    this.#textMissing = false;
  }

  /** The COPY data of rows [from, to). */
  data(from = 0, to = this.count): Uint8Array {
    if (this.#textMissing) throw new Error("CopyPiece: the text is not built (ensureText)");
    return this.bytes.subarray(from === 0 ? 0 : this.#ends[from - 1], to === 0 ? 0 : this.#ends[to - 1]);
  }

  /** Where row i's record is: its line, offset and byte length (available whether or not the text is built). */
  place(i: number): { line: number; offset: number; byteLength: number } {
    return { line: this.#lines[i], offset: this.#offsets[i], byteLength: this.#byteLengths[i] };
  }

  /** Row i as an object (for the rare paths: bisection of a refused piece, the isolating modes). */
  row(i: number): PreparedRow {
    return { copyLine: DECODER.decode(this.data(i, i + 1)), ...this.place(i) };
  }

  rows(): PreparedRow[] {
    const rows: PreparedRow[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) rows[i] = this.row(i);
    return rows;
  }

  #grow(need: number): void {
    const grown = new Uint8Array(grownSize(this.bytes.length, need));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  #growRows(): void {
    const k = this.#ends.length * 2;
    const ends = new Int32Array(k);
    ends.set(this.#ends);
    this.#ends = ends;
    const lines = new Float64Array(k);
    lines.set(this.#lines);
    this.#lines = lines;
    const offsets = new Float64Array(k);
    offsets.set(this.#offsets);
    this.#offsets = offsets;
    const byteLengths = new Int32Array(k);
    byteLengths.set(this.#byteLengths);
    this.#byteLengths = byteLengths;
  }
}
