/**
 * Byte-level field checks of the fast row path (load/fast_row.ts): whether a field's bytes, as they stand in the
 * file, are a plain canonical value of a column's type, without decoding them into a string.
 *
 * Each check is the byte twin of a fast path of the string converters in convert.ts, over the same grammar:
 * `ymd` / `hms` / `zone` / `timestamp` of `fastYmd` / `fastHms` / `fastZone` / `fastTimestamp`, `integer` of
 * `intCore`, `numeric` of `numericCore`, `uuid` of `uuidCore`, `boolean` of `boolCore`. They live side by side
 * so that a change to one grammar is made to both; load/fast_row_test.ts checks the pair as a differential
 * property (the fast path's output is the string path's whenever it accepts).
 *
 * Invariants:
 * - A check accepts only a form its string converter accepts and returns unchanged, or - for booleans - a form
 *   COPY reads as the same value the converter's output means (`true`/`false` for `t`/`f`); anything else
 *   returns false and the caller takes the string path.
 * - A check reads only b[s, e) and allocates nothing; checks other than the text-like ones (isTextCheck)
 *   accept ASCII only, so the caller need not screen or validate their bytes.
 */
import type { TargetColumn } from "./columns.ts";
import { escapeCopyText } from "./copy_text.ts";

/**
 * Checks field bytes b[s, e) (non-empty, valid UTF-8 without control characters or backslash) in place. Only
 * the text-like checks accept bytes above 0x7F; every other check takes ASCII only.
 */
export type FieldCheck = (b: Uint8Array, s: number, e: number) => boolean;

const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The calendar rule of both `YYYY-MM-DD` fast checks (this file's `ymd` and convert.ts `fastYmd`), in one
 * place: the year and month digit pairs and the day as d2 read them (-1 = not two digits); year 0001..9999, a
 * real month, a real day of that month (Gregorian leap years).
 */
export function isPlainCalendarDay(y1: number, y2: number, m: number, d: number): boolean {
  if (y1 < 0 || y2 < 0 || m < 1 || m > 12 || d < 1) return false;
  const y = y1 * 100 + y2;
  if (y === 0) return false;
  const dim = m === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : DAYS[m];
  return d <= dim;
}

export function d2(b: Uint8Array, i: number): number {
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
  return isPlainCalendarDay(y1, y2, m, d2(b, s + 8));
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

/** Where the time of day at `i` ends (digits, `:`, `.`): the zone, if any, starts there. */
export function timeEnd(b: Uint8Array, i: number, e: number): number {
  while (i < e) {
    const c = b[i];
    if ((c >= 48 && c <= 57) || c === 58 || c === 46) i++;
    else break;
  }
  return i;
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

/**
 * Any text: a text column's check, and the check of a column PostgreSQL validates itself (convert.ts
 * checkedByServer), whose bytes are screened and passed on as text.
 */
export const anyText: FieldCheck = () => true;

function maxLength(n: number): FieldCheck {
  const check: FieldCheck = (_b, s, e) => e - s <= n;
  TEXT_CHECKS.add(check);
  return check;
}

/** Checks of text-like columns (besides anyText): their fields are screened byte by byte. */
const TEXT_CHECKS = new WeakSet<FieldCheck>();

/**
 * Whether `check` is a text-like column's (text, varchar, char): its fields may hold bytes above 0x7F and
 * quoted line breaks, so the caller screens them byte by byte; every other check takes its own ASCII only.
 */
export function isTextCheck(check: FieldCheck): boolean {
  return check === anyText || TEXT_CHECKS.has(check);
}

/**
 * The check for one column, or null when this path takes no value of its type. The profile's date style
 * does not matter: `YYYY-MM-DD` dates pass unchanged under every style.
 */
export function checkFor(col: TargetColumn): FieldCheck | null {
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
