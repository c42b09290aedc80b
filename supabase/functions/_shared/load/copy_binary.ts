/**
 * COPY BINARY encoders of the fast row path (load/fast_row.ts): each appends one field - its length, then the
 * type's binary "send" form - of a value whose bytes its check (pg_types/fast_checks.ts) accepted, straight
 * from the file's bytes.
 *
 * Invariants:
 * - The binary form is the value PostgreSQL's input function would make of the text: typmods are applied by
 *   the receive functions as by the input ones (numeric rounding, varchar/char length, timestamp precision).
 * - An encoder returns -1 for a value that has no binary form here (a timestamp outside 1800-2199, a fraction
 *   PostgreSQL would round, a date alone for timestamptz): the piece then goes as text (CopyPiece.binary).
 * - An encoder writes at most 20 bytes plus the value's text length, the room the caller reserves per field.
 * - Integers are exact as doubles: checks take at most 15 digits, timestamps stay within |v| < 2^53 µs.
 */
import type { TargetColumn } from "../pg_types/columns.ts";
import { d2, timeEnd } from "../pg_types/fast_checks.ts";
import { copyBytes } from "./copy_bytes.ts";

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

export function put32(bin: Uint8Array, o: number, v: number): number {
  bin[o] = v >>> 24;
  bin[o + 1] = (v >>> 16) & 0xff;
  bin[o + 2] = (v >>> 8) & 0xff;
  bin[o + 3] = v & 0xff;
  return o + 4;
}

export function put16(bin: Uint8Array, o: number, v: number): number {
  bin[o] = (v >>> 8) & 0xff;
  bin[o + 1] = v & 0xff;
  return o + 2;
}

/** A 64-bit big-endian integer given as an exact double (|v| < 2^53). */
function put64(bin: Uint8Array, o: number, v: number): number {
  const hi = Math.floor(v * 2.3283064365386963e-10); // v / 2^32, exactly (a power of two)
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
  return copyBytes(b, s, e, bin, put32(bin, o, e - s));
};

const HEXVAL = new Uint8Array(256);
for (let c = 0; c < 10; c++) HEXVAL[48 + c] = c;
for (let c = 0; c < 6; c++) HEXVAL[97 + c] = HEXVAL[65 + c] = 10 + c;
/** Where the 16 digit pairs of the canonical 8-4-4-4-12 form start (the only form the uuid check takes). */
const UUID_PAIRS = Uint8Array.from([0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]);
const uuidBin: FieldEncoder = (b, s, _e, bin, o) => {
  o = put32(bin, o, 16);
  for (let k = 0; k < 16; k++) {
    const i = s + UUID_PAIRS[k];
    bin[o + k] = (HEXVAL[b[i]] << 4) | HEXVAL[b[i + 1]];
  }
  return o + 16;
};

/**
 * Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil), for years 1..9999 (the
 * checks' range): every quotient is of non-negative integers, so `| 0` is the floor.
 */
function daysFromCivil(y: number, m: number, d: number): number {
  if (m <= 2) y--;
  const era = (y / 400) | 0;
  const yoe = y - era * 400;
  const doy = (((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) | 0) + d - 1;
  return era * 146097 + yoe * 365 + (yoe >> 2) - ((yoe / 100) | 0) + doy - 719468;
}
/** PostgreSQL's epoch for dates and timestamps: 2000-01-01, in days after 1970-01-01. */
const PG_EPOCH_DAYS = 10957;

/** Days since 2000-01-01 of `YYYY-MM-DD` at s. */
function pgDays(b: Uint8Array, s: number): number {
  return daysFromCivil(d2(b, s) * 100 + d2(b, s + 2), d2(b, s + 5), d2(b, s + 8)) - PG_EPOCH_DAYS;
}

const dateBin: FieldEncoder = (b, s, _e, bin, o) => put32(bin, put32(bin, o, 4), pgDays(b, s));

/**
 * Microseconds of `HH:MM[:SS[.f]]` in b[i, end) (checked by fast_checks.ts hms), or -1 when a fraction has more
 * than 6 digits that are not all zeros (PostgreSQL would round it: left to the text form).
 */
function dayMicros(b: Uint8Array, i: number, end: number): number {
  let us = (d2(b, i) * 3600 + d2(b, i + 3) * 60) * 1e6;
  if (end - i === 5) return us;
  us += d2(b, i + 6) * 1e6;
  if (end - i === 8) return us;
  // The fraction's first six digits as an integer, scaled to microseconds; any digit past them must be 0.
  const digits = Math.min(end - (i + 9), 6);
  let fraction = 0;
  for (let k = i + 9; k < i + 9 + digits; k++) fraction = fraction * 10 + (b[k] - 48);
  for (let k = i + 9 + digits; k < end; k++) if (b[k] !== 48) return -1;
  return us + fraction * MICRO_SCALE[digits];
}

/** Microseconds per unit of a fraction of n digits (n = 0..6). */
const MICRO_SCALE = Float64Array.from([0, 100000, 10000, 1000, 100, 10, 1]);

/** Seconds east of UTC of a zone the `zone` check (fast_checks.ts) accepted in b[i, e). */
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
function timestampOf(withZone: boolean): FieldEncoder {
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

const timestampBin = timestampOf(false);
const timestamptzBin = timestampOf(true);

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

/**
 * The binary encoders by number (encoderKind), called through one switch (encodeField): called through an array
 * of functions, the row's call site saw every encoder and V8 made it a generic call (the profile's
 * `Call_ReceiverIsNotNullOrUndefined`); each case's call is one function, which V8 can inline.
 */
const INT2 = 0, INT4 = 1, INT8 = 2, NUMERIC = 3, BOOL = 4, DATE = 5, TIMESTAMP = 6, TIMESTAMPTZ = 7, TIME = 8;
const UUID = 9, RAW = 10;

/** Writes one field with the encoder `kind` (encoderKind); as a FieldEncoder. */
export function encodeField(
  kind: number,
  b: Uint8Array,
  s: number,
  e: number,
  bin: Uint8Array,
  o: number,
): number {
  switch (kind) {
    case INT2:
      return int2Bin(b, s, e, bin, o);
    case INT4:
      return int4Bin(b, s, e, bin, o);
    case INT8:
      return int8Bin(b, s, e, bin, o);
    case NUMERIC:
      return numericBin(b, s, e, bin, o);
    case BOOL:
      return boolBin(b, s, e, bin, o);
    case DATE:
      return dateBin(b, s, e, bin, o);
    case TIMESTAMP:
      return timestampBin(b, s, e, bin, o);
    case TIMESTAMPTZ:
      return timestamptzBin(b, s, e, bin, o);
    case TIME:
      return timeBin(b, s, e, bin, o);
    case UUID:
      return uuidBin(b, s, e, bin, o);
    case RAW:
      return rawBin(b, s, e, bin, o);
    default:
      throw new Error(`encodeField: no encoder ${kind}`); // encoderKind's -1 never gets here (binaryCapable)
  }
}

/**
 * The encoder of each built-in type the fast path takes (same cases as fast_checks.ts checkFor); the receive
 * functions apply varchar(n) / char(n) as the input functions do.
 */
const ENCODER_OF_TYPE: Readonly<Record<string, number>> = {
  int2: INT2,
  int4: INT4,
  int8: INT8,
  numeric: NUMERIC,
  bool: BOOL,
  date: DATE,
  timestamp: TIMESTAMP,
  timestamptz: TIMESTAMPTZ,
  time: TIME,
  uuid: UUID,
  text: RAW,
  varchar: RAW,
  bpchar: RAW,
};

/** The binary encoder (for encodeField) of a column the fast path takes, or -1. */
export function encoderKind(col: TargetColumn): number {
  if (col.baseTypeKind === "e" && col.enumLabels) return RAW; // enum_recv takes the label's text
  if (col.baseTypeSchema !== "pg_catalog") return -1; // an extension's type of the same name is another type
  return Object.hasOwn(ENCODER_OF_TYPE, col.baseType) ? ENCODER_OF_TYPE[col.baseType] : -1;
}
