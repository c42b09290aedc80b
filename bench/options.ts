/**
 * bench/main.ts's command-line options, parsed and validated when this module is first imported (bench/main.ts
 * and the modules it runs). Kept apart from bench/context.ts so that commands with options of their own
 * (bench/burst.ts) do not have theirs refused as unknown here.
 *
 * Invariant: importing this module with --help prints the usage (bench/main.ts's first lines) and exits.
 */
import { parseArgs } from "node:util";
import { parseSize } from "../supabase/functions/_shared/platform/config.ts";
import { parseCountList } from "./bench_lib.ts";

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
