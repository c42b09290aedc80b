/**
 * Turns a parsed CSV record into one COPY TEXT line for the target table, or a reject with its reason.
 *
 * Invariants:
 * - A record is loaded whole or rejected whole: its field count must equal the file's (header's) field count,
 *   and every mapped field must convert (pg_types/convert.ts) for its column; the first failing field names
 *   the column in the reject.
 * - Converters are compiled once per chunk (compileRowConverter), so the per-record cost is the conversions and
 *   building one string.
 * - Fields of the file that map to no column are ignored (the mapping recorded which, at registration).
 */
import type { CsvRecord } from "../csv/parser.ts";
import type { TargetColumn } from "../pg_types/columns.ts";
import { compileConverter, type Converter, type ConvertOptions, Rejection } from "../pg_types/convert.ts";

/** The column mapping stored in the job at registration. */
export interface JobColumns {
  expected_fields: number;
  ignored: string[];
  mapped: { field: number; header: string | null; column: TargetColumn }[];
  /** Whose rights the job writes with (csv_import.plan_write_as); absent in jobs planned before it existed. */
  write_as?: "uploader" | "service_role";
}

/** Why a record cannot be loaded (the first failing column, or null for the record as a whole). */
export class RowRejection {
  constructor(readonly column: string | null, readonly reason: string) {}
}

/** A COPY TEXT line (a string, newline-terminated) or the record's rejection. */
export type RowConversion = string | RowRejection;

export interface RowConverter {
  convert(record: CsvRecord): RowConversion;
}

export function compileRowConverter(columns: JobColumns, options: ConvertOptions): RowConverter {
  const fields = columns.mapped.map((m) => m.field);
  const names = columns.mapped.map((m) => m.column.name);
  const converters: Converter[] = columns.mapped.map((m) => compileConverter(m.column, options));
  const expected = columns.expected_fields;
  const n = converters.length;
  const out: string[] = new Array(n);

  return {
    convert(record) {
      if (record.issue) return new RowRejection(null, record.issue.message);
      const values = record.fields;
      if (values.length !== expected) {
        return new RowRejection(
          null,
          `Expected ${expected} field${expected === 1 ? "" : "s"}, found ${values.length}`,
        );
      }
      for (let i = 0; i < n; i++) {
        const result = converters[i](values[fields[i]]);
        if (typeof result !== "string") return new RowRejection(names[i], (result as Rejection).reason);
        out[i] = result;
      }
      if (n === 0) return "\n";
      // A reused array and one join (the newline rides on the last field, so the line comes out flat).
      out[n - 1] += "\n";
      return out.join("\t");
    },
  };
}
