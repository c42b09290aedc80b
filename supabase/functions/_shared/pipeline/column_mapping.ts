/**
 * Maps a file's columns to the target table's columns (from csv_import.describe_target).
 *
 * Rules:
 * - With a header, a header name matches a column when both are equal after normalisation (case-insensitive,
 *   ignoring spaces, `_` and `-`), either to the column's own name or to one of the profile's aliases for it.
 * - Without a header, the file's fields map by position to the table's writable columns in table order; the
 *   file may have fewer fields than the table (the rest get defaults) but not more.
 * - Generated columns are never written; values for an identity-always column are written as given (as COPY
 *   and `psql \copy` write them); columns absent from the file get their default.
 * - A writable column that is NOT NULL, has no default and is absent from the file makes the mapping fail,
 *   naming every such column; so do two header names that map to the same column, and header names that
 *   would map to nothing when the file has more fields than the table can take (without a header).
 * - Header names are only compared, never placed in SQL: the mapping carries catalog column names, which the
 *   loader quotes as identifiers.
 */
import type { TargetColumn } from "../pg_types/columns.ts";

export interface MappedColumn {
  /** 0-based index of the field in each record. */
  field: number;
  /** Header text as in the file (null without a header). */
  header: string | null;
  column: TargetColumn;
}

export interface ColumnMapping {
  mapped: MappedColumn[];
  /** Header names that match no column (their values are not loaded). */
  ignored: string[];
  /** Number of fields every record is expected to have. */
  expectedFields: number;
}

/** Which rule a mapping broke: required columns absent, two names for one column, too many fields, no match. */
export type MappingProblem = "missing" | "duplicate" | "too_many_fields" | "no_match";

export class MappingError extends Error {
  constructor(message: string, readonly problem: MappingProblem) {
    super(message);
    this.name = "MappingError";
  }
}

/** How a row of names fits the target: what it names, what matches nothing, which required columns lack. */
export interface HeaderFit {
  /** Names (as in the file) that match a writable column or one of its aliases. */
  matched: string[];
  /** Non-empty names that match nothing. */
  unknown: string[];
  /** Empty names. */
  empty: number;
  /** Required columns (NOT NULL, no default, writable) that no name matches. */
  missing: string[];
}

function columnsByName(
  columns: TargetColumn[],
  aliases: Record<string, string[]>,
): Map<string, TargetColumn> {
  const byName = new Map<string, TargetColumn>();
  for (const column of columns.filter((c) => !c.generated)) {
    byName.set(normalizeName(column.name), column);
    for (const alias of aliases[column.name] ?? []) byName.set(normalizeName(alias), column);
  }
  return byName;
}

/** Fits `names` (a header, or a first row that might be one) to the target's columns, without failing. */
export function headerFit(
  names: readonly string[],
  columns: TargetColumn[],
  aliases: Record<string, string[]>,
): HeaderFit {
  const byName = columnsByName(columns, aliases);
  const fit: HeaderFit = { matched: [], unknown: [], empty: 0, missing: [] };
  const present = new Set<string>();
  for (const name of names) {
    if (name.trim() === "") {
      fit.empty++;
      continue;
    }
    const column = byName.get(normalizeName(name));
    if (column) {
      fit.matched.push(name);
      present.add(column.name);
    } else {
      fit.unknown.push(name);
    }
  }
  fit.missing = columns.filter((c) => !c.generated && c.notNull && !c.hasDefault && !present.has(c.name))
    .map((c) => c.name);
  return fit;
}

export function normalizeName(name: string): string {
  return name.normalize("NFKC").toLowerCase().replace(/[\s_-]+/g, "");
}

export function mapColumns(
  header: string[] | null,
  columns: TargetColumn[],
  aliases: Record<string, string[]>,
  targetTable: string,
  /** Without a header: the number of fields of the file's first record. */
  fieldCount: number,
): ColumnMapping {
  const writable = columns.filter((c) => !c.generated);
  const mapped: MappedColumn[] = [];
  const ignored: string[] = [];

  if (header === null) {
    if (fieldCount > writable.length) {
      throw new MappingError(
        `The file has ${fieldCount} fields per row but ${targetTable} has only ${writable.length} writable columns (without a header, fields map to columns by position)`,
        "too_many_fields",
      );
    }
    writable.slice(0, fieldCount).forEach((column, field) => mapped.push({ field, header: null, column }));
  } else {
    const byName = columnsByName(columns, aliases);
    const seen = new Map<string, number>();
    header.forEach((name, field) => {
      const column = byName.get(normalizeName(name));
      if (!column) {
        ignored.push(name);
        return;
      }
      const earlier = seen.get(column.name);
      if (earlier !== undefined) {
        throw new MappingError(
          `Header columns ${earlier + 1} ("${header[earlier]}") and ${
            field + 1
          } ("${name}") both map to column "${column.name}" of ${targetTable}; rename or remove one`,
          "duplicate",
        );
      }
      seen.set(column.name, field);
      mapped.push({ field, header: name, column });
    });
  }

  const present = new Set(mapped.map((m) => m.column.name));
  const missing = writable.filter((c) => c.notNull && !c.hasDefault && !present.has(c.name)).map((c) =>
    c.name
  );
  if (missing.length > 0) {
    const found = header === null
      ? "the file has no header"
      : `the header has: ${header.map((h) => `"${h}"`).join(", ")}`;
    throw new MappingError(
      `The file lacks required column${missing.length > 1 ? "s" : ""} of ${targetTable}: ${
        missing.map((m) => `"${m}"`).join(", ")
      } (${found})`,
      "missing",
    );
  }
  if (mapped.length === 0) {
    throw new MappingError(`No column of the file matches a column of ${targetTable}`, "no_match");
  }
  return { mapped, ignored, expectedFields: header === null ? fieldCount : header.length };
}
