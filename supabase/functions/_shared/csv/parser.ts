/**
 * Pass 2 (LOAD): a streaming, byte-level CSV record parser with PostgreSQL `COPY … CSV` semantics.
 *
 * Record splitting (exactly PostgreSQL's line splitter, and the same rule the scan pass relies on):
 * - Every quote byte toggles the in-quote state (the quote is its own escape, so `""` toggles twice). A quote
 *   anywhere, also inside an unquoted field such as `ab"c`, opens a quoted section.
 * - A record ends at the terminator byte (LF; CR in lone-CR files) at even quote parity. In CRLF files the CR
 *   right before that LF belongs to the terminator.
 * - Blank lines (no bytes between two terminators, outside quotes; `\r\n` alone in CRLF files) are skipped and
 *   counted in `blankLines`. (PostgreSQL would read one as a row with a single NULL column.)
 *
 * Field semantics (PostgreSQL CopyReadAttributesCSV, ESCAPE = QUOTE):
 * - Outside quotes, the delimiter ends a field and a quote enters quoted mode; the quote itself is dropped.
 * - Inside quotes, `""` yields one `"` and a lone quote leaves quoted mode; delimiters and line breaks are data.
 * - A field with no quote and no bytes is NULL (`null`); a field that saw a quote is a string, so `""` is "".
 *
 * Per-record problems do not throw; the record comes back with `issue` set and its raw text:
 * - invalid UTF-8 anywhere in the record (`fields` is then empty);
 * - an unquoted CR in an LF/CRLF file, an unquoted LF in a CR file, or a bare-LF line end in a CRLF file
 *   (PostgreSQL rejects these; we return the fields as parsed, flagged).
 * File-level problems throw {@link CsvError}:
 * - `record_too_large` as soon as one record's content exceeds `maxRecordBytes`; the parser never buffers more
 *   than `maxRecordBytes` plus one pushed piece;
 * - `unterminated_quote` at `finish()` when the input ends inside a quoted section.
 *
 * Encodings (encoding.ts): records are split on the file's bytes and decoded in the file's encoding; UTF-16
 * is split on narrowed code units (utf16.ts: one position = two bytes), decoded from the units kept beside them,
 * and an unpaired surrogate is a record issue like invalid UTF-8.
 *
 * Positions: `offset` is the absolute file offset of the record's first byte, `byteLength` the length of its
 * content without the terminator, `line` the 1-based physical line where it starts (quoted line breaks
 * advance the count, as in an editor). Offsets are plain numbers (files may exceed 4 GiB).
 *
 * Ownership: the first pushed byte must be a record start (`startOffset`). Records starting before `stopAt`
 * are returned, including the last one, which may end past `stopAt`; as soon as the next record would start
 * at or after `stopAt` the parser is `done` and ignores further input. `nextOffset` is then exactly the start
 * of the next chunk's first owned record.
 *
 * Speed: one indexOf-driven byte pass finds record ends and quote parity, one fatal TextDecoder call decodes
 * all complete records of a push, and fields are cut from that string (`split` when a record has no quote).
 * With `fastRecord`, the caller takes records in plain forms straight from the bytes and only the others are
 * decoded.
 */

import { CsvError, type RecordIssue } from "./errors.ts";
import { textCodec, UndecodableError } from "./encoding.ts";
import { NATIVE_LE, Utf16Narrower } from "./utf16.ts";

/** A UTF-16 record's raw text with U+FFFD for an unpaired surrogate (units in the platform's byte order). */
const LOSSY_UNITS = new TextDecoder(NATIVE_LE ? "utf-16le" : "utf-16be", { ignoreBOM: true });
import { CR, type CsvFormat, formatBytes } from "./format.ts";

export interface RecordParserOptions {
  readonly format: CsvFormat;
  /** Upper bound on one record's content bytes; larger records throw `record_too_large`. */
  readonly maxRecordBytes: number;
  /** Absolute file offset of the first byte that will be pushed (a record start). Default 0. */
  readonly startOffset?: number;
  /** Physical line number (1-based) of that byte. Default 1. */
  readonly startLine?: number;
  /** Only records starting before this absolute offset are returned. Default: no bound. */
  readonly stopAt?: number;
  /**
   * Optional fast path: offered each complete record, not blank, with its terminator (and a CRLF file's CR)
   * removed, as bytes `work[bs, be)` on physical `line` at absolute `offset`; `quoted` tells whether it holds a
   * quote character (its quotes then pair up: even parity). Returning true means the caller consumed the
   * record: it is not returned by `push` (it still counts for lines and offsets); false means it is returned
   * as usual. Bare-LF line ends in CRLF files, blank lines and the final unterminated record are never offered.
   */
  readonly fastRecord?: (
    work: Uint8Array,
    bs: number,
    be: number,
    line: number,
    offset: number,
    quoted: boolean,
  ) => boolean;
  /**
   * Optional: receives every record `push` and `finish` would return, as soon as it is parsed, in file order
   * with the records the fast path takes (which `fastRecord` receives in between); `push` and `finish` then
   * return nothing. A caller that writes both kinds to one output keeps them in file order this way.
   */
  readonly onRecord?: (record: CsvRecord) => void;
}

/** Where parsed records go: the array `push` returns, or the caller's `onRecord`. */
type Sink = { push(record: CsvRecord): unknown };

/** One parsed record. */
export class CsvRecord {
  constructor(
    /** Field values; `null` for an unquoted empty field. Empty when the record has an invalid-UTF-8 issue. */
    readonly fields: (string | null)[],
    readonly line: number,
    readonly offset: number,
    readonly byteLength: number,
    readonly issue: RecordIssue | null,
    private readonly src: string,
    private readonly srcStart: number,
    private readonly srcEnd: number,
  ) {}

  /**
   * The record's text without its terminator, cut lazily from the decoded batch (invalid UTF-8 shows as
   * U+FFFD). The result shares memory with the whole batch string, so do not keep many of them for long.
   */
  get raw(): string {
    return this.src.slice(this.srcStart, this.srcEnd);
  }
}

export interface RecordParser {
  /** Parses the next contiguous piece; returns the records completed by it. */
  push(piece: Uint8Array): CsvRecord[];
  /** End of file: returns the final record if it has no terminator. Throws on an unterminated quote. */
  finish(): CsvRecord[];
  /** True once the next record would start at or after `stopAt`, or after `finish()`. */
  readonly done: boolean;
  /** Absolute offset just past the last returned or skipped record (and its terminator). */
  readonly nextOffset: number;
  /** Physical line number at `nextOffset`. */
  readonly nextLine: number;
  /** Blank lines skipped so far. */
  readonly blankLines: number;
}

function foreignIssue(newline: CsvFormat["newline"]): RecordIssue {
  if (newline === "\r") {
    return {
      code: "unquoted_lf",
      message: "unquoted line feed in data (the file uses CR line endings); quote the field",
    };
  }
  const style = newline === "\n" ? "LF" : "CRLF";
  return {
    code: "unquoted_cr",
    message: `unquoted carriage return in data (the file uses ${style} line endings); quote the field`,
  };
}

const BARE_LF: RecordIssue = {
  code: "bare_lf",
  message: "line ends with LF only, but the file uses CRLF line endings",
};

export function createRecordParser(options: RecordParserOptions): RecordParser {
  const fb = formatBytes(options.format);
  const Q = fb.quote;
  const T = fb.terminator;
  const crlf = fb.crlf;
  const delimStr = options.format.delimiter;
  const quoteStr = options.format.quote;
  const termStr = String.fromCharCode(T);
  const foreignStr = String.fromCharCode(fb.foreign);
  const maxRecordBytes = options.maxRecordBytes;
  const stopAt = options.stopAt ?? Infinity;
  const FOREIGN = foreignIssue(options.format.newline);
  const fastRecord = options.fastRecord;
  /** The file's encoding: a single-byte one decodes one code unit per byte, so string and byte indexes agree. */
  const codec = textCodec(options.format.encoding);
  // UTF-16: `work` holds narrowed code units (utf16.ts) and `units` the units themselves, index for index; a
  // position in `work` is W bytes of the file.
  const W = codec.unitBytes;
  const narrower = W === 2 ? new Utf16Narrower(options.format.encoding === "utf-16be") : null;
  let units = new Uint16Array(W === 2 ? 1 << 16 : 0);
  // The fast path reads UTF-8 bytes: never offered UTF-16 records (fast_row.ts declines such files anyway).
  if (W === 2 && fastRecord !== undefined) throw new RangeError("the fast path does not read UTF-16");
  const onRecord = options.onRecord;
  const NONE: CsvRecord[] = [];
  /** A fresh output for one push or finish. */
  const sink = (): CsvRecord[] => (onRecord ? ({ push: onRecord } as unknown as CsvRecord[]) : []);
  const result = (out: CsvRecord[]): CsvRecord[] => (onRecord ? NONE : out);
  let work = new Uint8Array(1 << 16);
  let len = 0; // bytes (UTF-16: units) held in work
  let base = options.startOffset ?? 0; // absolute offset of work[0] = start of the pending record
  let line = options.startLine ?? 1; // physical line of work[0]
  let scanPos = 0; // bytes of work already scanned
  let inQuote = false;
  let recQuote = false; // pending record has a quote
  let recNl = 0; // terminator bytes inside quotes in the pending record
  let openNl = 0; // recNl when the currently open quote was opened
  let blankLines = 0;
  let done = base >= stopAt;

  // Per-push record table (relative end offsets, quoted-newline counts, has-quote flags).
  let ends = new Int32Array(1024);
  let nls = new Int32Array(1024);
  let hqs = new Uint8Array(1024);

  function tooLarge(): never {
    throw new CsvError(
      "record_too_large",
      `record at line ${line} is larger than the limit of ${maxRecordBytes} bytes (MAX_RECORD_BYTES)`,
      base,
      line,
    );
  }

  function append(raw: Uint8Array): void {
    let piece = raw;
    if (narrower !== null) {
      const n = narrower.push(raw);
      piece = n.narrow;
      if (len + n.units.length > units.length) {
        const grown = new Uint16Array(Math.max(units.length * 2, len + n.units.length));
        grown.set(units.subarray(0, len));
        units = grown;
      }
      units.set(n.units, len);
    }
    if (len + piece.length > work.length) {
      const grown = new Uint8Array(Math.max(work.length * 2, len + piece.length));
      grown.set(work.subarray(0, len));
      work = grown;
    }
    work.set(piece, len);
    len += piece.length;
  }

  /** The text of work[from, to): the bytes decoded, or for UTF-16 the units. */
  function decode(from: number, to: number): string {
    return W === 2 ? codec.strictUnits!(units.subarray(from, to)) : codec.strict(work.subarray(from, to));
  }

  function pushEnd(k: number, end: number): void {
    if (k === ends.length) {
      const e = new Int32Array(k * 2);
      e.set(ends);
      ends = e;
      const n = new Int32Array(k * 2);
      n.set(nls);
      nls = n;
      const h = new Uint8Array(k * 2);
      h.set(hqs);
      hqs = h;
    }
    ends[k] = end;
    nls[k] = recNl;
    hqs[k] = recQuote ? 1 : 0;
  }

  /**
   * Builds the record whose bytes are work[bs, be) (be = terminator position, or len for the final record)
   * and whose text is src[cs, ce). Updates the line counter; skips blank lines.
   */
  function emit(
    out: Sink,
    src: string,
    cs: number,
    ce: number,
    bs: number,
    be: number,
    nl: number,
    hasQuote: boolean,
    terminated: boolean,
    checkForeign: boolean,
  ): void {
    const recLine = line;
    line += nl + (terminated ? 1 : 0);
    let issue: RecordIssue | null = null;
    if (crlf && terminated && be > bs) {
      if (work[be - 1] === CR) {
        be--;
        ce--;
      } else issue = BARE_LF;
    }
    if (be === bs) {
      blankLines++;
      return;
    }
    let fields: (string | null)[];
    if (!hasQuote) {
      const s = src.slice(cs, ce);
      fields = s.split(delimStr);
      for (let i = 0; i < fields.length; i++) if (fields[i] === "") fields[i] = null;
      if (checkForeign && s.indexOf(foreignStr) !== -1) issue = FOREIGN;
    } else {
      fields = [];
      if (splitQuoted(src, cs, ce, delimStr.charCodeAt(0), Q, quoteStr, fb.foreign, fields) && checkForeign) {
        issue = FOREIGN;
      }
    }
    out.push(new CsvRecord(fields, recLine, base + bs * W, (be - bs) * W, issue, src, cs, ce));
  }

  /** Like emit, for a record whose bytes are not valid UTF-8 on their own. */
  function emitInvalid(out: Sink, bs: number, be: number, nl: number, terminated: boolean): void {
    const recLine = line;
    line += nl + (terminated ? 1 : 0);
    if (crlf && terminated && be > bs && work[be - 1] === CR) be--;
    const problem = W === 2
      ? codec.problemUnits!(units, bs, be, base + bs * W)
      : codec.problem(work, bs, be, base);
    const issue: RecordIssue = {
      code: codec.singleByte ? "untranslatable" : W === 2 ? "invalid_utf16" : "invalid_utf8",
      message: problem ?? "undecodable bytes",
    };
    const raw = W === 2 ? LOSSY_UNITS.decode(units.subarray(bs, be)) : codec.lossy(work.subarray(bs, be));
    out.push(new CsvRecord([], recLine, base + bs * W, (be - bs) * W, issue, raw, 0, raw.length));
  }

  /** One record on its own (after a batch failed to decode, or a record the fast path declined). */
  function emitAlone(out: Sink, bs: number, be: number, nl: number, q: boolean, terminated: boolean) {
    let s: string;
    try {
      s = decode(bs, be);
    } catch (error) {
      if (!(error instanceof UndecodableError)) throw error;
      emitInvalid(out, bs, be, nl, terminated);
      return;
    }
    emit(out, s, 0, s.length, bs, be, nl, q, terminated, true);
  }

  /** Emits the `count` complete records held in work[0, ends[count-1]]. */
  function emitBatch(out: Sink, count: number, offer = fastRecord !== undefined): void {
    // With a fast path: the records it takes only advance the line count. The first few it declines are
    // decoded one by one (most pushes hold none or one); past that, the rest of the push is decoded at once,
    // starting at a record start (never inside a UTF-8 sequence).
    let k0 = 0;
    if (offer) {
      let bs = 0;
      let declined = 0;
      for (; k0 < count; k0++) {
        const be = ends[k0];
        const q = hqs[k0] === 1;
        const end = crlf ? (be > bs && work[be - 1] === CR ? be - 1 : -1) : be;
        if (end > bs && fastRecord!(work, bs, end, line, base + bs, q)) {
          line += nls[k0] + 1;
          bs = be + 1;
          continue;
        }
        if (++declined > 8) break;
        emitAlone(out, bs, be, nls[k0], q, true);
        bs = be + 1;
      }
      if (k0 === count) return;
    }
    const from = k0 === 0 ? 0 : ends[k0 - 1] + 1;
    const cut = ends[count - 1] + 1;
    let src: string | null;
    try {
      src = decode(from, cut);
    } catch (error) {
      if (!(error instanceof UndecodableError)) throw error;
      src = null;
    }
    let bs = from;
    if (src === null) {
      for (let k = k0; k < count; k++) {
        emitAlone(out, bs, ends[k], nls[k], hqs[k] === 1, true);
        bs = ends[k] + 1;
      }
      return;
    }
    const ascii = src.length === cut - from;
    const checkForeign = crlf || src.indexOf(foreignStr) !== -1;
    let cs = 0;
    for (let k = k0; k < count; k++) {
      const be = ends[k];
      const q = hqs[k] === 1;
      const ce = ascii ? be - from : findTerminator(src, cs, q, termStr, quoteStr);
      if (offer) {
        const end = crlf ? (be > bs && work[be - 1] === CR ? be - 1 : -1) : be;
        if (end > bs && fastRecord!(work, bs, end, line, base + bs, q)) {
          line += nls[k] + 1;
          bs = be + 1;
          cs = ce + 1;
          continue;
        }
      }
      emit(out, src, cs, ce, bs, be, nls[k], q, true, checkForeign);
      bs = be + 1;
      cs = ce + 1;
    }
  }

  function consume(n: number): void {
    work.copyWithin(0, n, len);
    if (W === 2) units.copyWithin(0, n, len);
    len -= n;
    base += n * W;
  }

  return {
    push(piece) {
      if (done || piece.length === 0) return [];
      append(piece);
      const view = work.subarray(0, len);
      const limit = Math.floor(maxRecordBytes / W) + (crlf ? 1 : 0);
      let count = 0;
      let recStart = 0;
      let nq = view.indexOf(Q, scanPos);
      if (nq === -1) nq = len;
      let nt = view.indexOf(T, scanPos);
      if (nt === -1) nt = len;
      for (;;) {
        if (inQuote) {
          while (nt < nq) {
            recNl++;
            nt = view.indexOf(T, nt + 1);
            if (nt === -1) nt = len;
          }
          if (nq === len) break;
          inQuote = false;
          nq = view.indexOf(Q, nq + 1);
          if (nq === -1) nq = len;
        } else if (nq < nt) {
          inQuote = true;
          recQuote = true;
          openNl = recNl;
          nq = view.indexOf(Q, nq + 1);
          if (nq === -1) nq = len;
        } else if (nt === len) break;
        else {
          if (nt - recStart > limit) {
            if (count > 0) {
              emitBatch([], count, false); // advances the line counter to the oversized record
              consume(recStart);
            }
            tooLarge();
          }
          pushEnd(count++, nt);
          recNl = 0;
          recQuote = false;
          recStart = nt + 1;
          if (base + recStart * W >= stopAt) {
            done = true;
            break;
          }
          nt = view.indexOf(T, recStart);
          if (nt === -1) nt = len;
        }
      }
      const out = sink();
      if (count > 0) {
        emitBatch(out, count);
        consume(recStart);
      }
      if (done) {
        work = new Uint8Array(0);
        len = 0;
        return result(out);
      }
      scanPos = len;
      if (len > limit) tooLarge();
      return result(out);
    },

    finish() {
      if (done) return [];
      done = true;
      if (inQuote) {
        throw new CsvError(
          "unterminated_quote",
          `unterminated quoted field starting at line ${line + openNl}`,
          base,
          line + openNl,
        );
      }
      if (narrower?.pending) {
        throw new CsvError(
          "truncated_utf16",
          `the file ends in the middle of a UTF-16 character (its length, ${
            base + len * W + 1
          } bytes, is odd)`,
          base + len * W,
          line,
        );
      }
      const out = sink();
      if (len > 0) emitAlone(out, 0, len, recNl, recQuote, false);
      base += len * W;
      len = 0;
      work = new Uint8Array(0);
      return result(out);
    },

    get done() {
      return done;
    },
    get nextOffset() {
      return base;
    },
    get nextLine() {
      return line;
    },
    get blankLines() {
      return blankLines;
    },
  };
}

/** In a decoded batch, the index of the terminator of the record starting at `from` (parity rule). */
function findTerminator(s: string, from: number, hasQuote: boolean, term: string, quote: string): number {
  let n = s.indexOf(term, from);
  if (!hasQuote) return n;
  let q = s.indexOf(quote, from);
  while (q !== -1 && q < n) {
    const close = s.indexOf(quote, q + 1);
    if (close > n) n = s.indexOf(term, close + 1);
    q = s.indexOf(quote, close + 1);
  }
  return n;
}

/**
 * Splits s[a, e) (a record with at least one quote, even quote parity) into fields with PostgreSQL CSV rules,
 * appending to `out`. Returns true if a `foreign` line-break character occurs outside quotes.
 */
function splitQuoted(
  s: string,
  a: number,
  e: number,
  D: number,
  Q: number,
  quote: string,
  foreign: number,
  out: (string | null)[],
): boolean {
  let bad = false;
  let i = a;
  for (;;) {
    let val = "";
    let sawQuote = false;
    let seg = i;
    while (i < e) {
      const c = s.charCodeAt(i);
      if (c === D) break;
      if (c === Q) {
        val += s.slice(seg, i);
        sawQuote = true;
        i++;
        for (;;) {
          const q = s.indexOf(quote, i);
          if (q === -1 || q >= e) {
            throw new Error("csv parser invariant broken: odd quote parity inside a record");
          }
          if (q + 1 < e && s.charCodeAt(q + 1) === Q) {
            val += s.slice(i, q + 1);
            i = q + 2;
          } else {
            val += s.slice(i, q);
            i = q + 1;
            break;
          }
        }
        seg = i;
        continue;
      }
      if (c === foreign) bad = true;
      i++;
    }
    val += s.slice(seg, i);
    out.push(sawQuote || val.length > 0 ? val : null);
    if (i >= e) return bad;
    i++;
  }
}
