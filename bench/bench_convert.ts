/**
 * Micro-benchmark of the column converters: prints values/s per type on typical CSV values.
 *
 * Run: `deno run bench/bench_convert.ts [valuesPerType]`
 *
 * Each type converts the same array of realistic values (mostly valid, a few rejects) several times after a
 * warm-up; the best round is reported. "object result" rows measure the alternative API that wraps every
 * result in `{ ok, text }`, for comparison with the allocation-free `string | Rejection` design.
 */

import type { TargetColumn } from "../supabase/functions/_shared/pg_types/columns.ts";
import { builtinColumn as testColumn } from "../supabase/functions/_shared/pg_types/columns.ts";
import {
  compileConverter,
  type Converter,
  type ConvertOptions,
} from "../supabase/functions/_shared/pg_types/convert.ts";

const N = Number(Deno.args[0] ?? "500000");

function column(baseType: string, extra: Partial<TargetColumn> = {}): TargetColumn {
  return testColumn("c", baseType, extra);
}

/** Deterministic pseudo-random numbers. */
let seed = 42;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
}
const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
const pad = (n: number, w = 2) => String(n).padStart(w, "0");
const hex = (n: number) => Array.from({ length: n }, () => "0123456789abcdef"[int(0, 15)]).join("");

const WORDS = [
  "alpha",
  "beta",
  "gamma",
  "delta",
  "Zürich",
  "naïve café",
  "東京",
  "emoji 😀",
  "x",
  "long text value",
];

interface Case {
  name: string;
  col: TargetColumn;
  options?: ConvertOptions;
  gen: () => string | null;
}

const cases: Case[] = [
  { name: "integer", col: column("int4"), gen: () => String(int(-1e6, 1e9)) },
  { name: "smallint", col: column("int2"), gen: () => String(int(-3000, 30000)) },
  { name: "bigint", col: column("int8"), gen: () => String(int(0, 9e15)) + (rnd() < 0.5 ? "123" : "") },
  {
    name: "numeric(12,2)",
    col: column("numeric", { numericPrecision: 12, numericScale: 2 }),
    gen: () => `${int(0, 999999)}.${pad(int(0, 99))}`,
  },
  { name: "numeric", col: column("numeric"), gen: () => `${int(-99999, 99999)}.${int(0, 99999)}` },
  { name: "double precision", col: column("float8"), gen: () => String(rnd() * 10 ** int(-5, 8)) },
  { name: "real", col: column("float4"), gen: () => (rnd() * 1000).toFixed(3) },
  {
    name: "boolean",
    col: column("bool"),
    gen: () => ["true", "false", "t", "f", "yes", "no", "1", "0"][int(0, 7)],
  },
  {
    name: "text",
    col: column("text"),
    gen: () => WORDS[int(0, WORDS.length - 1)] + (rnd() < 0.05 ? "\ttab" : ""),
  },
  {
    name: "varchar(20)",
    col: column("varchar", { charLength: 20 }),
    gen: () => WORDS[int(0, WORDS.length - 1)],
  },
  { name: "uuid", col: column("uuid"), gen: () => `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}` },
  {
    name: "date",
    col: column("date"),
    gen: () => `${int(1950, 2030)}-${pad(int(1, 12))}-${pad(int(1, 28))}`,
  },
  {
    name: "timestamp",
    col: column("timestamp"),
    gen: () =>
      `${int(1950, 2030)}-${pad(int(1, 12))}-${pad(int(1, 28))} ${pad(int(0, 23))}:${pad(int(0, 59))}:00`,
  },
  {
    name: "timestamptz",
    col: column("timestamptz"),
    gen: () =>
      `${int(1950, 2030)}-${pad(int(1, 12))}-${pad(int(1, 28))}T${pad(int(0, 23))}:${pad(int(0, 59))}:${
        pad(int(0, 59))
      }.${int(100, 999)}Z`,
  },
  {
    name: "date, dd/mm/yyyy (dmy)",
    col: column("date"),
    options: { dateStyle: "dmy" },
    gen: () => `${pad(int(1, 28))}/${pad(int(1, 12))}/${int(1950, 2030)}`,
  },
  {
    name: "time",
    col: column("time"),
    gen: () => `${pad(int(0, 23))}:${pad(int(0, 59))}:${pad(int(0, 59))}`,
  },
  {
    name: "jsonb (small object)",
    col: column("jsonb"),
    gen: () => `{"id":${int(1, 1e6)},"name":"${WORDS[int(0, 4)]}","tags":["a","b"],"ok":true}`,
  },
  {
    name: "enum",
    col: column("mood", { baseTypeKind: "e", baseTypeSchema: "public", enumLabels: ["sad", "ok", "happy"] }),
    gen: () => ["sad", "ok", "happy"][int(0, 2)],
  },
  { name: "integer, 10% NULL", col: column("int4"), gen: () => (rnd() < 0.1 ? null : String(int(0, 1e6))) },
];

function bench(conv: Converter, values: (string | null)[]): number {
  let best = Infinity;
  let sink = 0;
  for (let round = 0; round < 7; round++) {
    const t0 = performance.now();
    for (let i = 0; i < values.length; i++) {
      const r = conv(values[i]);
      sink += typeof r === "string" ? r.length : 1;
    }
    const dt = performance.now() - t0;
    if (round >= 2 && dt < best) best = dt;
  }
  if (sink === -1) console.log(sink);
  return values.length / (best / 1000);
}

type ObjResult = { ok: true; text: string } | { ok: false; reason: string };

function objectApi(conv: Converter): (v: string | null) => ObjResult {
  return (v) => {
    const r = conv(v);
    return typeof r === "string" ? { ok: true, text: r } : { ok: false, reason: r.reason };
  };
}

function benchObj(conv: (v: string | null) => ObjResult, values: (string | null)[]): number {
  let best = Infinity;
  let sink = 0;
  for (let round = 0; round < 7; round++) {
    const t0 = performance.now();
    for (let i = 0; i < values.length; i++) {
      const r = conv(values[i]);
      sink += r.ok ? r.text.length : 1;
    }
    const dt = performance.now() - t0;
    if (round >= 2 && dt < best) best = dt;
  }
  if (sink === -1) console.log(sink);
  return values.length / (best / 1000);
}

const fmt = (x: number) => `${(x / 1e6).toFixed(1).padStart(6)} M values/s`;

console.log(`${N} values per type, best of 5 rounds after warm-up`);
for (const c of cases) {
  const values = Array.from({ length: N }, c.gen);
  const conv = compileConverter(c.col, c.options);
  console.log(`${c.name.padEnd(26)} ${fmt(bench(conv, values))}`);
}
for (const name of ["integer", "text", "date"]) {
  const c = cases.find((x) => x.name === name)!;
  const values = Array.from({ length: N }, c.gen);
  const conv = objectApi(compileConverter(c.col, c.options));
  console.log(`${(name + " (object result)").padEnd(26)} ${fmt(benchObj(conv, values))}`);
}
