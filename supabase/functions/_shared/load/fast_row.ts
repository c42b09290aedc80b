/**
 * The byte-level fast path of row conversion: compiles, per job, a function that turns a CSV record straight
 * from the file's bytes into its COPY TEXT line (and, while it can, its COPY BINARY tuple: copy_binary.ts),
 * without decoding it into strings, when every mapped field is in a plain canonical form; anything else is
 * left to the string path (parser + row_converter.ts), which also produces every rejection.
 *
 * Why: on the reference file (1M rows, 10 columns) the string path spends ~4.5 µs per row in the chunk
 * worker's main thread — decoding, splitting into field strings, per-type checks on strings, joining, encoding
 * — about 300 ms of CPU per 8 MiB chunk, and its garbage keeps V8's collector threads busy. Most values of a
 * real file are in the plain forms below; for them the COPY line is the record's own bytes with the
 * delimiters turned into tabs.
 *
 * Invariants:
 * - A record without quotes is taken here only if it is valid UTF-8 without control characters (below 0x20,
 *   0x7F) or backslashes, other than the delimiter, and has exactly the expected number of fields. So no field
 *   needs COPY escaping, every field is well-formed text, and no record issue (CR, LF, invalid UTF-8) applies.
 *   Only text-like columns (text, varchar, char, enum labels) take non-ASCII values here, and only in a UTF-8
 *   file: a file in a single-byte encoding (csv/encoding.ts) has its records with a byte above 0x7F decoded
 *   by the string path.
 * - A record with quotes (5 % of the reference file's: notes with a comma, `""` and a line break) is taken only
 *   if every quote opens a field and closes it (`"…"` followed by the delimiter or the record's end, `""`
 *   inside standing for one quote), the same screening holds outside quotes, and inside quotes only text
 *   takes a line break, tab, backslash or quote, which the COPY line escapes (`\n`, `\r`, `\t`, `\\`) or
 *   unescapes (`""` → `"`) as the string path does (escapeCopyText). A quoted field is never NULL; the empty
 *   quoted field `""` and any other quoting (a quote inside an unquoted field) go to the string path.
 * - A field is accepted only in a form its string converter (pg_types/convert.ts) accepts and returns
 *   unchanged, or — for booleans — in a form COPY reads as the same value the converter's output means
 *   (`true`/`false` for `t`/`f`); the byte checks are pg_types/fast_checks.ts. An empty field is NULL (`\N`),
 *   or goes to the string path when the column is NOT NULL (the string path words the rejection). Every other
 *   form returns false: the caller then takes the string path for the whole record, so the result is the
 *   string path's whenever this one declines.
 * - On false nothing has been appended to the piece; on true the row's bytes have been, and the caller ends the
 *   row (CopyPiece.endRow) with its line and offset. A piece with deferred text (CopyPiece.textDeferred) gets
 *   the row's binary tuple only; its text is built later from the same bytes by this same function
 *   (pipeline/piece_text.ts), so it is the text an eager piece would have had.
 */
import { textCodec } from "../csv/encoding.ts";
import { isValidUtf8 } from "../csv/utf8.ts";
import type { CsvFormat } from "../csv/format.ts";
import { checkedByServer } from "../pg_types/convert.ts";
import { anyText, checkFor, type FieldCheck, isTextCheck } from "../pg_types/fast_checks.ts";
import { encodeField, encoderKind, put16, put32 } from "./copy_binary.ts";
import type { CopyPiece } from "./copy_piece.ts";
import type { JobColumns } from "./row_converter.ts";

/**
 * Appends the COPY line of record bytes b[bs, be) to `piece`, or returns false (nothing appended). `quoted`:
 * the record holds a quote character (the parser knows; without it the record is split at every delimiter).
 */
export type FastRow = (b: Uint8Array, bs: number, be: number, piece: CopyPiece, quoted?: boolean) => boolean;

/**
 * Compiles the fast path for a job's column mapping, or returns null when it cannot apply (a column type it
 * never takes, or a delimiter outside ASCII). `binary: false`: rows are written as COPY TEXT only.
 */
export function compileFastRow(
  columns: JobColumns,
  format: CsvFormat,
  options: { binary?: boolean } = {},
): FastRow | null {
  const delimiter = format.delimiter.charCodeAt(0);
  const codec = textCodec(format.encoding);
  const singleByte = codec.singleByte;
  // UTF-16 records are not UTF-8 bytes: the string path decodes them all.
  if (codec.unitBytes !== 1) return null;
  if (format.delimiter.length !== 1 || delimiter >= 0x80 || delimiter === 0x5c) return null;
  const expected = columns.expected_fields;
  const m = columns.mapped.length;
  const fieldOf = Int32Array.from(columns.mapped.map((c) => c.field));
  const checks: FieldCheck[] = [];
  const nullable: boolean[] = [];
  const textLike: boolean[] = [];
  for (const c of columns.mapped) {
    // A column PostgreSQL validates itself goes on as its screened text (its value has no binary form here).
    const check = checkFor(c.column) ?? (checkedByServer(c.column) ? anyText : null);
    if (check === null) return null;
    checks.push(check);
    nullable.push(!c.column.notNull);
    textLike.push(isTextCheck(check));
  }
  const unmapped: number[] = [];
  for (let f = 0; f < expected; f++) if (!fieldOf.includes(f)) unmapped.push(f);
  // Every field mapped, in file order: the COPY line is the record itself with tabs for delimiters.
  const identity = m === expected && columns.mapped.every((c, i) => c.field === i);
  // Byte classes for screening text-like and unmapped fields: 0 plain, 2 above 0x7F (UTF-8), 3 refused
  // (control characters, backslash, DEL, and the delimiter, which can only be inside the last field: one
  // field too many). Typed checks accept only their own ASCII characters, so they need no screening.
  const CLASS = new Uint8Array(256);
  for (let c = 0; c < 0x20; c++) CLASS[c] = 3;
  CLASS[0x5c] = 3;
  CLASS[0x7f] = 3;
  // Bytes above 0x7F are UTF-8 only in a UTF-8 file: in a single-byte encoding (csv/encoding.ts) a record with
  // one goes to the string path, which decodes it; the COPY line here is always the file's own bytes.
  const above = singleByte ? 3 : 2;
  for (let c = 0x80; c < 0x100; c++) CLASS[c] = above;
  CLASS[delimiter] = 3;
  const starts = new Int32Array(expected + 1);
  const ends = new Int32Array(expected + 1);
  /**
   * Where the record's first byte above 0x7F is (or a large number): only text-like and unmapped fields may
   * hold one, and each is screened, so validating the record's UTF-8 from there covers all of them.
   */
  let utf8From = 0x7fffffff;
  /** Screens b[s, e); false when a byte is refused. Lowers `utf8From` to its first byte above 0x7F. */
  const screen = (b: Uint8Array, s: number, e: number): boolean => {
    for (let i = s; i < e; i++) {
      const cls = CLASS[b[i]];
      if (cls === 0) continue;
      if (cls === 2) {
        if (i < utf8From) utf8From = i;
      } else return false;
    }
    return true;
  };
  const last = expected - 1;
  // A screened last field refuses a delimiter by itself; otherwise look for one (one field too many: the
  // string path splits there and rejects the record).
  const lastK = columns.mapped.findIndex((c) => c.field === last);
  const lastScreened = lastK < 0 || textLike[lastK];

  // COPY BINARY: every mapped column needs an encoder; a value without a binary form turns the piece to text.
  const encoders = Int32Array.from(columns.mapped.map((c) => encoderKind(c.column)));
  const binaryCapable = options.binary !== false && encoders.every((x) => x >= 0);
  /** Appends the tuple of record b[bs, be) to piece.bin; false when a value has no binary form. */
  const encodeRow = (
    b: Uint8Array,
    bs: number,
    be: number,
    piece: CopyPiece,
    quotedRecord: boolean,
  ): boolean => {
    // Room for the field count, then per field a length and at most 16 bytes beyond its text (uuid: 16 for
    // 36; numeric: 8 + its digits / 2), plus the record's bytes.
    let o = piece.binReserve(2 + 20 * m + (be - bs));
    const bin = piece.bin;
    o = put16(bin, o, m);
    for (let k = 0; k < m; k++) {
      const field = fieldOf[k];
      const fs = starts[field];
      const fe = ends[field];
      if (quotedRecord && wasQuoted[field] === 1 && rewrite[field] === 1) o = binUnquoted(b, fs, fe, bin, o);
      else if (fs === fe && !(quotedRecord && wasQuoted[field] === 1)) o = put32(bin, o, -1);
      else o = encodeField(encoders[k], b, fs, fe, bin, o);
      if (o < 0) return false;
    }
    piece.binLength = o;
    return true;
  };
  /** Quoted text content b[s, e) as one binary field: `""` is one quote, everything else as is. */
  const binUnquoted = (b: Uint8Array, s: number, e: number, bin: Uint8Array, o: number): number => {
    const at = o + 4;
    let w = at;
    for (let i = s; i < e; i++) {
      const c = b[i];
      bin[w++] = c;
      if (c === quote) i++; // the second quote of the pair
    }
    put32(bin, o, w - at);
    return w;
  };

  // Quoted records: the quote must be printable ASCII other than backslash (always so for sniffed files).
  const quote = format.quote.length === 1 ? format.quote.charCodeAt(0) : -1;
  const quotedPath = quote > 0x20 && quote < 0x7f && quote !== 0x5c;
  // Byte classes inside quotes: 0 plain, 2 above 0x7F, 1 kept by text but rewritten in the COPY line (line
  // breaks, tab, backslash, the quote), 3 refused (other control characters, DEL).
  const QCLASS = new Uint8Array(256);
  for (let c = 0; c < 0x20; c++) QCLASS[c] = 3;
  QCLASS[0x7f] = 3;
  for (let c = 0x80; c < 0x100; c++) QCLASS[c] = above;
  for (const c of [0x0a, 0x0d, 0x09, 0x5c]) QCLASS[c] = 1;
  if (quotedPath) QCLASS[quote] = 1;
  /** Per field of a quoted record: 1 when it was quoted (its bounds exclude the quotes). */
  const wasQuoted = new Uint8Array(expected);
  /** Per field of a quoted record: 1 when its COPY text differs from its bytes (see QCLASS 1). */
  const rewrite = new Uint8Array(expected);
  /** Screens quoted content b[s, e); false when a byte is refused. Sets `utf8From` and `rewritten`. */
  let rewritten = false;
  const screenQuoted = (b: Uint8Array, s: number, e: number): boolean => {
    rewritten = false;
    for (let i = s; i < e; i++) {
      const cls = QCLASS[b[i]];
      if (cls === 0) continue;
      if (cls === 2) {
        if (i < utf8From) utf8From = i;
      } else if (cls === 1) rewritten = true;
      else return false;
    }
    return true;
  };
  /** Appends quoted content b[s, e) as COPY text: `""` becomes `"`, line breaks, tab and backslash escaped. */
  const putRewritten = (b: Uint8Array, s: number, e: number, piece: CopyPiece): void => {
    let run = s;
    for (let i = s; i < e; i++) {
      const c = b[i];
      if (QCLASS[c] !== 1) continue;
      if (i > run) piece.putBytes(b, run, i);
      if (c === quote) {
        piece.putByte(c);
        i++; // the second quote of the pair
      } else {
        piece.putByte(92);
        piece.putByte(c === 0x0a ? 110 : c === 0x0d ? 114 : c === 0x09 ? 116 : 92);
      }
      run = i + 1;
    }
    if (e > run) piece.putBytes(b, run, e);
  };

  const quotedRow = (b: Uint8Array, bs: number, be: number, piece: CopyPiece): boolean => {
    // Split: a field starting with a quote runs to its closing quote, which must end the field.
    let s = bs;
    for (let f = 0; f < expected; f++) {
      if (s < be && b[s] === quote) {
        let i = s + 1;
        for (;;) {
          while (i < be && b[i] !== quote) i++;
          if (i + 1 < be && b[i + 1] === quote) i += 2;
          else break;
        }
        if (i >= be) return false; // no closing quote in the record (the parser's parity rules out; be safe)
        starts[f] = s + 1;
        ends[f] = i;
        wasQuoted[f] = 1;
        s = i + 1;
      } else {
        let e = s;
        while (e < be && b[e] !== delimiter && b[e] !== quote) e++;
        if (e < be && b[e] === quote) return false; // a quote inside an unquoted field
        starts[f] = s;
        ends[f] = e;
        wasQuoted[f] = 0;
        s = e;
      }
      if (f < last) {
        if (s >= be || b[s] !== delimiter) return false; // fewer fields, or bytes after a closing quote
        s++;
      } else if (s !== be) return false; // more fields, or bytes after the closing quote
    }
    utf8From = 0x7fffffff;
    for (let k = 0; k < m; k++) {
      const field = fieldOf[k];
      const fs = starts[field];
      const fe = ends[field];
      if (wasQuoted[field] === 1) {
        // Typed values and enum labels never need rewriting: a quoted one that does is the string path's.
        if (fs === fe || !screenQuoted(b, fs, fe) || (rewritten && !textLike[k]) || !checks[k](b, fs, fe)) {
          return false;
        }
        rewrite[field] = rewritten ? 1 : 0;
      } else if (fs === fe) {
        if (!nullable[k]) return false;
      } else if (textLike[k] ? !screen(b, fs, fe) || !checks[k](b, fs, fe) : !checks[k](b, fs, fe)) {
        return false;
      }
    }
    for (let u = 0; u < unmapped.length; u++) {
      const field = unmapped[u];
      const ok = wasQuoted[field] === 1
        ? screenQuoted(b, starts[field], ends[field])
        : screen(b, starts[field], ends[field]);
      if (!ok) return false;
    }
    if (utf8From < be && !isValidUtf8(b, utf8From, be)) return false;
    if (piece.binary && !(binaryCapable && encodeRow(b, bs, be, piece, true))) piece.binary = false;
    if (piece.textDeferred) {
      piece.skipText(be - bs + 1);
      return true;
    }
    for (let k = 0; k < m; k++) {
      if (k > 0) piece.putByte(9);
      const field = fieldOf[k];
      const fs = starts[field];
      const fe = ends[field];
      if (wasQuoted[field] === 0) {
        if (fs === fe) {
          piece.putByte(92);
          piece.putByte(78);
        } else piece.putBytes(b, fs, fe);
      } else if (rewrite[field] === 1) putRewritten(b, fs, fe, piece);
      else piece.putBytes(b, fs, fe);
    }
    piece.putByte(10);
    return true;
  };

  return (b, bs, be, piece, quoted) => {
    if (quoted) return quotedPath && quotedRow(b, bs, be, piece);
    // Split at the delimiters, exactly `expected` fields. (A plain loop: fields are short, and
    // Uint8Array.indexOf per field cost about twice as much, measured.)
    let s = bs;
    for (let f = 0; f < last; f++) {
      let e = s;
      while (e < be && b[e] !== delimiter) e++;
      if (e === be) return false; // fewer fields than expected: the string path rejects it
      starts[f] = s;
      ends[f] = e;
      s = e + 1;
    }
    starts[last] = s;
    ends[last] = be;
    if (!lastScreened) {
      for (let i = s; i < be; i++) if (b[i] === delimiter) return false;
    }
    utf8From = 0x7fffffff;
    let hasNull = false;
    for (let k = 0; k < m; k++) {
      const field = fieldOf[k];
      const fs = starts[field];
      const fe = ends[field];
      if (fs === fe) {
        if (!nullable[k]) return false;
        hasNull = true;
      } else if (textLike[k] ? !screen(b, fs, fe) || !checks[k](b, fs, fe) : !checks[k](b, fs, fe)) {
        return false;
      }
    }
    for (let u = 0; u < unmapped.length; u++) {
      const field = unmapped[u];
      if (!screen(b, starts[field], ends[field])) return false;
    }
    if (utf8From < be && !isValidUtf8(b, utf8From, be)) return false;
    if (piece.binary && !(binaryCapable && encodeRow(b, bs, be, piece, false))) piece.binary = false;
    if (piece.textDeferred) {
      piece.skipText(be - bs + 1);
      return true;
    }
    if (identity && !hasNull) {
      piece.putRecord(b, bs, be, starts, last);
      return true;
    }
    for (let k = 0; k < m; k++) {
      if (k > 0) piece.putByte(9);
      const field = fieldOf[k];
      const fs = starts[field];
      const fe = ends[field];
      if (fs === fe) {
        piece.putByte(92);
        piece.putByte(78);
      } else piece.putBytes(b, fs, fe);
    }
    piece.putByte(10);
    return true;
  };
}
