/**
 * A table made from the file (issue 15): for a profile with `create_table` whose target does not exist, the
 * register function samples records spread over the whole file, infers a column list (csv/infer_schema.ts) and
 * creates the table, which the job then loads like any other target.
 *
 * Invariants:
 * - The types come from the loader's own validators (infer_schema.ts): a sampled value never becomes a reject; a
 *   row outside the sample that does not fit is rejected with its line, column and reason (nothing is coerced).
 * - The table is created with row-level security enabled and no policy (only the service role and the owner read
 *   it until its owner adds policies), and the job writes with the pipeline's rights (write_as service_role).
 * - A dry run makes no table where the profile points: it creates a stand-in, `csv_import_scratch.job_<id>`, the
 *   job's target, which csv_import.prune_finished_jobs drops once the job is done; the CREATE TABLE reported is the
 *   one a load would run.
 * - Two files racing to make one table: the loser loads into the winner's table (CREATE TABLE IF NOT EXISTS).
 */
import { quoteIdent } from "../load/loader.ts";
import type { Dialect } from "../csv/dialect.ts";
import {
  columnNames,
  createTableSql,
  inferColumns,
  type InferredColumn,
  recordsFromWindows,
  sampleWindows,
  tableNameFromPath,
} from "../csv/infer_schema.ts";
import type { Sql } from "../platform/db.ts";
import type { FileBytes } from "./file_bytes.ts";

/** The file cannot give a table (the job fails with this message). */
export class TableFromFileError extends Error {}

/** What the register function knows of the job and the profile. */
export interface TableRequest {
  bucket: string;
  objectName: string;
  jobId: number;
  /** The profile's target_table (null: a table named from the object path in `targetSchema`). */
  targetTable: string | null;
  targetSchema: string | null;
}

/** The table a job of a `create_table` profile writes to, as the profile names it (schema-qualified, quoted). */
export function intendedTable(r: TableRequest): string {
  if (r.targetTable !== null) return r.targetTable;
  return `${quoteIdent(r.targetSchema ?? "public")}.${quoteIdent(tableNameFromPath(r.objectName))}`;
}

export interface MadeTable {
  /** The table the job loads: the one made, or a dry run's stand-in. */
  table: string;
  /** The CREATE TABLE a load runs (shown by the CLI; stored on the job). */
  tableSql: string;
  /** A dry run's stand-in (dropped when the job is done), or null. */
  scratchTable: string | null;
  columns: InferredColumn[];
}

/**
 * Infers the columns from records sampled over the whole file and creates the table (or a dry run's stand-in).
 * `table` is the intended name as check_target would take it: `schema.table`, quoted where needed.
 */
export async function makeTableFromFile(
  deps: { sql: Sql; file: Pick<FileBytes, "size" | "complete" | "read"> },
  r: TableRequest,
  dialect: Dialect,
  table: string,
  dryRun: boolean,
): Promise<MadeTable> {
  // A compressed file's data is sampled within the prefix registration inflated (file_bytes.ts).
  const { file } = deps;
  const windows = sampleWindows(file.size, { dataStart: dialect.dataStart });
  const read = await Promise.all(windows.map(async (w) => ({
    start: w.start,
    bytes: await file.read(w.start, w.end),
  })));
  // An incomplete prefix's end is not the data's end: a record it cuts is dropped, not read as a short one.
  const fileSize = file.complete ? file.size : file.size + 1;
  const records = recordsFromWindows(read, dialect, { dataStart: dialect.dataStart, fileSize });
  // Without a header: as many columns as most sampled records have fields.
  const columns = inferColumns(dialect.hasHeader ? dialect.header : null, records);
  if (records.length > 0 && columns.every((c) => c.evidence.sampled === 0)) {
    // Typing every column text would make a table whose every row is then rejected for its field count.
    throw new TableFromFileError(
      `No table was made from the file: none of the ${records.length} sampled rows has the header's ` +
        `${columns.length} fields (line 1: ${dialect.header?.length ?? 0} names); fix the file, or set the ` +
        "profile's delimiter and has_header",
    );
  }
  const [schema, name] = await splitName(deps.sql, table);
  const tableSql = createTableSql(schema, name, columns);
  const made = dryRun
    ? `csv_import_scratch.${quoteIdent(`job_${r.jobId}`)}`
    : `${quoteIdent(schema)}.${quoteIdent(name)}`;
  const [madeSchema, madeName] = dryRun ? ["csv_import_scratch", `job_${r.jobId}`] : [schema, name];
  const ddl = createTableSql(madeSchema, madeName, columns).replace(
    /^create table /,
    "create table if not exists ",
  );
  await deps.sql.begin(async (tx) => {
    await tx.unsafe(ddl);
    await tx.unsafe(`alter table ${made} enable row level security`);
  });
  return { table: made, tableSql, scratchTable: dryRun ? made : null, columns };
}

/** The schema and table of a name as PostgreSQL parses it (quotes and case rules applied). */
async function splitName(sql: Sql, table: string): Promise<[string, string]> {
  const [{ parts }] = await sql<{ parts: string[] }[]>`select pg_catalog.parse_ident(${table}) as parts`;
  return parts.length === 2 ? [parts[0], parts[1]] : ["public", parts[0]];
}

/**
 * Header names as aliases of the normalised column names a table made from such a header has (`Order Date` for
 * order_date), so that the file's header maps to the table made from it, and a later file with the same header
 * to the table an earlier one made.
 */
export function headerAliases(header: readonly string[] | null): Record<string, string[]> {
  if (header === null) return {};
  const names = columnNames(header, header.length);
  const aliases: Record<string, string[]> = {};
  names.forEach((name, i) => {
    if (header[i] !== "" && header[i] !== name) (aliases[name] ??= []).push(header[i]);
  });
  return aliases;
}
