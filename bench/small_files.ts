/**
 * Usage: deno run -A bench/small_files.ts [--files 20] [--gap-ms 1200]
 *
 * Small-file latency on the local stack (issue 14's "100-row file, upload → done"): uploads a 100-row file
 * `--files` times, one at a time, `--gap-ms` apart (pg_net's worker sleeps 1 s after every batch it sends, so
 * uploads less than a second apart measure that pause, not the pipeline), and prints p50 / p95 of the job's
 * created_at → finished_at and of what the uploader sees (upload answered → job seen finished, polling every
 * 200 ms). A table and profile of its own, removed at the end; loopback only (tests/support/stack.ts).
 */
import { parseArgs } from "node:util";
import { connect, Scope, upload, waitForJob } from "../tests/support/stack.ts";

const { values } = parseArgs({ options: { files: { type: "string" }, "gap-ms": { type: "string" } } });
const files = Number(values.files ?? 20);
const gapMs = Number(values["gap-ms"] ?? 1200);

const sql = connect();
const scope = new Scope(sql, "bench_small");
try {
  const table = `public.${scope.prefix}_t`;
  await sql.unsafe(`create table ${table} (id int primary key, v text)`);
  scope.defer(() => sql.unsafe(`drop table if exists ${table}`));
  await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table });
  const body = "id,v\n" + Array.from({ length: 100 }, (_, i) => `${i},x${i}`).join("\n") + "\n";
  const job: number[] = [];
  const seen: number[] = [];
  for (let i = 0; i < files; i++) {
    await sql.unsafe(`truncate ${table}`);
    await new Promise((resolve) => setTimeout(resolve, gapMs));
    const name = scope.object(`f${i}.csv`);
    await upload(name, body);
    const uploaded = Date.now();
    const done = await waitForJob(sql, name, 30_000);
    seen.push(Date.now() - uploaded);
    const [{ ms }] = await sql<{ ms: number }[]>`
      select round(extract(epoch from finished_at - created_at) * 1000)::int as ms from csv_import.jobs
      where id = ${done.id}`;
    job.push(ms);
  }
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * p) - 1];
  console.log(JSON.stringify({
    files,
    gapMs,
    job_ms: { p50: pct(job, 0.5), p95: pct(job, 0.95) },
    uploader_ms: { p50: pct(seen, 0.5), p95: pct(seen, 0.95) },
  }));
} finally {
  await scope.dispose();
  await sql.end();
}
