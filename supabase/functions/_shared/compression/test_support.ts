/**
 * Helpers for the compression tests and the bench (not used by the functions): generated CSV-like data, the
 * system's gzip / zip / python3 on temporary files, and input piece streams.
 *
 * Invariants:
 * - Generated data is deterministic for a seed: a mix of repetitive CSV rows (compressible) and random bytes
 *   (incompressible stretches), so deflate emits dynamic, fixed and stored blocks.
 * - Temporary files live under one directory per call and are removed afterwards.
 */

import {
  type Checkpoint,
  type Codec,
  type InflateEvent,
  inflateFrom,
  type InflateOptions,
  resumeByte,
} from "./inflate.ts";

/** The seeded PRNG the test data generators share (mulberry32). */
export { prng } from "../../../../tests/support/generate_csv.ts";
import { prng } from "../../../../tests/support/generate_csv.ts";

/** About `size` bytes of CSV-like text with random binary stretches (exactly `size` bytes). */
export function csvLikeData(size: number, seed = 1, randomShare = 0.1): Uint8Array {
  const random = prng(seed);
  const out = new Uint8Array(size);
  const encoder = new TextEncoder();
  const words = ["alpha", "beta", "gamma", "delta", "Zürich", "naïve", "2024-01-31", "true", "false", ""];
  let at = 0;
  let row = 0;
  while (at < size) {
    if (random() < randomShare * 0.0025) { // one stretch of ~20 KB per ~200 KB of rows at 0.1
      const n = Math.min(size - at, Math.floor(random() * 40000));
      for (let i = 0; i < n; i++) out[at + i] = Math.floor(random() * 256);
      at += n;
      continue;
    }
    const fields = [
      String(row++),
      words[Math.floor(random() * words.length)],
      (random() * 1e6).toFixed(2),
      `"quoted, ${words[Math.floor(random() * words.length)]}"`,
      Math.floor(random() * 1e9).toString(36),
    ];
    const line = encoder.encode(fields.join(",") + "\n");
    const n = Math.min(line.length, size - at);
    out.set(line.subarray(0, n), at);
    at += n;
  }
  return out;
}

export async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "compression_test_" });
  try {
    return await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs a command; throws with its stderr unless it exits 0. */
export async function run(
  cmd: string[],
  opts: { cwd?: string; stdin?: Uint8Array } = {},
): Promise<Uint8Array> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: opts.cwd,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Write stdin while reading stdout: a child whose output fills the pipe would otherwise never finish
  // reading.
  const writing = opts.stdin
    ? (async () => {
      const writer = child.stdin.getWriter();
      await writer.write(opts.stdin!);
      await writer.close();
    })()
    : Promise.resolve();
  const [{ code, stdout, stderr }] = await Promise.all([child.output(), writing]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${new TextDecoder().decode(stderr)}`);
  return stdout;
}

export function gzipCli(data: Uint8Array, level = 6): Promise<Uint8Array> {
  return run(["gzip", "-c", "-n", `-${level}`], { stdin: data });
}

/** `bytes` in pieces whose sizes come from `sizes` (called per piece), copied so the reader owns each. */
export async function* pieces(
  bytes: Uint8Array,
  sizes: () => number = () => 65536,
): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length;) {
    const n = Math.max(1, Math.min(bytes.length - at, sizes()));
    yield bytes.slice(at, at + n);
    at += n;
  }
}

/** Piece sizes from 1 byte to 1 MiB, log-uniform. */
export function randomPieceSizes(seed: number): () => number {
  const random = prng(seed);
  return () => Math.floor(Math.exp(random() * Math.log(1 << 20))) || 1;
}

export interface Collected {
  output: Uint8Array;
  checkpoints: Checkpoint[];
  end: { out: number; in: number } | null;
}

/** Runs inflateFrom to its end, checking event order; collects output, checkpoints and the end event. */
export async function collect(
  codec: Codec,
  from: Checkpoint,
  object: Uint8Array,
  opts: InflateOptions & { sizes?: () => number } = {},
): Promise<Collected> {
  const chunks: Uint8Array[] = [];
  const checkpoints: Checkpoint[] = [];
  let end: Collected["end"] = null;
  let out = from.out;
  const input = pieces(object.subarray(resumeByte(from)), opts.sizes);
  for await (const event of inflateFrom(codec, from, input, opts) as AsyncGenerator<InflateEvent>) {
    if (end !== null) throw new Error("event after end");
    if (event.kind === "data") {
      if (event.out !== out) throw new Error(`data at ${event.out}, expected ${out}`);
      if (event.bytes.length > (opts.pieceBytes ?? 65536)) throw new Error("data event over pieceBytes");
      chunks.push(event.bytes.slice());
      out += event.bytes.length;
    } else if (event.kind === "checkpoint") {
      if (event.checkpoint.out !== out) {
        throw new Error(`checkpoint at ${event.checkpoint.out}, output at ${out}`);
      }
      checkpoints.push(event.checkpoint);
    } else {
      if (event.out !== out) throw new Error(`end at ${event.out}, output at ${out}`);
      end = { out: event.out, in: event.in };
    }
  }
  return { output: concat(chunks), checkpoints, end };
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A `checkpointAt` asking for a checkpoint every `every` bytes of output after `from`. */
export function every(every: number, from = 0): () => number {
  let next = from;
  return () => (next += every);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
