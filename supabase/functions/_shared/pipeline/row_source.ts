/**
 * A load's rows as they are parsed, cut into COPY pieces: the chunk reader parses the range's bytes, plain
 * records go straight into the current piece (load/fast_row.ts), the others through the string converter
 * (load/row_converter.ts) into the same piece or the batch's rejects.
 *
 * Invariants:
 * - File order: both paths append to one piece as the reader parses, so a piece holds its rows in file order
 *   (which of two rows with the same key wins depends on it).
 * - A batch ends between two reads, so the reader's nextOffset / nextLine are exact at every batch's end: the
 *   progress marker commit_batch stores.
 * - Bounded memory: at most two pieces are out at a time (one being filled, one with the database), each about
 *   PIECE_BYTES; a batch holds at most MAX_PIECES_PER_BATCH pieces and its rejects.
 * - Rejects past the job's budget of stored rejects (`detailBudget`) are counted only, never held.
 * - With `buildText`, pieces start with deferred text (CopyPiece.textDeferred): a piece's `length` is then an
 *   estimate of its text (the records' bytes), which is where pieces and batches are cut; the caller builds
 *   the text with CopyPiece.ensureText before sending a piece as text or bisecting it.
 */
import type { ChunkReader } from "../csv/chunk.ts";
import type { CsvRecord, RecordParserOptions } from "../csv/parser.ts";
import { CopyPiece } from "../load/copy_piece.ts";
import type { FastRow } from "../load/fast_row.ts";
import type { RowReject } from "../load/loader.ts";
import type { RowConverter } from "../load/row_converter.ts";
import type { WorkMeter } from "./isolate_budget.ts";

/** COPY data per fast-path piece: small enough that a refused piece wastes little, big enough that the
 * statements around it (savepoint, COPY, probe) cost nothing next to its data. Measured on the 1M-row file
 * (width 4, 3 runs each): 512 KiB → 1 MiB took the database from 3.1 to 3.0 CPU-s and the pipeline from
 * 0.63–0.66× to 0.66–0.69× of `\copy`; 2 MiB was no steadier and raised peak memory to ~55 MB. */
const PIECE_BYTES = 1024 * 1024;
/** At most this many pieces (subtransactions) per batch: PostgreSQL caches 64 subtransaction ids per backend;
 * past that every snapshot in the cluster gets slower (suboverflow). */
const MAX_PIECES_PER_BATCH = 32;

/**
 * COPY pieces kept for the next load of this worker: a piece's buffers grow to a piece's size (text ~1 MiB,
 * binary about as much) once, instead of once per chunk (~6 MB of allocations and copies per chunk, which
 * V8 answers with full collections). Taken and given back synchronously, so loads running at once in one
 * instance never share one; a load gives its pieces back when it closes its source, after its last COPY.
 */
const sparePieces: CopyPiece[] = [];

function takePiece(): CopyPiece {
  const piece = sparePieces.pop() ?? new CopyPiece();
  piece.reset();
  return piece;
}

function givePieceBack(piece: CopyPiece, keep: number): void {
  if (sparePieces.length < keep) sparePieces.push(piece);
}

/** Most bytes parsed between two checks of the batch's limits (rows, bytes, rejects). */
const PUSH_BYTES = 32 * 1024;

/** What a reject costs beyond its text when it is held and sent (object, line, column): counted per reject. */
const REJECT_OVERHEAD_CHARS = 64;

/** A batch's rows as they are parsed: what the next COPY piece holds, and what commit_batch needs. */
export class RowSource {
  readonly #reader: ChunkReader;
  readonly #input: ReadableStreamDefaultReader<Uint8Array>;
  readonly #converter: RowConverter;
  #ended = false;
  /** Two pieces take turns: one is filled while the database takes the other. */
  #spare: CopyPiece | null = takePiece();
  #spare2: CopyPiece | null = takePiece();
  readonly #pieces = [this.#spare!, this.#spare2!];
  /** The piece being filled: both paths append to it while the reader parses, in file order. */
  #current: CopyPiece | null = null;
  /** The current batch. */
  parsed = 0;
  chars = 0;
  pieces = 0;
  rejects: RowReject[] = [];
  /** The current batch's rejects' text, counted with its COPY bytes against the batch's byte limit. */
  rejectChars = 0;
  /** Rejects of the current batch past `detailBudget`: counted only (the job stores no more of them). */
  countedRejects = 0;
  /** How many rejects the job may still store (set by the caller): past it, rejects are counted only. */
  detailBudget = Number.POSITIVE_INFINITY;
  /** The invocation's synchronous work (ms), which parsing adds to (WORKER_INVOCATION_WORK_MS). */
  readonly #work: WorkMeter;
  /** The part of the last read not parsed yet (see #read). */
  #unparsed: Uint8Array | null = null;

  constructor(
    makeReader: (hooks: Pick<RecordParserOptions, "fastRecord" | "onRecord">) => ChunkReader,
    input: ReadableStream<Uint8Array>,
    converter: RowConverter,
    fastRow: FastRow | null,
    work: WorkMeter,
    buildText: ((piece: CopyPiece) => Promise<void>) | null = null,
  ) {
    this.#work = work;
    // Deferred text (CopyPiece.textDeferred): the pieces' COPY TEXT is built only for a piece that needs it.
    // After the first such piece the rest of this load builds its text as it parses: a file whose values have
    // no binary form would otherwise parse every piece twice.
    const deferred = buildText !== null;
    for (const piece of this.#pieces) {
      piece.textDeferred = deferred;
      piece.buildText = buildText === null ? null : async (p) => {
        for (const each of this.#pieces) each.textDeferred = false;
        await buildText(p);
      };
    }
    this.#reader = makeReader({
      // Plain records go straight from bytes into the piece; the others come back as records, in between,
      // so that the piece holds every row in file order (which row of two duplicates wins depends on it).
      fastRecord: fastRow === null ? undefined : (work, bs, be, line, offset, quoted) => {
        const piece = this.#current!;
        if (!fastRow(work, bs, be, piece, quoted)) return false;
        piece.endRow(line, offset, be - bs);
        this.parsed++;
        return true;
      },
      onRecord: (record) => this.#take(record, this.#current!),
    });
    this.#input = input.getReader();
    this.#converter = converter;
  }

  /** True when every owned record has been handed out. */
  get finished(): boolean {
    return this.#ended;
  }

  /** Starts a new batch (counters only; the reader goes on where it is). */
  resetBatch(): void {
    this.parsed = 0;
    this.chars = 0;
    this.pieces = 0;
    this.rejects = [];
    this.rejectChars = 0;
    this.countedRejects = 0;
  }

  /** Gives back a piece once the database is done with it (settled), for reuse. */
  release(piece: CopyPiece): void {
    piece.reset();
    if (this.#spare === null) this.#spare = piece;
    else this.#spare2 = piece;
  }

  /**
   * The next piece of the current batch: returns once PIECE_BYTES of COPY data are ready, or the batch is
   * full (`rows` parsed or `maxBytes` of COPY data), or the chunk has no more records; all checked between
   * reads, so a batch ends where the reader's nextOffset / nextLine are exact. `last` marks the batch's final
   * piece. At most two pieces are out at a time (one being filled, one with the database): the one before the
   * previous must have been released.
   */
  async nextPiece(
    rows: number,
    maxBytes: number,
    maxRejects: number,
  ): Promise<{ piece: CopyPiece; last: boolean }> {
    const piece = this.#spare ?? this.#spare2;
    if (piece === null) throw new Error("RowSource: both pieces are still in use");
    if (piece === this.#spare) this.#spare = null;
    else this.#spare2 = null;
    this.#current = piece;
    for (;;) {
      if (
        this.#ended || this.parsed >= rows || this.chars + this.rejectChars + piece.length >= maxBytes ||
        this.rejects.length + this.countedRejects >= maxRejects ||
        this.pieces + 1 >= MAX_PIECES_PER_BATCH
      ) return this.#cut(piece, true);
      if (piece.length >= PIECE_BYTES) return this.#cut(piece, false);
      await this.#read();
    }
  }

  #cut(piece: CopyPiece, last: boolean): { piece: CopyPiece; last: boolean } {
    this.#current = null;
    if (piece.count > 0) this.pieces++;
    this.chars += piece.length;
    return { piece, last };
  }

  #take(record: CsvRecord, piece: CopyPiece): void {
    this.parsed++;
    const converted = this.#converter.convert(record);
    if (typeof converted === "string") {
      piece.add(converted, record.line, record.offset, record.byteLength);
    } else if (this.rejects.length >= this.detailBudget) {
      this.countedRejects++; // nothing held: the job has stored all the rejects it may
    } else {
      const raw = record.raw;
      this.rejects.push({ line: record.line, column: converted.column, reason: converted.reason, raw });
      this.rejectChars += raw.length + converted.reason.length + REJECT_OVERHEAD_CHARS;
    }
  }

  /** One read from Storage, parsed into the current piece (and the batch's rejects). */
  async #read(): Promise<void> {
    let value = this.#unparsed;
    if (value === null) {
      const read = await this.#input.read();
      if (read.done) {
        if (!this.#reader.done) this.#reader.finish();
        this.#ended = true;
        return;
      }
      value = read.value;
    }
    // At most PUSH_BYTES at a time, so that a batch ends near its limits however short the rows (a 256 KiB read
    // of 2-byte rows is 131,072 records). The rest waits here: the next read from the input, which may reuse the
    // buffer, comes only once it is parsed.
    this.#unparsed = value.byteLength > PUSH_BYTES ? value.subarray(PUSH_BYTES) : null;
    const started = performance.now();
    this.#reader.push(value.byteLength > PUSH_BYTES ? value.subarray(0, PUSH_BYTES) : value);
    if (this.#reader.done) this.#ended = true;
    this.#work.add(performance.now() - started);
  }

  /**
   * Stops the Storage read (leaving the loop early cancels the request) and gives the pieces back, for the
   * worker to keep up to `piecesKept` spare: two per load it runs at once (2 × WORKER_CHUNKS_PER_ISOLATE). With
   * two kept, each wave of three loads grew four pieces anew.
   */
  async close(piecesKept: number): Promise<void> {
    await this.#input.cancel().catch(() => {});
    for (const piece of this.#pieces.splice(0)) {
      piece.textDeferred = false;
      piece.buildText = null;
      givePieceBack(piece, piecesKept);
    }
  }
}
