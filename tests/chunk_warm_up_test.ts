/**
 * The chunk function is warmed up while a file is planned (issue 14: fewer cold starts on the path from upload to
 * first row). Against the real local stack, with every function worker killed first (cold isolates):
 * - a file over REGISTER_INLINE_LOAD_BYTES (1.2 MiB, one chunk, loaded by csv-import-chunk): csv-import-register
 *   sends csv-import-chunk an empty {"warm": true} request (answered 204, nothing else runs) before the job's
 *   chunk is even claimed; the job loads every row;
 * - a 100-row file (loaded by the register invocation itself): no warm-up request.
 */
import assert from "node:assert/strict";
import { writeCsv } from "./support/generate_csv.ts";
import {
  checksum,
  connect,
  E2E,
  invocations,
  killFunctionWorkers,
  Scope,
  upload,
  waitForJob,
} from "./support/stack.ts";

Deno.test(
  { name: "a file chunk invocations will load warms the chunk function up first", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "warm");
    try {
      const dir = await scope.tempDir();
      const table = await scope.table("warm", { primaryKey: false });
      await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table });
      // 1.2 MiB of the generator's rows: over the inline bound, one chunk.
      const { rows, bytes } = await writeCsv(`${dir}/large.csv`, { rows: 9_500, seed: 71 });
      assert.ok(bytes > 1024 * 1024 && bytes < 8 * 1024 * 1024, `${bytes} bytes`);

      await killFunctionWorkers();
      const since = new Date().toISOString();
      const large = scope.object("large.csv");
      await upload(large, { path: `${dir}/large.csv` });
      const job = await waitForJob(sql, large, 60_000);
      assert.equal(job.status, "succeeded", job.error ?? "");
      assert.equal(job.chunk_count, 1);
      assert.equal(job.rows_loaded, rows);
      assert.equal((await checksum(sql, table)).count, rows);

      // Our job's chunk was claimed after its plan was stored; the warm-up went out as planning started.
      const [claim] = await sql<{ claimed: Date }[]>`
      select started_at as claimed from csv_import.chunks where job_id = ${job.id} and kind = 'load'`;
      const warmUps = (await invocations())
        .filter((i) => i.function === "csv-import-chunk" && i.status === 204 && i.startedAt >= since)
        .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
      assert.ok(warmUps.length >= 1, "a warm-up request reached csv-import-chunk");
      assert.ok(
        new Date(warmUps[0].startedAt) < claim.claimed,
        `the warm-up (${
          warmUps[0].startedAt
        }) came before the chunk was claimed (${claim.claimed.toISOString()})`,
      );

      // A 100-row file is loaded by the register invocation: nothing to warm up.
      await killFunctionWorkers();
      const smallSince = new Date().toISOString();
      const small = scope.object("small.csv");
      await writeCsv(`${dir}/small.csv`, { rows: 100, seed: 72 });
      await upload(small, { path: `${dir}/small.csv` });
      const smallJob = await waitForJob(sql, small, 30_000);
      assert.equal(smallJob.status, "succeeded", smallJob.error ?? "");
      // Only warm-ups count: a leftover job of another test may send chunk requests meanwhile.
      const smallWarmUps = (await invocations())
        .filter((i) => i.function === "csv-import-chunk" && i.status === 204 && i.startedAt >= smallSince);
      assert.deepEqual(smallWarmUps, [], "no warm-up for a 100-row file");
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
