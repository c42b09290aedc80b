/**
 * A forward-only reader over an object's compressed bytes, which arrive as an async sequence of pieces of
 * any size.
 *
 * Invariants:
 * - `offset` is the absolute object offset of the next unread byte: `base + pos`, where `base` is the
 *   offset of `buf[0]`. It only grows.
 * - No byte at or past `end` (when given) is ever exposed: the piece that crosses it is cut, later pieces are
 *   not pulled.
 * - A new piece is pulled only once the current one is fully read, so a piece is never copied or
 *   concatenated, and a piece the producer hands over is held only until it has been read.
 */

const EMPTY = new Uint8Array(0);

export class InputCursor {
  buf: Uint8Array = EMPTY;
  pos = 0;
  private base: number;
  private readonly pieces: AsyncIterator<Uint8Array>;
  private finished = false;

  constructor(input: AsyncIterable<Uint8Array>, start: number, readonly end: number | undefined) {
    this.base = start;
    this.pieces = input[Symbol.asyncIterator]();
  }

  get offset(): number {
    return this.base + this.pos;
  }

  get available(): number {
    return this.buf.length - this.pos;
  }

  /** Makes the next piece current once this one is read; false when the input (or `end`) is reached. */
  async next(): Promise<boolean> {
    if (this.available > 0) return true;
    while (!this.finished) {
      if (this.end !== undefined && this.offset >= this.end) break;
      const step = await this.pieces.next();
      if (step.done) break;
      let piece = step.value;
      if (piece.length === 0) continue;
      this.base = this.offset;
      if (this.end !== undefined && this.base + piece.length > this.end) {
        piece = piece.subarray(0, this.end - this.base);
      }
      this.buf = piece;
      this.pos = 0;
      return true;
    }
    this.finished = true;
    return false;
  }

  /** The next byte, or -1 at the end of the input. */
  async byte(): Promise<number> {
    if (this.pos === this.buf.length && !(await this.next())) return -1;
    return this.buf[this.pos++];
  }

  /** Stops the producer (e.g. a download) when the reader is done early. */
  async close(): Promise<void> {
    this.finished = true;
    await this.pieces.return?.();
  }
}
