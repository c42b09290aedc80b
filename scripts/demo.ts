/**
 * Usage: deno run -A scripts/demo.ts [--rows N] [--bad-every K]
 *
 * The quick start's end-to-end run on the local stack: creates the demo table and its import profile
 * (idempotent), generates a seeded sample CSV (quoted multi-line notes, CRLF, planted bad rows), uploads it to
 * the csv-uploads bucket with supabase-js exactly as an app would, follows the job the storage trigger created
 * until it finishes, and prints what happened: rows loaded and rejected, throughput, the first rejects with
 * their line numbers, and where the rejects CSV is. Exits non-zero unless the job ends as expected.
 */
import { createClient } from "@supabase/supabase-js";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { SECRET_KEY } from "../local-stack/keys.ts";
import { DEMO_TABLE_SQL, DUPLICATE_ID, writeCsv } from "../tests/support/generate_csv.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rows: { type: "string", default: "100000" }, "bad-every": { type: "string", default: "5000" } },
});
const rows = Number(values.rows);
const supabaseUrl = Deno.env.get("SUPABASE_URL") ?? "http://127.0.0.1:54321";
const sql = postgres(
  Deno.env.get("SUPABASE_DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
  {
    max: 1,
    onnotice: () => {},
  },
);

await sql.unsafe(DEMO_TABLE_SQL);
await sql`
  insert into csv_import.profiles (name, path_pattern, target_table, tolerated_reject_rate)
  values ('demo-orders', 'demo/%', 'public.demo_orders', 0.01)
  on conflict (name) do nothing`;
await sql`truncate public.demo_orders`;
await sql`insert into public.demo_orders (id, customer_id, email) values (${DUPLICATE_ID}, gen_random_uuid(), 'existing@example.com')`;

await Deno.mkdir(".data", { recursive: true });
const path = `.data/demo-${rows}.csv`;
const manifest = await writeCsv(path, { rows, seed: 7, crlf: true, badEvery: Number(values["bad-every"]) });
console.log(
  `Generated ${path}: ${manifest.rows} rows, ${
    (manifest.bytes / 1e6).toFixed(1)
  } MB, ${manifest.planted.length} planted bad rows`,
);

const objectName = `demo/orders-${Date.now()}.csv`;
const supabase = createClient(supabaseUrl, SECRET_KEY, { auth: { persistSession: false } });
const file = await Deno.open(path);
const uploadStarted = performance.now();
const { error } = await supabase.storage.from("csv-uploads").upload(objectName, file.readable, {
  contentType: "text/csv",
  duplex: "half",
} as Record<string, unknown>);
if (error) throw new Error(`Upload failed: ${error.message}`);
const uploaded = performance.now();
console.log(
  `Uploaded csv-uploads/${objectName} in ${
    ((uploaded - uploadStarted) / 1000).toFixed(1)
  } s; following the import…`,
);

type Progress = {
  job_id: number;
  status: string;
  percent: string;
  rows_loaded: string;
  rows_rejected: string;
  chunk_count: number;
  error: string | null;
  rejects_object: string | null;
};
let last = "";
const deadline = Date.now() + 10 * 60_000;
let job: Progress | undefined;
for (;;) {
  [job] = await sql<Progress[]>`
    select job_id, status, percent, rows_loaded, rows_rejected, chunk_count, error, rejects_object
    from csv_import.job_progress where object_name = ${objectName} order by job_id desc limit 1`;
  const line = job
    ? `  job ${job.job_id}: ${job.status}, ${job.percent}%, ${job.rows_loaded} loaded, ${job.rows_rejected} rejected`
    : "  waiting for the job…";
  if (line !== last) console.log(last = line);
  if (
    job && !["registering", "queued", "running"].includes(job.status) &&
    (job.rows_rejected === "0" || job.rejects_object)
  ) break;
  if (Date.now() > deadline) throw new Error("The job did not finish within 10 minutes");
  await new Promise((resolve) => setTimeout(resolve, 250));
}
const seconds = (performance.now() - uploaded) / 1000;
console.log(
  `\nJob ${job.job_id} ${job.status} in ${
    seconds.toFixed(1)
  } s after the upload: ${job.rows_loaded} rows loaded ` +
    `(${
      Math.round(Number(job.rows_loaded) / seconds).toLocaleString("en-US")
    } rows/s), ${job.rows_rejected} rejected, ${job.chunk_count} chunks`,
);
if (job.error) console.log(`Error: ${job.error}`);
const rejects = await sql`
  select line_number, column_name, reason from csv_import.rejects where job_id = ${job.job_id} order by line_number limit 5`;
for (const r of rejects) {
  console.log(`  line ${r.line_number}${r.column_name ? ` (${r.column_name})` : ""}: ${r.reason}`);
}
if (job.rejects_object) console.log(`All rejects: csv-uploads/${job.rejects_object}`);
const [{ count }] = await sql`select count(*) - 1 as count from public.demo_orders`;
console.log(`public.demo_orders now holds ${count} imported rows.`);
await sql.end();

const ok = job.status === "succeeded_with_rejects" && Number(job.rows_loaded) === manifest.goodRows &&
  Number(job.rows_rejected) === manifest.planted.length && Number(count) === manifest.goodRows;
if (!ok) {
  console.error(
    `Unexpected result: expected ${manifest.goodRows} loaded and ${manifest.planted.length} rejected`,
  );
  Deno.exit(1);
}
