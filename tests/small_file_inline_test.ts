/**
 * Small files in fewer hops (issue 14, "small files fast"): a file of one chunk and at most
 * REGISTER_INLINE_LOAD_BYTES (1 MiB) is loaded by its register invocation itself, right after it answered pg_net,
 * instead of by a chunk invocation it would hand the chunk to. Against the real local stack:
 * - a 100-row file with two bad rows: every good row loaded (count and checksum against `psql \copy` of the good
 *   rows), the two rejects with their lines, and every chunk event of the job written by csv-import-register's
 *   worker, none by csv-import-chunk's;
 * - the same file gzipped: its inflate chain and its load both run in the register invocation;
 * - a 1.2 MiB file of one chunk (over the bound): loaded by csv-import-chunk, as before;
 * - a small file's load reads its range before its batch transaction opens (chunk_worker.ts READ_WHOLE_MAX_BYTES):
 *   with that read stalled 1.5 s by the Storage stand-in's fault injection, the stall falls between the chunk's
 *   claim and its batch, and the batch itself stays short.
 */
import assert from "node:assert/strict";
import { functionEvents } from "./support/faults.ts";
import {
  checksum,
  clearStorageFaults,
  connect,
  E2E,
  psqlCopy,
  Scope,
  setStorageFaults,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";

Deno.test({ name: "small files: loaded by the register invocation, exactly", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "inline");
  try {
    const dir = await scope.tempDir();
    const { table, reference } = await scope.tableAndReference(
      "id int primary key, name text not null, amount numeric(10,2)",
    );
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table, toleratedRejectRate: 0.5 });

    const good = Array.from(
      { length: 100 },
      (_, i) => `${i + 1},"name ${i + 1}, quoted",${(i * 1.25).toFixed(2)}`,
    );
    const rows = [...good];
    rows.splice(10, 0, "x11,bad id,1.00"); // line 12
    rows.splice(50, 0, "51b,,"); // line 52
    await Deno.writeTextFile(`${dir}/good.csv`, "id,name,amount\n" + good.join("\n") + "\n");
    await psqlCopy(reference, `${dir}/good.csv`);

    const small = scope.object("small.csv");
    await upload(small, "id,name,amount\n" + rows.join("\n") + "\n");
    const job = await waitForJob(sql, small, 30_000);
    assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
    assert.deepEqual([job.rows_loaded, job.rows_rejected], [100, 2]);
    assert.deepEqual(await checksum(sql, table), await checksum(sql, reference), "the good rows, exactly");
    const rejects = await sql<{ line_number: number }[]>`
      select line_number::int from csv_import.rejects where job_id = ${job.id} order by line_number`;
    assert.deepEqual(rejects.map((r) => r.line_number), [12, 52]);

    const events = (await functionEvents(job)).filter((e) => String(e.event).startsWith("chunk_"));
    assert.ok(events.some((e) => e.event === "chunk_loaded"), JSON.stringify(events));
    assert.deepEqual(
      [...new Set(events.map((e) => e.fn))],
      ["csv-import-register"],
      `the chunk was loaded by the register invocation: ${JSON.stringify(events)}`,
    );
    const [timing] = await sql<{ ms: number }[]>`
      select round(extract(epoch from finished_at - created_at) * 1000)::int as ms from csv_import.jobs
      where id = ${job.id}`;
    console.log(`100-row file: ${timing.ms} ms from upload to done`);

    // The same rows gzipped: the register invocation runs the inflate chain and then the load.
    await sql.unsafe(`truncate ${table}`);
    const gz = scope.object("small.csv.gz");
    const text = new TextEncoder().encode("id,name,amount\n" + rows.join("\n") + "\n");
    await upload(
      gz,
      new Uint8Array(
        await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")))
          .arrayBuffer(),
      ),
    );
    const gzJob = await waitForJob(sql, gz, 30_000);
    assert.equal(gzJob.status, "succeeded_with_rejects", gzJob.error ?? "");
    assert.deepEqual(await checksum(sql, table), await checksum(sql, reference), "the good rows, gzipped");
    const gzEvents = await waitFor("the .csv.gz job's two chunk lines", async () => {
      const lines = (await functionEvents(gzJob)).filter((e) => String(e.event).startsWith("chunk_"));
      return lines.length >= 2 ? lines : undefined;
    }, 10_000);
    assert.deepEqual(
      gzEvents.map((e) => e.event).sort(),
      ["chunk_inflated", "chunk_loaded"],
      JSON.stringify(gzEvents),
    );
    assert.deepEqual(
      [...new Set(gzEvents.map((e) => e.fn))],
      ["csv-import-register"],
      `both in the register invocation: ${JSON.stringify(gzEvents)}`,
    );
    const [gzTiming] = await sql<{ ms: number }[]>`
      select round(extract(epoch from finished_at - created_at) * 1000)::int as ms from csv_import.jobs
      where id = ${gzJob.id}`;
    console.log(`100-row .csv.gz: ${gzTiming.ms} ms from upload to done`);

    // Over the bound (1.2 MiB, still one 8 MiB chunk): a chunk invocation loads it.
    const large = scope.object("large.csv");
    const line = (i: number) => `${i},${"n".repeat(90)},1.00`;
    const count = Math.ceil((1.2 * 1024 * 1024) / line(100_000).length);
    await sql.unsafe(`truncate ${table}`);
    await upload(
      large,
      "id,name,amount\n" + Array.from({ length: count }, (_, i) => line(i + 1)).join("\n") + "\n",
    );
    const largeJob = await waitForJob(sql, large, 60_000);
    assert.equal(largeJob.status, "succeeded", largeJob.error ?? "");
    assert.equal(largeJob.chunk_count, 1);
    assert.equal(largeJob.rows_loaded, count);
    // The worker logs chunk_loaded just after the commit that finished the job: wait for the line.
    const largeEvents = await waitFor("the large file's chunk_loaded line", async () => {
      const loaded = (await functionEvents(largeJob)).filter((e) => e.event === "chunk_loaded");
      return loaded.length > 0 ? loaded : undefined;
    }, 10_000);
    assert.deepEqual([...new Set(largeEvents.map((e) => e.fn))], ["csv-import-chunk"]);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "small files: the load reads its range before its batch opens", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "whole_read");
  try {
    const dir = await scope.tempDir();
    const { table, reference } = await scope.tableAndReference("id int primary key, name text not null");
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table });
    const text = "id,name\n" + Array.from({ length: 200 }, (_, i) => `${i + 1},name ${i + 1}`).join("\n") +
      "\n";
    await Deno.writeTextFile(`${dir}/small.csv`, text);
    await psqlCopy(reference, `${dir}/small.csv`);

    // The object's 1st read is registration's (its head: here the whole file), the 2nd the load's range: that one
    // sends 1 byte and then stalls 1.5 s before ending short (the reader resumes from there).
    const STALL_MS = 1500;
    await setStorageFaults({
      kind: "hang",
      every: 2,
      limit: 1,
      bytes: 1,
      hang_ms: STALL_MS,
      prefix: `${scope.prefix}/`,
    });
    const name = scope.object("small.csv");
    await upload(name, text);
    const job = await waitForJob(sql, name, 30_000);
    const counters = await clearStorageFaults();
    assert.equal(job.status, "succeeded", job.error ?? "");
    assert.deepEqual(await checksum(sql, table), await checksum(sql, reference), "every row, exactly");
    assert.equal(counters.faults.hang, 1, `the load's read stalled: ${JSON.stringify(counters)}`);

    // A chunk's finished_at is when its final batch's transaction began (csv_import.commit_batch).
    const [chunk] = await sql<{ before_batch_ms: number; batch_ms: number }[]>`
      select round(extract(epoch from c.finished_at - c.started_at) * 1000)::int as before_batch_ms,
        round(extract(epoch from j.finished_at - c.finished_at) * 1000)::int as batch_ms
      from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id where c.job_id = ${job.id}`;
    assert.ok(
      chunk.before_batch_ms >= STALL_MS - 100,
      `claim → batch ${chunk.before_batch_ms} ms: the stall is before`,
    );
    assert.ok(
      chunk.batch_ms < STALL_MS / 2,
      `the batch took ${chunk.batch_ms} ms: the stall is not inside it`,
    );
  } finally {
    await clearStorageFaults().catch(() => {});
    await scope.dispose();
    await sql.end();
  }
});
