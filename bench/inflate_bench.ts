/**
 * Timing probe for the resumable inflater (supabase/functions/_shared/compression/inflate.ts): MB/s of output
 * on a ~100 MB generated CSV gzipped at -6, in loader mode (no checkpoints), chain mode (a checkpoint every
 * 8 MiB), loaders (each range between 8 MiB checkpoints, pako and native) and DecompressionStream for
 * comparison, plus the CRC-32 alone (ours and pako's). Not a pass/fail test.
 *
 *   deno run -A bench/inflate_bench.ts [megabytes=100] [runs=3]
 *
 * Invariants:
 * - Input comes from memory in 1 MiB pieces, so the numbers are CPU only (no I/O).
 * - Every run's output size is checked against the original; the best and median of `runs` are printed.
 */

import {
  type Checkpoint,
  inflateFrom,
  resumeByte,
  startCheckpoint,
} from "../supabase/functions/_shared/compression/inflate.ts";
import { crc32 } from "../supabase/functions/_shared/compression/crc32.ts";
import { crc32 as pakoCrc32 } from "../supabase/functions/_shared/compression/pako_zlib.ts";
import { csvLikeData, gzipCli, pieces } from "../supabase/functions/_shared/compression/test_support.ts";

const megabytes = Number(Deno.args[0] ?? 100);
const runs = Number(Deno.args[1] ?? 3);
const size = megabytes * 1_000_000;
const cache = `.data/inflate_bench_${megabytes}MB.csv.gz`;

let gz: Uint8Array;
try {
  gz = await Deno.readFile(cache);
} catch {
  console.error(`generating ${megabytes} MB of CSV-like data and gzipping it at -6 …`);
  gz = await gzipCli(csvLikeData(size, 2024, 0.05), 6);
  await Deno.mkdir(".data", { recursive: true });
  await Deno.writeFile(cache, gz);
}
console.log(`${(size / 1e6).toFixed(0)} MB of output from ${(gz.length / 1e6).toFixed(1)} MB of gzip -6`);

async function timed(name: string, body: () => Promise<number>): Promise<void> {
  const rates: number[] = [];
  let note = "";
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const result = await body();
    const seconds = (performance.now() - start) / 1000;
    if (result < 0) note = ` (${-result} checkpoints)`;
    rates.push(size / 1e6 / seconds);
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  console.log(
    `${name.padEnd(44)} best ${rates.at(-1)!.toFixed(0).padStart(4)} MB/s  median ${
      median.toFixed(0).padStart(4)
    } MB/s${note}`,
  );
}

async function inflateAll(checkpointEvery: number | null): Promise<number> {
  let out = 0;
  let checkpoints = 0;
  let next = 0;
  const checkpointAt = checkpointEvery === null ? undefined : () => (next += checkpointEvery);
  for await (
    const event of inflateFrom("gzip", startCheckpoint("gzip", 0), pieces(gz, () => 1 << 20), {
      checkpointAt,
      end: gz.length,
    })
  ) {
    if (event.kind === "data") out += event.bytes.length;
    else if (event.kind === "checkpoint") checkpoints++;
  }
  if (out !== size) throw new Error(`inflated ${out} bytes, expected ${size}`);
  return checkpointEvery === null ? out : -checkpoints;
}

await timed("inflateFrom, loader mode (no checkpoints)", () => inflateAll(null));
await timed("inflateFrom, chain mode (checkpoint / 8 MiB)", () => inflateAll(8 * 1024 * 1024));
await timed("DecompressionStream('gzip')", async () => {
  let out = 0;
  const input = ReadableStream.from(pieces(gz, () => 1 << 20)) as ReadableStream<Uint8Array<ArrayBuffer>>;
  const stream = input.pipeThrough(new DecompressionStream("gzip"));
  for await (const chunk of stream) out += chunk.length;
  if (out !== size) throw new Error(`inflated ${out} bytes, expected ${size}`);
  return out;
});
// Loaders: every range between consecutive 8 MiB checkpoints (the last one to the end), one after another.
const checkpoints: Checkpoint[] = [];
let nextTarget = 0;
for await (
  const event of inflateFrom("gzip", startCheckpoint("gzip", 0), pieces(gz, () => 1 << 20), {
    checkpointAt: () => (nextTarget += 8 * 1024 * 1024),
  })
) if (event.kind === "checkpoint") checkpoints.push(event.checkpoint);
async function loaders(engine: "pako" | "auto"): Promise<number> {
  let out = 0;
  const starts = [startCheckpoint("gzip", 0), ...checkpoints];
  for (const [i, from] of starts.entries()) {
    const stopAt = checkpoints[i];
    const input = pieces(gz.subarray(resumeByte(from)), () => 1 << 20);
    for await (const event of inflateFrom("gzip", from, input, { stopAt, engine })) {
      if (event.kind === "data") out += event.bytes.length;
    }
  }
  if (out !== size) throw new Error(`loaders inflated ${out} bytes, expected ${size}`);
  return out;
}
await timed("loaders, 8 MiB ranges, engine pako", () => loaders("pako"));
await timed("loaders, 8 MiB ranges, engine auto (native)", () => loaders("auto"));

const plain = csvLikeData(size, 2024, 0.05);
await timed("crc32 (slicing-by-8) alone, included above", () => Promise.resolve(crc32(0, plain)));
await timed("pako crc32 alone, for comparison", () => Promise.resolve(pakoCrc32(0, plain)));
