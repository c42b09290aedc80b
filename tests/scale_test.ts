/**
 * Many imports at once, on the real stack:
 * - 20 uploads at once, each split into several load chunks (128 KiB chunks);
 * - 300 small files uploaded at once (one chunk each).
 * Every job must end succeeded with exactly its file's row count, and the shared target (no primary key, so a
 * row written twice would stay) must equal `psql \copy` of all the files together (count and checksum). The
 * wall time from the first upload to the last job finished is printed (a figure for the README, not asserted).
 * The burst of 300 registrations lands on one register isolate at once, more CPU than one isolate may spend
 * (~8 ms each): none of the burst's invocations may end by a limit. Registered all at once, 183 of them were open
 * when the isolate was killed (546); register loading small files itself during a burst once did the same. Now
 * the isolate registers a few at a time and hands the rest to a fresh isolate at beforeunload
 * (pipeline/register_queue.ts; here ~100 of 300 are handed on): every job must be registered from the trigger's
 * one request, none re-requested by reconcile (a lost queue or a failed hand-off would leave jobs to it).
 */
import assert from "node:assert/strict";
import { type Manifest, writeCsv } from "./support/generate_csv.ts";
import {
  checksum,
  connect,
  E2E,
  invocations,
  type JobRow,
  psqlCopy,
  Scope,
  upload,
  waitForJob,
} from "./support/stack.ts";
import { chunkSummary } from "./support/faults.ts";

/** Generates `count` files and one CSV of all their rows (for the \copy reference). */
async function generate(dir: string, count: number, rows: (i: number) => number, seed: number) {
  const files: { path: string; manifest: Manifest }[] = [];
  const all = await Deno.open(`${dir}/all.csv`, { write: true, create: true, truncate: true });
  try {
    for (let i = 0; i < count; i++) {
      const path = `${dir}/f${i}.csv`;
      const manifest = await writeCsv(path, { rows: rows(i), seed: seed + i });
      files.push({ path, manifest });
      // The header once, then every file's records.
      const body = await Deno.readFile(path);
      const data = i === 0 ? body : body.subarray(body.indexOf(10) + 1);
      for (let at = 0; at < data.byteLength;) at += await all.write(data.subarray(at));
    }
  } finally {
    all.close();
  }
  return files;
}

async function importAll(label: string, count: number, rows: (i: number) => number, chunkSizeBytes?: number) {
  const sql = connect(8);
  const scope = new Scope(sql, label);
  try {
    const dir = await scope.tempDir();
    const files = await generate(dir, count, rows, 1000);
    const target = await scope.table(label, { primaryKey: false });
    const reference = await scope.table(`${label}_ref`, { primaryKey: false });
    await psqlCopy(reference, `${dir}/all.csv`);
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: target, chunkSizeBytes });
    const names = files.map((_, i) => scope.object(`f${i}.csv`));

    const started = performance.now();
    await Promise.all(files.map((f, i) => upload(names[i], { path: f.path })));
    const jobs: JobRow[] = await Promise.all(names.map((n) => waitForJob(sql, n, 300_000)));
    const seconds = (performance.now() - started) / 1000;

    const totalRows = files.reduce((n, f) => n + f.manifest.rows, 0);
    const chunks = jobs.reduce((n, j) => n + j.chunk_count, 0);
    console.log(
      `  ${count} files, ${totalRows} rows, ${chunks} load chunks: all jobs finished ${
        seconds.toFixed(1)
      } s ` +
        `after the first upload started (${(totalRows / seconds).toFixed(0)} rows/s)`,
    );
    for (const [i, job] of jobs.entries()) {
      const at = `file ${i} (job ${job.id})`;
      assert.equal(job.status, "succeeded", `${at}: ${job.error}`);
      assert.equal(job.rows_parsed, files[i].manifest.rows, at);
      assert.equal(job.rows_loaded, files[i].manifest.rows, at);
      assert.equal(job.rows_rejected + job.rows_skipped, 0, at);
    }
    const attempts = (await Promise.all(jobs.map((j) => chunkSummary(sql, j.id)))).flat();
    assert.deepEqual(attempts.filter((c) => c.status !== "succeeded"), [], "every chunk succeeded");
    assert.deepEqual(
      await checksum(sql, target),
      await checksum(sql, reference),
      "table = psql \\copy of all",
    );
    // Registration requests per job: 1 = registered from the trigger's request (directly or handed on to a fresh
    // isolate); more = reconcile had to ask again (a registration lost with its isolate, or a hand-off that failed).
    const [{ max }] = await sql<{ max: number }[]>`
      select max(register_attempts)::int as max from csv_import.jobs where id = any(${
      jobs.map((j) => j.id)
    }::bigint[])`;
    return {
      jobs,
      seconds,
      chunks,
      retried: attempts.filter((c) => c.max_attempts > 1).length,
      registerRequests: max,
    };
  } finally {
    await scope.dispose();
    await sql.end();
  }
}

Deno.test({ name: "scale: 20 uploads at once, several chunks each", ...E2E }, async () => {
  // 6,000–9,800 rows (~0.8–1.3 MB) each in 128 KiB chunks: 6–10 load chunks per file.
  const { jobs } = await importAll("twenty", 20, (i) => 6_000 + 200 * i, 128 * 1024);
  assert.ok(jobs.every((j) => j.chunk_count >= 6), "every file was split into several load chunks");
});

Deno.test({ name: "scale: 300 small files at once", ...E2E }, async () => {
  const since = new Date().toISOString();
  const { jobs, registerRequests } = await importAll("burst", 300, (i) => 20 + (i % 40));
  assert.equal(jobs.length, 300);
  const burst = (await invocations()).filter((i) => i.startedAt >= since);
  assert.ok(burst.some((i) => i.function === "csv-import-register"), "the registrations were seen");
  const stopped = burst.filter((i) => i.outcome !== "ok");
  assert.deepEqual(
    stopped.map((i) => `${i.function} ${i.status} ${i.outcome}`),
    [],
    "no invocation of the burst ended by a limit",
  );
  assert.equal(registerRequests, 1, "every job registered from its first request: none waited for reconcile");
});
