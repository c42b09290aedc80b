/** Table tests of the column mapping rules: name matching, aliases, positional mapping, errors. */
import assert from "node:assert/strict";
import { mapColumns, MappingError, normalizeName } from "./column_mapping.ts";
import type { TargetColumn } from "../pg_types/columns.ts";

const col = (name: string, extra: Partial<TargetColumn> = {}) =>
  ({ name, notNull: false, hasDefault: false, generated: false, ...extra }) as TargetColumn;
const table = [
  col("id", { notNull: true }),
  col("email", { notNull: true }),
  col("created_at", { notNull: true, hasDefault: true }),
  col("total", { generated: true }),
  col("note"),
];

Deno.test("header names match columns case-, space-, _- and --insensitively, and through aliases", () => {
  assert.equal(normalizeName(" Order_ID "), normalizeName("order-id"));
  const mapping = mapColumns(
    ["ID", "E-Mail Address", "Unknown", "NOTE"],
    table,
    { email: ["e-mail address"] },
    "public.t",
    4,
  );
  assert.deepEqual(mapping.mapped.map((m) => [m.field, m.column.name]), [[0, "id"], [1, "email"], [
    3,
    "note",
  ]]);
  assert.deepEqual(mapping.ignored, ["Unknown"]);
  assert.equal(mapping.expectedFields, 4);
});

Deno.test("mapping errors name the problem: missing required columns, duplicates, too many fields", () => {
  assert.throws(
    () => mapColumns(["note"], table, {}, "public.t", 1),
    (e: Error) => e instanceof MappingError && /"id", "email"/.test(e.message),
  );
  assert.throws(() => mapColumns(["id", "ID", "email"], table, {}, "public.t", 3), /both map to column "id"/);
  assert.throws(
    () => mapColumns(null, table, {}, "public.t", 5),
    /5 fields per row but public.t has only 4 writable columns/,
  );
  const positional = mapColumns(null, table, {}, "public.t", 2);
  assert.deepEqual(
    positional.mapped.map((m) => m.column.name),
    ["id", "email"],
    "without a header: by position, generated skipped",
  );
});
