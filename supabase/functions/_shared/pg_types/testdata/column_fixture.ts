/**
 * A {@link TargetColumn} as csv_import.describe_target would describe a plain column of a built-in type, for
 * tests and benchmarks (the pipeline itself reads columns from the catalog). `extra` overrides any field.
 */
import type { TargetColumn } from "../columns.ts";

export function testColumn(name: string, baseType: string, extra: Partial<TargetColumn> = {}): TargetColumn {
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
