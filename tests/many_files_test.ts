/**
 * Many files at once, on the real stack:
 * - ten files uploaded concurrently (each with quoted multi-line notes and planted bad rows, split into many
 *   small chunks) all finish on their own, each with exactly its own counts and a table equal to `psql \copy`
 *   of its clean file: jobs sharing the fan-out never mix, lose or duplicate rows;
 * - fairness under a limited fan-out: a small file uploaded right after a huge one, while the huge one's chunks
 *   fill every slot of the global fan-out, is claimed before the huge job's remaining chunks and finishes first
 *   (claim_chunks' round-robin by running chunks), instead of waiting behind the whole huge file.
 */
import assert from "node:assert/strict";
import { DUPLICATE_ID, type Manifest, writeCsv } from "./support/generate_csv.ts";
import {
  checksum,
  connect,
  describeJob,
  E2E,
  insertSentinel,
  psqlCopy,
  Scope,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";

Deno.test({ name: "many files: ten uploads at once all finish with correct counts", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "ten");
  try {
    const dir = await scope.tempDir();
    const files: { name: string; path: string; manifest: Manifest; target: string; reference: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const path = `${dir}/f${i}.csv`;
      const clean = `${dir}/f${i}.clean.csv`;
      const manifest = await writeCsv(path, {
        rows: 600 * (i + 1),
        seed: 100 + i,
        crlf: i % 2 === 0,
        badEvery: 97,
      }, clean);
      const target = await scope.table(`ten${i}`);
      const reference = await scope.table(`ten${i}_ref`);
      await insertSentinel(sql, target, DUPLICATE_ID);
      await insertSentinel(sql, reference, DUPLICATE_ID);
      await psqlCopy(reference, clean);
      // One profile per file (its own table), 32 KiB chunks: 3 to 25 load chunks per file.
      await scope.profile({
        pathPattern: `${scope.prefix}/f${i}.csv`,
        targetTable: target,
        chunkSizeBytes: 32 * 1024,
        toleratedRejectRate: 0.02,
      });
      files.push({ name: scope.object(`f${i}.csv`), path, manifest, target, reference });
    }

    const started = performance.now();
    await Promise.all(files.map((f) => upload(f.name, { path: f.path })));
    const jobs = await Promise.all(files.map((f) => waitForJob(sql, f.name, 120_000)));
    console.log(
      `  10 files, ${jobs.reduce((n, j) => n + j.chunk_count, 0)} load chunks: all finished in ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`,
    );

    for (const [i, f] of files.entries()) {
      const job = jobs[i];
      const label = `file ${i} (job ${job.id})`;
      assert.equal(job.status, "succeeded_with_rejects", `${label}: ${job.error}`);
      assert.ok(job.chunk_count > 1, `${label}: several chunks`);
      assert.equal(job.rows_parsed, f.manifest.rows, label);
      assert.equal(job.rows_loaded, f.manifest.goodRows, label);
      assert.equal(job.rows_rejected, f.manifest.planted.length, label);
      const [{ lines }] = await sql<{ lines: number[] }[]>`
        select coalesce(array_agg(line_number::int order by line_number), '{}') as lines
        from csv_import.rejects where job_id = ${job.id}`;
      assert.deepEqual(lines, f.manifest.planted.map((p) => p.line), `${label}: reject lines`);
      assert.deepEqual(await checksum(sql, f.target), await checksum(sql, f.reference), `${label}: table`);
    }
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "many files: a small file uploaded after a huge one finishes first", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "fair");
  try {
    const dir = await scope.tempDir();
    const huge = { path: `${dir}/huge.csv`, name: scope.object("huge.csv") };
    const small = { path: `${dir}/small.csv`, name: scope.object("small.csv") };
    const hugeManifest = await writeCsv(huge.path, { rows: 150_000, seed: 1, crlf: true });
    const smallManifest = await writeCsv(small.path, { rows: 500, seed: 2, crlf: true });
    const hugeTable = await scope.table("huge");
    const smallTable = await scope.table("small");
    // The huge job may use the whole global fan-out (4): 128 KiB chunks, ~150 load chunks and as many scans.
    await scope.profile({
      pathPattern: `${scope.prefix}/huge.csv`,
      targetTable: hugeTable,
      chunkSizeBytes: 128 * 1024,
      maxParallelChunks: 4,
    });
    await scope.profile({ pathPattern: `${scope.prefix}/small.csv`, targetTable: smallTable });

    await upload(huge.name, { path: huge.path });
    // "Right after": once the huge job has chunks running, so the small one has to compete for a slot.
    await waitFor(
      "the huge job to be running",
      async () => {
        const [row] = await sql<{ running: number }[]>`
        select count(*)::int as running from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
        where j.object_name = ${huge.name} and c.status = 'running'`;
        return row.running >= 2 ? true : undefined;
      },
      30_000,
      () => describeJob(sql, huge.name),
      20,
    );
    await upload(small.name, { path: small.path });

    const smallJob = await waitForJob(sql, small.name, 60_000);
    const [{ left }] = await sql<{ left: number }[]>`
      select count(*)::int as left from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
      where j.object_name = ${huge.name} and c.status in ('pending', 'running')`;
    const hugeJob = await waitForJob(sql, huge.name, 120_000);

    assert.equal(smallJob.status, "succeeded", smallJob.error ?? "");
    assert.equal(hugeJob.status, "succeeded", hugeJob.error ?? "");
    assert.ok(left > 20, `the huge job still had ${left} chunks to do when the small one finished`);
    assert.ok(smallJob.finished_at! < hugeJob.finished_at!, "the small file finished first");
    assert.ok(
      smallJob.created_at > hugeJob.started_at!,
      "the small file was uploaded after the huge one started",
    );
    assert.equal(smallJob.rows_loaded, smallManifest.rows);
    assert.equal(hugeJob.rows_loaded, hugeManifest.rows);
    assert.equal((await checksum(sql, smallTable)).count, smallManifest.rows);
    assert.equal((await checksum(sql, hugeTable)).count, hugeManifest.rows);
    const waited = (smallJob.finished_at!.getTime() - smallJob.created_at.getTime()) / 1000;
    const total = (hugeJob.finished_at!.getTime() - hugeJob.created_at.getTime()) / 1000;
    console.log(
      `  small file: ${waited.toFixed(1)} s from upload to done, while the huge one took ${
        total.toFixed(1)
      } s`,
    );
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
