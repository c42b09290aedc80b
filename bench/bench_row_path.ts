/**
 * The chunk isolate's per-row CPU without the database or Storage: the reference file parsed in 32 KiB pushes
 * (as pipeline/row_source.ts pushes), every record through the fast row path (load/fast_row.ts) into COPY
 * pieces cut at 1 MiB and reused, as a load does. Prints ms per million rows, best of 5.
 *
 *   deno run -A bench/bench_row_path.ts [file=.data/bench/orders-r1000000-s42-b0.csv] [--text]
 *
 * The file is the benchmark's reference file (`deno task bench` writes it); the target is its table
 * (tests/support/generate_csv.ts DEMO_TABLE_SQL). `--text`: COPY TEXT only (WORKER_COPY_FORMAT=text).
 * Profile it with Linux perf, which names Deno's JIT code (docs/performance.md, "The row path alone"):
 * `perf record -F 2000 -g -- deno run -A --v8-flags=--perf-basic-prof bench/bench_row_path.ts`.
 */
import { createRecordParser } from "../supabase/functions/_shared/csv/parser.ts";
import type { CsvFormat } from "../supabase/functions/_shared/csv/format.ts";
import { CopyPiece } from "../supabase/functions/_shared/load/copy_piece.ts";
import { compileFastRow } from "../supabase/functions/_shared/load/fast_row.ts";
import type { JobColumns } from "../supabase/functions/_shared/load/row_converter.ts";
import { builtinColumn as column } from "../supabase/functions/_shared/pg_types/columns.ts";
import { PIECE_BYTES, PUSH_BYTES } from "../supabase/functions/_shared/pipeline/row_source.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const file = args[0] ?? ".data/bench/orders-r1000000-s42-b0.csv";
const binary = !Deno.args.includes("--text");
const data = await Deno.readFile(file);

const STATUS = ["new", "paid", "shipped", "cancelled"];
const target = [
  column("id", "int8", { notNull: true }),
  column("customer_id", "uuid", { notNull: true }),
  column("email", "text", { notNull: true }),
  column("country", "bpchar", { charLength: 2 }),
  column("amount", "numeric", { numericPrecision: 12, numericScale: 2 }),
  column("quantity", "int4"),
  column("paid", "bool"),
  column("ordered_at", "timestamptz"),
  column("status", "demo_order_status", { baseTypeKind: "e", baseTypeSchema: "public", enumLabels: STATUS }),
  column("note", "text"),
];
const columns: JobColumns = {
  expected_fields: target.length,
  ignored: [],
  mapped: target.map((c, field) => ({ field, header: c.name, column: c })),
};
const format: CsvFormat = { delimiter: ",", quote: '"', newline: "\n" };
const compiled = compileFastRow(columns, format, { binary });
if (compiled === null) throw new Error("the fast path does not apply");
const fastRow = compiled;
const dataStart = data.indexOf(10) + 1;

function run(): { rows: number; declined: number; pieces: number; binaryPieces: number } {
  const pieces = [new CopyPiece(), new CopyPiece()];
  let piece = pieces[0];
  let rows = 0, declined = 0, cut = 0, binaryPieces = 0;
  const parser = createRecordParser({
    format,
    maxRecordBytes: 64 * 1024 * 1024,
    startOffset: dataStart,
    startLine: 2,
    fastRecord: (work, bs, be, line, offset, quoted) => {
      if (!fastRow(work, bs, be, piece, quoted)) return false;
      piece.endRow(line, offset, be - bs);
      rows++;
      return true;
    },
    onRecord: () => declined++,
  });
  for (let at = dataStart; at < data.length; at += PUSH_BYTES) {
    parser.push(data.subarray(at, Math.min(at + PUSH_BYTES, data.length)));
    if (piece.length >= PIECE_BYTES) {
      if (piece.binary) {
        binaryPieces++;
        piece.binData();
      }
      cut++;
      piece = pieces[cut % 2];
      piece.reset();
    }
  }
  parser.finish();
  return { rows, declined, pieces: cut + 1, binaryPieces };
}

let best = Infinity;
let last = run();
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  last = run();
  best = Math.min(best, performance.now() - t);
}
console.log(
  `${last.rows.toLocaleString()} rows (${last.declined} to the string path), ${last.pieces} pieces (${last.binaryPieces} binary): ` +
    `best ${best.toFixed(0)} ms, ${(best / (last.rows / 1e6)).toFixed(0)} ms per million rows (${
      binary ? "binary" : "text"
    })`,
);
