/**
 * The chunk isolate's per-row CPU without the database or Storage: the reference file through the load's own
 * RowSource (pipeline/row_source.ts: the chunk reader, 32 KiB pushes, the fast row path of load/fast_row.ts,
 * COPY pieces cut at 1 MiB and reused), each piece taken in binary or text as the loader would send it and
 * released at once. Prints ms per million rows, best of 5.
 *
 *   deno run -A bench/bench_row_path.ts [file=.data/bench/orders-r1000000-s42-b0.csv] [--text]
 *
 * The file is the benchmark's reference file (`deno task bench` writes it); the target is its table
 * (tests/support/generate_csv.ts DEMO_TABLE_SQL). `--text`: COPY TEXT only (WORKER_COPY_FORMAT=text).
 * Profile it with Linux perf, which names Deno's JIT code (docs/performance.md, "The row path alone"):
 * `perf record -F 2000 -g -- deno run -A --v8-flags=--perf-basic-prof bench/bench_row_path.ts`.
 */
import { createChunkReader } from "../supabase/functions/_shared/csv/chunk.ts";
import type { CsvFormat } from "../supabase/functions/_shared/csv/format.ts";
import { compileFastRow } from "../supabase/functions/_shared/load/fast_row.ts";
import { compileRowConverter, type JobColumns } from "../supabase/functions/_shared/load/row_converter.ts";
import { builtinColumn as column } from "../supabase/functions/_shared/pg_types/columns.ts";
import { WorkMeter } from "../supabase/functions/_shared/pipeline/isolate_budget.ts";
import { RowSource } from "../supabase/functions/_shared/pipeline/row_source.ts";

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
const converter = compileRowConverter(columns, {});
const dataStart = data.indexOf(10) + 1;
/** Storage's reads as a load sees them (RowSource cuts them into its pushes). */
const READ_BYTES = 256 * 1024;

async function run(): Promise<{ rows: number; pieces: number; binaryPieces: number }> {
  let at = dataStart;
  const input = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= data.length) return controller.close();
      controller.enqueue(data.subarray(at, Math.min(at + READ_BYTES, data.length)));
      at += READ_BYTES;
    },
  });
  const source = new RowSource(
    (hooks) =>
      createChunkReader({
        format,
        start: dataStart,
        end: data.length,
        dataStart,
        entry: { entryParity: 0, linesBefore: 1, atRecordStart: true },
        maxRecordBytes: 64 * 1024 * 1024,
        ...hooks,
      }),
    input,
    converter,
    fastRow,
    new WorkMeter(),
  );
  let rows = 0, pieces = 0, binaryPieces = 0;
  for (;;) {
    const { piece, last } = await source.nextPiece(Infinity, Infinity, Infinity);
    rows += piece.count;
    if (piece.count > 0) pieces++;
    // What the loader sends (load/loader.ts startPiece).
    if (piece.binary && piece.count > 0) {
      binaryPieces++;
      piece.binData();
    } else piece.data();
    source.release(piece);
    if (!last) continue;
    if (source.finished) break;
    source.resetBatch();
  }
  await source.close(2);
  return { rows, pieces, binaryPieces };
}

let best = Infinity;
let last = await run();
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  last = await run();
  best = Math.min(best, performance.now() - t);
}
console.log(
  `${last.rows.toLocaleString()} rows, ${last.pieces} pieces (${last.binaryPieces} binary): ` +
    `best ${best.toFixed(0)} ms, ${(best / (last.rows / 1e6)).toFixed(0)} ms per million rows (${
      binary ? "binary" : "text"
    })`,
);
