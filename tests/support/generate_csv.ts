/**
 * Usage: deno run -A tests/support/generate_csv.ts --rows N --out FILE [--seed S] [--crlf] [--bad-every K]
 *                                                 [--clean-out FILE] [--manifest FILE]
 *
 * A deterministic (seeded) generator of realistic CSV files for the demo, the end-to-end tests and the
 * benchmark: columns of several types (bigint, uuid, text, char(2), numeric(12,2), int, boolean,
 * timestamptz, an enum, free text), ~5% of the notes quoted with embedded newlines, commas, escaped quotes and
 * multibyte characters, LF or CRLF line endings, and optionally planted bad rows (one every K rows, cycling
 * through the kinds in BAD_KINDS).
 *
 * Invariants:
 * - Same options → byte-identical output.
 * - `--clean-out` writes the same file without the planted rows: what `psql \copy` must load into the same
 *   table for the pipeline's result to be right. The manifest lists every planted row's physical line number
 *   (1-based, counting the header and quoted line breaks, as an editor shows them) and kind.
 * - Memory is bounded: rows are written in buffered pieces.
 */
import { parseArgs } from "node:util";

/** The table every generated file targets (also created by the demo and the tests). */
export const DEMO_TABLE_SQL = `
do $$ begin
  if not exists (select 1 from pg_type where typname = 'demo_order_status') then
    create type public.demo_order_status as enum ('new', 'paid', 'shipped', 'cancelled');
  end if;
end $$;
create table if not exists public.demo_orders (
  id bigint primary key,
  customer_id uuid not null,
  email text not null,
  country char(2),
  amount numeric(12, 2),
  quantity int,
  paid boolean,
  ordered_at timestamptz,
  status public.demo_order_status,
  note text
);`;

export const HEADER = [
  "id",
  "customer_id",
  "email",
  "country",
  "amount",
  "quantity",
  "paid",
  "ordered_at",
  "status",
  "note",
];

/** Planted bad rows, each rejected for a different reason (the id of "duplicate_key" is DUPLICATE_ID). */
export const BAD_KINDS = [
  "bad_integer",
  "impossible_date",
  "missing_field",
  "bad_uuid",
  "numeric_overflow",
  "null_not_null",
  "bad_boolean",
  "duplicate_key",
  "bad_enum",
] as const;
export type BadKind = typeof BAD_KINDS[number];

/** A row with this id exists before the import (tests insert it), so a row repeating it is a unique violation. */
export const DUPLICATE_ID = -1;

export interface GenerateOptions {
  rows: number;
  seed?: number;
  crlf?: boolean;
  /** Plant a bad row after every `badEvery` good rows (0 = none). */
  badEvery?: number;
}

export interface Manifest {
  rows: number;
  goodRows: number;
  planted: { line: number; kind: BadKind }[];
  bytes: number;
  cleanBytes: number;
}

/** mulberry32: a tiny, fast, well-distributed seeded PRNG (numbers in [0, 1)). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  "alpha",
  "bravo",
  "delivery",
  "fragile",
  "gift",
  "urgent",
  "late",
  "ok",
  "returned",
  "café",
  "naïve",
  "日本",
  "Zürich",
  "🚚",
];
const COUNTRIES = ["US", "DE", "FR", "JP", "BR", "IN", "GB", "ES", "IT", "CA"];
const STATUSES = ["new", "paid", "shipped", "cancelled"];

export interface GeneratedRow {
  /** The record with its terminator. */
  text: string;
  bad: BadKind | null;
  /** Physical lines the record spans. */
  lines: number;
}

/** The data rows, in file order. */
export function* generateRows(options: GenerateOptions): Generator<GeneratedRow> {
  const random = prng(options.seed ?? 42);
  const eol = options.crlf ? "\r\n" : "\n";
  const hex4 = () => Math.floor(random() * 0x10000).toString(16).padStart(4, "0");
  const hex = (n: number) => Array.from({ length: Math.ceil(n / 4) }, hex4).join("").slice(0, n);
  const uuid = () =>
    `${hex(8)}-${hex(4)}-4${hex(3)}-${(8 + Math.floor(random() * 4)).toString(16)}${hex(3)}-${hex(12)}`;
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
  const baseTime = Date.UTC(2024, 0, 1);
  let badIndex = 0;

  const note = (): { text: string; breaks: number } => {
    const r = random();
    if (r < 0.05) {
      // Quoted: embedded line break (matching the file's style), a comma and an escaped quote.
      const text = `"${pick(WORDS)}, ""${pick(WORDS)}""${eol}${pick(WORDS)} ${pick(WORDS)}"`;
      return { text, breaks: 1 };
    }
    if (r < 0.4) return { text: `${pick(WORDS)} ${pick(WORDS)}`, breaks: 0 };
    return { text: r < 0.45 ? "" : pick(WORDS), breaks: 0 };
  };

  const goodFields = (id: number) => [
    String(id),
    uuid(),
    `user${id}@example.com`,
    pick(COUNTRIES),
    (random() * 100000).toFixed(2),
    String(1 + Math.floor(random() * 1000)),
    random() < 0.5 ? "true" : "false",
    new Date(baseTime + Math.floor(random() * 3e10)).toISOString(),
    pick(STATUSES),
  ];

  const every = options.badEvery ?? 0;
  for (let i = 1; i <= options.rows; i++) {
    const fields = goodFields(i);
    const n = note();
    yield { text: `${fields.join(",")},${n.text}${eol}`, bad: null, lines: n.breaks + 1 };
    if (every > 0 && i % every === 0) {
      const kind = BAD_KINDS[badIndex++ % BAD_KINDS.length];
      const bad = goodFields(options.rows + badIndex);
      switch (kind) {
        case "bad_integer":
          bad[5] = `${bad[5]}x`;
          break;
        case "impossible_date":
          bad[7] = "2024-02-30T10:00:00.000Z";
          break;
        case "missing_field":
          bad.pop();
          break;
        case "bad_uuid":
          bad[1] = "not-a-uuid";
          break;
        case "numeric_overflow":
          bad[4] = "12345678901234.5";
          break;
        case "null_not_null":
          bad[2] = "";
          break;
        case "bad_boolean":
          bad[6] = "maybe";
          break;
        case "duplicate_key":
          bad[0] = String(DUPLICATE_ID);
          break;
        case "bad_enum":
          bad[8] = "lost";
          break;
      }
      const text = kind === "missing_field" ? `${bad.join(",")}${eol}` : `${bad.join(",")},planted${eol}`;
      yield { text, bad: kind, lines: 1 };
    }
  }
}

/** Writes the file (and optionally the clean file) in ~1 MB pieces; returns the manifest. */
export async function writeCsv(
  path: string,
  options: GenerateOptions,
  cleanPath?: string,
): Promise<Manifest> {
  const encoder = new TextEncoder();
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const clean = cleanPath ? await Deno.open(cleanPath, { write: true, create: true, truncate: true }) : null;
  const manifest: Manifest = { rows: 0, goodRows: 0, planted: [], bytes: 0, cleanBytes: 0 };
  let piece = HEADER.join(",") + (options.crlf ? "\r\n" : "\n");
  let cleanPiece = piece;
  const flush = async () => {
    const bytes = encoder.encode(piece);
    manifest.bytes += bytes.length;
    await writeAll(file, bytes);
    if (clean) {
      const cleanBytes = encoder.encode(cleanPiece);
      manifest.cleanBytes += cleanBytes.length;
      await writeAll(clean, cleanBytes);
    }
    piece = "";
    cleanPiece = "";
  };
  let line = 2;
  for (const row of generateRows(options)) {
    manifest.rows++;
    if (row.bad) manifest.planted.push({ line, kind: row.bad });
    else {
      manifest.goodRows++;
      cleanPiece += row.text;
    }
    piece += row.text;
    line += row.lines;
    if (piece.length > 1 << 20) await flush();
  }
  await flush();
  file.close();
  clean?.close();
  return manifest;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array) {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rows: { type: "string", default: "1000" },
      out: { type: "string" },
      seed: { type: "string", default: "42" },
      crlf: { type: "boolean", default: false },
      "bad-every": { type: "string", default: "0" },
      "clean-out": { type: "string" },
      manifest: { type: "string" },
    },
  });
  if (!values.out) {
    console.error("--out FILE is required");
    Deno.exit(2);
  }
  const manifest = await writeCsv(values.out, {
    rows: Number(values.rows),
    seed: Number(values.seed),
    crlf: values.crlf,
    badEvery: Number(values["bad-every"]),
  }, values["clean-out"]);
  if (values.manifest) await Deno.writeTextFile(values.manifest, JSON.stringify(manifest, null, 2));
  console.log(JSON.stringify({ ...manifest, planted: manifest.planted.length }));
}
