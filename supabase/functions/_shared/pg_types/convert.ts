/**
 * Per-column value converters: CSV field -> COPY TEXT field, or a per-row reject reason.
 *
 * `compileConverter(column, options)` returns a function `(value: string | null) => string | Rejection`.
 * A string result is the field to put on the COPY line, already escaped for COPY TEXT (`\N` for NULL); a
 * {@link Rejection} carries the reason, worded like PostgreSQL's own message, quoting the value (clipped to
 * ~60 characters). Accepted values cost no allocation in the common case (the input string is returned as
 * is); a reject allocates one small object.
 *
 * Invariants (PostgreSQL 15 and 17 alike, server encoding UTF8, timezone_abbreviations = 'Default'; where the
 * two versions' input functions differ, the converter accepts only what both accept, and refuses the rest by
 * policy: see the list below):
 * - A value the converter accepts, PostgreSQL accepts for the column's type and typmod, and the returned text,
 *   read by COPY, stores the same value PostgreSQL stores from the original string (the differential tests
 *   in convert_test.ts check both against a real server).
 * - A value the converter rejects, PostgreSQL rejects too - except the documented policy rejections, which
 *   carry `policy: true`:
 *   - dates whose day/month order depends on DateStyle (`01/02/2024`, `1-2-24`) unless the profile sets
 *     `dateStyle: "dmy" | "mdy"`: "ambiguous date ...: use YYYY-MM-DD or set the profile's date_style";
 *   - the time-relative words `now`, `today`, `tomorrow`, `yesterday` (a load must not depend on its time);
 *   - time zone names (`America/New_York`) and date-dependent zone abbreviations (`MSK`); numeric offsets,
 *     `Z`/`UTC`/`GMT` and the fixed abbreviations of PG's Default set (`EST`, `CEST`, ...) are accepted;
 *   - syntax only one of PostgreSQL 15 and 16+ reads: digit separators and `0x`/`0o`/`0b` integers (`1_000`,
 *     16+ only), whitespace after a numeric exponent's `e` (`1e 5`, 15 only), date/time unit labels other than
 *     julian (`y2000m01d01`, `2000-01-01 h10`, 15 only), `epoch`/`infinity` with other fields (`epoch Z`,
 *     15 only), `+infinity` (16+ only), numeric exponents beyond +-(INT_MAX / 2) (`0e1073741823`, 16+ only).
 * - With `deferToServer` (the chunk worker's setting), the policy rejections whose reading depends on the server
 *   (`Rejection.serverDecides`: digit separators and `0x`/`0o`/`0b` integers, 15-only number and date/time
 *   syntax, zone names and date-dependent abbreviations in values dated YYYY-MM-DD or time-only) are passed on
 *   as their text instead, and the PostgreSQL the job writes to decides; ambiguous dates and relative words stay
 *   refused (their reading would depend on the session or the clock).
 * - Date/time values are re-written in canonical ISO form (`YYYY-MM-DD HH:MM:SS.ffffff`, `BC` suffix,
 *   zoned instants normalised to `+00`), so the COPY session's DateStyle does not matter; with `dateStyle`
 *   dmy/mdy that is what makes `01/02/2024` load as the profile means it. Timestamps without a zone are
 *   written without one, so for timestamptz the loading session's TimeZone applies exactly as it would to
 *   the original string (range limits at the far ends of the timestamp range assume UTC).
 * - NULL (`null`) becomes `\N`, or "missing value for NOT NULL column" when the column or its domain is
 *   NOT NULL: COPY does not apply column defaults to an explicit NULL. An empty string is a value, not NULL:
 *   it is accepted by text-like types and rejected by the others exactly as PostgreSQL does.
 * - U+0000 is never accepted ("NUL character not allowed"); neither are unpaired UTF-16 surrogates.
 * - Not checked (COPY will enforce them and fail the batch): domain CHECK constraints, table constraints,
 *   enum labels added in the loading transaction.
 *   - json/jsonb nested deeper than {@link MAX_JSON_DEPTH} levels (PostgreSQL's own limit is its stack depth,
 *     about 12000 levels with the default 2MB max_stack_depth).
 * - Known edge divergences, all outside real CSV data: float4 values that land exactly halfway between two
 *   floats after rounding to double first, and hexadecimal floats at the exact overflow/underflow boundary.
 *
 * Types without a converter here (arrays, composites, ranges, interval, inet, money, bit, extension types such as
 * citext, hstore, PostGIS and pgvector, ...) are checked by the server ({@link checkedByServer}): the value goes
 * to COPY as its text, escaped (NUL and unpaired surrogates refused, as PostgreSQL refuses them), PostgreSQL's
 * input function decides, and a row it refuses is isolated and rejected with PostgreSQL's own message by the
 * refusal path (load/loader.ts). Only generated columns fail at compile time ({@link UnsupportedColumnError}):
 * COPY refuses to write them, as `\copy` does.
 *
 * The fast paths here (`fastYmd`, `fastHms`, `fastZone`, `fastTimestamp`, `intCore`, `numericCore`, `uuidCore`,
 * `boolCore`) have byte-level twins over the same grammars in fast_checks.ts, which the fast row path
 * (load/fast_row.ts) uses on the file's bytes: a change to one grammar is made to both.
 */

import type { TargetColumn } from "./columns.ts";
import { COPY_NULL, escapeCopyText, quoteValue } from "./copy_text.ts";
import { isPlainCalendarDay } from "./fast_checks.ts";
import {
  checkFloat,
  checkInt,
  checkInt8,
  checkNumeric,
  NUM_EXPONENT_OVERFLOW,
  NUM_FIELD_INFINITE,
  NUM_FIELD_OVERFLOW,
  NUM_FORMAT_OVERFLOW,
  NUM_OK,
  NUM_RANGE,
  numEnd,
  numInnerSpace,
  numStart,
} from "./numbers.ts";
import {
  DATE_BUFLEN,
  type DateOrder,
  DATEORDER_DMY,
  DATEORDER_MDY,
  decoded,
  decodeDateTime,
  decodeTimeOnly,
  DTERR_BAD_FORMAT,
  DTERR_FIELD_OVERFLOW,
  DTERR_MD_FIELD_OVERFLOW,
  DTERR_POLICY_DYNTZ,
  DTERR_POLICY_RELATIVE,
  DTERR_POLICY_SPECIAL,
  DTERR_POLICY_TZNAME,
  DTERR_POLICY_UNIT,
  DTERR_TZDISP_OVERFLOW,
  formatDate,
  formatTime,
  formatTimestamp,
  parseDateTime,
  TIMESTAMP_BUFLEN,
} from "./datetime.ts";

/**
 * Why a value cannot be loaded. `policy` is true when PostgreSQL itself would have accepted it (on one of 15 and
 * 16+ at least). `serverDecides`: a policy rejection of syntax whose reading depends on the server's version or
 * its time zone database (digit separators, `0x` integers, zone names, ...): with
 * {@link ConvertOptions.deferToServer} the value is passed on as its text and the connected server decides.
 */
export class Rejection {
  constructor(
    readonly reason: string,
    readonly policy: boolean = false,
    readonly serverDecides: boolean = false,
  ) {}
}

export type ConvertResult = string | Rejection;
export type Converter = (value: string | null) => ConvertResult;

export interface ConvertOptions {
  /**
   * How to read day/month-order-dependent dates. `"iso"` (default) rejects them; `"dmy"` / `"mdy"` read
   * them as PostgreSQL does under DateStyle DMY / MDY.
   */
  dateStyle?: "iso" | "dmy" | "mdy";
  /**
   * Pass a value rejected only because its reading depends on the server (Rejection.serverDecides) on as its
   * text, so the PostgreSQL the job writes to decides: 16+ reads `1_000` and `0x1F`, 15 refuses them with its
   * own message; zone names go to the server's time zone database. Off by default, so that the converter's own
   * grammar is what the differential tests compare with PostgreSQL; the chunk worker turns it on.
   */
  deferToServer?: boolean;
}

/** Thrown by {@link compileConverter} for a column the pipeline cannot load. */
export class UnsupportedColumnError extends Error {
  override readonly name = "UnsupportedColumnError";
}

export function isRejection(r: ConvertResult): r is Rejection {
  return typeof r !== "string";
}

const NUL_REJECTION = new Rejection("NUL character not allowed");
const SURROGATE_REASON = "invalid Unicode: unpaired surrogate (the text is not valid UTF-8)";

/** Backslash, newline, carriage return, tab (COPY escapes) or NUL. */
const SPECIAL = /[\\\n\r\t\0]/;

type Core = (v: string) => ConvertResult;

// ---- text-like ------------------------------------------------------------------------------------------

/** Escapes for COPY, rejecting NUL and unpaired surrogates. */
function textOut(v: string): ConvertResult {
  if (SPECIAL.test(v)) {
    if (v.indexOf("\0") !== -1) return NUL_REJECTION;
    if (!v.isWellFormed()) return new Rejection(SURROGATE_REASON);
    return escapeCopyText(v);
  }
  if (!v.isWellFormed()) return new Rejection(SURROGATE_REASON);
  return v;
}

/** Index just past the first `n` code points of `v` (v must be well formed). */
function codePointEnd(v: string, n: number): number {
  let i = 0;
  let cps = 0;
  const len = v.length;
  while (i < len && cps < n) {
    const c = v.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff ? 2 : 1;
    cps++;
  }
  return i;
}

function countCodePoints(v: string): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (!(c >= 0xdc00 && c <= 0xdfff)) n++;
  }
  return n;
}

/** varchar(n) / char(n): at most n characters, except that extra trailing spaces are silently cut. */
function lengthLimited(n: number, typeName: string): Core {
  return (v) => {
    if (v.length > n) {
      if (!v.isWellFormed()) return new Rejection(SURROGATE_REASON);
      const end = codePointEnd(v, n);
      for (let j = end; j < v.length; j++) {
        if (v.charCodeAt(j) !== 32) {
          return new Rejection(
            `value too long for type ${typeName}: ${quoteValue(v)} has ${countCodePoints(v)} characters`,
          );
        }
      }
    }
    return textOut(v);
  };
}

function enumCore(labels: readonly string[], typeName: string): Core {
  const set = new Set(labels);
  const escaped = new Map(labels.map((l) => [l, escapeCopyText(l)]));
  return (v) => {
    if (set.has(v)) return escaped.get(v)!;
    return new Rejection(`invalid input value for enum ${typeName}: ${quoteValue(v)}`);
  };
}

// ---- numbers --------------------------------------------------------------------------------------------

function trimmed(v: string): string {
  return numStart === 0 && numEnd === v.length ? v : v.slice(numStart, numEnd);
}

/**
 * PostgreSQL 16+ integer and numeric input also reads `_` between digits (`1_000`) and `0x`/`0o`/`0b`
 * integers (`0x1F`, also `0x_1F`: one `_` may follow the prefix; numeric too); 15 rejects both. The converter accepts what both versions accept, so a value
 * that 16+ reads with that syntax is a policy rejection, left to the server with `deferToServer` (on 15
 * PostgreSQL rejects it too). A value neither version reads (`10x`, `1__0`) is a plain rejection.
 */
const PG16_INTEGER =
  "[+-]?(?:0[xX]_?[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*|0[oO]_?[0-7]+(?:_[0-7]+)*|0[bB]_?[01]+(?:_[01]+)*|\\d+(?:_\\d+)*)";
const PG16_INTEGER_SYNTAX = new RegExp(`^\\s*${PG16_INTEGER}\\s*$`);
const PG16_NUMERIC_SYNTAX = new RegExp(
  `^\\s*(?:${PG16_INTEGER}|[+-]?(?:\\d+(?:_\\d+)*(?:\\.(?:\\d+(?:_\\d+)*)?)?|\\.\\d+(?:_\\d+)*)(?:[eE][+-]?\\d+(?:_\\d+)*)?)\\s*$`,
);

function numberSyntaxReject(v: string, typeName: string): Rejection {
  const pg16 = typeName === "numeric" ? PG16_NUMERIC_SYNTAX : PG16_INTEGER_SYNTAX;
  return /[_xXoObB]/.test(v) && pg16.test(v)
    ? new Rejection(
      `invalid input syntax for type ${typeName}: ${quoteValue(v)}: digit separators and 0x/0o/0b numbers ` +
        `are read only by PostgreSQL 16 and later: write plain decimal digits`,
      true,
      true,
    )
    : new Rejection(`invalid input syntax for type ${typeName}: ${quoteValue(v)}`);
}

function intCore(maxNeg: number, typeName: string): Core {
  return (v) => {
    const r = checkInt(v, maxNeg);
    if (r === NUM_OK) return trimmed(v);
    return r === NUM_RANGE
      ? new Rejection(`value ${quoteValue(v)} is out of range for type ${typeName}`)
      : numberSyntaxReject(v, typeName);
  };
}

const int8Core: Core = (v) => {
  const r = checkInt8(v);
  if (r === NUM_OK) return trimmed(v);
  return r === NUM_RANGE
    ? new Rejection(`value ${quoteValue(v)} is out of range for type bigint`)
    : numberSyntaxReject(v, "bigint");
};

function numericCore(precision: number | null, scale: number): Core {
  const limit = precision === null
    ? ""
    : `a field with precision ${precision}, scale ${scale} must round to an absolute value less than ${
      precision - scale === 0 ? "1" : "10^" + (precision - scale)
    }`;
  return (v) => {
    const r = checkNumeric(v, precision, scale);
    if (r === NUM_OK) {
      // Whitespace after the exponent's `e` (`1e 5`): PostgreSQL 15 reads it (strtol), 16+ rejects it.
      if (numInnerSpace) {
        return new Rejection(
          `invalid input syntax for type numeric: ${
            quoteValue(v)
          }: whitespace inside a number is read only ` +
            `by PostgreSQL 15`,
          true,
          true,
        );
      }
      return trimmed(v);
    }
    switch (r) {
      case NUM_FORMAT_OVERFLOW:
        return new Rejection(`value overflows numeric format: ${quoteValue(v)}`);
      case NUM_EXPONENT_OVERFLOW:
        // PostgreSQL 15 refuses it with this message; 16+ reads some (a zero): refused by policy.
        return new Rejection(`value overflows numeric format: ${quoteValue(v)}`, true, true);
      case NUM_FIELD_OVERFLOW:
        return new Rejection(`numeric field overflow: ${quoteValue(v)}: ${limit}`);
      case NUM_FIELD_INFINITE:
        return new Rejection(
          `numeric field overflow: ${quoteValue(v)}: a field with precision ${precision}, scale ${scale} ` +
            `cannot hold an infinite value`,
        );
      default:
        return numberSyntaxReject(v, "numeric");
    }
  };
}

function floatCore(single: boolean): Core {
  const typeName = single ? "real" : "double precision";
  return (v) => {
    const r = checkFloat(v, single);
    if (r === NUM_OK) return trimmed(v);
    return r === NUM_RANGE
      ? new Rejection(`${quoteValue(v)} is out of range for type ${typeName}`)
      : new Rejection(`invalid input syntax for type ${typeName}: ${quoteValue(v)}`);
  };
}

// ---- boolean, uuid ----------------------------------------------------------------------------------------

function isspace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** `value` (from `start`, `len` chars) is a case-insensitive prefix of `word` (pg_strncasecmp(value, word, n)). */
function ciPrefix(v: string, start: number, len: number, word: string, n: number): boolean {
  for (let k = 0; k < n; k++) {
    const a = k < len ? v.charCodeAt(start + k) | 0x20 : 0;
    const b = k < word.length ? word.charCodeAt(k) : 0;
    if (a !== b) return false;
    if (b === 0) break;
  }
  return true;
}

/** boolin: t/f/true/false/yes/no/on/off/1/0, unique prefixes, case-insensitive, surrounding whitespace. */
const boolCore: Core = (v) => {
  let s = 0;
  let e = v.length;
  while (s < e && isspace(v.charCodeAt(s))) s++;
  while (e > s && isspace(v.charCodeAt(e - 1))) e--;
  const len = e - s;
  if (len > 0) {
    const c = v.charCodeAt(s);
    switch (c | 0x20) {
      case 0x74: // t
        if (c !== 0x54 && c !== 0x74) break;
        if (ciPrefix(v, s, len, "true", len)) return "t";
        break;
      case 0x66: // f
        if (c !== 0x46 && c !== 0x66) break;
        if (ciPrefix(v, s, len, "false", len)) return "f";
        break;
      case 0x79: // y
        if (c !== 0x59 && c !== 0x79) break;
        if (ciPrefix(v, s, len, "yes", len)) return "t";
        break;
      case 0x6e: // n
        if (c !== 0x4e && c !== 0x6e) break;
        if (ciPrefix(v, s, len, "no", len)) return "f";
        break;
      case 0x6f: // o
        if (c !== 0x4f && c !== 0x6f) break;
        if (ciPrefix(v, s, len, "on", len > 2 ? len : 2)) return "t";
        if (ciPrefix(v, s, len, "off", len > 2 ? len : 2)) return "f";
        break;
      default:
        if (len === 1 && c === 0x31) return "t";
        if (len === 1 && c === 0x30) return "f";
    }
  }
  return new Rejection(`invalid input syntax for type boolean: ${quoteValue(v)}`);
};

function hexVal(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

const CANONICAL_UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** uuid_in: 32 hex digits, optional `-` after any group of 4, optional braces; no whitespace. */
const uuidCore: Core = (v) => {
  if (v.length === 36 && CANONICAL_UUID.test(v)) return v;
  let i = 0;
  const braces = v.charCodeAt(0) === 123;
  if (braces) i = 1;
  for (let b = 0; b < 16; b++) {
    if (!hexVal(v.charCodeAt(i)) || !hexVal(v.charCodeAt(i + 1))) {
      return new Rejection(`invalid input syntax for type uuid: ${quoteValue(v)}`);
    }
    i += 2;
    if (v.charCodeAt(i) === 45 && (b & 1) === 1 && b < 15) i++;
  }
  if (braces) {
    if (v.charCodeAt(i) !== 125) return new Rejection(`invalid input syntax for type uuid: ${quoteValue(v)}`);
    i++;
  }
  if (i !== v.length) return new Rejection(`invalid input syntax for type uuid: ${quoteValue(v)}`);
  return v;
};

// ---- json, jsonb ------------------------------------------------------------------------------------------

const BIG_EXPONENT = /[eE][+-]?\d{4}/;
const JSON_NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** jsonb: every number must fit numeric; returns the offending number or null. */
function jsonbBadNumber(v: string): string | null {
  let i = 0;
  const n = v.length;
  while (i < n) {
    const c = v.charCodeAt(i);
    if (c === 34) {
      i++;
      while (i < n) {
        const d = v.charCodeAt(i);
        if (d === 92) i += 2;
        else if (d === 34) break;
        else i++;
      }
      i++;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      JSON_NUMBER.lastIndex = i;
      const m = JSON_NUMBER.exec(v);
      const tok = m ? m[0] : v[i];
      if (checkNumeric(tok, null, 0) !== NUM_OK) return tok;
      i += tok.length;
    } else {
      i++;
    }
  }
  return null;
}

/** jsonb: PG de-escapes strings: \u0000 and unpaired surrogate escapes are errors. */
function jsonbBadEscape(v: string): string | null {
  let i = v.indexOf("\\");
  while (i !== -1) {
    if (v.charCodeAt(i + 1) === 117) {
      const ch = parseInt(v.slice(i + 2, i + 6), 16);
      if (ch === 0) return "unsupported Unicode escape sequence: \\u0000 cannot be converted to text";
      if (ch >= 0xd800 && ch <= 0xdbff) {
        const lo = v.charCodeAt(i + 6) === 92 && v.charCodeAt(i + 7) === 117
          ? parseInt(v.slice(i + 8, i + 12), 16)
          : -1;
        if (!(lo >= 0xdc00 && lo <= 0xdfff)) {
          return "invalid input syntax for type json: Unicode high surrogate must not follow a high surrogate " +
            "or be unpaired";
        }
        i = v.indexOf("\\", i + 12);
        continue;
      }
      if (ch >= 0xdc00 && ch <= 0xdfff) {
        return "invalid input syntax for type json: Unicode low surrogate must follow a high surrogate";
      }
      i = v.indexOf("\\", i + 6);
    } else {
      i = v.indexOf("\\", i + 2);
    }
  }
  return null;
}

/** Policy limit on json nesting: PostgreSQL 15 (2MB max_stack_depth) fails somewhere past 12000 levels. */
export const MAX_JSON_DEPTH = 10000;

function jsonDepth(v: string): number {
  let depth = 0;
  let max = 0;
  const n = v.length;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c === 34) {
      for (i++; i < n; i++) {
        const d = v.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 91 || c === 123) {
      if (++depth > max) max = depth;
    } else if (c === 93 || c === 125) {
      depth--;
    }
  }
  return max;
}

function jsonCore(binary: boolean): Core {
  const typeName = binary ? "jsonb" : "json";
  return (v) => {
    try {
      JSON.parse(v);
    } catch {
      return new Rejection(`invalid input syntax for type ${typeName}: ${quoteValue(v)}`);
    }
    if (v.length > 2 * MAX_JSON_DEPTH && jsonDepth(v) > MAX_JSON_DEPTH) {
      return new Rejection(
        `${typeName} value nested deeper than ${MAX_JSON_DEPTH} levels is not accepted: ${quoteValue(v)}`,
        true,
      );
    }
    if (binary) {
      if (v.indexOf("\\u") !== -1) {
        const bad = jsonbBadEscape(v);
        if (bad !== null) return new Rejection(`${bad}: ${quoteValue(v)}`);
      }
      if (v.length > 16000 || BIG_EXPONENT.test(v)) {
        const bad = jsonbBadNumber(v);
        if (bad !== null) return new Rejection(`value overflows numeric format: ${quoteValue(bad)}`);
      }
    }
    return textOut(v);
  };
}

// ---- bytea ------------------------------------------------------------------------------------------------

/** byteain: `\x` hex (whitespace allowed between byte pairs) or the escape format. */
const byteaCore: Core = (v) => {
  if (v.charCodeAt(0) === 92 && v.charCodeAt(1) === 120) {
    let i = 2;
    const n = v.length;
    while (i < n) {
      const c = v.charCodeAt(i);
      if (c === 32 || c === 10 || c === 9 || c === 13) {
        i++;
        continue;
      }
      if (!hexVal(c)) {
        return new Rejection(
          `invalid hexadecimal digit: ${quoteValue(String.fromCodePoint(v.codePointAt(i)!))}`,
        );
      }
      if (i + 1 >= n) {
        return new Rejection(`invalid hexadecimal data: odd number of digits: ${quoteValue(v)}`);
      }
      const d = v.charCodeAt(i + 1);
      if (!hexVal(d)) {
        return new Rejection(
          `invalid hexadecimal digit: ${quoteValue(String.fromCodePoint(v.codePointAt(i + 1)!))}`,
        );
      }
      i += 2;
    }
    return textOut(v);
  }
  let i = v.indexOf("\\");
  while (i !== -1) {
    const a = v.charCodeAt(i + 1);
    if (a === 92) {
      i = v.indexOf("\\", i + 2);
      continue;
    }
    const b = v.charCodeAt(i + 2);
    const c = v.charCodeAt(i + 3);
    if (a >= 48 && a <= 51 && b >= 48 && b <= 55 && c >= 48 && c <= 55) {
      i = v.indexOf("\\", i + 4);
      continue;
    }
    return new Rejection(`invalid input syntax for type bytea: ${quoteValue(v)}`);
  }
  return textOut(v);
};

// ---- date / time ------------------------------------------------------------------------------------------

type DtKind = "date" | "timestamp" | "timestamptz" | "time";

const DT_TYPE_NAMES: Record<DtKind, string> = {
  date: "date",
  timestamp: "timestamp",
  timestamptz: "timestamp with time zone",
  time: "time",
};

function d2(v: string, i: number): number {
  const a = v.charCodeAt(i) - 48;
  const b = v.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** Fast check of `YYYY-MM-DD` at 0 with year 0001..9999 and a real calendar day. */
function fastYmd(v: string): boolean {
  if (v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45) return false;
  const y1 = d2(v, 0);
  const y2 = d2(v, 2);
  const m = d2(v, 5);
  return isPlainCalendarDay(y1, y2, m, d2(v, 8));
}

/**
 * Fast check of `HH:MM[:SS[.f{1,20}]]` from `i` to `end` with HH <= 23, MM and SS <= 59. PostgreSQL rounds
 * the fraction to microseconds itself (23:59:59.9999999 becomes the next midnight, which it accepts), and
 * 20 digits stay far below its 128-byte field buffer, so such a value is passed through unchanged.
 */
function fastHms(v: string, i: number, end: number): boolean {
  const len = end - i;
  if (len !== 5 && len !== 8 && !(len >= 10 && len <= 29)) return false;
  const h = d2(v, i);
  if (h < 0 || h > 23 || v.charCodeAt(i + 2) !== 58) return false;
  const mi = d2(v, i + 3);
  if (mi < 0 || mi > 59) return false;
  if (len === 5) return true;
  if (v.charCodeAt(i + 5) !== 58) return false;
  const s = d2(v, i + 6);
  if (s < 0 || s > 59) return false;
  if (len === 8) return true;
  if (v.charCodeAt(i + 8) !== 46) return false;
  for (let k = i + 9; k < end; k++) {
    const c = v.charCodeAt(k);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Fast check of a zone suffix `Z`, `+HH`, `+HHMM`, `+HH:MM` (hours <= 15) from `i` to the end. */
function fastZone(v: string, i: number): boolean {
  const len = v.length - i;
  const c = v.charCodeAt(i);
  if (len === 1) return c === 90 || c === 122;
  if (c !== 43 && c !== 45) return false;
  const h = d2(v, i + 1);
  if (h < 0 || h > 15) return false;
  if (len === 3) return true;
  if (len === 5) {
    const m = d2(v, i + 3);
    return m >= 0 && m <= 59;
  }
  if (len === 6 && v.charCodeAt(i + 3) === 58) {
    const m = d2(v, i + 4);
    return m >= 0 && m <= 59;
  }
  return false;
}

/** ISO timestamp fast path: `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]][zone]`. */
function fastTimestamp(v: string): boolean {
  const n = v.length;
  if (n < 16 || !fastYmd(v)) return false;
  const sep = v.charCodeAt(10);
  if (sep !== 32 && sep !== 84 && sep !== 116) return false;
  // find where the time ends
  let end = 11;
  while (end < n) {
    const c = v.charCodeAt(end);
    if ((c >= 48 && c <= 57) || c === 58 || c === 46) end++;
    else break;
  }
  if (!fastHms(v, 11, end)) return false;
  return end === n || fastZone(v, end);
}

/** A date/time value whose date, if any, is YYYY-MM-DD: the server reads it the same under every DateStyle. */
const ISO_DATED = /^\s*\d{4}-\d{2}-\d{2}(?![\d-])/;

function dtReject(err: number, v: string, kind: DtKind): Rejection {
  const q = quoteValue(v);
  const typeName = DT_TYPE_NAMES[kind];
  // The server may decide only where its reading cannot depend on the session's DateStyle.
  const serverDecides = kind === "time" || ISO_DATED.test(v);
  switch (err) {
    case DTERR_FIELD_OVERFLOW:
      return new Rejection(`date/time field value out of range: ${q}`);
    case DTERR_MD_FIELD_OVERFLOW:
      return new Rejection(`date/time field value out of range: ${q} (check the day/month order)`);
    case DTERR_TZDISP_OVERFLOW:
      return new Rejection(`time zone displacement out of range: ${q}`);
    case DTERR_POLICY_RELATIVE:
      return new Rejection(
        `relative ${typeName} ${
          quoteValue(decoded.badToken)
        } is not accepted in ${q}: write the actual value`,
        true,
      );
    case DTERR_POLICY_TZNAME:
      return new Rejection(
        `invalid input syntax for type ${typeName}: ${q}: unrecognized word or time zone name ` +
          `${
            quoteValue(decoded.badToken)
          } (time zone names are not supported; use a UTC offset such as +02:00)`,
        true,
        serverDecides,
      );
    case DTERR_POLICY_DYNTZ:
      return new Rejection(
        `time zone abbreviation ${
          quoteValue(decoded.badToken)
        } in ${q} has a date-dependent offset and is not ` +
          `supported: use a UTC offset such as +02:00`,
        true,
        serverDecides,
      );
    case DTERR_POLICY_SPECIAL:
      return new Rejection(
        `invalid input syntax for type ${typeName}: ${q}: ${
          quoteValue(decoded.badToken)
        } must stand alone (PostgreSQL 16 and later refuse it with a time zone; 15 does not read +infinity)`,
        true,
        serverDecides,
      );
    case DTERR_POLICY_UNIT:
      return new Rejection(
        `invalid input syntax for type ${typeName}: ${q}: the label ${
          quoteValue(decoded.badToken)
        } is read differently by PostgreSQL 15 and 16+ and is not accepted: write YYYY-MM-DD HH:MM:SS`,
        true,
        serverDecides,
      );
    case DTERR_BAD_FORMAT:
    default:
      return new Rejection(`invalid input syntax for type ${typeName}: ${q}`);
  }
}

function ambiguous(v: string, policy: boolean): Rejection {
  return new Rejection(
    `ambiguous date '${
      v.length > 60 ? v.slice(0, 59) + "…" : v
    }': use YYYY-MM-DD or set the profile's date_style`,
    policy,
  );
}

function decodeAs(v: string, kind: DtKind, order: DateOrder): number {
  const nf = parseDateTime(v, kind === "date" || kind === "time" ? DATE_BUFLEN : TIMESTAMP_BUFLEN);
  if (nf < 0) return nf;
  return kind === "time" ? decodeTimeOnly(nf, order) : decodeDateTime(nf, order);
}

function slowDateTime(v: string, kind: DtKind, order: DateOrder, strict: boolean): ConvertResult {
  let err = decodeAs(v, kind, order);
  if (strict && decoded.usedDateOrder) {
    if (err === 0) return ambiguous(v, true);
    if (err > -100) {
      // PG (MDY) rejects it; if DMY would read it, the real problem is the day/month order
      const alt = decodeAs(v, kind, DATEORDER_DMY);
      if (alt === 0) return ambiguous(v, false);
      err = decodeAs(v, kind, order);
    }
  }
  if (err !== 0) return dtReject(err, v, kind);
  let out: string | null;
  switch (kind) {
    case "date":
      out = formatDate(decoded);
      if (out === null) return new Rejection(`date out of range: ${quoteValue(v)}`);
      return out;
    case "time":
      return formatTime(decoded);
    default:
      out = formatTimestamp(decoded, kind === "timestamptz");
      if (out === null) return new Rejection(`timestamp out of range: ${quoteValue(v)}`);
      return out;
  }
}

/**
 * `D[D]/M[M]/YYYY` (or `M[M]/D[D]/YYYY` when `dmy` is false) with one separator of `/`, `-` or `.` used
 * twice and a year 0001..9999: the ISO date, else null. This is exactly how PostgreSQL reads that form under
 * DateStyle DMY / MDY.
 */
function fastDmy(v: string, dmy: boolean): string | null {
  const n = v.length;
  if (n < 8 || n > 10) return null;
  let i = 0;
  const a = v.charCodeAt(0) - 48;
  if (a < 0 || a > 9) return null;
  let first = a;
  i = 1;
  let c = v.charCodeAt(1) - 48;
  if (c >= 0 && c <= 9) {
    first = first * 10 + c;
    i = 2;
  }
  const sep = v.charCodeAt(i);
  if (sep !== 47 && sep !== 45 && sep !== 46) return null;
  i++;
  c = v.charCodeAt(i) - 48;
  if (c < 0 || c > 9) return null;
  let second = c;
  i++;
  c = v.charCodeAt(i) - 48;
  if (c >= 0 && c <= 9) {
    second = second * 10 + c;
    i++;
  }
  if (v.charCodeAt(i) !== sep || n - i - 1 !== 4) return null;
  const y1 = d2(v, i + 1);
  const y2 = d2(v, i + 3);
  const d = dmy ? first : second;
  const m = dmy ? second : first;
  if (!isPlainCalendarDay(y1, y2, m, d)) return null;
  return `${y1 < 10 ? "0" : ""}${y1}${y2 < 10 ? "0" : ""}${y2}-${m < 10 ? "0" : ""}${m}-${
    d < 10 ? "0" : ""
  }${d}`;
}

function dateTimeCore(kind: DtKind, options: ConvertOptions): Core {
  const style = options.dateStyle ?? "iso";
  const order: DateOrder = style === "dmy" ? DATEORDER_DMY : DATEORDER_MDY;
  const strict = style === "iso";
  switch (kind) {
    case "date":
      if (!strict) {
        const dmy = style === "dmy";
        return (v) => {
          if (v.length === 10 && fastYmd(v)) return v;
          return fastDmy(v, dmy) ?? slowDateTime(v, kind, order, strict);
        };
      }
      return (v) => (v.length === 10 && fastYmd(v) ? v : slowDateTime(v, kind, order, strict));
    case "time":
      return (v) => (fastHms(v, 0, v.length) ? v : slowDateTime(v, kind, order, strict));
    default:
      return (
        v,
      ) => (fastTimestamp(v) || (v.length === 10 && fastYmd(v)) ? v : slowDateTime(v, kind, order, strict));
  }
}

// ---- compile ----------------------------------------------------------------------------------------------

function coreFor(col: TargetColumn, options: ConvertOptions): Core | null {
  if (col.baseTypeKind === "e" && col.enumLabels) {
    // PostgreSQL names the type as format_type_be does in the loading session, whose search_path holds
    // public: unqualified there (`invalid input value for enum mood: "x"`).
    return enumCore(col.enumLabels, col.baseTypeDisplay.replace(/^public\./, ""));
  }
  if (col.baseTypeSchema !== "pg_catalog" || col.baseTypeCategory === "A") return null;
  switch (col.baseType) {
    case "int2":
      return intCore(32768, "smallint");
    case "int4":
      return intCore(2147483648, "integer");
    case "int8":
      return int8Core;
    case "numeric":
      return numericCore(col.numericPrecision, col.numericScale ?? 0);
    case "float4":
      return floatCore(true);
    case "float8":
      return floatCore(false);
    case "bool":
      return boolCore;
    case "date":
      return dateTimeCore("date", options);
    case "timestamp":
      return dateTimeCore("timestamp", options);
    case "timestamptz":
      return dateTimeCore("timestamptz", options);
    case "time":
      return dateTimeCore("time", options);
    case "uuid":
      return uuidCore;
    case "text":
      return textOut;
    case "varchar":
      return col.charLength === null
        ? textOut
        : lengthLimited(col.charLength, `character varying(${col.charLength})`);
    case "bpchar":
      return col.charLength === null
        ? textOut
        : lengthLimited(col.charLength, `character(${col.charLength})`);
    case "json":
      return jsonCore(false);
    case "jsonb":
      return jsonCore(true);
    case "bytea":
      return byteaCore;
    default:
      return null;
  }
}

/**
 * Whether PostgreSQL alone validates this column's values (a type without a converter here): the value is
 * passed on as its text and the server's input function decides (module doc).
 */
export function checkedByServer(column: TargetColumn): boolean {
  return !column.generated && coreFor(column, {}) === null;
}

/**
 * Compiles the converter for one target column: the type's own, or for a type PostgreSQL checks
 * ({@link checkedByServer}) the escaped text. Throws {@link UnsupportedColumnError} for generated columns.
 */
export function compileConverter(column: TargetColumn, options: ConvertOptions = {}): Converter {
  if (column.generated) {
    throw new UnsupportedColumnError(`column "${column.name}" is a generated column and cannot be written`);
  }
  const core = coreFor(column, options) ?? textOut;
  const nullResult: ConvertResult = column.notNull
    ? new Rejection(
      column.hasDefault
        ? `missing value for NOT NULL column "${column.name}" (COPY does not apply the column default to an ` +
          `explicit NULL; leave the column unmapped to use its default)`
        : `missing value for NOT NULL column "${column.name}"`,
    )
    : COPY_NULL;
  const defer = options.deferToServer === true;
  return (value) => {
    if (value === null) return nullResult;
    const r = core(value);
    if (typeof r !== "string") {
      if (value.indexOf("\0") !== -1) return NUL_REJECTION;
      if (defer && r.serverDecides) return textOut(value);
    }
    return r;
  };
}
