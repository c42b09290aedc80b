/**
 * Quality of "a table made from the file" against DuckDB's sniffer, on real public data sets (issue 15).
 *
 *   deno run -A bench/sniffer_quality.ts [dataDir] [--window-bytes N] [--windows N]
 *   deno run -A bench/sniffer_quality.ts --edge     # the small hand-made files of EDGE_FILES instead
 *
 * `dataDir` defaults to $VEGA_DATASETS_DIR, else tools/node_modules/vega-datasets/data (the npm package
 * vega-datasets, pinned in tools/package.json and installed by scripts/install.sh; nothing is committed).
 * Every `.csv` and `.tsv` file there is compared; the table printed is the one docs/compared.md shows.
 *
 * For each file:
 * - ours: the dialect and header decision from the head (csv/dialect.ts, its first 64 KiB as the pipeline
 *   reads it), records from the sampler's windows (csv/infer_schema.ts sampleWindows/recordsFromWindows, 20
 *   windows of 64 KiB by default), then inferColumns;
 * - DuckDB (@duckdb/node-api, its binary from the npm package): `sniff_csv(file, sample_size = -1)`, its
 *   header decision and column types from the whole file;
 * - checked, not assumed: the whole file is parsed with our dialect and every value of every column is given
 *   to the loader's validator for our type (infer_schema.ts validatorFor); a value it refuses is a would-be
 *   reject, reported with its line.
 *
 * Verdict per column: `wrong` when a value of the file would be rejected or the types are unrelated; else
 * `same` (DuckDB's DOUBLE is our numeric or double precision: we keep decimals exact), `narrower` (ours is a
 * subtype of DuckDB's: bigint of DOUBLE, date of TIMESTAMP, anything of VARCHAR) or `wider` (ours is a supertype,
 * text above all: each such case is explained in bench/sniffer_quality_test.ts).
 */

import { DuckDBInstance } from "@duckdb/node-api";
import { type Dialect, SNIFF_BYTES, sniffDialect } from "../supabase/functions/_shared/csv/dialect.ts";
import {
  inferColumns,
  type InferredColumn,
  type InferredType,
  recordsFromWindows,
  sampleWindows,
  validatorFor,
} from "../supabase/functions/_shared/csv/infer_schema.ts";
import { createRecordParser } from "../supabase/functions/_shared/csv/parser.ts";

export type Verdict = "same" | "narrower" | "wider" | "wrong";

/** A value of the file our type's validator refuses. */
export interface WouldBeReject {
  readonly line: number;
  readonly value: string;
  readonly reason: string;
}

export interface ColumnComparison {
  readonly name: string;
  readonly ours: InferredType;
  /** DuckDB's type as it names it, or null when DuckDB found fewer columns. */
  readonly duckdb: string | null;
  readonly verdict: Verdict;
  /** The first few values of the whole file our type would reject, and how many there are. */
  readonly rejects: readonly WouldBeReject[];
  readonly rejectCount: number;
}

export interface FileComparison {
  readonly file: string;
  readonly bytes: number;
  readonly delimiter: { readonly ours: string; readonly duckdb: string };
  readonly header: { readonly ours: boolean; readonly duckdb: boolean; readonly reason: string };
  readonly sampledRecords: number;
  /** Records of the whole file (by our dialect) whose field count is not the column count. */
  readonly fieldCountMismatches: number;
  readonly columns: readonly ColumnComparison[];
}

export interface CompareOptions {
  readonly windowBytes?: number;
  readonly maxWindows?: number;
}

/** Our type for a DuckDB type name, as it would be read (DOUBLE: see {@link verdictFor}). */
export function fromDuckDbType(duck: string): InferredType | null {
  const t = duck.toUpperCase();
  if (
    ["BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"].includes(t)
  ) {
    return t === "UBIGINT" ? "numeric" : "bigint";
  }
  if (t === "HUGEINT" || t === "UHUGEINT" || t.startsWith("DECIMAL")) return "numeric";
  if (t === "DOUBLE" || t === "FLOAT") return "double precision";
  if (t === "BOOLEAN") return "boolean";
  if (t === "DATE") return "date";
  if (t === "TIMESTAMP" || t === "TIMESTAMP_NS" || t === "TIMESTAMP_MS" || t === "TIMESTAMP_S") {
    return "timestamp";
  }
  if (t === "TIMESTAMP WITH TIME ZONE") return "timestamptz";
  if (t === "TIME") return "time";
  if (t === "UUID") return "uuid";
  if (t === "JSON") return "jsonb";
  if (t === "VARCHAR") return "text";
  return null;
}

/** `narrow` is a strict subtype of `wide`: every value of the first reads as the same value of the second. */
const SUBTYPES: ReadonlySet<string> = new Set([
  "bigint<numeric",
  "bigint<double precision",
  "date<timestamp",
  "date<timestamptz",
]);

function isSubtype(narrow: InferredType, wide: InferredType): boolean {
  return narrow !== wide && (wide === "text" || SUBTYPES.has(`${narrow}<${wide}`));
}

/** The verdict for one column whose whole-file check found `rejectCount` would-be rejects. */
export function verdictFor(ours: InferredType, duckdb: string | null, rejectCount: number): Verdict {
  if (rejectCount > 0 || duckdb === null) return "wrong";
  const theirs = fromDuckDbType(duckdb);
  if (theirs === null) return "wrong";
  if (ours === theirs) return "same";
  // DuckDB reads every decimal as DOUBLE; we keep decimals exact (numeric) unless they need float syntax.
  if (theirs === "double precision" && ours === "numeric") return "same";
  if (isSubtype(ours, theirs)) return "narrower";
  if (isSubtype(theirs, ours)) return "wider";
  return "wrong";
}

/** Our whole pipeline of inference on one file's bytes: dialect from the head, then the sampled windows. */
export function inferFile(
  file: Uint8Array,
  options: CompareOptions = {},
): { dialect: Dialect; columns: InferredColumn[]; sampledRecords: number } {
  const dialect = sniffDialect(file.subarray(0, SNIFF_BYTES), { fileSize: file.length });
  const windows = sampleWindows(file.length, {
    dataStart: dialect.dataStart,
    windowBytes: options.windowBytes,
    maxWindows: options.maxWindows,
  });
  const records = recordsFromWindows(
    windows.map((w) => ({ start: w.start, bytes: file.subarray(w.start, w.end) })),
    dialect,
    { dataStart: dialect.dataStart, fileSize: file.length },
  );
  return { dialect, columns: inferColumns(dialect.header, records), sampledRecords: records.length };
}

/** Every value of the whole file checked against our types (the loader's validators). */
function checkWholeFile(
  file: Uint8Array,
  dialect: Dialect,
  columns: readonly InferredColumn[],
): { rejects: WouldBeReject[][]; counts: number[]; fieldCountMismatches: number } {
  const validators = columns.map((c) => validatorFor(c.type));
  const rejects: WouldBeReject[][] = columns.map(() => []);
  const counts = columns.map(() => 0);
  let fieldCountMismatches = 0;
  const parser = createRecordParser({
    format: dialect,
    maxRecordBytes: file.length + 1,
    startOffset: dialect.dataStart,
    startLine: dialect.linesBeforeData + 1,
    onRecord: (r) => {
      if (r.issue !== null || r.fields.length !== columns.length) {
        fieldCountMismatches++;
        return;
      }
      for (let i = 0; i < columns.length; i++) {
        const v = r.fields[i];
        if (v === null) continue;
        const result = validators[i](v);
        if (typeof result !== "string") {
          counts[i]++;
          if (rejects[i].length < 3) rejects[i].push({ line: r.line, value: v, reason: result.reason });
        }
      }
    },
  });
  parser.push(file.subarray(dialect.dataStart));
  parser.finish();
  return { rejects, counts, fieldCountMismatches };
}

interface DuckDbSniff {
  readonly delimiter: string;
  readonly hasHeader: boolean;
  readonly columns: readonly { readonly name: string; readonly type: string }[];
}

/** DuckDB's sniffer on the whole file. */
export async function duckDbSniff(
  connection: { runAndReadAll(sql: string): Promise<{ getRowObjectsJson(): unknown[] }> },
  path: string,
): Promise<DuckDbSniff> {
  const reader = await connection.runAndReadAll(
    `select Delimiter, HasHeader, Columns from sniff_csv('${path.replaceAll("'", "''")}', sample_size = -1)`,
  );
  const [row] = reader.getRowObjectsJson() as {
    Delimiter: string;
    HasHeader: boolean;
    Columns: { name: string; type: string }[];
  }[];
  return { delimiter: row.Delimiter, hasHeader: row.HasHeader, columns: row.Columns };
}

/** Compares every `.csv` / `.tsv` file of `dir`, in name order. */
export async function compareDatasets(dir: string, options: CompareOptions = {}): Promise<FileComparison[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /\.(csv|tsv)$/i.test(entry.name)) names.push(entry.name);
  }
  names.sort();
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  const results: FileComparison[] = [];
  try {
    for (const name of names) {
      const path = `${dir.replace(/\/$/, "")}/${name}`;
      const file = await Deno.readFile(path);
      const { dialect, columns, sampledRecords } = inferFile(file, options);
      const duck = await duckDbSniff(connection, path);
      const check = checkWholeFile(file, dialect, columns);
      results.push({
        file: name,
        bytes: file.length,
        delimiter: { ours: dialect.delimiter, duckdb: duck.delimiter },
        header: { ours: dialect.hasHeader, duckdb: duck.hasHeader, reason: dialect.headerReason },
        sampledRecords,
        fieldCountMismatches: check.fieldCountMismatches,
        columns: columns.map((c, i) => {
          const theirs = duck.columns[i]?.type ?? null;
          return {
            name: c.name,
            ours: c.type,
            duckdb: theirs,
            verdict: verdictFor(c.type, theirs, check.counts[i]),
            rejects: check.rejects[i],
            rejectCount: check.counts[i],
          };
        }),
      });
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  return results;
}

const SHORT_DUCK: Record<string, string> = { "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ" };

/** The results as a Markdown table: one row per file, its columns as `name ours/DuckDB` grouped by verdict. */
export function formatTable(results: readonly FileComparison[]): string {
  const show = (d: string) => (d === "\t" ? "TAB" : d);
  const lines = [
    "| file | bytes | delimiter ours/DuckDB | header ours/DuckDB | same | narrower (ours / DuckDB) | wider (ours / DuckDB) | wrong |",
    "| --- | ---: | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of results) {
    const list = (v: Verdict, both: boolean) =>
      r.columns.filter((c) => c.verdict === v).map((c) =>
        both
          ? `${c.name} ${c.ours} / ${c.duckdb === null ? "—" : SHORT_DUCK[c.duckdb] ?? c.duckdb}`
          : `${c.name} ${c.ours}`
      ).join(", ") || "—";
    const wrong = r.columns.filter((c) =>
      c.verdict === "wrong"
    ).map((c) =>
      `${c.name} ${c.ours} / ${c.duckdb ?? "—"}` +
      (c.rejectCount > 0
        ? ` (${c.rejectCount} rejects, line ${c.rejects[0].line}: ${JSON.stringify(c.rejects[0].value)})`
        : "")
    ).join(", ") || "—";
    const header = `${r.header.ours ? "yes" : "no"}/${r.header.duckdb ? "yes" : "no"}` +
      (r.header.ours !== r.header.duckdb ? " **differs**" : "");
    const delimiter = `${show(r.delimiter.ours)} / ${show(r.delimiter.duckdb)}`;
    lines.push(
      `| ${r.file} | ${r.bytes} | ${delimiter} | ${header} | ${list("same", false)} | ${
        list("narrower", true)
      } | ${list("wider", true)} | ${wrong} |`,
    );
  }
  const all = results.flatMap((r) => r.columns);
  const count = (v: Verdict) => all.filter((c) => c.verdict === v).length;
  lines.push(
    "",
    `${results.length} files, ${all.length} columns: ${count("same")} same, ${count("narrower")} narrower, ` +
      `${count("wider")} wider, ${count("wrong")} wrong; header decisions differing: ` +
      `${results.filter((r) => r.header.ours !== r.header.duckdb).length}.`,
  );
  return lines.join("\n");
}

/** Small files that show each documented rule and difference from DuckDB; name → content. */
export const EDGE_FILES: Record<string, string> = {
  "pandas_index.csv": ",a,b\n0,1,x\n1,2,y\n2,3,z\n",
  "quoted_empty.csv": 'id,amount\n"1",""\n"2","3"\n',
  "leading_zeros.csv": "id,zip\n1,007\n2,010\n",
  "flags.csv": "a,b,c,d\ntrue,T,yes,y\nfalse,F,no,n\n",
  "ones_and_zeros.csv": "n,m\n1,0\n0,1\n1,1\n",
  "ambiguous_dates.csv": "d,n\n01/02/2024,1\n03/04/2024,2\n",
  "dates_and_timestamps.csv": "t,n\n2024-01-05,1\n2024-01-05 10:00,2\n",
  "uuids.csv": "id,n\n123e4567-e89b-12d3-a456-426614174000,1\n00000000-0000-0000-0000-000000000000,2\n",
  "json.csv": 'doc,n\n"{""a"": 1}",1\n"[1, 2]",2\n',
  "decimals.csv": "x,y,z\n1.5,1e5,99999999999999999999\n-2.25,2.5,1\n",
  "zoned.csv": "at,n\n2024-01-05T10:00:00Z,1\n2024-01-05 10:00:00+01:00,2\n",
  "times.csv": "t,n\n10:30,1\n23:59:59,2\n",
  "plus_sign.csv": "phone,n\n+4420794601,1\n+1555123456,2\n",
  "headerless_numbers.csv": "1,2\n3,4\n5,6\n",
  "headerless_text.csv": "alice,london\nbob,paris\ncarol,rome\n",
  "duplicate_text_names.csv": "x,x\nalice,london\nbob,paris\n",
  "codes_with_y.csv": "code,name\nA1,x\nB2,y\n",
};

/** Writes {@link EDGE_FILES} into `dir` (which should be empty) and compares them. */
export async function compareEdgeFiles(dir: string, options: CompareOptions = {}): Promise<FileComparison[]> {
  for (const [name, text] of Object.entries(EDGE_FILES)) await Deno.writeTextFile(`${dir}/${name}`, text);
  return await compareDatasets(dir, options);
}

/** The data set folder: $VEGA_DATASETS_DIR, else the one scripts/install.sh installs into tools/. */
export function defaultDataDir(): string {
  return Deno.env.get("VEGA_DATASETS_DIR") ??
    new URL("../tools/node_modules/vega-datasets/data", import.meta.url).pathname;
}

if (import.meta.main) {
  const args = [...Deno.args];
  const option = (flag: string): number | undefined => {
    const i = args.indexOf(flag);
    if (i === -1) return undefined;
    const [, value] = args.splice(i, 2);
    return Number(value);
  };
  const windowBytes = option("--window-bytes");
  const maxWindows = option("--windows");
  const edge = args.indexOf("--edge");
  if (edge !== -1) args.splice(edge, 1);
  const started = performance.now();
  let results: FileComparison[];
  if (edge !== -1) {
    const dir = await Deno.makeTempDir({ prefix: "sniffer_quality_" });
    try {
      results = await compareEdgeFiles(dir, { windowBytes, maxWindows });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  } else {
    results = await compareDatasets(args[0] ?? defaultDataDir(), { windowBytes, maxWindows });
  }
  console.log(formatTable(results));
  for (const r of results) {
    for (const c of r.columns) {
      for (const reject of c.rejects) {
        console.log(`would-be reject: ${r.file} line ${reject.line} column ${c.name}: ${reject.reason}`);
      }
    }
    if (r.header.ours !== r.header.duckdb) console.log(`header: ${r.file}: ours because ${r.header.reason}`);
  }
  console.log(`(${Math.round(performance.now() - started)} ms)`);
}
