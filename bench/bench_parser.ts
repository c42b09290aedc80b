/**
 * Parse-only throughput of this folder's parser and scanner vs csv-parse (sync) on one generated file.
 *
 *   deno run -A bench/bench_parser.ts [rows=300000] [pieceKiB=1024]
 *
 * The file mimics the pipeline's reference data: 10 columns (bigint, uuid, 4 text, numeric, int, boolean,
 * timestamptz), ~40% of rows with a quoted note (some with embedded newlines and `""`), ~5% non-ASCII names.
 * Every parser gets the same bytes; ours is fed in pieces (like a ranged fetch body). Best of 3 runs.
 */

import { parse } from "csv-parse/sync";
import { createRecordParser } from "../supabase/functions/_shared/csv/parser.ts";
import { createScanner } from "../supabase/functions/_shared/csv/scan.ts";

const rows = Number(Deno.args[0] ?? 300_000);
const pieceSize = Number(Deno.args[1] ?? 1024) * 1024;

let seed = 42;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x80000000;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join("");
const FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro", "Iris", "José"];
const LAST = ["Smith", "Müller", "Nguyen", "Okafor", "Rossi", "Sato", "Kowalski", "García", "Lee", "Brown"];
const isAscii = (s: string) => !/[^ -~]/.test(s);
const FIRST_ASCII = FIRST.filter(isAscii);
const LAST_ASCII = LAST.filter(isAscii);
const NOTES = [
  "Called back, no answer",
  "Prefers email, not phone",
  'Said "maybe later", follow up',
  "Line one\nline two",
  "Address: 12 Main St, Springfield",
  "VIP customer; handle with care",
];

function generate(): Uint8Array {
  const lines: string[] = ["id,uuid,first,last,email,note,amount,qty,active,created_at"];
  for (let r = 1; r <= rows; r++) {
    const ascii = rnd() > 0.05;
    const first = pick(ascii ? FIRST_ASCII : FIRST);
    const last = pick(ascii ? LAST_ASCII : LAST);
    const note = rnd() < 0.4 ? `"${pick(NOTES).replaceAll('"', '""')}"` : rnd() < 0.5 ? "" : "plain note";
    lines.push([
      r,
      `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`,
      first,
      last,
      `${first.toLowerCase()}.${last.toLowerCase()}${r}@example.com`,
      note,
      (rnd() * 10000).toFixed(2),
      Math.floor(rnd() * 1000),
      rnd() < 0.5 ? "true" : "false",
      new Date(1.6e12 + Math.floor(rnd() * 1e11)).toISOString(),
    ].join(","));
  }
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

function best(label: string, bytes: number, fn: () => number): void {
  let min = Infinity;
  let result = 0;
  for (let run = 0; run < 3; run++) {
    const t = performance.now();
    result = fn();
    min = Math.min(min, performance.now() - t);
  }
  const mbs = bytes / 1e6 / (min / 1000);
  console.log(
    `${label.padEnd(34)} ${mbs.toFixed(0).padStart(5)} MB/s  ${min.toFixed(0)} ms  (count ${result})`,
  );
}

const data = generate();
console.log(`file: ${rows} rows, ${(data.length / 1e6).toFixed(1)} MB, pieces of ${pieceSize / 1024} KiB`);
const format = { delimiter: ",", quote: '"', newline: "\n" } as const;

best("scan (quote parity + newlines)", data.length, () => {
  const s = createScanner(format);
  for (let i = 0; i < data.length; i += pieceSize) s.push(data.subarray(i, i + pieceSize));
  return s.finish().newlineCount;
});
best("this parser (fields as strings)", data.length, () => {
  const p = createRecordParser({ format, maxRecordBytes: 1 << 20 });
  let n = 0;
  for (let i = 0; i < data.length; i += pieceSize) n += p.push(data.subarray(i, i + pieceSize)).length;
  return n + p.finish().length;
});
best("csv-parse sync", data.length, () => parse(data, { relax_column_count: true }).length);
