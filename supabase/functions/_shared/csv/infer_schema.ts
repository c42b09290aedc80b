/**
 * Schema inference for "a table made from the file" (issue 15): from sampled records, a column list with one
 * PostgreSQL type per column, the `CREATE TABLE` statement for it, a table name from the object's path, and
 * the sampler that picks the records (windows spread over the whole file, read with range requests).
 *
 * Invariants:
 * - The loader's own validators decide. A column gets type T only if EVERY non-NULL sampled value is accepted
 *   by the converter the loader compiles for a column of type T (pg_types/convert.ts, strict: DateStyle
 *   `iso` and no `deferToServer`, which the chunk worker's settings only widen). So a sampled value never
 *   becomes a reject; a value outside the sample may (the loader then rejects its row: nothing is coerced).
 * - On top of the validator, each type has a shape a value must have (checked on the value without the
 *   surrounding whitespace PostgreSQL ignores), so that only values whose reading is plain and loses nothing
 *   are typed. PostgreSQL would accept far more (`+12`, `007`, `1` as a boolean, `Jan 5 2024`, a zone on a
 *   `timestamp`, which it drops); those keep the column text. The shapes, in precedence order (the first type
 *   every value fits wins; an all-NULL column is text):
 *   - bigint: `-?digits`, no leading zero (`007` is an identifier or a zip code: text, as DuckDB keeps it
 *     VARCHAR), no `+` (`+4420...` is a phone number), within bigint's range (beyond it: numeric);
 *   - numeric: the same with a fraction (`-1.50`, `.5`): exact, so `1.50` keeps its scale;
 *   - double precision: as numeric, plus exponents (`1e5`), `NaN`, `inf`/`Infinity` (what float input
 *     reads), chosen only when a value needs that syntax and every value has at most 15 significant digits in
 *     double's normal range (so the double prints back as the same number); otherwise numeric, which reads
 *     exponents, NaN and Infinity exactly;
 *   - boolean: `true`/`false`/`t`/`f`/`yes`/`no`, any case (DuckDB's words; its `y`/`n` stay text, and so does
 *     a `1`/`0` column: bigint). PostgreSQL's boolean input accepts all of these;
 *   - date: `YYYY-MM-DD` or `YYYY/MM/DD` (one or two digit month and day): year first reads the same under
 *     every DateStyle. `01/02/2024` and other day/month-order forms are text;
 *   - timestamp: such a date, `T` or a space, `HH:MM[:SS[.fraction]]`, no zone (a date alone also fits: a
 *     column mixing dates and timestamps is timestamp);
 *   - timestamptz: the same with a zone: `Z`, `UTC`, `GMT`, `+HH`, `+HHMM`, `+HH:MM` (a column mixing zoned
 *     and unzoned values is text: the unzoned ones would take the session's time zone);
 *   - time: `HH:MM[:SS[.fraction]]`, no zone, no AM/PM;
 *   - uuid: the canonical 8-4-4-4-12 hex form;
 *   - jsonb: starts with `{` or `[` and is JSON;
 *   - text: anything, including the empty string.
 * - NULL is an unquoted empty field (`null` in the records, as the parser returns it), which every type holds.
 *   A quoted empty field `""` is the empty string, a value: COPY refuses it for every type but text, so a
 *   column holding one is text (DuckDB reads `""` as NULL and would type such a column).
 * - Names: from the header, else `column_N` (1-based); each normalised to a lower-case identifier usable
 *   without quotes ({@link identifierFrom}): NFKC, lower case, every run of characters other than letters,
 *   marks, digits and `_` turned into one `_` (none added at either end), `c_` before a leading ASCII digit,
 *   `_` after a reserved word or a system column name (`order_`, `xmin_`), at most 63 bytes (cut at a
 *   character boundary), `column_N` when nothing is left; a repeat gets `_2`, `_3`, ... (the first free one,
 *   in column order). The statements quote every identifier anyway.
 * - Deterministic: the same header and records give the same columns; the same path the same table name.
 *
 * Sampling ({@link sampleWindows}, {@link recordsFromWindows}): up to 20 windows of 64 KiB at evenly spaced
 * offsets, the first at the first data record, the last ending at the end of the file (the whole file when it
 * is no bigger than the windows). A window after the first starts its records after its first record
 * terminator, and a record cut by a window's end is dropped. A window that starts inside a quoted field that
 * spans lines reads that window's quotes inverted; its records then mostly have the wrong field count and are
 * skipped by the inference (records whose field count is not the table's are skipped, as the loader would
 * reject them).
 */

import { builtinColumn } from "../pg_types/columns.ts";
import { compileConverter, type Converter } from "../pg_types/convert.ts";
import { quoteIdent } from "../load/loader.ts";
import { CsvError } from "./errors.ts";
import type { CsvFormat } from "./format.ts";
import { createRecordParser } from "./parser.ts";
import { textCodec } from "./encoding.ts";
import { indexOfUnit } from "./utf16.ts";

/** The types inference can choose, in precedence order (narrowest first). */
export const INFERRED_TYPES = [
  "bigint",
  "numeric",
  "double precision",
  "boolean",
  "date",
  "timestamp",
  "timestamptz",
  "time",
  "uuid",
  "jsonb",
  "text",
] as const;

export type InferredType = typeof INFERRED_TYPES[number];

/** What the sample showed about one column. */
export interface ColumnEvidence {
  /** Sampled records that have this column (records of another field count are skipped). */
  readonly sampled: number;
  /** NULLs among them (unquoted empty fields). */
  readonly nulls: number;
  /** Quoted empty fields (`""`): the empty string, which only text holds. */
  readonly emptyStrings: number;
  /** The first non-NULL value sampled, or null. */
  readonly example: string | null;
  /** For each type narrower than the chosen one that some value did not fit: the first such value. */
  readonly ruledOut: Readonly<Partial<Record<InferredType, string>>>;
}

export interface InferredColumn {
  /** Normalised, deduplicated identifier (unquoted). */
  readonly name: string;
  /** The header's name as written, or null without a header. */
  readonly sourceName: string | null;
  readonly type: InferredType;
  /** Always true: a table made from a file takes NULLs in every column. */
  readonly nullable: true;
  readonly evidence: ColumnEvidence;
}

export interface InferOptions {
  /**
   * Number of columns. Default: the header's length, or without a header the most common field count of the
   * records (the larger on a tie). Records with another field count are skipped.
   */
  readonly columnCount?: number;
}

/** Longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes). */
export const MAX_IDENTIFIER_BYTES = 63;

// ---- types --------------------------------------------------------------------------------------------------

const INT = /^-?(?:0|[1-9]\d*)$/;
const DECIMAL = /^-?(?:(?:0|[1-9]\d*)(?:\.\d+)?|\.\d+)$/;
const FLOAT = /^(?:-?(?:(?:0|[1-9]\d*)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?|nan|-?inf(?:inity)?)$/i;
const BOOLEAN = /^(?:true|false|t|f|yes|no)$/i;
const YMD = "\\d{4}([-/])\\d{1,2}\\1\\d{1,2}";
const CLOCK = "\\d{1,2}:\\d{2}(?::\\d{2}(?:\\.\\d+)?)?";
const DATE = new RegExp(`^${YMD}$`);
const TIMESTAMP = new RegExp(`^${YMD}[Tt ]${CLOCK}$`);
const TIMESTAMPTZ = new RegExp(`^${YMD}[Tt ]${CLOCK} ?(?:[Zz]|UTC|GMT|[-+]\\d{2}(?::?\\d{2})?)$`);
const TIME = new RegExp(`^${CLOCK}$`);
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Most significant digits a decimal may have for a double to print back as the same number. */
const DOUBLE_DIGITS = 15;
const MIN_NORMAL_DOUBLE = 2.2250738585072014e-308;

/** A finite decimal with at most 15 significant digits in double's normal range, or NaN / infinity. */
function survivesDouble(v: string): boolean {
  const x = Number(v);
  if (!Number.isFinite(x)) return true; // NaN, inf: the float words (FLOAT allows no other non-finite form)
  if (x !== 0 && Math.abs(x) < MIN_NORMAL_DOUBLE) return false;
  const mantissa = v.replace(/[eE].*$/, "").replace(/[-.]/g, "").replace(/^0+/, "").replace(/0+$/, "");
  return mantissa.length <= DOUBLE_DIGITS;
}

/** pg_type names of the inferred types, as the converter knows them. */
const BASE_TYPES: Record<InferredType, string> = {
  bigint: "int8",
  numeric: "numeric",
  "double precision": "float8",
  boolean: "bool",
  date: "date",
  timestamp: "timestamp",
  timestamptz: "timestamptz",
  time: "time",
  uuid: "uuid",
  jsonb: "jsonb",
  text: "text",
};

const VALIDATORS = Object.fromEntries(
  INFERRED_TYPES.map((
    t,
  ) => [t, compileConverter(builtinColumn("inferred", BASE_TYPES[t]), { dateStyle: "iso" })]),
) as Record<InferredType, Converter>;

/**
 * The converter the loader compiles for a column of `type` in a table made from a file, strict (module doc):
 * a string result means the value loads. For the tests and the quality benchmark.
 */
export function validatorFor(type: InferredType): Converter {
  return VALIDATORS[type];
}

/** A type with the shape its values must have; the list is in precedence order. */
interface Candidate {
  readonly type: InferredType;
  readonly shape: (trimmed: string) => boolean;
}

/** The second numeric candidate is the exact fallback for numbers with exponents that double cannot hold. */
const CANDIDATES: readonly Candidate[] = [
  { type: "bigint", shape: (v) => INT.test(v) },
  { type: "numeric", shape: (v) => DECIMAL.test(v) },
  { type: "double precision", shape: (v) => FLOAT.test(v) && survivesDouble(v) },
  { type: "numeric", shape: (v) => FLOAT.test(v) },
  { type: "boolean", shape: (v) => BOOLEAN.test(v) },
  { type: "date", shape: (v) => DATE.test(v) },
  { type: "timestamp", shape: (v) => TIMESTAMP.test(v) || DATE.test(v) },
  { type: "timestamptz", shape: (v) => TIMESTAMPTZ.test(v) },
  { type: "time", shape: (v) => TIME.test(v) },
  { type: "uuid", shape: (v) => UUID.test(v) },
  { type: "jsonb", shape: (v) => v.charCodeAt(0) === 0x7b || v.charCodeAt(0) === 0x5b },
];

/** PostgreSQL's isspace (space, \t, \n, \v, \f, \r): what its input functions ignore around a value. */
const SURROUNDING_SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

function fits(c: Candidate, value: string, trimmed: string): boolean {
  return c.shape(trimmed) && typeof VALIDATORS[c.type](value) === "string";
}

/**
 * Whether `value` (not NULL) fits `type` by this module's rule: one of the type's shapes and the loader's
 * validator. Text takes everything its validator takes (not NUL, not an unpaired surrogate).
 */
export function fitsType(value: string, type: InferredType): boolean {
  if (type === "text") return typeof VALIDATORS.text(value) === "string";
  const trimmed = value.replace(SURROUNDING_SPACE, "");
  return CANDIDATES.some((c) => c.type === type && fits(c, value, trimmed));
}

/** The narrowest type every one of `values` fits (NULLs skipped), with the first misfit of each type passed. */
export function inferType(
  values: Iterable<string | null>,
): { type: InferredType; ruledOut: Partial<Record<InferredType, string>> } {
  const alive = CANDIDATES.map(() => true);
  let aliveCount = CANDIDATES.length;
  const firstMisfit: (string | null)[] = CANDIDATES.map(() => null);
  let any = false;
  for (const value of values) {
    if (value === null) continue;
    any = true;
    if (aliveCount === 0) break;
    const trimmed = value.replace(SURROUNDING_SPACE, "");
    for (let i = 0; i < CANDIDATES.length; i++) {
      if (alive[i] && !fits(CANDIDATES[i], value, trimmed)) {
        alive[i] = false;
        aliveCount--;
        firstMisfit[i] = value;
      }
    }
  }
  const chosen = any ? alive.indexOf(true) : -1;
  const type = chosen === -1 ? "text" : CANDIDATES[chosen].type;
  const ruledOut: Partial<Record<InferredType, string>> = {};
  for (let i = 0; i < (chosen === -1 ? CANDIDATES.length : chosen); i++) {
    const t = CANDIDATES[i].type;
    if (firstMisfit[i] !== null && !(t in ruledOut) && t !== type) ruledOut[t] = firstMisfit[i]!;
  }
  return { type, ruledOut };
}

function mostCommonLength(records: readonly (readonly unknown[])[]): number {
  const counts = new Map<number, number>();
  for (const r of records) counts.set(r.length, (counts.get(r.length) ?? 0) + 1);
  let best = 0;
  let bestCount = 0;
  for (const [length, n] of counts) {
    if (n > bestCount || (n === bestCount && length > best)) [best, bestCount] = [length, n];
  }
  return best;
}

/**
 * Infers a column list from a header (or null) and sampled records (module doc for the rules). Records whose
 * field count is not the column count are skipped.
 */
export function inferColumns(
  header: readonly string[] | null,
  records: readonly (readonly (string | null)[])[],
  options: InferOptions = {},
): InferredColumn[] {
  const count = options.columnCount ?? header?.length ?? mostCommonLength(records);
  const rows = records.filter((r) => r.length === count);
  const names = columnNames(header, count);
  const columns: InferredColumn[] = [];
  for (let col = 0; col < count; col++) {
    let nulls = 0;
    let emptyStrings = 0;
    let example: string | null = null;
    for (const r of rows) {
      const v = r[col];
      if (v === null) nulls++;
      else {
        if (v === "") emptyStrings++;
        example ??= v;
      }
    }
    const { type, ruledOut } = inferType(rows.map((r) => r[col]));
    columns.push({
      name: names[col],
      sourceName: header?.[col] ?? null,
      type,
      nullable: true,
      evidence: { sampled: rows.length, nulls, emptyStrings, example, ruledOut },
    });
  }
  return columns;
}

// ---- names --------------------------------------------------------------------------------------------------

/**
 * PostgreSQL's reserved keywords and the type/function-name keywords (pg_get_keywords() catcode R or T on 17,
 * a superset of 15's): neither may name a column or a table unquoted.
 */
const RESERVED = new Set(
  ("all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate " +
    "collation column concurrently constraint create cross current_catalog current_date current_role " +
    "current_schema current_time current_timestamp current_user default deferrable desc distinct do else end " +
    "except false fetch for foreign freeze from full grant group having ilike in initially inner intersect " +
    "into is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null " +
    "offset on only or order outer overlaps placing primary references returning right select session_user " +
    "similar some symmetric system_user table tablesample then to trailing true union unique user using " +
    "variadic verbose when where window with").split(" "),
);

/** System column names: CREATE TABLE refuses a column with one of these names even quoted. */
const SYSTEM_COLUMNS = new Set(["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid", "oid"]);

const encoder = new TextEncoder();

/** `s` cut to at most `max` UTF-8 bytes at a code point boundary. */
function clipBytes(s: string, max: number): string {
  if (encoder.encode(s).length <= max) return s;
  let out = "";
  let bytes = 0;
  for (const ch of s) {
    const n = encoder.encode(ch).length;
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

export interface IdentifierOptions {
  /** Goes before a leading ASCII digit. Default `c_`. */
  readonly digitPrefix?: string;
  /** A column name: system column names get the `_` suffix too. */
  readonly column?: boolean;
}

/**
 * A lower-case identifier usable without quotes, from any text (module doc for the rule), or `fallback` when
 * nothing usable is left.
 */
export function identifierFrom(raw: string, fallback: string, options: IdentifierOptions = {}): string {
  let name = raw.normalize("NFKC").toLowerCase().split(/[^\p{L}\p{M}\p{N}_]+/u).filter((p) => p !== "")
    .join("_");
  if (name === "") name = fallback;
  if (/^[0-9]/.test(name)) name = (options.digitPrefix ?? "c_") + name;
  name = clipBytes(name, MAX_IDENTIFIER_BYTES);
  if (RESERVED.has(name) || (options.column === true && SYSTEM_COLUMNS.has(name))) name += "_";
  return name;
}

/** Column names for a header (or none) of `count` columns: normalised, empty ones filled, repeats numbered. */
export function columnNames(header: readonly (string | null)[] | null, count: number): string[] {
  const taken = new Set<string>();
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const base = identifierFrom(header?.[i] ?? "", `column_${i + 1}`, { digitPrefix: "c_", column: true });
    let name = base;
    for (let k = 2; taken.has(name); k++) {
      const suffix = `_${k}`;
      name = clipBytes(base, MAX_IDENTIFIER_BYTES - suffix.length) + suffix;
    }
    taken.add(name);
    names.push(name);
  }
  return names;
}

/** Extensions {@link tableNameFromPath} removes: a compression suffix, then one text-table suffix. */
const COMPRESSION_SUFFIX = /\.(?:gz|gzip)$/i;
const TABLE_SUFFIX = /\.(?:csv|tsv|tab|psv|txt)$/i;

/** Table name when the path leaves nothing usable (`.csv`, `___.csv`). */
export const FALLBACK_TABLE_NAME = "imported_csv";

/**
 * The table name for an uploaded object: its base name without `.csv`/`.tsv`/`.tab`/`.psv`/`.txt` (and a
 * `.gz` after one), normalised as column names are, `t_` before a leading digit, at most 63 bytes.
 * Deterministic; two paths may give the same name (`a/sales.csv`, `b/Sales.CSV`): collisions are the
 * caller's business.
 */
export function tableNameFromPath(objectPath: string): string {
  let base = objectPath.slice(objectPath.lastIndexOf("/") + 1);
  base = base.replace(COMPRESSION_SUFFIX, "").replace(TABLE_SUFFIX, "");
  return identifierFrom(base, FALLBACK_TABLE_NAME, { digitPrefix: "t_" });
}

/**
 * `create table "schema"."table" ("col" type, ...)` for inferred (or any named and typed) columns, every
 * identifier quoted. Throws RangeError on no columns or a repeated column name (PostgreSQL would refuse both
 * later, with less context).
 */
export function createTableSql(
  schema: string,
  table: string,
  columns: readonly { readonly name: string; readonly type: InferredType }[],
): string {
  if (columns.length === 0) throw new RangeError(`Table "${table}" needs at least one column`);
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c.name)) throw new RangeError(`Column name "${c.name}" appears twice`);
    seen.add(c.name);
  }
  const list = columns.map((c) => `  ${quoteIdent(c.name)} ${c.type}`).join(",\n");
  return `create table ${quoteIdent(schema)}.${quoteIdent(table)} (\n${list}\n)`;
}

// ---- sampling -----------------------------------------------------------------------------------------------

/** A byte range `[start, end)` of the file. */
export interface SampleWindow {
  readonly start: number;
  readonly end: number;
}

export interface SampleWindowOptions {
  /** Offset of the first data record (the dialect's `dataStart`): the first window starts there. Default 0. */
  readonly dataStart?: number;
  /** Bytes per window. Default {@link SAMPLE_WINDOW_BYTES}. */
  readonly windowBytes?: number;
  /** Most windows. Default {@link SAMPLE_MAX_WINDOWS}. */
  readonly maxWindows?: number;
}

export const SAMPLE_WINDOW_BYTES = 64 * 1024;
export const SAMPLE_MAX_WINDOWS = 20;

/**
 * The windows to read for inference: the whole data `[dataStart, fileSize)` as one window when it is no larger
 * than `maxWindows` windows, else `maxWindows` windows of `windowBytes` at evenly spaced offsets, the first at
 * `dataStart`, the last ending at `fileSize`. Windows never overlap and are in file order.
 */
export function sampleWindows(fileSize: number, options: SampleWindowOptions = {}): SampleWindow[] {
  const dataStart = options.dataStart ?? 0;
  const size = options.windowBytes ?? SAMPLE_WINDOW_BYTES;
  const max = options.maxWindows ?? SAMPLE_MAX_WINDOWS;
  if (!Number.isInteger(size) || size <= 0 || !Number.isInteger(max) || max < 1 || dataStart < 0) {
    throw new RangeError("windowBytes and maxWindows must be positive integers and dataStart not negative");
  }
  const span = fileSize - dataStart;
  if (span <= 0) return [];
  if (span <= size * max) return [{ start: dataStart, end: fileSize }];
  if (max === 1) return [{ start: dataStart, end: dataStart + size }];
  const windows: SampleWindow[] = [];
  const stride = (span - size) / (max - 1);
  for (let i = 0; i < max; i++) {
    const start = dataStart + Math.floor(i * stride);
    windows.push({ start, end: start + size });
  }
  return windows;
}

/** One window's bytes as read from the file (fewer than asked when the file ends first). */
export interface WindowBytes {
  readonly start: number;
  readonly bytes: Uint8Array;
}

export interface RecordsFromWindowsOptions {
  /** The dialect's `dataStart`: a window starting at or before it reads records from there. */
  readonly dataStart: number;
  readonly fileSize: number;
}

/**
 * The complete records in each window, in order: from `dataStart` in a window holding it, after the first
 * record terminator in the others; a record cut by the window's end is dropped, unless the window ends the
 * file. Records with an issue (invalid UTF-8, a stray line break) are left out, as is the rest of a window
 * after a record larger than the window or a quote left open at the end of the file.
 */
export function recordsFromWindows(
  windows: readonly WindowBytes[],
  format: CsvFormat,
  options: RecordsFromWindowsOptions,
): (string | null)[][] {
  const terminator = format.newline === "\r" ? 0x0d : 0x0a;
  // UTF-16: code units sit at even file offsets (after a 2-byte BOM); a window may start on either byte.
  const utf16 = textCodec(format.encoding).unitBytes === 2;
  const out: (string | null)[][] = [];
  for (const { start, bytes } of windows) {
    const end = start + bytes.length;
    if (end <= options.dataStart) continue;
    let from = options.dataStart - start;
    if (start > options.dataStart) {
      const at = utf16
        ? indexOfUnit(bytes, terminator, format.encoding === "utf-16be", start % 2)
        : bytes.indexOf(terminator);
      if (at === -1) continue;
      from = at + (utf16 ? 2 : 1);
    }
    const parser = createRecordParser({
      format,
      maxRecordBytes: Math.max(1, bytes.length),
      startOffset: start + from,
      onRecord: (r) => {
        if (r.issue === null) out.push(r.fields);
      },
    });
    try {
      parser.push(bytes.subarray(from));
      if (end >= options.fileSize) parser.finish();
    } catch (error) {
      // The records before it are in `out` already.
      if (!(error instanceof CsvError)) throw error;
    }
  }
  return out;
}
