/**
 * Validation of PostgreSQL 15 numeric input: int2/int4/int8 (numutils.c pg_strtoint16/32/64), numeric
 * (numeric.c numeric_in, set_var_from_str, apply_typmod, make_result) and float4/float8 (float.c float4in /
 * float8in over glibc strtof/strtod).
 *
 * Invariants:
 * - Each `check*` function returns {@link NUM_OK} exactly when PostgreSQL 15 accepts the string for that type
 *   (and typmod), otherwise the code of the error PostgreSQL raises first (syntax before range, as in PG).
 * - On success {@link numStart}/{@link numEnd} delimit the value without PG's ignorable surrounding
 *   whitespace (C `isspace`: space, \t, \n, \v, \f, \r). That slice, re-read by PostgreSQL, is the same value.
 *   For numeric, {@link numInnerSpace} flags whitespace inside (strtol lets it follow the exponent's `e`);
 *   callers remove it.
 * - Known divergences (rounding only, never syntax): float4 values exactly halfway between two floats after
 *   rounding to double first (double rounding), and hexadecimal floats at the overflow/underflow boundary.
 * - No allocation on the success path for integers; numeric allocates nothing either.
 */

export const NUM_OK = 0;
export const NUM_SYNTAX = 1;
export const NUM_RANGE = 2;
/** numeric: "value overflows numeric format". */
export const NUM_FORMAT_OVERFLOW = 3;
/** numeric(p,s): "numeric field overflow". */
export const NUM_FIELD_OVERFLOW = 4;
/** numeric(p,s): infinity cannot be stored. */
export const NUM_FIELD_INFINITE = 5;
/**
 * numeric: an exponent beyond +-(INT_MAX / 2): "value overflows numeric format" on PostgreSQL 15, while 16+
 * reads some of these (`0e1073741823` is 0), so callers refuse them by policy.
 */
export const NUM_EXPONENT_OVERFLOW = 6;

/** Start (inclusive) of the value after a successful check. */
export let numStart = 0;
/** End (exclusive) of the value after a successful check. */
export let numEnd = 0;
/** numeric only: whitespace occurs inside [numStart, numEnd). */
export let numInnerSpace = false;

function isspace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

// ---- integers --------------------------------------------------------------------------------------------

const INT64_MAG = "9223372036854775808";

/**
 * pg_strtoint16/32/64. `maxNeg` is the magnitude of the type's minimum (32768, 2147483648); int8 uses
 * {@link checkInt8}.
 */
export function checkInt(s: string, maxNeg: number): number {
  const n = s.length;
  let i = 0;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  const start = i;
  let neg = false;
  let c = s.charCodeAt(i);
  if (c === 45) {
    neg = true;
    c = s.charCodeAt(++i);
  } else if (c === 43) {
    c = s.charCodeAt(++i);
  }
  if (!(c >= 48 && c <= 57)) return NUM_SYNTAX;
  let mag = 0;
  do {
    mag = mag * 10 + (c - 48);
    if (mag > maxNeg) return NUM_RANGE;
    c = s.charCodeAt(++i);
  } while (c >= 48 && c <= 57);
  const end = i;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  if (i !== n) return NUM_SYNTAX;
  if (!neg && mag === maxNeg) return NUM_RANGE;
  numStart = start;
  numEnd = end;
  return NUM_OK;
}

/** pg_strtoint64, exact beyond 2^53 (compares the digit string with 9223372036854775808). */
export function checkInt8(s: string): number {
  const n = s.length;
  let i = 0;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  const start = i;
  let neg = false;
  let c = s.charCodeAt(i);
  if (c === 45) {
    neg = true;
    c = s.charCodeAt(++i);
  } else if (c === 43) {
    c = s.charCodeAt(++i);
  }
  if (!(c >= 48 && c <= 57)) return NUM_SYNTAX;
  while (c === 48) c = s.charCodeAt(++i); // leading zeros
  const sig = i;
  while (c >= 48 && c <= 57) {
    if (i - sig >= 19) return NUM_RANGE; // a 20th significant digit overflows during accumulation
    c = s.charCodeAt(++i);
  }
  const sigLen = i - sig;
  let atMin = false;
  if (sigLen === 19) {
    const digits = s.slice(sig, i);
    if (digits > INT64_MAG) return NUM_RANGE;
    atMin = digits === INT64_MAG;
  }
  const end = i;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  if (i !== n) return NUM_SYNTAX;
  if (!neg && atMin) return NUM_RANGE;
  numStart = start;
  numEnd = end;
  return NUM_OK;
}

// ---- numeric ---------------------------------------------------------------------------------------------

function prefixCi(s: string, at: number, word: string): boolean {
  if (at + word.length > s.length) return false;
  for (let k = 0; k < word.length; k++) {
    let c = s.charCodeAt(at + k);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== word.charCodeAt(k)) return false;
  }
  return true;
}

const NUMERIC_SPECIALS = ["nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf"] as const;
const INT_MAX_HALF = 1073741823;

/**
 * numeric_in with typmod (`precision` null = unconstrained). PG15 rules: NaN/[+-]Infinity/[+-]inf
 * case-insensitive; exponent via strtol (so `1e 5` is valid); numeric(p,s) rounds half away from zero to s
 * digits, then needs |x| < 10^(p-s); infinities do not fit a numeric(p,s); storage limits of the format.
 */
export function checkNumeric(s: string, precision: number | null, scale: number): number {
  const n = s.length;
  let i = 0;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  const start = i;
  numInnerSpace = false;
  // special values
  const c0 = s.charCodeAt(i) | 0x20;
  if (c0 === 0x6e /* n */ || c0 === 0x69 /* i */ || c0 === 0x2b || c0 === 0x2d) {
    for (const w of NUMERIC_SPECIALS) {
      if (prefixCi(s, i, w)) {
        let j = i + w.length;
        const end = j;
        while (j < n && isspace(s.charCodeAt(j))) j++;
        if (j !== n) return NUM_SYNTAX;
        if (precision !== null && w !== "nan") return NUM_FIELD_INFINITE;
        numStart = start;
        numEnd = end;
        return NUM_OK;
      }
    }
  }
  let c = s.charCodeAt(i);
  if (c === 43 || c === 45) c = s.charCodeAt(++i);
  let haveDp = false;
  let dp = -1;
  if (c === 46) {
    haveDp = true;
    dp = i;
    c = s.charCodeAt(++i);
  }
  if (!(c >= 48 && c <= 57)) return NUM_SYNTAX;
  const ds = dp >= 0 ? dp : i; // digit region start (may include the point)
  let nInt = 0;
  let nFrac = 0;
  let firstNz = -1; // digit index of the first nonzero digit
  let lastNz = -1;
  let nd = 0;
  for (;;) {
    if (c >= 48 && c <= 57) {
      if (c !== 48) {
        if (firstNz < 0) firstNz = nd;
        lastNz = nd;
      }
      nd++;
      if (haveDp) nFrac++;
      else nInt++;
      c = s.charCodeAt(++i);
    } else if (c === 46) {
      if (haveDp) return NUM_SYNTAX;
      haveDp = true;
      dp = i;
      c = s.charCodeAt(++i);
    } else {
      break;
    }
  }
  let exponent = 0;
  if (c === 101 || c === 69) {
    // strtol: whitespace, sign, digits
    let j = i + 1;
    while (j < n && isspace(s.charCodeAt(j))) j++;
    if (j > i + 1) numInnerSpace = true;
    let eneg = false;
    const sc = s.charCodeAt(j);
    if (sc === 43 || sc === 45) {
      eneg = sc === 45;
      j++;
    }
    const e0 = j;
    let ev = 0;
    while (j < n) {
      const d = s.charCodeAt(j);
      if (d < 48 || d > 57) break;
      if (ev < 1e12) ev = ev * 10 + (d - 48);
      j++;
    }
    if (j === e0) return NUM_SYNTAX;
    // trailing junk is a syntax error and PG reports it first only for the mantissa; the exponent range
    // check happens inside set_var_from_str, before the trailing-space scan
    if (ev >= INT_MAX_HALF) return NUM_EXPONENT_OVERFLOW;
    exponent = eneg ? -ev : ev;
    i = j;
  }
  const end = i;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  if (i !== n) return NUM_SYNTAX;

  let dscale = nFrac - exponent;
  if (dscale < 0) dscale = 0;
  if (precision === null) {
    if (dscale > 16383) return NUM_FORMAT_OVERFLOW;
    if (firstNz >= 0) {
      const dw = nInt - 1 + exponent - firstNz;
      const weight = Math.floor(dw / 4);
      if (weight > 32767 || weight < -32768) return NUM_FORMAT_OVERFLOW;
    }
  } else if (firstNz >= 0) {
    // round half away from zero at `scale` fractional digits, then check the integer digits
    const dw = nInt - 1 + exponent - firstNz;
    const count = dw + scale + 1; // significant digits kept
    const sigLen = lastNz - firstNz + 1;
    let resultDw = dw;
    let zero = false;
    if (count < sigLen) {
      if (count < 0) {
        zero = true;
      } else {
        const digitAt = (k: number): number => {
          const pos = ds + k + (dp >= 0 && ds + k >= dp ? 1 : 0);
          return s.charCodeAt(pos) - 48;
        };
        const roundUp = digitAt(firstNz + count) >= 5;
        if (count === 0) {
          if (roundUp) resultDw = dw + 1;
          else zero = true;
        } else if (roundUp) {
          let all9 = true;
          for (let k = 0; k < count; k++) {
            if (digitAt(firstNz + k) !== 9) {
              all9 = false;
              break;
            }
          }
          if (all9) resultDw = dw + 1;
        }
      }
    }
    if (!zero && resultDw + 1 > precision - scale) return NUM_FIELD_OVERFLOW;
  }
  numStart = start;
  numEnd = end;
  return NUM_OK;
}

// ---- float4 / float8 -------------------------------------------------------------------------------------

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

function isNanChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

/** Value parsed by the last {@link strtod} (NaN for nan, +-Infinity for inf input or overflow). */
let sdValue = 0;
/** Last {@link strtod} input was a literal infinity or nan (never ERANGE). */
let sdSpecial = false;
/** Last {@link strtod} mantissa had a nonzero digit. */
let sdNonzero = false;

/** glibc strtod syntax from `i`: returns the end index (== i when nothing was recognised). */
function strtod(s: string, i: number, single: boolean): number {
  const n = s.length;
  let j = i;
  let c = s.charCodeAt(j);
  let neg = false;
  if (c === 43 || c === 45) {
    neg = c === 45;
    c = s.charCodeAt(++j);
  }
  sdSpecial = false;
  sdNonzero = false;
  if (prefixCi(s, j, "inf")) {
    sdSpecial = true;
    sdValue = neg ? -Infinity : Infinity;
    return prefixCi(s, j, "infinity") ? j + 8 : j + 3;
  }
  if (prefixCi(s, j, "nan")) {
    sdSpecial = true;
    sdValue = NaN;
    let k = j + 3;
    if (s.charCodeAt(k) === 40 /* ( */) {
      let m = k + 1;
      while (m < n && isNanChar(s.charCodeAt(m))) m++;
      if (s.charCodeAt(m) === 41) k = m + 1;
    }
    return k;
  }
  // hexadecimal float
  if (c === 48 && (s.charCodeAt(j + 1) | 0x20) === 0x78) {
    let k = j + 2;
    const h0 = k;
    let mant = "";
    let fracDigits = 0;
    while (k < n && isHex(s.charCodeAt(k))) k++;
    mant = s.slice(h0, k);
    if (s.charCodeAt(k) === 46) {
      const f0 = k + 1;
      let m = f0;
      while (m < n && isHex(s.charCodeAt(m))) m++;
      if (mant.length > 0 || m > f0) {
        fracDigits = m - f0;
        mant += s.slice(f0, m);
        k = m;
      }
    }
    if (mant.length > 0) {
      let bexp = 0;
      if ((s.charCodeAt(k) | 0x20) === 0x70 /* p */) {
        let m = k + 1;
        let eneg = false;
        const sc = s.charCodeAt(m);
        if (sc === 43 || sc === 45) {
          eneg = sc === 45;
          m++;
        }
        const e0 = m;
        let ev = 0;
        while (m < n && s.charCodeAt(m) >= 48 && s.charCodeAt(m) <= 57) {
          if (ev < 1e9) ev = ev * 10 + (s.charCodeAt(m) - 48);
          m++;
        }
        if (m > e0) {
          bexp = eneg ? -ev : ev;
          k = m;
        }
      }
      sdValue = hexValue(mant, bexp - 4 * fracDigits, single);
      if (neg) sdValue = -sdValue;
      sdNonzero = /[1-9a-f]/i.test(mant);
      return k;
    }
    // "0x" without hex digits: strtod reads just the "0"
  }
  // decimal
  let k = j;
  let nd = 0;
  while (k < n && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 57) {
    if (s.charCodeAt(k) !== 48) sdNonzero = true;
    k++;
    nd++;
  }
  if (s.charCodeAt(k) === 46) {
    let m = k + 1;
    while (m < n && s.charCodeAt(m) >= 48 && s.charCodeAt(m) <= 57) {
      if (s.charCodeAt(m) !== 48) sdNonzero = true;
      m++;
      nd++;
    }
    if (nd > 0) k = m;
  }
  if (nd === 0) return i;
  if ((s.charCodeAt(k) | 0x20) === 0x65) {
    let m = k + 1;
    const sc = s.charCodeAt(m);
    if (sc === 43 || sc === 45) m++;
    const e0 = m;
    while (m < n && s.charCodeAt(m) >= 48 && s.charCodeAt(m) <= 57) m++;
    if (m > e0) k = m;
  }
  const v = Number(s.slice(j, k));
  sdValue = neg ? -v : v;
  if (single) sdValue = Math.fround(sdValue);
  return k;
}

function hexValue(mant: string, exp2: number, single: boolean): number {
  let m = BigInt("0x" + mant);
  if (m === 0n) return 0;
  const bits = m.toString(2).length;
  // keep 64 significant bits plus a sticky bit so Number() rounds correctly
  if (bits > 64) {
    const drop = BigInt(bits - 64);
    const sticky = (m & ((1n << drop) - 1n)) !== 0n ? 1n : 0n;
    m = (m >> drop) | sticky;
    exp2 += bits - 64;
  }
  let v = Number(m);
  const e = exp2;
  // scale in two steps to avoid spurious overflow/underflow of the intermediate
  const half = Math.trunc(e / 2);
  v = v * Math.pow(2, half) * Math.pow(2, e - half);
  return single ? Math.fround(v) : v;
}

/** float8in (`single` false) / float4in (`single` true). */
export function checkFloat(s: string, single: boolean): number {
  const n = s.length;
  let i = 0;
  while (i < n && isspace(s.charCodeAt(i))) i++;
  if (i === n) return NUM_SYNTAX;
  const start = i;
  const end = strtod(s, i, single);
  if (end === i) return NUM_SYNTAX;
  if (!sdSpecial) {
    if (sdValue === Infinity || sdValue === -Infinity) return NUM_RANGE;
    if (sdValue === 0 && sdNonzero) return NUM_RANGE;
  }
  let j = end;
  while (j < n && isspace(s.charCodeAt(j))) j++;
  if (j !== n) return NUM_SYNTAX;
  numStart = start;
  numEnd = end;
  return NUM_OK;
}
