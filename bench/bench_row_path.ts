/**
 * The chunk isolate's per-row CPU without the database or Storage: the reference file through the load's own
 * RowSource (pipeline/row_source.ts: the chunk reader, 32 KiB pushes, the fast row path of load/fast_row.ts,
 * COPY pieces cut at 1 MiB and reused), each piece taken in binary or text as the loader would send it and
 * released at once. Prints ms per million rows, best of 5, and before that the first pass, as a fresh isolate
 * runs it (cold JIT): its time, its first piece, and its pieces 2–10 against the best pass's. A chunk isolate
 * pays that warm-up once in its life, and the runtime retires it after 1 s of CPU (docs/performance.md).
 *
 *   deno run -A bench/bench_row_path.ts [file=.data/bench/orders-r1000000-s42-b0.csv] [--text]
 *     [--against <checkout> [--rounds 8]]
 *
 * The file is the benchmark's reference file (`deno task bench` writes it); the target is its table
 * (tests/support/generate_csv.ts DEMO_TABLE_SQL). `--text`: COPY TEXT only (WORKER_COPY_FORMAT=text).
 * `--against`: the same passes with the row path of another checkout (e.g. `git worktree add /tmp/base HEAD~1`),
 * alternated with this one's in one process, `--rounds` each; prints both medians and their ratio. Why: on this
 * shared machine one run's best pass moves by ±30 % within minutes, while two row paths alternated in one
 * process see the same machine. Still take the median of several runs: they share one heap, so one's garbage
 * is collected in the other's passes too (a change measured 0.90–1.02× in seven runs, docs/performance.md).
 * Profile it with Linux perf, which names Deno's JIT code (docs/performance.md, "The row path alone"):
 * `perf record -F 2000 -g -- deno run -A --v8-flags=--perf-basic-prof bench/bench_row_path.ts`.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { CsvFormat } from "../supabase/functions/_shared/csv/format.ts";
import type { JobColumns } from "../supabase/functions/_shared/load/row_converter.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { text: { type: "boolean" }, against: { type: "string" }, rounds: { type: "string" } },
});
const file = positionals[0] ?? ".data/bench/orders-r1000000-s42-b0.csv";
const binary = !values.text;
const data = await Deno.readFile(file);
// Touch every page once before timing: on some VMs the first access from JavaScript to memory the kernel filled
// costs ~1.3 ms per MB without showing as page faults (docs/performance.md), which the first pass would pay.
let touched = 0;
for (let i = 0; i < data.length; i += 4096) touched ^= data[i];
const dataStart = data.indexOf(10) + 1;
/** Storage's reads as a load sees them (RowSource cuts them into its pushes). */
const READ_BYTES = 256 * 1024;

/** One pass over the file: rows, pieces, and when each piece was done (performance.now()). */
type Pass = () => Promise<{ rows: number; pieces: number; binaryPieces: number; pieceDone: number[] }>;

/** The row path of the checkout at `root` (its modules, so two checkouts can run side by side). */
async function rowPath(root: string): Promise<Pass> {
  // Typed as this checkout's modules (the type check keeps the bench in step with them); loaded from `root`.
  const from = <M>(path: string): Promise<M> =>
    import(pathToFileURL(resolve(root, "supabase/functions/_shared", path)).href);
  const { createChunkReader } = await from<typeof import("../supabase/functions/_shared/csv/chunk.ts")>(
    "csv/chunk.ts",
  );
  const { compileFastRow } = await from<typeof import("../supabase/functions/_shared/load/fast_row.ts")>(
    "load/fast_row.ts",
  );
  const { compileRowConverter } = await from<
    typeof import("../supabase/functions/_shared/load/row_converter.ts")
  >("load/row_converter.ts");
  const { builtinColumn: column } = await from<
    typeof import("../supabase/functions/_shared/pg_types/columns.ts")
  >("pg_types/columns.ts");
  const { WorkMeter } = await from<typeof import("../supabase/functions/_shared/pipeline/isolate_budget.ts")>(
    "pipeline/isolate_budget.ts",
  );
  const { RowSource } = await from<typeof import("../supabase/functions/_shared/pipeline/row_source.ts")>(
    "pipeline/row_source.ts",
  );

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
    column("status", "demo_order_status", {
      baseTypeKind: "e",
      baseTypeSchema: "public",
      enumLabels: STATUS,
    }),
    column("note", "text"),
  ];
  const columns: JobColumns = {
    expected_fields: target.length,
    ignored: [],
    mapped: target.map((c, field) => ({ field, header: c.name, column: c })),
  };
  const format: CsvFormat = { delimiter: ",", quote: '"', newline: "\n" };
  const fastRow = compileFastRow(columns, format, { binary });
  if (fastRow === null) throw new Error("the fast path does not apply");
  const converter = compileRowConverter(columns, {});

  return async () => {
    const pieceDone: number[] = [];
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
      pieceDone.push(performance.now());
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
    return { rows, pieces, binaryPieces, pieceDone };
  };
}

const here = fileURLToPath(new URL("..", import.meta.url));
const run = await rowPath(here);
const format = binary ? "binary" : "text";

if (values.against !== undefined) {
  const other = await rowPath(values.against);
  const rounds = Number(values.rounds ?? 8);
  const times: Record<"this" | "other", number[]> = { this: [], other: [] };
  await run();
  await other();
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so neither always follows the other's garbage.
    for (const side of i % 2 === 0 ? ["this", "other"] as const : ["other", "this"] as const) {
      const t0 = performance.now();
      await (side === "this" ? run : other)();
      times[side].push(performance.now() - t0);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const [a, b] = [median(times.this), median(times.other)];
  console.log(
    `${rounds} rounds alternated (${format}): this checkout median ${a.toFixed(0)} ms (best ` +
      `${Math.min(...times.this).toFixed(0)}), ${values.against} median ${b.toFixed(0)} ms (best ` +
      `${Math.min(...times.other).toFixed(0)}): this / other ${(a / b).toFixed(3)}`,
  );
  Deno.exit(0);
}

/** Milliseconds per piece from piece `from` to piece `to` (1-based, inclusive) of a pass that began at `t0`. */
function perPiece(done: number[], t0: number, from: number, to: number): number {
  const start = from === 1 ? t0 : done[from - 2];
  return (done[to - 1] - start) / (to - from + 1);
}

let t0 = performance.now();
let last = await run();
const first = {
  ms: performance.now() - t0,
  firstPiece: perPiece(last.pieceDone, t0, 1, 1),
  next: perPiece(last.pieceDone, t0, 2, Math.min(10, last.pieceDone.length)),
};
let best = Infinity;
let bestNext = Infinity;
for (let i = 0; i < 5; i++) {
  t0 = performance.now();
  last = await run();
  const ms = performance.now() - t0;
  if (ms < best) {
    [best, bestNext] = [ms, perPiece(last.pieceDone, t0, 2, Math.min(10, last.pieceDone.length))];
  }
}
console.log(
  `${last.rows.toLocaleString()} rows, ${last.pieces} pieces (${last.binaryPieces} binary): ` +
    `best ${best.toFixed(0)} ms, ${(best / (last.rows / 1e6)).toFixed(0)} ms per million rows (${format})`,
);
console.log(
  `first pass (cold JIT) ${first.ms.toFixed(0)} ms: its first piece ${first.firstPiece.toFixed(1)} ms, ` +
    `pieces 2–10 ${first.next.toFixed(1)} ms each (best pass ${bestNext.toFixed(1)}); ` +
    `${(first.ms - best).toFixed(0)} ms more than the best pass`,
);
