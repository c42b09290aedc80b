/**
 * The byte-level fast path of row conversion: turns a CSV record straight from the file's bytes into its COPY
 * TEXT line, without decoding it into strings, when every mapped field is in a plain canonical form; anything
 * else is left to the string path (parser + row_converter.ts), which also produces every rejection.
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
 *   Only text-like columns (text, varchar, char, enum labels) take non-ASCII values here.
 * - A record with quotes (5 % of the reference file's: notes with a comma, `""` and a line break) is taken only
 *   if every quote opens a field and closes it (`"…"` followed by the delimiter or the record's end, `""`
 *   inside standing for one quote), the same screening holds outside quotes, and inside quotes only text
 *   takes a line break, tab, backslash or quote, which the COPY line escapes (`\n`, `\r`, `\t`, `\\`) or
 *   unescapes (`""` → `"`) as the string path does (escapeCopyText). A quoted field is never NULL; the empty
 *   quoted field `""` and any other quoting (a quote inside an unquoted field) go to the string path.
 * - A field is accepted only in a form its string converter (pg_types/convert.ts) accepts and returns
 *   unchanged, or — for booleans — in a form COPY reads as the same value the converter's output means
 *   (`true`/`false` for `t`/`f`). An empty field is NULL (`\N`), or goes to the string path when the column
 *   is NOT NULL (the string path words the rejection). Every other form returns false: the caller then takes
 *   the string path for the whole record, so the result is the string path's whenever this one declines.
 * - On false nothing has been appended to the piece; on true the row's bytes have been, and the caller ends the
 *   row (CopyPiece.endRow) with its line and offset.
 */
import { isValidUtf8 } from "../csv/utf8.ts";
import type { CsvFormat } from "../csv/format.ts";
import type { CopyPiece } from "./loader.ts";
import type { TargetColumn } from "../pg_types/columns.ts";
import { escapeCopyText } from "../pg_types/copy_text.ts";
import type { JobColumns } from "./row_converter.ts";

/**
 * Checks field bytes b[s, e) (non-empty, valid UTF-8 without control characters or backslash) in place. Only
 * the text-like checks accept bytes above 0x7F; every other check takes ASCII only.
 */
type FieldCheck = (b: Uint8Array, s: number, e: number) => boolean;

/**
 * Appends the COPY line of record bytes b[bs, be) to `piece`, or returns false (nothing appended). `quoted`:
 * the record holds a quote character (the parser knows; without it the record is split at every delimiter).
 */
export type FastRow = (b: Uint8Array, bs: number, be: number, piece: CopyPiece, quoted?: boolean) => boolean;

const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function d2(b: Uint8Array, i: number): number {
  const x = b[i] - 48;
  const y = b[i + 1] - 48;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : -1;
}

/** convert.ts fastYmd on bytes: `YYYY-MM-DD` at s, year 0001..9999, a real calendar day. */
function ymd(b: Uint8Array, s: number): boolean {
  if (b[s + 4] !== 45 || b[s + 7] !== 45) return false;
  const y1 = d2(b, s);
  const y2 = d2(b, s + 2);
  const m = d2(b, s + 5);
  const d = d2(b, s + 8);
  if (y1 < 0 || y2 < 0 || m < 1 || m > 12 || d < 1) return false;
  const y = y1 * 100 + y2;
  if (y === 0) return false;
  const dim = m === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : DAYS[m];
  return d <= dim;
}

/** convert.ts fastHms on bytes: `HH:MM[:SS[.f{1,20}]]` in b[i, end). */
function hms(b: Uint8Array, i: number, end: number): boolean {
  const len = end - i;
  if (len !== 5 && len !== 8 && !(len >= 10 && len <= 29)) return false;
  const h = d2(b, i);
  if (h < 0 || h > 23 || b[i + 2] !== 58) return false;
  const mi = d2(b, i + 3);
  if (mi < 0 || mi > 59) return false;
  if (len === 5) return true;
  if (b[i + 5] !== 58) return false;
  const sec = d2(b, i + 6);
  if (sec < 0 || sec > 59) return false;
  if (len === 8) return true;
  if (b[i + 8] !== 46) return false;
  for (let k = i + 9; k < end; k++) {
    const c = b[k];
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** convert.ts fastZone on bytes: `Z`, `+HH`, `+HHMM`, `+HH:MM` (hours <= 15) in b[i, e). */
function zone(b: Uint8Array, i: number, e: number): boolean {
  const len = e - i;
  const c = b[i];
  if (len === 1) return c === 90 || c === 122;
  if (c !== 43 && c !== 45) return false;
  const h = d2(b, i + 1);
  if (h < 0 || h > 15) return false;
  if (len === 3) return true;
  if (len === 5) {
    const m = d2(b, i + 3);
    return m >= 0 && m <= 59;
  }
  if (len === 6 && b[i + 3] === 58) {
    const m = d2(b, i + 4);
    return m >= 0 && m <= 59;
  }
  return false;
}

/** convert.ts fastTimestamp on bytes: `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]][zone]`. */
function timestamp(b: Uint8Array, s: number, e: number): boolean {
  if (e - s < 16 || !ymd(b, s)) return false;
  const sep = b[s + 10];
  if (sep !== 32 && sep !== 84 && sep !== 116) return false;
  const end = timeEnd(b, s + 11, e);
  if (!hms(b, s + 11, end)) return false;
  return end === e || zone(b, end, e);
}

/** `-?digits` with at most `maxDigits` digits and magnitude <= maxPos (maxPos + 1 when negative). */
function integer(maxDigits: number, maxPos: number): FieldCheck {
  return (b, s, e) => {
    let i = s;
    if (b[i] === 45) i++;
    const n = e - i;
    if (n < 1 || n > maxDigits) return false;
    let v = 0;
    for (; i < e; i++) {
      const c = b[i] - 48;
      if (c < 0 || c > 9) return false;
      v = v * 10 + c;
    }
    return v <= maxPos || (b[s] === 45 && v === maxPos + 1);
  };
}

/**
 * `-?digits[.digits]` that fits numeric(precision, scale) without rounding: at most precision - scale
 * significant integer digits and at most scale fraction digits (precision null: at most 1000 of each, far
 * inside the format's limits).
 */
function numeric(precision: number | null, scale: number): FieldCheck | null {
  if (precision !== null && (scale < 0 || scale > precision)) return null;
  const maxInt = precision === null ? 1000 : precision - scale;
  const maxFrac = precision === null ? 1000 : scale;
  return (b, s, e) => {
    let i = s;
    if (b[i] === 45) i++;
    const digits = i;
    while (i < e && b[i] === 48) i++; // leading zeros are not significant
    const sig = i;
    while (i < e && b[i] >= 48 && b[i] <= 57) i++;
    if (i === digits || i - sig > maxInt) return false;
    if (i === e) return true;
    if (b[i] !== 46) return false;
    const frac = ++i;
    while (i < e && b[i] >= 48 && b[i] <= 57) i++;
    return i === e && i > frac && i - frac <= maxFrac;
  };
}

/** 1 for the bytes of hexadecimal digits. */
const HEX = new Uint8Array(256);
for (const c of "0123456789abcdefABCDEF") HEX[c.charCodeAt(0)] = 1;

/** The canonical 8-4-4-4-12 form. */
const uuid: FieldCheck = (b, s, e) => {
  if (e - s !== 36 || b[s + 8] !== 45 || b[s + 13] !== 45 || b[s + 18] !== 45 || b[s + 23] !== 45) {
    return false;
  }
  let ok = 1;
  for (let k = s; k < s + 8; k++) ok &= HEX[b[k]];
  for (let k = s + 9; k < s + 13; k++) ok &= HEX[b[k]];
  for (let k = s + 14; k < s + 18; k++) ok &= HEX[b[k]];
  for (let k = s + 19; k < s + 23; k++) ok &= HEX[b[k]];
  for (let k = s + 24; k < e; k++) ok &= HEX[b[k]];
  return ok === 1;
};

/** `t`, `f`, `true`, `false`: COPY reads them as the converter's `t` / `f`. */
const boolean: FieldCheck = (b, s, e) => {
  const n = e - s;
  const c = b[s];
  if (n === 1) return c === 116 || c === 102;
  if (n === 4) return c === 116 && b[s + 1] === 114 && b[s + 2] === 117 && b[s + 3] === 101;
  return n === 5 && c === 102 && b[s + 1] === 97 && b[s + 2] === 108 && b[s + 3] === 115 && b[s + 4] === 101;
};

function enumeration(labels: readonly string[]): FieldCheck | null {
  // Labels that need COPY escaping (or hold control characters) never match a screened field anyway.
  const plain = labels.filter((l) =>
    escapeCopyText(l) === l && ![...l].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)
  );
  if (plain.length === 0 || labels.length > 64) return null;
  const encoded = plain.map((l) => new TextEncoder().encode(l));
  return (b, s, e) => {
    const n = e - s;
    outer: for (const label of encoded) {
      if (label.length !== n) continue;
      for (let k = 0; k < n; k++) if (b[s + k] !== label[k]) continue outer;
      return true;
    }
    return false;
  };
}

const anyText: FieldCheck = () => true;

function maxLength(n: number): FieldCheck {
  const check: FieldCheck = (_b, s, e) => e - s <= n;
  TEXT_CHECKS.add(check);
  return check;
}

/** Checks of text-like columns (besides anyText): their fields are screened byte by byte. */
const TEXT_CHECKS = new WeakSet<FieldCheck>();

/**
 * The check for one column, or null when this path takes no value of its type. The profile's date style
 * does not matter: `YYYY-MM-DD` dates pass unchanged under every style.
 */
function checkFor(col: TargetColumn): FieldCheck | null {
  if (col.generated) return null;
  if (col.baseTypeKind === "e" && col.enumLabels) return enumeration(col.enumLabels);
  if (col.baseTypeSchema !== "pg_catalog" || col.baseTypeCategory === "A") return null;
  switch (col.baseType) {
    case "int2":
      return integer(5, 32767);
    case "int4":
      return integer(10, 2147483647);
    case "int8":
      return integer(15, Number.MAX_SAFE_INTEGER); // 15 digits always fit; longer ones take the string path
    case "numeric":
      return numeric(col.numericPrecision, col.numericScale ?? 0);
    case "bool":
      return boolean;
    case "date":
      return (b, s, e) => e - s === 10 && ymd(b, s);
    case "timestamp":
    case "timestamptz":
      return (b, s, e) => timestamp(b, s, e) || (e - s === 10 && ymd(b, s));
    case "time":
      return (b, s, e) => hms(b, s, e);
    case "uuid":
      return uuid;
    case "text":
      return anyText;
    case "varchar":
    case "bpchar":
      return col.charLength === null ? anyText : maxLength(col.charLength);
    default:
      return null;
  }
}

// ---- COPY BINARY forms ------------------------------------------------------------------------------------
// Each encoder appends one field (length, then the type's binary "send" form) of a value its check accepted,
// or returns false when this value has no binary form here: the piece then goes as text (CopyPiece.binary).
// The binary form must be the value PostgreSQL's input function would make of the text: typmods are applied
// by the receive functions as by the input ones (numeric rounding, varchar/char length, timestamp precision).

/**
 * Writes one field (length, then value) of a value its check accepted into `bin` at `o`, which has room for
 * 20 bytes plus the value's text length; returns the offset after it, or -1: no binary form (the piece then
 * goes as text). One reservation per row and plain byte stores: per-call reservations cost ~1 µs per row.
 */
type FieldEncoder = (b: Uint8Array, s: number, e: number, bin: Uint8Array, o: number) => number;

/** The value of `-?digits` (at most 15 digits: exact as a double). */
function intValue(b: Uint8Array, s: number, e: number): number {
  const neg = b[s] === 45;
  let v = 0;
  for (let i = neg ? s + 1 : s; i < e; i++) v = v * 10 + (b[i] - 48);
  return neg ? -v : v;
}

function put32(bin: Uint8Array, o: number, v: number): number {
  bin[o] = v >>> 24;
  bin[o + 1] = (v >>> 16) & 0xff;
  bin[o + 2] = (v >>> 8) & 0xff;
  bin[o + 3] = v & 0xff;
  return o + 4;
}

function put16(bin: Uint8Array, o: number, v: number): number {
  bin[o] = (v >>> 8) & 0xff;
  bin[o + 1] = v & 0xff;
  return o + 2;
}

/** A 64-bit big-endian integer given as an exact double (|v| < 2^53). */
function put64(bin: Uint8Array, o: number, v: number): number {
  const hi = Math.floor(v / 4294967296);
  return put32(bin, put32(bin, o, hi | 0), v - hi * 4294967296);
}

const int2Bin: FieldEncoder = (b, s, e, bin, o) => put16(bin, put32(bin, o, 2), intValue(b, s, e));
const int4Bin: FieldEncoder = (b, s, e, bin, o) => put32(bin, put32(bin, o, 4), intValue(b, s, e));
const int8Bin: FieldEncoder = (b, s, e, bin, o) => put64(bin, put32(bin, o, 8), intValue(b, s, e));
const boolBin: FieldEncoder = (b, s, _e, bin, o) => {
  o = put32(bin, o, 1);
  bin[o] = b[s] === 116 ? 1 : 0;
  return o + 1;
};
const rawBin: FieldEncoder = (b, s, e, bin, o) => {
  o = put32(bin, o, e - s);
  if (e - s > 24) bin.set(b.subarray(s, e), o);
  else for (let i = s; i < e; i++) bin[o + i - s] = b[i];
  return o + e - s;
};

const HEXVAL = new Uint8Array(256);
for (let c = 0; c < 10; c++) HEXVAL[48 + c] = c;
for (let c = 0; c < 6; c++) HEXVAL[97 + c] = HEXVAL[65 + c] = 10 + c;
const uuidBin: FieldEncoder = (b, s, _e, bin, o) => {
  o = put32(bin, o, 16);
  const end = o + 16;
  for (let i = s; o < end; i++) {
    if (b[i] === 45) continue;
    bin[o++] = (HEXVAL[b[i]] << 4) | HEXVAL[b[i + 1]];
    i++;
  }
  return o;
};

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  if (m <= 2) y--;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}
/** PostgreSQL's epoch for dates and timestamps: 2000-01-01, in days after 1970-01-01. */
const PG_EPOCH_DAYS = 10957;

/** Days since 2000-01-01 of `YYYY-MM-DD` at s. */
function pgDays(b: Uint8Array, s: number): number {
  return daysFromCivil(d2(b, s) * 100 + d2(b, s + 2), d2(b, s + 5), d2(b, s + 8)) - PG_EPOCH_DAYS;
}

const dateBin: FieldEncoder = (b, s, _e, bin, o) => put32(bin, put32(bin, o, 4), pgDays(b, s));

/** Where the time of day at `i` ends (digits, `:`, `.`): the zone, if any, starts there. */
function timeEnd(b: Uint8Array, i: number, e: number): number {
  while (i < e) {
    const c = b[i];
    if ((c >= 48 && c <= 57) || c === 58 || c === 46) i++;
    else break;
  }
  return i;
}

/**
 * Microseconds of `HH:MM[:SS[.f]]` in b[i, end) (checked by hms), or -1 when a fraction has more than 6 digits
 * that are not all zeros (PostgreSQL would round it: left to the text form).
 */
function dayMicros(b: Uint8Array, i: number, end: number): number {
  let us = (d2(b, i) * 3600 + d2(b, i + 3) * 60) * 1e6;
  if (end - i === 5) return us;
  us += d2(b, i + 6) * 1e6;
  let scale = 100000;
  for (let k = i + 9; k < end; k++) {
    const digit = b[k] - 48;
    if (scale >= 1) us += digit * scale;
    else if (digit !== 0) return -1;
    scale /= 10;
  }
  return us;
}

/** Seconds east of UTC of a zone the `zone` check accepted in b[i, e). */
function zoneSeconds(b: Uint8Array, i: number, e: number): number {
  if (e - i === 1) return 0; // Z
  const sign = b[i] === 45 ? -1 : 1;
  const h = d2(b, i + 1);
  const m = e - i === 3 ? 0 : d2(b, e - 2);
  return sign * (h * 3600 + m * 60);
}

/**
 * A timestamp's binary form (microseconds since 2000-01-01, 8 bytes), `withZone`: timestamptz (the value must
 * carry its zone: without one, PostgreSQL reads it in the session's time zone) or timestamp (the value must
 * carry none: PostgreSQL ignores it). Years 1800–2199 only, so microseconds stay exact as doubles.
 */
function timestampBin(withZone: boolean): FieldEncoder {
  return (b, s, e, bin, o) => {
    if (e - s === 10) return -1; // a date alone: midnight in the session's zone (timestamptz)
    const year = d2(b, s) * 100 + d2(b, s + 2);
    if (year < 1800 || year > 2199) return -1;
    const end = timeEnd(b, s + 11, e);
    if ((end < e) !== withZone) return -1;
    const micros = dayMicros(b, s + 11, end);
    if (micros < 0) return -1;
    let v = pgDays(b, s) * 86400e6 + micros;
    if (withZone) v -= zoneSeconds(b, end, e) * 1e6;
    return put64(bin, put32(bin, o, 8), v);
  };
}

const timeBin: FieldEncoder = (b, s, e, bin, o) => {
  const micros = dayMicros(b, s, e);
  return micros < 0 ? -1 : put64(bin, put32(bin, o, 8), micros);
};

/** Base-10000 digits of the numeric being encoded. */
const NUMERIC_DIGITS = new Int32Array(1024);

/**
 * numeric's binary form: ndigits, weight, sign, dscale (int16 each), then base-10000 digits, for
 * `-?digits[.digits]` (checked). dscale is the number of fraction digits written, as numeric_in sets it;
 * numeric_recv applies the column's typmod as numeric_in does.
 */
const numericBin: FieldEncoder = (b, s, e, bin, o) => {
  const neg = b[s] === 45;
  let i = neg ? s + 1 : s;
  while (i < e && b[i] === 48) i++; // leading zeros
  const intStart = i;
  while (i < e && b[i] !== 46) i++;
  const intEnd = i;
  const fracStart = i < e ? i + 1 : e;
  const dscale = e - fracStart;
  const intDigits = intEnd - intStart;
  const intGroups = Math.ceil(intDigits / 4);
  const fracGroups = Math.ceil(dscale / 4);
  if (intGroups + fracGroups > NUMERIC_DIGITS.length) return -1;
  // Integer digits grouped from the decimal point leftwards, fraction digits rightwards (zero-padded).
  let n = 0;
  let k = intStart - (intGroups * 4 - intDigits); // may start before intStart: those are leading zeros
  for (let g = 0; g < intGroups; g++) {
    let v = 0;
    for (let j = 0; j < 4; j++, k++) v = v * 10 + (k >= intStart ? b[k] - 48 : 0);
    NUMERIC_DIGITS[n++] = v;
  }
  k = fracStart;
  for (let g = 0; g < fracGroups; g++) {
    let v = 0;
    for (let j = 0; j < 4; j++, k++) v = v * 10 + (k < e ? b[k] - 48 : 0);
    NUMERIC_DIGITS[n++] = v;
  }
  let first = 0;
  let weight = intGroups - 1;
  while (first < n && NUMERIC_DIGITS[first] === 0) {
    first++;
    weight--;
  }
  let last = n;
  while (last > first && NUMERIC_DIGITS[last - 1] === 0) last--;
  const ndigits = last - first;
  if (ndigits === 0) weight = 0;
  // 8 + 2 * ndigits bytes: ndigits <= (e - s + 6) / 4, within the row's reservation (20 + text length).
  o = put32(bin, o, 8 + 2 * ndigits);
  o = put16(bin, o, ndigits);
  o = put16(bin, o, weight & 0xffff);
  o = put16(bin, o, neg && ndigits > 0 ? 0x4000 : 0);
  o = put16(bin, o, dscale);
  for (let d = first; d < last; d++) o = put16(bin, o, NUMERIC_DIGITS[d]);
  return o;
};

/** The binary encoder of a column the fast path takes (same cases as checkFor), or null. */
function encoderFor(col: TargetColumn): FieldEncoder | null {
  if (col.baseTypeKind === "e" && col.enumLabels) return rawBin; // enum_recv takes the label's text
  switch (col.baseType) {
    case "int2":
      return int2Bin;
    case "int4":
      return int4Bin;
    case "int8":
      return int8Bin;
    case "numeric":
      return numericBin;
    case "bool":
      return boolBin;
    case "date":
      return dateBin;
    case "timestamp":
      return timestampBin(false);
    case "timestamptz":
      return timestampBin(true);
    case "time":
      return timeBin;
    case "uuid":
      return uuidBin;
    case "text":
    case "varchar":
    case "bpchar":
      return rawBin; // the receive functions apply varchar(n) / char(n) as the input functions do
    default:
      return null;
  }
}

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
  if (format.delimiter.length !== 1 || delimiter >= 0x80 || delimiter === 0x5c) return null;
  const expected = columns.expected_fields;
  const m = columns.mapped.length;
  const fieldOf = Int32Array.from(columns.mapped.map((c) => c.field));
  const checks: FieldCheck[] = [];
  const nullable: boolean[] = [];
  const textLike: boolean[] = [];
  for (const c of columns.mapped) {
    const check = checkFor(c.column);
    if (check === null) return null;
    checks.push(check);
    nullable.push(!c.column.notNull);
    textLike.push(check === anyText || TEXT_CHECKS.has(check));
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
  for (let c = 0x80; c < 0x100; c++) CLASS[c] = 2;
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
  const encoders = columns.mapped.map((c) => encoderFor(c.column));
  const binaryCapable = options.binary !== false && encoders.every((x) => x !== null);
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
      else o = encoders[k]!(b, fs, fe, bin, o);
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
  for (let c = 0x80; c < 0x100; c++) QCLASS[c] = 2;
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
    if (piece.binary && !(binaryCapable && encodeRow(b, bs, be, piece, true))) piece.binary = false;
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
