/**
 * The target table's columns as the pipeline reads them from the PostgreSQL catalog.
 *
 * The catalog query itself is the SQL function csv_import.describe_target (supabase/migrations), the one
 * place that reads it; it returns one row per live column, in column order, and {@link toTargetColumns} turns
 * those rows into {@link TargetColumn}s.
 *
 * Invariants:
 * - Domains are resolved to their base type, through any number of levels: `baseType` is the base type's
 *   name (`int4`, `varchar`, ...), the typmod is the nearest one declared on the way down (the column's,
 *   else the innermost domain that has one), `notNull` is true when the column or any domain level is NOT
 *   NULL, and `domainHasChecks` says whether any level has CHECK constraints (which the converter does not
 *   evaluate: COPY will).
 * - `hasDefault` is true when omitting the column still gives it a value: a DEFAULT expression, an identity,
 *   or a generation expression. `generated` columns must never be written (COPY rejects them).
 * - Typmod details are decoded exactly as PostgreSQL encodes them (varchar/char length = typmod - 4;
 *   numeric precision = (typmod - 4) >> 16, scale = sign-extended low 11 bits, so PG15's negative scales
 *   come out right; time/timestamp precision = typmod). They are null when the type has no typmod.
 * - `enumLabels` is the enum's labels in sort order; `elementType` is set for array types only.
 */

/** One row of csv_import.describe_target as postgres.js returns it. */
export interface TargetColumnRow {
  name: string;
  ordinal: number;
  column_type: string;
  base_type_name: string;
  base_type_schema: string;
  base_type_kind: string;
  base_type_category: string;
  base_type: string;
  typmod: number;
  is_domain: boolean;
  not_null: boolean;
  column_not_null: boolean;
  domain_not_null: boolean;
  domain_has_checks: boolean;
  has_default: boolean;
  identity: "always" | "by_default" | null;
  generated: boolean;
  char_length: number | null;
  numeric_precision: number | null;
  numeric_scale: number | null;
  datetime_precision: number | null;
  enum_labels: string | readonly string[] | null;
  element_type: string | null;
}

/** A column of the target table, as the converter needs it. */
export interface TargetColumn {
  /** Column name as stored (not quoted). */
  readonly name: string;
  /** attnum (1-based; gaps where columns were dropped). */
  readonly ordinal: number;
  /** `format_type(atttypid, atttypmod)`, e.g. `character varying(20)`, `my_domain`. */
  readonly type: string;
  /** Base type name after resolving domains (pg_type.typname), e.g. `int4`, `varchar`, `mood`. */
  readonly baseType: string;
  /** Schema of the base type (`pg_catalog` for built-in types). */
  readonly baseTypeSchema: string;
  /** pg_type.typtype of the base type: `b` base, `e` enum, `c` composite, `r` range, `m` multirange, `p`. */
  readonly baseTypeKind: string;
  /** pg_type.typcategory of the base type (`A` = array). */
  readonly baseTypeCategory: string;
  /** `format_type` of the base type with the effective typmod, e.g. `numeric(5,2)`. */
  readonly baseTypeDisplay: string;
  /** Effective typmod (-1 = none). */
  readonly typmod: number;
  readonly isDomain: boolean;
  /** NOT NULL on the column or on any domain level. */
  readonly notNull: boolean;
  readonly domainHasChecks: boolean;
  /** Omitting the column gives it a value (DEFAULT, identity or generated). */
  readonly hasDefault: boolean;
  readonly identity: "always" | "by_default" | null;
  /** Generated column: must never be written. */
  readonly generated: boolean;
  /** varchar(n) / char(n) length in characters. */
  readonly charLength: number | null;
  readonly numericPrecision: number | null;
  readonly numericScale: number | null;
  readonly datetimePrecision: number | null;
  /** Enum labels in sort order. */
  readonly enumLabels: readonly string[] | null;
  /** Element type of an array column, e.g. `integer`. */
  readonly elementType: string | null;
}

function labels(v: string | readonly string[] | null): readonly string[] | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") {
    const parsed: unknown = JSON.parse(v);
    if (!Array.isArray(parsed)) throw new TypeError("enum_labels is not a JSON array");
    return Object.freeze(parsed.map(String));
  }
  return Object.freeze([...v]);
}

function num(v: number | null | undefined): number | null {
  return v ?? null;
}

/**
 * A {@link TargetColumn} as csv_import.describe_target describes a plain, nullable column of a built-in type
 * (`pg_catalog.<baseType>`, no typmod), with `extra` overriding any field: the column schema inference compiles
 * its validators for (csv/infer_schema.ts), and what tests and benchmarks describe columns with.
 */
export function builtinColumn(
  name: string,
  baseType: string,
  extra: Partial<TargetColumn> = {},
): TargetColumn {
  return {
    name,
    ordinal: 1,
    type: baseType,
    baseType,
    baseTypeSchema: "pg_catalog",
    baseTypeKind: "b",
    baseTypeCategory: "X",
    baseTypeDisplay: baseType,
    typmod: -1,
    isDomain: false,
    notNull: false,
    domainHasChecks: false,
    hasDefault: false,
    identity: null,
    generated: false,
    charLength: null,
    numericPrecision: null,
    numericScale: null,
    datetimePrecision: null,
    enumLabels: null,
    elementType: null,
    ...extra,
  };
}

/** Turns rows of csv_import.describe_target into {@link TargetColumn}s (same order). */
export function toTargetColumns(rows: readonly TargetColumnRow[]): TargetColumn[] {
  return rows.map((r) => ({
    name: r.name,
    ordinal: r.ordinal,
    type: r.column_type,
    baseType: r.base_type_name,
    baseTypeSchema: r.base_type_schema,
    baseTypeKind: r.base_type_kind,
    baseTypeCategory: r.base_type_category,
    baseTypeDisplay: r.base_type,
    typmod: r.typmod,
    isDomain: r.is_domain,
    notNull: r.not_null,
    domainHasChecks: r.domain_has_checks,
    hasDefault: r.has_default,
    identity: r.identity ?? null,
    generated: r.generated,
    charLength: num(r.char_length),
    numericPrecision: num(r.numeric_precision),
    numericScale: num(r.numeric_scale),
    datetimePrecision: num(r.datetime_precision),
    enumLabels: labels(r.enum_labels),
    elementType: r.element_type ?? null,
  }));
}

/** Anything with postgres.js's `unsafe(query, params)`. */
export interface UnsafeQuery {
  unsafe(query: string, params: string[]): PromiseLike<readonly unknown[]>;
}

/**
 * Describes a table (a name as SQL would resolve it, e.g. `public.orders`) with csv_import.describe_target;
 * an empty array means no such table.
 */
export async function fetchTargetColumns(sql: UnsafeQuery, table: string): Promise<TargetColumn[]> {
  try {
    const [row] = await sql.unsafe("select csv_import.describe_target($1) as columns", [table]) as {
      columns: TargetColumnRow[] | null;
    }[];
    return toTargetColumns(row?.columns ?? []);
  } catch (error) {
    if ((error as { code?: string }).code === "42P01") return [];
    throw error;
  }
}
