/**
 * The benchmark's run context, set up once when bench/main.ts starts: its options (parsed and validated from the
 * command line), the paths and URLs it works with, its database pool, the run id that names everything it creates,
 * and the small helpers every part uses (note, sleep, withDeadline, runClient). Every other bench module imports
 * from here and nothing here imports from them, so splitting the benchmark closed no import loop.
 *
 * Invariants: loopback only (SUPABASE_URL and SUPABASE_DB_URL are refused unless local); importing this module
 * with --help prints the usage (bench/main.ts's first lines) and exits.
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { parseSize } from "../supabase/functions/_shared/platform/config.ts";
import { parseCountList } from "./bench_lib.ts";

export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const SUPABASE_URL = Deno.env.get("SUPABASE_URL") ?? "http://127.0.0.1:54321";
export const DB_URL = Deno.env.get("SUPABASE_DB_URL") ??
  "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
export const STATE_DIR = Deno.env.get("LOCAL_STATE_DIR") ?? `${REPO}/.local`;
export const ENV_FILE = `${REPO}/supabase/functions/.env`;
export const GATEWAY_LOG = `${STATE_DIR}/logs/gateway.log`;
export const ENV_KEY = "WORKER_CONCURRENT_BATCHES";

export const note = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: number | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function assertLoopback(url: string, what: string) {
  const host = new URL(url).hostname;
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) {
    throw new Error(`${what} must be on loopback (the bench only runs against the local stack), got ${host}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Options

export const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rows: { type: "string", default: "1000000" },
    widths: { type: "string", default: "4" },
    "chunk-size": { type: "string" },
    "bad-every": { type: "string", default: "0" },
    seed: { type: "string", default: "42" },
    out: { type: "string", default: ".data/bench/report.json" },
    "skip-pgloader": { type: "boolean", default: false },
    "restart-stack": { type: "boolean", default: false },
    "wait-idle": { type: "string", default: "300" },
    repeat: { type: "string", default: "1" },
    compress: { type: "string", default: "none" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  const usage = await Deno.readTextFile(new URL("./main.ts", import.meta.url));
  console.log(usage.split("\n").slice(1, 5).map((l) => l.replace(/^ \* ?/, "")).join("\n"));
  Deno.exit(0);
}
export const sizes = parseCountList(args.rows);
export const widths = parseCountList(args.widths);
export const badEvery = Number(args["bad-every"]);
export const seed = Number(args.seed);
export const waitIdleSeconds = Number(args["wait-idle"]);
export const repeat = Number(args.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error("--repeat must be an integer ≥ 1");
/** Busy cores (of the whole machine) below which it counts as idle before a measurement. */
export const IDLE_CORES = 0.35;
/** What each size is uploaded as: "none" (the plain file), "gzip" (one member), "multi" (8 MiB pieces, each a member). */
export type Codec = "none" | "gzip" | "multi";
export const CODECS: readonly Codec[] = ["none", "gzip", "multi"];
export const compressions: Codec[] = [
  ...new Set(args.compress.split(",").map((c) => c.trim()).filter((c) => c !== "")),
].map((c) => {
  if (!(CODECS as readonly string[]).includes(c)) {
    throw new Error(`--compress: "${c}" is not one of ${CODECS.join(", ")}`);
  }
  return c as Codec;
});
if (compressions.length === 0) throw new Error("--compress: empty list");
export const chunkSize = args["chunk-size"] ? parseSize(args["chunk-size"]) : null;
if (args["chunk-size"] && !chunkSize) throw new Error(`--chunk-size: not a size: ${args["chunk-size"]}`);
if (!Number.isInteger(badEvery) || badEvery < 0) throw new Error("--bad-every must be an integer ≥ 0");
assertLoopback(SUPABASE_URL, "SUPABASE_URL");
assertLoopback(DB_URL, "SUPABASE_DB_URL");

export const sql = postgres(DB_URL, {
  max: 2,
  onnotice: () => {},
  idle_timeout: 30,
  connect_timeout: 10,
  connection: { TimeZone: "UTC", statement_timeout: 15 * 60_000 },
});

/** Names every table, profile and object of this run (bench_<runId>_…, bench/<runId>…). */
export const runId = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
export const OBJECT_PREFIX = `bench/${runId}`;

export async function runClient(
  cmd: string,
  cmdArgs: string[],
  timeoutMs: number,
  env: Record<string, string> = {},
) {
  const out = await new Deno.Command(cmd, {
    args: cmdArgs,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  return {
    success: out.success,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}
