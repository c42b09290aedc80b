/**
 * PostgreSQL 15 date/time input parsing, ported from src/backend/utils/adt/datetime.c (ParseDateTime,
 * DecodeDateTime, DecodeTimeOnly, DecodeDate, DecodeNumber, DecodeNumberField, DecodeTime, DecodeTimezone,
 * ValidateDate) and the range checks of date_in, timestamp_in, timestamptz_in and time_in, plus a canonical
 * re-encoder.
 *
 * Invariants:
 * - For every input, {@link parseDateTime} + {@link decodeDateTime} (or {@link decodeTimeOnly}) either fail,
 *   or produce exactly the broken-down fields PostgreSQL 15 produces for the same string under the given
 *   DateOrder (C-locale character classes, the 10-character keyword table, the `Default` abbreviation set,
 *   int32/int64 wrap-around where the C code has it). Error codes are PG's DTERR_* codes, so messages match.
 * - The only inputs that are refused although PostgreSQL might accept them are refused *by policy* with a
 *   distinct code: the time-relative words `now`, `today`, `tomorrow`, `yesterday` (a load must not depend
 *   on when it runs), full time zone names such as `America/New_York` and date-dependent abbreviations such
 *   as `MSK` (their offsets come from a tz database the converter does not have), and the unit labels that
 *   PostgreSQL 16+ no longer reads (`y2000m01d01`; {@link DTERR_POLICY_UNIT}), so the converter accepts
 *   only what both 15 and 17 accept (the differential tests run against both).
 * - The canonical text produced by {@link formatDate}, {@link formatTimestamp} and {@link formatTime} is read
 *   back by PostgreSQL (under any DateStyle) as the same value: ISO `YYYY-MM-DD`, a normalised 24-hour time
 *   with 6-digit microseconds, `BC` suffix for years <= 0, and `+00` after a UTC-normalised instant.
 * - Values outside PostgreSQL's ranges are reported as such; for timestamptz without an explicit zone the
 *   range check assumes the loading session's TimeZone is UTC (only matters within a day of year 4714 BC or
 *   294276 AD).
 */

import { TZ_ABBREVS } from "./tz_abbrevs.ts";

// ---- DTERR codes (datetime.h) and our policy codes --------------------------------------------------------

export const DTERR_BAD_FORMAT = -1;
export const DTERR_FIELD_OVERFLOW = -2;
export const DTERR_MD_FIELD_OVERFLOW = -3;
export const DTERR_TZDISP_OVERFLOW = -5;
/** Policy: `now`, `today`, `tomorrow`, `yesterday`. */
export const DTERR_POLICY_RELATIVE = -100;
/** Policy: a full time zone name (PG would look it up in its tz database). */
export const DTERR_POLICY_TZNAME = -101;
/** Policy: a date-dependent time zone abbreviation. */
export const DTERR_POLICY_DYNTZ = -102;
/**
 * Policy: a label field that PostgreSQL 15 and 16+ read differently, refused on every version: a unit label
 * other than julian (`y`, `m`, `d`, `h`, `mm`, `s`, `dow`, `doy`, `isodow`, `isoyear`, as in `y2000m01d01` or
 * `2000-01-01 h10`: 15 reads them, 16+ rejects them, "Remove undocumented support for date input in the form
 * YyearMmonthDday", PostgreSQL 16 release notes), a label with no number after it (`2000-01-01 j`), and the ISO
 * `T` before anything but a time (`2000-01-01T+02 10:00`: 15 rejects it, 16+ reads some).
 */
export const DTERR_POLICY_UNIT = -103;
/**
 * Policy: a special value (`epoch`, `infinity`, `-infinity`) with any other field (`epoch Z`), which
 * PostgreSQL 15 reads and 16+ rejects, or `+infinity`, which 16+ reads and 15 rejects.
 */
export const DTERR_POLICY_SPECIAL = -104;
/** Out of range for the target type (date/timestamp). */
export const DTERR_OUT_OF_RANGE = -200;

export const DATEORDER_YMD = 0;
export const DATEORDER_DMY = 1;
export const DATEORDER_MDY = 2;
export type DateOrder = 0 | 1 | 2;

// ---- field types and token types (datetime.h) -----------------------------------------------------------

const RESERV = 0;
const MONTH = 1;
const YEAR = 2;
const DAY = 3;
const TZ = 5;
const DTZ = 6;
const DYNTZ = 7;
const IGNORE_DTF = 8;
const AMPM = 9;
const HOUR = 10;
const MINUTE = 11;
const SECOND = 12;
const MILLISECOND = 13;
const MICROSECOND = 14;
const DOY = 15;
const DOW = 16;
const UNITS = 17;
const ADBC = 18;
const ISOTIME = 23;
const DTZMOD = 28;
const UNKNOWN_FIELD = 31;

const DTK_NUMBER = 0;
const DTK_STRING = 1;
export const DTK_DATE = 2;
const DTK_TIME = 3;
const DTK_TZ = 4;
const DTK_SPECIAL = 6;
export const DTK_EARLY = 9;
export const DTK_LATE = 10;
export const DTK_EPOCH = 11;
const DTK_NOW = 12;
const DTK_YESTERDAY = 13;
const DTK_TODAY = 14;
const DTK_TOMORROW = 15;
const DTK_ZULU = 16;
const DTK_SECOND = 18;
const DTK_MINUTE = 19;
const DTK_HOUR = 20;
const DTK_DAY = 21;
const DTK_MONTH = 23;
const DTK_YEAR = 25;
const DTK_JULIAN = 31;
const DTK_DOW = 32;
const DTK_DOY = 33;
const DTK_ISOYEAR = 36;
const DTK_ISODOW = 37;

const AM = 0;
const PM = 1;
const HR24 = 2;
const BC = 1;

const M = (t: number): number => 1 << t;
const DTK_ALL_SECS_M = M(SECOND) | M(MILLISECOND) | M(MICROSECOND);
const DTK_DATE_M = M(YEAR) | M(MONTH) | M(DAY);
const DTK_TIME_M = M(HOUR) | M(MINUTE) | DTK_ALL_SECS_M;

const MAXDATEFIELDS = 25;
/** workbuf size of date_in and time_in (MAXDATELEN + 1). */
export const DATE_BUFLEN = 129;
/** workbuf size of timestamp_in and timestamptz_in (MAXDATELEN + MAXDATEFIELDS). */
export const TIMESTAMP_BUFLEN = 153;

const USECS_PER_DAY = 86400000000n;
const POSTGRES_EPOCH_JDATE = 2451545;
const MIN_TIMESTAMP = -211813488000000000n;
const END_TIMESTAMP = 9223371331200000000n;
const INT_MAX = 2147483647;
const INT_MIN = -2147483648;

/** datetktbl: token -> [type, value]. */
const DATETKTBL: ReadonlyMap<string, readonly [number, number]> = new Map<string, readonly [number, number]>([
  ["-infinity", [RESERV, DTK_EARLY]],
  ["ad", [ADBC, 0]],
  ["allballs", [RESERV, DTK_ZULU]],
  ["am", [AMPM, AM]],
  ["apr", [MONTH, 4]],
  ["april", [MONTH, 4]],
  ["at", [IGNORE_DTF, 0]],
  ["aug", [MONTH, 8]],
  ["august", [MONTH, 8]],
  ["bc", [ADBC, BC]],
  ["d", [UNITS, DTK_DAY]],
  ["dec", [MONTH, 12]],
  ["december", [MONTH, 12]],
  ["dow", [UNITS, DTK_DOW]],
  ["doy", [UNITS, DTK_DOY]],
  ["dst", [DTZMOD, 3600]],
  ["epoch", [RESERV, DTK_EPOCH]],
  ["feb", [MONTH, 2]],
  ["february", [MONTH, 2]],
  ["fri", [DOW, 5]],
  ["friday", [DOW, 5]],
  ["h", [UNITS, DTK_HOUR]],
  ["infinity", [RESERV, DTK_LATE]],
  ["isodow", [UNITS, DTK_ISODOW]],
  ["isoyear", [UNITS, DTK_ISOYEAR]],
  ["j", [UNITS, DTK_JULIAN]],
  ["jan", [MONTH, 1]],
  ["january", [MONTH, 1]],
  ["jd", [UNITS, DTK_JULIAN]],
  ["jul", [MONTH, 7]],
  ["julian", [UNITS, DTK_JULIAN]],
  ["july", [MONTH, 7]],
  ["jun", [MONTH, 6]],
  ["june", [MONTH, 6]],
  ["m", [UNITS, DTK_MONTH]],
  ["mar", [MONTH, 3]],
  ["march", [MONTH, 3]],
  ["may", [MONTH, 5]],
  ["mm", [UNITS, DTK_MINUTE]],
  ["mon", [DOW, 1]],
  ["monday", [DOW, 1]],
  ["nov", [MONTH, 11]],
  ["november", [MONTH, 11]],
  ["now", [RESERV, DTK_NOW]],
  ["oct", [MONTH, 10]],
  ["october", [MONTH, 10]],
  ["on", [IGNORE_DTF, 0]],
  ["pm", [AMPM, PM]],
  ["s", [UNITS, DTK_SECOND]],
  ["sat", [DOW, 6]],
  ["saturday", [DOW, 6]],
  ["sep", [MONTH, 9]],
  ["sept", [MONTH, 9]],
  ["september", [MONTH, 9]],
  ["sun", [DOW, 0]],
  ["sunday", [DOW, 0]],
  ["t", [ISOTIME, DTK_TIME]],
  ["thu", [DOW, 4]],
  ["thur", [DOW, 4]],
  ["thurs", [DOW, 4]],
  ["thursday", [DOW, 4]],
  ["today", [RESERV, DTK_TODAY]],
  ["tomorrow", [RESERV, DTK_TOMORROW]],
  ["tue", [DOW, 2]],
  ["tues", [DOW, 2]],
  ["tuesday", [DOW, 2]],
  ["wed", [DOW, 3]],
  ["wednesday", [DOW, 3]],
  ["weds", [DOW, 3]],
  ["y", [UNITS, DTK_YEAR]],
  ["yesterday", [RESERV, DTK_YESTERDAY]],
]);

const DAY_TAB = [
  [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0],
  [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0],
];

// ---- C-locale character classes (on UTF-16 code units; anything >= 0x80 is in no class) ------------------

function isspace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}
function isdigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isalpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}
function isalnum(c: number): boolean {
  return isdigit(c) || isalpha(c);
}
function ispunct(c: number): boolean {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}
function tolower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

// ---- C library emulation ---------------------------------------------------------------------------------

/** Result registers of {@link strtol} (module-level to avoid allocation). */
let strtolEnd = 0;
let strtolRange = false;

/**
 * C `strtol(s + start, &end, 10)`: skips whitespace, optional sign, digits. Sets {@link strtolEnd} (equal to
 * `start` when no digits) and {@link strtolRange} when the value does not fit `bits` (32 for strtoint, 64
 * for strtol/strtoi64). Returns the (clamped) value as a number.
 */
function strtol(s: string, start: number, bits: 32 | 64): number {
  let i = start;
  const n = s.length;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  let neg = false;
  if (i < n && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) {
    neg = s.charCodeAt(i) === 45;
    i++;
  }
  const digitsStart = i;
  while (i < n && isdigit(s.charCodeAt(i))) i++;
  strtolRange = false;
  if (i === digitsStart) {
    strtolEnd = start;
    return 0;
  }
  strtolEnd = i;
  const digits = s.slice(digitsStart, i);
  if (digits.length <= 15) {
    const v = neg ? -Number(digits) : Number(digits);
    if (bits === 32 && (v > INT_MAX || v < INT_MIN)) {
      strtolRange = true;
      return neg ? INT_MIN : INT_MAX;
    }
    return v;
  }
  let big = BigInt(digits);
  if (neg) big = -big;
  const max = bits === 32 ? 2147483647n : 9223372036854775807n;
  const min = bits === 32 ? -2147483648n : -9223372036854775808n;
  if (big > max || big < min) {
    strtolRange = true;
    return neg ? Number(min) : Number(max);
  }
  return Number(big);
}

/** C `atoi` as glibc implements it: `(int) strtol(s, NULL, 10)` (64-bit clamp, then 32-bit truncation). */
function atoi(s: string): number {
  let i = 0;
  const n = s.length;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  let neg = false;
  if (i < n && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) {
    neg = s.charCodeAt(i) === 45;
    i++;
  }
  const d0 = i;
  while (i < n && isdigit(s.charCodeAt(i))) i++;
  if (i === d0) return 0;
  const digits = s.slice(d0, i);
  if (digits.length <= 15) {
    return (neg ? -Number(digits) : Number(digits)) | 0;
  }
  let big = BigInt(digits);
  if (neg) big = -big;
  if (big > 9223372036854775807n) big = 9223372036854775807n;
  if (big < -9223372036854775808n) big = -9223372036854775808n;
  return Number(BigInt.asIntN(32, big));
}

/** C `rint` in the default rounding mode (half to even). */
function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** glibc strtod of a `.digits` string: value, or NaN for ERANGE (nonzero underflow). */
function fractionValue(s: string): number {
  const v = Number(s);
  if (v !== 0 && v < 2.2250738585072014e-308) return NaN;
  if (v === 0 && /[1-9]/.test(s)) return NaN;
  return v;
}

// ---- calendar helpers (int32 / uint32 semantics as in the C code) ------------------------------------------

function isleap(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

export function date2j(year: number, month: number, day: number): number {
  let y = year | 0;
  let m = month | 0;
  if (m > 2) {
    m = (m + 1) | 0;
    y = (y + 4800) | 0;
  } else {
    m = (m + 13) | 0;
    y = (y + 4799) | 0;
  }
  const century = (y / 100) | 0;
  let julian = (Math.imul(y, 365) - 32167) | 0;
  julian = (julian + ((y / 4) | 0) - century + ((century / 4) | 0)) | 0;
  julian = (julian + ((Math.imul(7834, m) / 256) | 0) + day) | 0;
  return julian;
}

/** Output registers of {@link j2date}. */
let jYear = 0;
let jMonth = 0;
let jDay = 0;

export function j2date(jd: number): void {
  let julian = (jd >>> 0) + 32044;
  julian = julian >>> 0;
  let quad = Math.floor(julian / 146097);
  const extra = (((julian - quad * 146097) >>> 0) * 4 + 3) >>> 0;
  julian = (julian + 60 + quad * 3 + Math.floor(extra / 146097)) >>> 0;
  quad = Math.floor(julian / 1461);
  julian = (julian - quad * 1461) >>> 0;
  let y = Math.floor((julian * 4) / 1461);
  julian = (y !== 0 ? (julian + 305) % 365 : (julian + 306) % 366) + 123;
  y = ((y + quad * 4) >>> 0) | 0;
  jYear = (y - 4800) | 0;
  quad = Math.floor((julian * 2141) / 65536);
  jDay = julian - Math.floor((7834 * quad) / 256);
  jMonth = ((quad + 10) % 12) + 1;
}

function timeOverflows(hour: number, min: number, sec: number, fsec: number): boolean {
  if (hour < 0 || hour > 24 || min < 0 || min >= 60 || sec < 0 || sec > 60 || fsec < 0 || fsec > 1000000) {
    return true;
  }
  return ((hour * 60 + min) * 60 + sec) * 1000000 + fsec > 86400000000;
}

// ---- parse state -------------------------------------------------------------------------------------------

/** Broken-down result of a decode (PG's struct pg_tm + fsec + tz + dtype). */
export interface DecodedDateTime {
  dtype: number;
  year: number;
  mon: number;
  mday: number;
  hour: number;
  min: number;
  sec: number;
  /** Microseconds, 0..1000000. */
  fsec: number;
  /** Seconds WEST of UTC, as PG's `*tzp` (valid when {@link tzGiven}). */
  tz: number;
  tzGiven: boolean;
  /** The DateOrder setting decided how a field was read (ambiguous D/M order). */
  usedDateOrder: boolean;
  /** Field that triggered a policy or time-zone error, for the message. */
  badToken: string;
}

class State implements DecodedDateTime {
  dtype = DTK_DATE;
  year = 0;
  mon = 0;
  mday = 0;
  hour = 0;
  min = 0;
  sec = 0;
  fsec = 0;
  tz = 0;
  tzGiven = false;
  usedDateOrder = false;
  badToken = "";
  yday = 0;
  wday = 0;
  isdst = -1;
  tmask = 0;
  is2digits = false;
  tzTmp = 0;
  isjulian = false;
  ftypeOverride = -1;
  order: DateOrder = DATEORDER_MDY;

  reset(order: DateOrder): void {
    this.dtype = DTK_DATE;
    this.year = 0;
    this.mon = 0;
    this.mday = 0;
    this.hour = 0;
    this.min = 0;
    this.sec = 0;
    this.fsec = 0;
    this.tz = 0;
    this.tzGiven = false;
    this.usedDateOrder = false;
    this.badToken = "";
    this.yday = 0;
    this.wday = 0;
    this.isdst = -1;
    this.tmask = 0;
    this.is2digits = false;
    this.tzTmp = 0;
    this.isjulian = false;
    this.ftypeOverride = -1;
    this.order = order;
  }
}

const st = new State();

// ---- ParseDateTime -----------------------------------------------------------------------------------------

/** Fields and field types of the last successful {@link parseDateTime}. */
export const fields: string[] = [];
export const ftypes: number[] = [];

/** ParseDateTime(): splits into fields. Returns the field count, or a DTERR code (< 0). */
export function parseDateTime(s: string, buflen: number): number {
  let nf = 0;
  let i = 0;
  const n = s.length;
  let used = 0; // bytes of workbuf used (fields + NUL terminators)
  fields.length = 0;
  ftypes.length = 0;
  while (i < n) {
    let c = s.charCodeAt(i);
    if (isspace(c)) {
      i++;
      continue;
    }
    if (nf >= MAXDATEFIELDS) return DTERR_BAD_FORMAT;
    let f = "";
    let ft: number;
    // APPEND_CHAR: fails when the buffer would overflow
    const room = (): boolean => used + 1 < buflen;
    if (isdigit(c)) {
      if (!room()) return DTERR_BAD_FORMAT;
      f += s[i++];
      used++;
      while (i < n && isdigit(s.charCodeAt(i))) {
        if (!room()) return DTERR_BAD_FORMAT;
        f += s[i++];
        used++;
      }
      c = i < n ? s.charCodeAt(i) : 0;
      if (c === 58 /* : */) {
        ft = DTK_TIME;
        if (!room()) return DTERR_BAD_FORMAT;
        f += s[i++];
        used++;
        while (i < n) {
          const d = s.charCodeAt(i);
          if (!(isdigit(d) || d === 58 || d === 46)) break;
          if (!room()) return DTERR_BAD_FORMAT;
          f += s[i++];
          used++;
        }
      } else if (c === 45 || c === 47 || c === 46) {
        const delim = c;
        if (!room()) return DTERR_BAD_FORMAT;
        f += s[i++];
        used++;
        if (i < n && isdigit(s.charCodeAt(i))) {
          ft = delim === 46 ? DTK_NUMBER : DTK_DATE;
          while (i < n && isdigit(s.charCodeAt(i))) {
            if (!room()) return DTERR_BAD_FORMAT;
            f += s[i++];
            used++;
          }
          if (i < n && s.charCodeAt(i) === delim) {
            ft = DTK_DATE;
            if (!room()) return DTERR_BAD_FORMAT;
            f += s[i++];
            used++;
            while (i < n && (isdigit(s.charCodeAt(i)) || s.charCodeAt(i) === delim)) {
              if (!room()) return DTERR_BAD_FORMAT;
              f += s[i++];
              used++;
            }
          }
        } else {
          ft = DTK_DATE;
          while (i < n && (isalnum(s.charCodeAt(i)) || s.charCodeAt(i) === delim)) {
            if (!room()) return DTERR_BAD_FORMAT;
            f += String.fromCharCode(tolower(s.charCodeAt(i++)));
            used++;
          }
        }
      } else {
        ft = DTK_NUMBER;
      }
    } else if (c === 46 /* . */) {
      if (!room()) return DTERR_BAD_FORMAT;
      f += s[i++];
      used++;
      while (i < n && isdigit(s.charCodeAt(i))) {
        if (!room()) return DTERR_BAD_FORMAT;
        f += s[i++];
        used++;
      }
      ft = DTK_NUMBER;
    } else if (isalpha(c)) {
      ft = DTK_STRING;
      if (!room()) return DTERR_BAD_FORMAT;
      f += String.fromCharCode(tolower(s.charCodeAt(i++)));
      used++;
      while (i < n && isalpha(s.charCodeAt(i))) {
        if (!room()) return DTERR_BAD_FORMAT;
        f += String.fromCharCode(tolower(s.charCodeAt(i++)));
        used++;
      }
      let isDate = false;
      const d = i < n ? s.charCodeAt(i) : 0;
      if (d === 45 || d === 47 || d === 46) {
        isDate = true;
      } else if (d === 43 || isdigit(d)) {
        if (!DATETKTBL.has(f)) isDate = true;
      }
      if (isDate) {
        ft = DTK_DATE;
        do {
          if (!room()) return DTERR_BAD_FORMAT;
          f += String.fromCharCode(tolower(s.charCodeAt(i++)));
          used++;
          if (i >= n) break;
          const e = s.charCodeAt(i);
          if (!(e === 43 || e === 45 || e === 47 || e === 95 || e === 46 || e === 58 || isalnum(e))) break;
        } while (true);
      }
    } else if (c === 43 || c === 45) {
      if (!room()) return DTERR_BAD_FORMAT;
      f += s[i++];
      used++;
      while (i < n && isspace(s.charCodeAt(i))) i++;
      const d = i < n ? s.charCodeAt(i) : 0;
      if (isdigit(d)) {
        ft = DTK_TZ;
        if (!room()) return DTERR_BAD_FORMAT;
        f += s[i++];
        used++;
        while (i < n) {
          const e = s.charCodeAt(i);
          if (!(isdigit(e) || e === 58 || e === 46 || e === 45)) break;
          if (!room()) return DTERR_BAD_FORMAT;
          f += s[i++];
          used++;
        }
      } else if (isalpha(d)) {
        ft = DTK_SPECIAL;
        if (!room()) return DTERR_BAD_FORMAT;
        f += String.fromCharCode(tolower(s.charCodeAt(i++)));
        used++;
        while (i < n && isalpha(s.charCodeAt(i))) {
          if (!room()) return DTERR_BAD_FORMAT;
          f += String.fromCharCode(tolower(s.charCodeAt(i++)));
          used++;
        }
      } else {
        return DTERR_BAD_FORMAT;
      }
    } else if (ispunct(c)) {
      i++;
      continue;
    } else {
      return DTERR_BAD_FORMAT;
    }
    used++; // NUL terminator (unchecked in PG)
    fields.push(f);
    ftypes.push(ft);
    nf++;
  }
  return nf;
}

// ---- field decoders ----------------------------------------------------------------------------------------

/** ParseFraction(): `.digits` to end of string; sets fracValue. */
let fracValue = 0;
function parseFraction(s: string, dot: number): number {
  if (dot + 1 === s.length) {
    fracValue = 0;
    return 0;
  }
  let i = dot + 1;
  while (i < s.length && isdigit(s.charCodeAt(i))) i++;
  // strtod on ".digits" stops at the first non-digit; "." followed by a non-digit parses nothing
  if (i === dot + 1 || i !== s.length) return DTERR_BAD_FORMAT;
  const v = fractionValue(s.slice(dot, i));
  if (Number.isNaN(v)) return DTERR_BAD_FORMAT;
  fracValue = v;
  return 0;
}

function parseFractionalSecond(s: string, dot: number): number {
  const e = parseFraction(s, dot);
  if (e) return e;
  st.fsec = rint(fracValue * 1000000);
  return 0;
}

function decodeSpecial(token: string): readonly [number, number] {
  return DATETKTBL.get(token) ?? UNKNOWN_RESULT;
}
const UNKNOWN_RESULT = [UNKNOWN_FIELD, 0] as const;

function decodeTimezone(s: string): number {
  const c0 = s.charCodeAt(0);
  if (c0 !== 43 && c0 !== 45) return DTERR_BAD_FORMAT;
  let hr = strtol(s, 1, 32);
  if (strtolRange) return DTERR_TZDISP_OVERFLOW;
  let cp = strtolEnd;
  let min: number;
  let sec = 0;
  if (s.charCodeAt(cp) === 58) {
    min = strtol(s, cp + 1, 32);
    if (strtolRange) return DTERR_TZDISP_OVERFLOW;
    cp = strtolEnd;
    if (s.charCodeAt(cp) === 58) {
      sec = strtol(s, cp + 1, 32);
      if (strtolRange) return DTERR_TZDISP_OVERFLOW;
      cp = strtolEnd;
    }
  } else if (cp === s.length && s.length > 3) {
    min = hr % 100;
    hr = (hr / 100) | 0;
  } else {
    min = 0;
  }
  if (hr < 0 || hr > 15) return DTERR_TZDISP_OVERFLOW;
  if (min < 0 || min >= 60) return DTERR_TZDISP_OVERFLOW;
  if (sec < 0 || sec >= 60) return DTERR_TZDISP_OVERFLOW;
  let tz = (hr * 60 + min) * 60 + sec;
  if (c0 === 45) tz = -tz;
  st.tzTmp = -tz;
  if (cp !== s.length) return DTERR_BAD_FORMAT;
  return 0;
}

function decodeNumberField(len: number, str: string, fmask: number): number {
  let s = str;
  const dot = s.indexOf(".");
  if (dot >= 0) {
    if (dot + 1 === s.length) {
      st.fsec = 0;
    } else {
      // strtod(cp, NULL): parses ".digits" as far as it goes; trailing junk is ignored
      let i = dot + 1;
      while (i < s.length && isdigit(s.charCodeAt(i))) i++;
      const frac = i === dot + 1 ? 0 : fractionValue(s.slice(dot, i));
      if (Number.isNaN(frac)) return DTERR_BAD_FORMAT;
      st.fsec = rint(frac * 1000000);
    }
    s = s.slice(0, dot);
    len = s.length;
  } else if ((fmask & DTK_DATE_M) !== DTK_DATE_M) {
    if (len >= 6) {
      st.tmask = DTK_DATE_M;
      st.mday = atoi(s.slice(len - 2));
      st.mon = atoi(s.slice(len - 4, len - 2));
      st.year = atoi(s.slice(0, len - 4));
      if (len - 4 === 2) st.is2digits = true;
      return DTK_DATE;
    }
  }
  if ((fmask & DTK_TIME_M) !== DTK_TIME_M) {
    if (len === 6) {
      st.tmask = DTK_TIME_M;
      st.sec = atoi(s.slice(4));
      st.min = atoi(s.slice(2, 4));
      st.hour = atoi(s.slice(0, 2));
      return DTK_TIME;
    } else if (len === 4) {
      st.tmask = DTK_TIME_M;
      st.sec = 0;
      st.min = atoi(s.slice(2));
      st.hour = atoi(s.slice(0, 2));
      return DTK_TIME;
    }
  }
  return DTERR_BAD_FORMAT;
}

function decodeNumber(flen: number, str: string, haveTextMonth: boolean, fmask: number): number {
  st.tmask = 0;
  const val = strtol(str, 0, 32);
  if (strtolRange) return DTERR_FIELD_OVERFLOW;
  const cp = strtolEnd;
  if (cp === 0) return DTERR_BAD_FORMAT;
  if (str.charCodeAt(cp) === 46) {
    if (cp > 2) {
      const e = decodeNumberField(flen, str, fmask | DTK_DATE_M);
      if (e < 0) return e;
      return 0;
    }
    const e = parseFractionalSecond(str, cp);
    if (e) return e;
  } else if (cp !== str.length) {
    return DTERR_BAD_FORMAT;
  }

  if (flen === 3 && (fmask & DTK_DATE_M) === M(YEAR) && val >= 1 && val <= 366) {
    st.tmask = M(DOY) | M(MONTH) | M(DAY);
    st.yday = val;
    return 0;
  }

  switch (fmask & DTK_DATE_M) {
    case 0:
      if (flen >= 3 || st.order === DATEORDER_YMD) {
        st.tmask = M(YEAR);
        st.year = val;
      } else {
        st.usedDateOrder = true;
        if (st.order === DATEORDER_DMY) {
          st.tmask = M(DAY);
          st.mday = val;
        } else {
          st.tmask = M(MONTH);
          st.mon = val;
        }
      }
      break;
    case M(YEAR):
      st.tmask = M(MONTH);
      st.mon = val;
      break;
    case M(MONTH):
      if (haveTextMonth) {
        if (flen >= 3 || st.order === DATEORDER_YMD) {
          st.tmask = M(YEAR);
          st.year = val;
        } else {
          st.tmask = M(DAY);
          st.mday = val;
        }
      } else {
        st.tmask = M(DAY);
        st.mday = val;
      }
      break;
    case M(YEAR) | M(MONTH):
      if (haveTextMonth) {
        if (flen >= 3 && st.is2digits) {
          st.tmask = M(DAY);
          st.mday = st.year;
          st.year = val;
          st.is2digits = false;
        } else {
          st.tmask = M(DAY);
          st.mday = val;
        }
      } else {
        st.tmask = M(DAY);
        st.mday = val;
      }
      break;
    case M(DAY):
      st.tmask = M(MONTH);
      st.mon = val;
      break;
    case M(MONTH) | M(DAY):
      st.tmask = M(YEAR);
      st.year = val;
      break;
    case DTK_DATE_M: {
      const e = decodeNumberField(flen, str, fmask);
      if (e < 0) return e;
      return 0;
    }
    default:
      return DTERR_BAD_FORMAT;
  }
  if (st.tmask === M(YEAR)) st.is2digits = flen <= 2;
  return 0;
}

function decodeDate(str: string, fmaskIn: number): number {
  let fmask = fmaskIn;
  let tmask = 0;
  let haveTextMonth = false;
  const dfields: (string | null)[] = [];
  let i = 0;
  const n = str.length;
  while (i < n && dfields.length < MAXDATEFIELDS) {
    while (i < n && !isalnum(str.charCodeAt(i))) i++;
    if (i >= n) return DTERR_BAD_FORMAT;
    const start = i;
    if (isdigit(str.charCodeAt(i))) {
      while (i < n && isdigit(str.charCodeAt(i))) i++;
    } else {
      while (i < n && isalpha(str.charCodeAt(i))) i++;
    }
    dfields.push(str.slice(start, i));
    if (i < n) i++; // the terminator overwrites (and consumes) one character
  }
  for (let k = 0; k < dfields.length; k++) {
    const f = dfields[k]!;
    if (isalpha(f.charCodeAt(0))) {
      const [type, val] = decodeSpecial(f);
      if (type === IGNORE_DTF) continue;
      const dmask = M(type);
      if (type === MONTH) {
        st.mon = val;
        haveTextMonth = true;
      } else {
        return DTERR_BAD_FORMAT;
      }
      if (fmask & dmask) return DTERR_BAD_FORMAT;
      fmask |= dmask;
      tmask |= dmask;
      dfields[k] = null;
    }
  }
  for (let k = 0; k < dfields.length; k++) {
    const f = dfields[k];
    if (f === null) continue;
    if (f.length <= 0) return DTERR_BAD_FORMAT;
    const savedFsec = st.fsec; // DecodeDate passes a local fsec
    const e = decodeNumber(f.length, f, haveTextMonth, fmask);
    st.fsec = savedFsec;
    if (e) return e;
    const dmask = st.tmask;
    if (fmask & dmask) return DTERR_BAD_FORMAT;
    fmask |= dmask;
    tmask |= dmask;
  }
  st.tmask = tmask;
  if ((fmask & ~(M(DOY) | M(TZ))) !== DTK_DATE_M) return DTERR_BAD_FORMAT;
  return 0;
}

function validateDate(fmask: number, isjulian: boolean, is2digits: boolean, bc: boolean): number {
  if (fmask & M(YEAR)) {
    if (isjulian) {
      // year is correct
    } else if (bc) {
      if (st.year <= 0) return DTERR_FIELD_OVERFLOW;
      st.year = -(st.year - 1) | 0;
    } else if (is2digits) {
      if (st.year < 0) return DTERR_FIELD_OVERFLOW;
      if (st.year < 70) st.year += 2000;
      else if (st.year < 100) st.year += 1900;
    } else {
      if (st.year <= 0) return DTERR_FIELD_OVERFLOW;
    }
  }
  if (fmask & M(DOY)) {
    j2date((date2j(st.year, 1, 1) + st.yday - 1) | 0);
    st.year = jYear;
    st.mon = jMonth;
    st.mday = jDay;
  }
  if (fmask & M(MONTH)) {
    if (st.mon < 1 || st.mon > 12) return DTERR_MD_FIELD_OVERFLOW;
  }
  if (fmask & M(DAY)) {
    if (st.mday < 1 || st.mday > 31) return DTERR_MD_FIELD_OVERFLOW;
  }
  if ((fmask & DTK_DATE_M) === DTK_DATE_M) {
    if (st.mday > DAY_TAB[isleap(st.year) ? 1 : 0][st.mon - 1]) return DTERR_FIELD_OVERFLOW;
  }
  return 0;
}

/** DecodeTimeCommon() + DecodeTime() for timestamps (INTERVAL_FULL_RANGE). */
function decodeTime(str: string): number {
  st.tmask = DTK_TIME_M;
  let fsec = 0;
  let hour = strtol(str, 0, 64);
  if (strtolRange) return DTERR_FIELD_OVERFLOW;
  let cp = strtolEnd;
  if (str.charCodeAt(cp) !== 58) return DTERR_BAD_FORMAT;
  let min = strtol(str, cp + 1, 32);
  if (strtolRange) return DTERR_FIELD_OVERFLOW;
  cp = strtolEnd;
  let sec: number;
  if (cp === str.length) {
    sec = 0;
  } else if (str.charCodeAt(cp) === 46) {
    const saved = st.fsec;
    const e = parseFractionalSecond(str, cp);
    fsec = st.fsec;
    st.fsec = saved;
    if (e) return e;
    if (hour > INT_MAX || hour < INT_MIN) return DTERR_FIELD_OVERFLOW;
    sec = min;
    min = hour;
    hour = 0;
  } else if (str.charCodeAt(cp) === 58) {
    sec = strtol(str, cp + 1, 32);
    if (strtolRange) return DTERR_FIELD_OVERFLOW;
    cp = strtolEnd;
    if (str.charCodeAt(cp) === 46) {
      const saved = st.fsec;
      const e = parseFractionalSecond(str, cp);
      fsec = st.fsec;
      st.fsec = saved;
      if (e) return e;
    } else if (cp !== str.length) {
      return DTERR_BAD_FORMAT;
    }
  } else {
    return DTERR_BAD_FORMAT;
  }
  if (hour < 0 || min < 0 || min > 59 || sec < 0 || sec > 60 || fsec < 0 || fsec > 1000000) {
    return DTERR_FIELD_OVERFLOW;
  }
  if (hour > INT_MAX) return DTERR_FIELD_OVERFLOW;
  st.hour = hour;
  st.min = min;
  st.sec = sec;
  st.fsec = fsec;
  return 0;
}

/** Looks a word up in the abbreviation table, then the keyword table (DecodeTimezoneAbbrev, DecodeSpecial). */
function lookupWord(token: string): readonly [number, number] {
  const ab = TZ_ABBREVS.get(token);
  if (ab !== undefined) {
    if (ab.offset === null) {
      return DYNTZ_RESULT;
    }
    return [ab.isDst ? DTZ : TZ, ab.offset];
  }
  return decodeSpecial(token);
}
const DYNTZ_RESULT = [DYNTZ, 0] as const;

/** Shared handling of the `ptype` (labelled ISO field) numeric case of DecodeDateTime/DecodeTimeOnly. */
function decodeLabelled(
  field: string,
  ptype: number,
  fmask: number,
  timeOnly: boolean,
): number {
  const val = strtol(field, 0, 32);
  if (strtolRange) return DTERR_FIELD_OVERFLOW;
  const cp = strtolEnd;
  if (field.charCodeAt(cp) === 46) {
    if (ptype !== DTK_JULIAN && ptype !== DTK_TIME && ptype !== DTK_SECOND) return DTERR_BAD_FORMAT;
  } else if (cp !== field.length) {
    return DTERR_BAD_FORMAT;
  }
  switch (ptype) {
    case DTK_YEAR:
      st.year = val;
      st.tmask = M(YEAR);
      break;
    case DTK_MONTH:
      if ((fmask & M(MONTH)) !== 0 && (fmask & M(HOUR)) !== 0) {
        st.min = val;
        st.tmask = M(MINUTE);
      } else {
        st.mon = val;
        st.tmask = M(MONTH);
      }
      break;
    case DTK_DAY:
      st.mday = val;
      st.tmask = M(DAY);
      break;
    case DTK_HOUR:
      st.hour = val;
      st.tmask = M(HOUR);
      break;
    case DTK_MINUTE:
      st.min = val;
      st.tmask = M(MINUTE);
      break;
    case DTK_SECOND:
      st.sec = val;
      st.tmask = M(SECOND);
      if (field.charCodeAt(cp) === 46) {
        const e = parseFractionalSecond(field, cp);
        if (e) return e;
        st.tmask = DTK_ALL_SECS_M;
      }
      break;
    case DTK_JULIAN: {
      if (val < 0) return DTERR_FIELD_OVERFLOW;
      st.tmask = DTK_DATE_M;
      j2date(val);
      st.year = jYear;
      st.mon = jMonth;
      st.mday = jDay;
      st.isjulian = true;
      if (field.charCodeAt(cp) === 46) {
        const e = parseFraction(field, cp);
        if (e) return e;
        let time = Math.trunc(fracValue * 86400000000);
        st.hour = Math.trunc(time / 3600000000);
        time -= st.hour * 3600000000;
        st.min = Math.trunc(time / 60000000);
        time -= st.min * 60000000;
        st.sec = Math.trunc(time / 1000000);
        st.fsec = time - st.sec * 1000000;
        st.tmask |= DTK_TIME_M;
      }
      break;
    }
    case DTK_TIME: {
      const e = decodeNumberField(field.length, field, fmask | DTK_DATE_M);
      if (e < 0) return e;
      if (timeOnly) st.ftypeOverride = e;
      if (st.tmask !== DTK_TIME_M) return DTERR_BAD_FORMAT;
      break;
    }
    default:
      return DTERR_BAD_FORMAT;
  }
  return 0;
}

/**
 * DecodeDateTime() for date_in / timestamp_in / timestamptz_in (time zones allowed). Returns 0 on success,
 * 1 for "time only" (an error for all callers), or a DTERR code. The result is in {@link decoded}.
 */
export function decodeDateTime(nf: number, order: DateOrder): number {
  st.reset(order);
  let fmask = 0;
  let tmask = 0;
  let ptype = 0;
  let mer = HR24;
  let haveTextMonth = false;
  let bc = false;
  /** The special value (`epoch`, `infinity`, `-infinity`) read, if any. */
  let special = "";

  for (let i = 0; i < nf; i++) {
    const field = fields[i];
    switch (ftypes[i]) {
      case DTK_DATE: {
        if (ptype === DTK_JULIAN) {
          const val = strtol(field, 0, 32);
          if (strtolRange || val < 0) return DTERR_FIELD_OVERFLOW;
          j2date(val);
          st.year = jYear;
          st.mon = jMonth;
          st.mday = jDay;
          st.isjulian = true;
          const e = decodeTimezone(field.slice(strtolEnd));
          if (e) return e;
          st.tz = st.tzTmp;
          tmask = DTK_DATE_M | DTK_TIME_M | M(TZ);
          ptype = 0;
          break;
        } else if (ptype !== 0 || (fmask & (M(MONTH) | M(DAY))) === (M(MONTH) | M(DAY))) {
          if (isdigit(field.charCodeAt(0)) || ptype !== 0) {
            if (ptype !== 0) {
              if (ptype !== DTK_TIME) return DTERR_BAD_FORMAT;
              ptype = 0;
            }
            if ((fmask & DTK_TIME_M) === DTK_TIME_M) return DTERR_BAD_FORMAT;
            const dash = field.indexOf("-");
            if (dash < 0) return DTERR_BAD_FORMAT;
            let e = decodeTimezone(field.slice(dash));
            if (e) return e;
            st.tz = st.tzTmp;
            const head = field.slice(0, dash);
            e = decodeNumberField(head.length, head, fmask);
            if (e < 0) return e;
            tmask = st.tmask | M(TZ);
          } else {
            st.badToken = field;
            return DTERR_POLICY_TZNAME;
          }
        } else {
          const e = decodeDate(field, fmask);
          if (e) return e;
          tmask = st.tmask;
        }
        break;
      }
      case DTK_TIME: {
        if (ptype !== 0) {
          if (ptype !== DTK_TIME) return DTERR_BAD_FORMAT;
          ptype = 0;
        }
        const e = decodeTime(field);
        if (e) return e;
        tmask = st.tmask;
        if (timeOverflows(st.hour, st.min, st.sec, st.fsec)) return DTERR_FIELD_OVERFLOW;
        break;
      }
      case DTK_TZ: {
        const e = decodeTimezone(field);
        if (e) return e;
        st.tz = st.tzTmp;
        tmask = M(TZ);
        break;
      }
      case DTK_NUMBER: {
        if (ptype !== 0) {
          const e = decodeLabelled(field, ptype, fmask, false);
          if (e) return e;
          tmask = st.tmask;
          ptype = 0;
          st.dtype = DTK_DATE;
        } else {
          const flen = field.length;
          const dot = field.indexOf(".");
          if (dot >= 0 && !(fmask & DTK_DATE_M)) {
            const e = decodeDate(field, fmask);
            if (e) return e;
            tmask = st.tmask;
          } else if (dot >= 0 && dot > 2) {
            const e = decodeNumberField(flen, field, fmask);
            if (e < 0) return e;
            tmask = st.tmask;
          } else if (flen >= 6 && (!(fmask & DTK_DATE_M) || !(fmask & DTK_TIME_M))) {
            const e = decodeNumberField(flen, field, fmask);
            if (e < 0) return e;
            tmask = st.tmask;
          } else {
            const e = decodeNumber(flen, field, haveTextMonth, fmask);
            if (e) return e;
            tmask = st.tmask;
          }
        }
        break;
      }
      case DTK_STRING:
      case DTK_SPECIAL: {
        const [type, val] = lookupWord(field);
        if (type === IGNORE_DTF) continue;
        tmask = M(type);
        switch (type) {
          case RESERV:
            switch (val) {
              case DTK_NOW:
              case DTK_YESTERDAY:
              case DTK_TODAY:
              case DTK_TOMORROW:
                st.badToken = field;
                return DTERR_POLICY_RELATIVE;
              case DTK_ZULU:
                tmask = DTK_TIME_M | M(TZ);
                st.dtype = DTK_DATE;
                st.hour = 0;
                st.min = 0;
                st.sec = 0;
                st.tz = 0;
                break;
              default:
                st.dtype = val;
                special = field;
            }
            break;
          case MONTH:
            if ((fmask & M(MONTH)) && !haveTextMonth && !(fmask & M(DAY)) && st.mon >= 1 && st.mon <= 31) {
              st.mday = st.mon;
              tmask = M(DAY);
            }
            haveTextMonth = true;
            st.mon = val;
            break;
          case DTZMOD:
            tmask |= M(DTZ);
            st.isdst = 1;
            st.tz -= val;
            break;
          case DTZ:
            tmask |= M(TZ);
            st.isdst = 1;
            st.tz = -val;
            break;
          case TZ:
            st.isdst = 0;
            st.tz = -val;
            break;
          case DYNTZ:
            st.badToken = field;
            return DTERR_POLICY_DYNTZ;
          case AMPM:
            mer = val;
            break;
          case ADBC:
            bc = val === BC;
            break;
          case DOW:
            st.wday = val;
            break;
          case UNITS:
            st.badToken = field;
            if (val !== DTK_JULIAN) return DTERR_POLICY_UNIT;
            // `J` before anything but a number (`J j0`, `J j0 00:00`): 15 reads it, 16+ refuse it.
            if (i >= nf - 1 || !isdigit(fields[i + 1].charCodeAt(0))) return DTERR_POLICY_UNIT;
            tmask = 0;
            ptype = val;
            break;
          case ISOTIME:
            tmask = 0;
            if ((fmask & DTK_DATE_M) !== DTK_DATE_M) return DTERR_BAD_FORMAT;
            if (
              i >= nf - 1 ||
              (ftypes[i + 1] !== DTK_NUMBER && ftypes[i + 1] !== DTK_TIME && ftypes[i + 1] !== DTK_DATE)
            ) {
              // 15 refuses `T` before anything but a time; 16+ reads some of these (`2000-01-01T+02 10:00`).
              st.badToken = field;
              return DTERR_POLICY_UNIT;
            }
            ptype = val;
            break;
          case UNKNOWN_FIELD:
            if (ftypes[i] === DTK_SPECIAL) {
              if (field === "+infinity") {
                st.badToken = field;
                return DTERR_POLICY_SPECIAL;
              }
              return DTERR_BAD_FORMAT;
            }
            st.badToken = field;
            return DTERR_POLICY_TZNAME;
          default:
            return DTERR_BAD_FORMAT;
        }
        break;
      }
      default:
        return DTERR_BAD_FORMAT;
    }
    if (tmask & fmask) return DTERR_BAD_FORMAT;
    fmask |= tmask;
  }

  // A unit label with no number after it (`2000-01-01 j`): PostgreSQL 16+ refuses it, 15 reads past it.
  if (ptype !== 0) return DTERR_POLICY_UNIT;

  // `epoch`, `infinity`, `-infinity` with anything else: PostgreSQL 16+ refuses it, 15 reads it.
  if (special !== "" && (fmask & ~M(RESERV)) !== 0) {
    st.badToken = special;
    return DTERR_POLICY_SPECIAL;
  }

  // A number read as month-or-day by DateOrder, then followed by a text month, ends up as the day under
  // both MDY and DMY (DecodeDateTime moves it): not ambiguous.
  if (haveTextMonth) st.usedDateOrder = false;

  let e = validateDate(fmask, st.isjulian, st.is2digits, bc);
  if (e) return e;

  if (mer !== HR24 && st.hour > 12) return DTERR_FIELD_OVERFLOW;
  if (mer === AM && st.hour === 12) st.hour = 0;
  else if (mer === PM && st.hour !== 12) st.hour += 12;

  if (st.dtype === DTK_DATE) {
    if ((fmask & DTK_DATE_M) !== DTK_DATE_M) {
      if ((fmask & DTK_TIME_M) === DTK_TIME_M) return 1;
      return DTERR_BAD_FORMAT;
    }
    if (!(fmask & M(TZ))) {
      if (fmask & M(DTZMOD)) return DTERR_BAD_FORMAT;
      st.tzGiven = false;
    } else {
      st.tzGiven = true;
    }
  }
  e = 0;
  return e;
}

/** DecodeTimeOnly() for time_in (time zones allowed, then ignored). */
export function decodeTimeOnly(nf: number, order: DateOrder): number {
  st.reset(order);
  let fmask = 0;
  let tmask = 0;
  let ptype = 0;
  let mer = HR24;
  let bc = false;
  const ft = ftypes;

  for (let i = 0; i < nf; i++) {
    const field = fields[i];
    switch (ft[i]) {
      case DTK_DATE: {
        if (i === 0 && nf >= 2 && (ft[nf - 1] === DTK_DATE || ft[1] === DTK_TIME)) {
          const e = decodeDate(field, fmask);
          if (e) return e;
          tmask = st.tmask;
        } else {
          if (isdigit(field.charCodeAt(0))) {
            if ((fmask & DTK_TIME_M) === DTK_TIME_M) return DTERR_BAD_FORMAT;
            const dash = field.indexOf("-");
            if (dash < 0) return DTERR_BAD_FORMAT;
            let e = decodeTimezone(field.slice(dash));
            if (e) return e;
            st.tz = st.tzTmp;
            const head = field.slice(0, dash);
            e = decodeNumberField(head.length, head, fmask | DTK_DATE_M);
            if (e < 0) return e;
            ft[i] = e;
            tmask = st.tmask | M(TZ);
          } else {
            st.badToken = field;
            return DTERR_POLICY_TZNAME;
          }
        }
        break;
      }
      case DTK_TIME: {
        const e = decodeTime(field);
        if (e) return e;
        tmask = st.tmask;
        break;
      }
      case DTK_TZ: {
        const e = decodeTimezone(field);
        if (e) return e;
        st.tz = st.tzTmp;
        tmask = M(TZ);
        break;
      }
      case DTK_NUMBER: {
        if (ptype !== 0) {
          st.ftypeOverride = -1;
          const e = decodeLabelled(field, ptype, fmask, true);
          if (e) return e;
          if (st.ftypeOverride >= 0) ft[i] = st.ftypeOverride;
          tmask = st.tmask;
          ptype = 0;
          st.dtype = DTK_DATE;
        } else {
          const flen = field.length;
          const dot = field.indexOf(".");
          if (dot >= 0) {
            if (i === 0 && nf >= 2 && ft[nf - 1] === DTK_DATE) {
              const e = decodeDate(field, fmask);
              if (e) return e;
              tmask = st.tmask;
            } else if (dot > 2) {
              const e = decodeNumberField(flen, field, fmask | DTK_DATE_M);
              if (e < 0) return e;
              ft[i] = e;
              tmask = st.tmask;
            } else {
              return DTERR_BAD_FORMAT;
            }
          } else if (flen > 4) {
            const e = decodeNumberField(flen, field, fmask | DTK_DATE_M);
            if (e < 0) return e;
            ft[i] = e;
            tmask = st.tmask;
          } else {
            const e = decodeNumber(flen, field, false, fmask | DTK_DATE_M);
            if (e) return e;
            tmask = st.tmask;
          }
        }
        break;
      }
      case DTK_STRING:
      case DTK_SPECIAL: {
        const [type, val] = lookupWord(field);
        if (type === IGNORE_DTF) continue;
        tmask = M(type);
        switch (type) {
          case RESERV:
            switch (val) {
              case DTK_NOW:
                st.badToken = field;
                return DTERR_POLICY_RELATIVE;
              case DTK_ZULU:
                tmask = DTK_TIME_M | M(TZ);
                st.hour = 0;
                st.min = 0;
                st.sec = 0;
                st.isdst = 0;
                break;
              default:
                return DTERR_BAD_FORMAT;
            }
            break;
          case DTZMOD:
            tmask |= M(DTZ);
            st.isdst = 1;
            st.tz -= val;
            break;
          case DTZ:
            tmask |= M(TZ);
            st.isdst = 1;
            st.tz = -val;
            ft[i] = DTK_TZ;
            break;
          case TZ:
            st.isdst = 0;
            st.tz = -val;
            ft[i] = DTK_TZ;
            break;
          case DYNTZ:
            st.badToken = field;
            return DTERR_POLICY_DYNTZ;
          case AMPM:
            mer = val;
            break;
          case ADBC:
            bc = val === BC;
            break;
          case UNITS:
            // time input: every unit label, julian included (`J 0:00 0`), is read differently by 15 and 16+.
            st.badToken = field;
            return DTERR_POLICY_UNIT;
          case ISOTIME:
            tmask = 0;
            if (
              i >= nf - 1 || (ft[i + 1] !== DTK_NUMBER && ft[i + 1] !== DTK_TIME && ft[i + 1] !== DTK_DATE)
            ) {
              st.badToken = field;
              return DTERR_POLICY_UNIT;
            }
            ptype = val;
            break;
          case UNKNOWN_FIELD:
            if (ft[i] === DTK_SPECIAL) return DTERR_BAD_FORMAT;
            st.badToken = field;
            return DTERR_POLICY_TZNAME;
          default:
            return DTERR_BAD_FORMAT;
        }
        break;
      }
      default:
        return DTERR_BAD_FORMAT;
    }
    if (tmask & fmask) return DTERR_BAD_FORMAT;
    fmask |= tmask;
  }
  // A unit label with no number after it: PostgreSQL 16+ refuses it, 15 reads past it.
  if (ptype !== 0) return DTERR_POLICY_UNIT;

  const e = validateDate(fmask, st.isjulian, st.is2digits, bc);
  if (e) return e;

  if (mer !== HR24 && st.hour > 12) return DTERR_FIELD_OVERFLOW;
  if (mer === AM && st.hour === 12) st.hour = 0;
  else if (mer === PM && st.hour !== 12) st.hour += 12;

  if (timeOverflows(st.hour, st.min, st.sec, st.fsec)) return DTERR_FIELD_OVERFLOW;
  if ((fmask & DTK_TIME_M) !== DTK_TIME_M) return DTERR_BAD_FORMAT;

  if (!(fmask & M(TZ))) {
    if (fmask & M(DTZMOD)) return DTERR_BAD_FORMAT;
    // PG uses the current date when no date was given, else requires a complete date
    if ((fmask & DTK_DATE_M) !== 0 && (fmask & DTK_DATE_M) !== DTK_DATE_M) return DTERR_BAD_FORMAT;
  }
  return 0;
}

/** The fields of the last decode. */
export const decoded: DecodedDateTime = st;

// ---- range checks and canonical output ---------------------------------------------------------------------

function pad2(n: number): string {
  return n < 10 ? "0" + n : "" + n;
}
function padYear(y: number): string {
  const s = "" + y;
  return s.length >= 4 ? s : "0000".slice(s.length) + s;
}
function pad6(n: number): string {
  const s = "" + n;
  return "000000".slice(s.length) + s;
}

function isValidJulian(y: number, m: number): boolean {
  return (y > -4713 || (y === -4713 && m >= 11)) && (y < 5874898 || (y === 5874898 && m < 6));
}

/**
 * date_in's checks after decoding. Returns the canonical date text (`YYYY-MM-DD[ BC]`, `infinity`,
 * `-infinity`, `epoch`) or null when out of range.
 */
export function formatDate(d: DecodedDateTime): string | null {
  switch (d.dtype) {
    case DTK_EPOCH:
      return "epoch";
    case DTK_LATE:
      return "infinity";
    case DTK_EARLY:
      return "-infinity";
  }
  if (!isValidJulian(d.year, d.mon)) return null;
  const date = date2j(d.year, d.mon, d.mday) - POSTGRES_EPOCH_JDATE;
  if (!(-POSTGRES_EPOCH_JDATE <= date && date < 2147483494 - POSTGRES_EPOCH_JDATE)) return null;
  return ymd(d.year, d.mon, d.mday);
}

function ymd(y: number, m: number, d: number): string {
  return y > 0
    ? padYear(y) + "-" + pad2(m) + "-" + pad2(d)
    : padYear(1 - y) + "-" + pad2(m) + "-" + pad2(d) + " BC";
}

/**
 * tm2timestamp() with int64 semantics: the timestamp in microseconds (UTC when `withZone` and a zone was
 * given; local otherwise), or null when out of range.
 */
function toTimestamp(d: DecodedDateTime, withZone: boolean): bigint | null {
  if (!isValidJulian(d.year, d.mon)) return null;
  const date = BigInt(date2j(d.year, d.mon, d.mday) - POSTGRES_EPOCH_JDATE);
  const secs32 = (Math.imul((Math.imul(d.hour, 60) + d.min) | 0, 60) + d.sec) | 0;
  const time = BigInt(secs32) * 1000000n + BigInt(d.fsec);
  let result = BigInt.asIntN(64, date * USECS_PER_DAY + time);
  if (BigInt.asIntN(64, result - time) / USECS_PER_DAY !== date) return null;
  if ((result < 0n && date > 0n) || (result > 0n && date < -1n)) return null;
  if (withZone) result = BigInt.asIntN(64, result + BigInt(d.tzGiven ? d.tz : 0) * 1000000n);
  if (!(MIN_TIMESTAMP <= result && result < END_TIMESTAMP)) return null;
  return result;
}

function formatMicros(ts: bigint, zone: string): string {
  let days = ts / USECS_PER_DAY;
  let rem = ts - days * USECS_PER_DAY;
  if (rem < 0n) {
    rem += USECS_PER_DAY;
    days -= 1n;
  }
  j2date(Number(days) + POSTGRES_EPOCH_JDATE);
  const r = Number(rem);
  const usec = r % 1000000;
  const secs = (r - usec) / 1000000;
  const hh = Math.floor(secs / 3600);
  const mm = Math.floor((secs % 3600) / 60);
  const ss = secs % 60;
  const time = pad2(hh) + ":" + pad2(mm) + ":" + pad2(ss) + (usec ? "." + pad6(usec) : "");
  return jYear > 0
    ? padYear(jYear) + "-" + pad2(jMonth) + "-" + pad2(jDay) + " " + time + zone
    : padYear(1 - jYear) + "-" + pad2(jMonth) + "-" + pad2(jDay) + " " + time + zone + " BC";
}

/**
 * timestamp_in / timestamptz_in checks after decoding. Returns canonical text, or null when out of range.
 * For timestamptz with an explicit zone the instant is written in UTC with `+00`; without a zone the local
 * time is written without a zone, so the loading session's TimeZone applies exactly as it would have.
 */
export function formatTimestamp(d: DecodedDateTime, withZone: boolean): string | null {
  switch (d.dtype) {
    case DTK_EPOCH:
      return "epoch";
    case DTK_LATE:
      return "infinity";
    case DTK_EARLY:
      return "-infinity";
  }
  const ts = toTimestamp(d, withZone);
  if (ts === null) return null;
  // without an explicit zone toTimestamp added no offset, so `ts` is the local time
  return formatMicros(ts, withZone && d.tzGiven ? "+00" : "");
}

/** time_in after decoding: canonical `HH:MM:SS[.ffffff]` (24:00:00 allowed, as in PG). */
export function formatTime(d: DecodedDateTime): string {
  const total = ((d.hour * 60 + d.min) * 60 + d.sec) * 1000000 + d.fsec;
  const usec = total % 1000000;
  const secs = (total - usec) / 1000000;
  return pad2(Math.floor(secs / 3600)) + ":" + pad2(Math.floor((secs % 3600) / 60)) + ":" + pad2(secs % 60) +
    (usec ? "." + pad6(usec) : "");
}
