/**
 * A file in which every row is rejected (issue 11, item 3): 1,000,000 one-field rows, none a valid integer, in
 * one 3 MB chunk. Before, rejects did not count toward a batch: one batch held all of them (~210 MB), the worker
 * was killed at the CPU limit twice, and the job took 7.5 minutes. Now a batch ends at WORKER_BATCH_MAX_REJECTS
 * rejects (or its bytes), rejects past the stored cap travel as a count, and a worker hands its chunk to a fresh
 * invocation once it has done WORKER_INVOCATION_WORK_MS of work: the job ends with 1,000,000 rejects (100,000
 * stored, the default cap), no invocation killed by a limit, each adding at most 64 MB.
 */
import assert from "node:assert/strict";
import {
  connect,
  download,
  E2E,
  invocations,
  killFunctionWorkers,
  Scope,
  upload,
  waitForJob,
} from "./support/stack.ts";

const ROWS = 1_000_000;

Deno.test({ name: "reject-heavy: 1M rejected rows, memory flat, no invocation killed", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "rejects");
  try {
    const dir = await scope.tempDir();
    const file = `${dir}/bad.csv`;
    await Deno.writeTextFile(file, "id\n" + "x\n".repeat(ROWS));
    const table = `public.${scope.prefix}_t`;
    await sql.unsafe(`create table ${table} (id int)`);
    scope.defer(() => sql.unsafe(`drop table if exists ${table}`));
    // One chunk, whatever other tables' measured costs would plan for a fresh table (pipeline/chunk_size.ts).
    await scope.profile({
      pathPattern: `${scope.prefix}/%`,
      targetTable: table,
      toleratedRejectRate: 1,
      chunkSizeBytes: 8 * 1024 * 1024,
    });
    const name = scope.object("bad.csv");

    // Fresh workers: "added" memory is measured from an invocation's start, and a worker that served the suite's
    // earlier tests starts with their garbage still on its heap (85 MB measured once that way, 43-63 MB fresh).
    await killFunctionWorkers();
    const since = new Date().toISOString();
    await upload(name, { path: file });
    const job = await waitForJob(sql, name, 300_000);
    assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
    assert.deepEqual(
      { parsed: job.rows_parsed, loaded: job.rows_loaded, rejected: job.rows_rejected },
      { parsed: ROWS, loaded: 0, rejected: ROWS },
    );
    const [stored] = await sql<{ n: number; first: number; last: number; reason: string }[]>`
      select count(*)::int as n, min(line_number)::int as first, max(line_number)::int as last, min(reason) as reason
      from csv_import.rejects where job_id = ${job.id}`;
    assert.equal(
      stored.n,
      100_000,
      "the first 100,000 rejects are stored (MAX_STORED_REJECTS), all are counted",
    );
    assert.deepEqual([stored.first, stored.last], [2, 100_001], "… the first ones, in line order");
    assert.match(stored.reason, /integer/i);
    // The rejects CSV (~6.5 MB: past a standard upload's 6 MB, so written resumably in parts): every stored reject.
    const rejectsCsv = await download(job.rejects_object!);
    assert.ok(rejectsCsv !== null, "the rejects CSV is written (waitForJob waits for it)");
    const lines = rejectsCsv.split("\r\n");
    assert.equal(lines.length, 100_002, "header, 100,000 rejects, and the empty string after the last CRLF");
    assert.equal(lines[1], `"2","id","invalid input syntax for type integer: ""x""","x"`);
    assert.equal(lines[100_000].split(",")[0], `"100001"`);

    const chunkRuns = (await invocations()).filter((i) =>
      i.function === "csv-import-chunk" && i.startedAt >= since
    ) as unknown as { outcome: string; cpuMs: number; peakMemoryMb: number }[];
    const worst = {
      invocations: chunkRuns.length,
      killed: chunkRuns.filter((i) => i.outcome !== "ok").length,
      cpuMs: Math.max(...chunkRuns.map((i) => i.cpuMs)),
      memoryMb: Math.max(...chunkRuns.map((i) => i.peakMemoryMb)),
    };
    console.log(`1M rejects: ${JSON.stringify(worst)}`);
    assert.equal(worst.killed, 0, "no invocation was stopped by a limit");
    assert.ok(worst.invocations > 1, "the chunk was handed on to fresh invocations");
    assert.ok(worst.memoryMb <= 64, `at most 64 MB added per invocation (${worst.memoryMb} MB)`);
    const [attempts] = await sql<{ max: number }[]>`
      select max(attempts)::int as max from csv_import.chunks where job_id = ${job.id}`;
    assert.equal(attempts.max, 1, "no attempt was spent: handing a chunk on is not a failure");
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
