/**
 * The object changing under its own import, on the real stack (issue 10, D1 and D2). The documented semantics: a
 * new version of an object is a new job and supersedes the old version's job; a deleted object cancels its job;
 * a stopped job's committed batches stay (nothing is rolled back), the batch in flight is refused and rolled
 * back whole, and not one row of another version is ever loaded under a job. The upload never waits for a batch.
 *
 * - overwritten while a batch is writing: the upload returns at once, the old job ends cancelled ("Superseded by
 *   a newer version of <name> (job N)", superseded_by = N), the new job loads the new file exactly, and the table
 *   holds exactly the new file plus the old job's committed rows, each once, each from the old file; the old
 *   job's counts equal those rows (issue 11, item 7);
 * - overwritten while the old job's row is held (the storage trigger cannot stop it within its lock timeout, as
 *   when Storage gave up on the lock in D1): the upload still returns within ~2 s with the new job registered,
 *   and the old job stops itself on its next read or batch (the object's version changed), loading nothing of
 *   the new file;
 * - cancelled, then overwritten, then retried (D2): the retry is refused, naming the new version's job;
 * - deleted mid-job: the job ends cancelled and the table holds exactly the rows its chunks committed.
 * Mid-batch is made deterministic with a gate (a trigger that holds one row's insert).
 */
import assert from "node:assert/strict";
import {
  BUCKET,
  connect,
  describeJob,
  E2E,
  jobByObject,
  type JobRow,
  removeObjects,
  Scope,
  type Sql,
  supabase,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";
import { blockAtRow, chunkSummary, functionEvents, type Prepared, prepareFile } from "./support/faults.ts";

/** Rows of `table` not in `reference` (as multisets), and whether any row appears twice. */
async function compare(sql: Sql, table: string, reference: string) {
  const [r] = await sql.unsafe<{ n: number; distinct_ids: number; foreign: number }[]>(`
    select count(*)::int as n, count(distinct id)::int as distinct_ids,
      (select count(*)::int from (select * from ${table} except all select * from ${reference}) x) as foreign
    from ${table}`);
  return r;
}

/** Waits for a job (by id) to be terminal with no chunk left pending or running. */
function waitForStopped(sql: Sql, jobId: number, name: string) {
  return waitFor(
    "the old job to stop, with no chunk left pending or running",
    async () => {
      const [job] = await sql<
        { status: string; error: string; superseded_by: string | null; rows_loaded: number; open: number }[]
      >`
      select status::text, error, superseded_by::text, rows_loaded::float8 as rows_loaded,
        (select count(*)::int from csv_import.chunks c where c.job_id = j.id and c.status in ('pending', 'running'))
          as open
      from csv_import.jobs j where id = ${jobId}`;
      return job.status !== "queued" && job.status !== "running" && job.open === 0 ? job : undefined;
    },
    90_000,
    () => describeJob(sql, name),
  );
}

/** Times an upload. */
async function timed(work: Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work;
  return performance.now() - started;
}

/**
 * The table holds exactly `newer` (loaded by the new job) plus the old job's committed rows of `older`, each
 * once; the old job's reported rows equal what it committed.
 */
async function assertVersionsKeptApart(
  sql: Sql,
  target: string,
  older: Prepared,
  newer: Prepared,
  oldJobId: number,
  oldJobRowsLoaded: number,
  newJob: JobRow,
) {
  const oldRows = (await chunkSummary(sql, oldJobId)).filter((c) => c.kind === "load")
    .reduce((n, c) => n + c.rows_loaded, 0);
  assert.ok(
    oldRows > 0 && oldRows < older.manifest.rows,
    `the old job committed part of its file (${oldRows} rows)`,
  );
  assert.equal(oldJobRowsLoaded, oldRows, "the old job reports exactly the rows its batches committed");
  await sql.unsafe(
    `create temp table older_part as select * from ${target} except all select * from ${newer.reference}`,
  );
  try {
    const [{ missing }] = await sql.unsafe<{ missing: number }[]>(
      `select count(*)::int as missing from (select * from ${newer.reference} except all select * from ${target}) x`,
    );
    assert.equal(missing, 0, "every row of the new file is in the table");
    const [t] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${target}`);
    assert.equal(
      t.n,
      newer.manifest.rows + oldRows,
      "table = the whole new file + the old job's committed rows",
    );
    assert.deepEqual(await compare(sql, "older_part", older.reference), {
      n: oldRows,
      distinct_ids: oldRows,
      foreign: 0,
    }, "the rest: exactly the old job's committed rows, each once, each from the old file");
  } finally {
    await sql.unsafe("drop table if exists older_part");
  }
  assert.equal(newJob.status, "succeeded", newJob.error ?? "");
  assert.equal(newJob.rows_loaded, newer.manifest.rows);
  assert.equal(newJob.rows_parsed, newer.manifest.rows);
}

/** Two files that differ in every row, one target without a primary key, one chunk at a time (~4,000 rows). */
async function twoVersions(sql: Sql, scope: Scope, seeds: [number, number]) {
  const v1 = await prepareFile(sql, scope, { rows: 40_000, seed: seeds[0], label: "v1" });
  const v2 = await prepareFile(sql, scope, { rows: 25_000, seed: seeds[1], label: "v2" });
  await scope.profile({
    pathPattern: `${scope.prefix}/%`,
    targetTable: v1.target,
    chunkSizeBytes: 512 * 1024,
    maxParallelChunks: 1,
  });
  return { v1, v2, target: v1.target, name: scope.object("orders.csv") };
}

Deno.test({ name: "faults: overwritten while a batch is writing (D1)", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "overwrite");
  try {
    const { v1, v2, target, name } = await twoVersions(sql, scope, [21, 22]);
    const gate = await blockAtRow(sql, scope, target, 20_000);
    await upload(name, { path: v1.file });
    await gate.blocked("v1's import to block at the gate", () => describeJob(sql, name));
    const oldJob = (await jobByObject(sql, name))!;

    // The upload does not wait for the batch at the gate (it used to, until Storage gave up on its lock).
    const uploadMs = await timed(upload(name, { path: v2.file }, { upsert: true }));
    assert.ok(uploadMs < 5_000, `the overwrite returned in ${Math.round(uploadMs)} ms`);
    await gate.release(); // the batch goes on to commit_batch, which refuses it: it rolls back whole

    const old = await waitForStopped(sql, oldJob.id, name);
    const newJob = await waitForJob(sql, name, 90_000);
    assert.notEqual(newJob.id, oldJob.id, "the new version is a new job");
    assert.deepEqual({ ...old, rows_loaded: undefined }, {
      status: "cancelled",
      error: `Superseded by a newer version of ${name} (job ${newJob.id})`,
      superseded_by: String(newJob.id),
      rows_loaded: undefined,
      open: 0,
    });
    await assertVersionsKeptApart(sql, target, v1, v2, oldJob.id, old.rows_loaded, newJob);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test(
  { name: "faults: overwritten while the old job's row is held: it stops itself (D1)", ...E2E },
  async () => {
    const sql = connect(6);
    const scope = new Scope(sql, "overwrite_held");
    const holder = await sql.reserve();
    try {
      const { v1, v2, target, name } = await twoVersions(sql, scope, [31, 32]);
      await upload(name, { path: v1.file });
      const oldJob = await waitFor(
        "v1's import to commit some rows",
        async () => {
          const job = await jobByObject(sql, name);
          return job && job.status === "running" && job.rows_loaded > 0 ? job : undefined;
        },
        30_000,
        () => describeJob(sql, name),
      );

      // Hold the old job's row, as a batch that does not commit would: the storage trigger cannot stop the job
      // within its lock timeout, so the old job keeps running once the row is free.
      await holder`begin`;
      await holder`select 1 from csv_import.jobs where id = ${oldJob.id} for no key update`;
      const uploadMs = await timed(upload(name, { path: v2.file }, { upsert: true }));
      assert.ok(
        uploadMs >= 1_500 && uploadMs < 6_000,
        `the overwrite waited only the lock timeout (${uploadMs} ms)`,
      );
      const [{ status: stillRunning }] = await sql<{ status: string }[]>`
      select status::text from csv_import.jobs where id = ${oldJob.id}`;
      assert.equal(stillRunning, "running", "the trigger could not stop the old job");
      const [newer] = await sql<{ id: string }[]>`
      select id::text from csv_import.jobs where bucket_id = ${BUCKET} and object_name = ${name} and id <> ${oldJob.id}`;
      assert.ok(newer, "the new version got its job with the upload");
      await holder`rollback`;

      // The old job's next read sees another ETag, or its next batch another object version: it stops itself.
      const old = await waitForStopped(sql, oldJob.id, name);
      const newJob = await waitForJob(sql, name, 90_000);
      assert.equal(old.status, "cancelled");
      assert.equal(old.superseded_by, String(newJob.id));
      assert.match(
        old.error,
        new RegExp(`^The object ${name} changed during the import \\(superseded by job ${newJob.id}\\)`),
      );
      const stops = (await functionEvents(oldJob)).filter((e) => e.event === "chunk_stopped");
      assert.ok(
        stops.some((e) => e.outcome === "superseded"),
        `a chunk stopped as superseded: ${JSON.stringify(stops)}`,
      );
      await assertVersionsKeptApart(sql, target, v1, v2, oldJob.id, old.rows_loaded, newJob);
    } finally {
      await holder`rollback`.catch(() => {});
      holder.release();
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  { name: "faults: a cancelled job whose object was overwritten is not retried (D2)", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "retry_overwritten");
    try {
      const { v1, v2, target, name } = await twoVersions(sql, scope, [41, 42]);
      const gate = await blockAtRow(sql, scope, target, 20_000);
      await upload(name, { path: v1.file });
      await gate.blocked("D's import to block at the gate", () => describeJob(sql, name));
      const d = (await jobByObject(sql, name))!;
      await sql`select csv_import.cancel_job(${d.id})`;
      await gate.release();
      const stopped = await waitForStopped(sql, d.id, name);
      assert.equal(stopped.status, "cancelled");

      await upload(name, { path: v2.file }, { upsert: true });
      const e = await waitForJob(sql, name, 90_000);
      assert.notEqual(e.id, d.id);
      await assert.rejects(
        sql`select csv_import.retry_job(${d.id})`,
        (error: Error & { code?: string }) => {
          assert.equal(error.code, "55000");
          assert.equal(
            error.message,
            `The object ${BUCKET}/${name} was overwritten after job ${d.id} started: job ${e.id} imports the new version; retry that one instead`,
          );
          return true;
        },
      );
      const [after] = await sql<{ status: string; open: number }[]>`
      select status::text, (select count(*)::int from csv_import.chunks c
                            where c.job_id = j.id and c.status in ('pending', 'running')) as open
      from csv_import.jobs j where id = ${d.id}`;
      assert.deepEqual(after, { status: "cancelled", open: 0 }, "the refused retry changed nothing");
      await assertVersionsKeptApart(sql, target, v1, v2, d.id, stopped.rows_loaded, e);
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test({ name: "faults: the object is deleted mid-job", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "deleted");
  try {
    const p = await prepareFile(sql, scope, { rows: 40_000, seed: 23, label: "deleted" });
    await scope.profile({
      pathPattern: `${scope.prefix}/%`,
      targetTable: p.target,
      chunkSizeBytes: 512 * 1024,
      maxParallelChunks: 1,
    });
    const name = scope.object("orders.csv");
    const gate = await blockAtRow(sql, scope, p.target, 20_000);
    await upload(name, { path: p.file });
    await gate.blocked("the import to block mid-job", () => describeJob(sql, name));
    const job = (await jobByObject(sql, name))!;

    const removalMs = await timed(removeObjects([name]));
    assert.ok(removalMs < 5_000, `the removal did not wait for the batch (${Math.round(removalMs)} ms)`);
    await gate.release();
    const { data: listed } = await supabase.storage.from(BUCKET).list(scope.prefix);
    assert.deepEqual(listed ?? [], [], "the object is gone");

    const stopped = await waitForStopped(sql, job.id, name);
    assert.equal(stopped.status, "cancelled");
    assert.equal(stopped.error, `The object ${name} was deleted during the import`);
    const loaded = (await chunkSummary(sql, job.id)).filter((c) => c.kind === "load")
      .reduce((n, c) => n + c.rows_loaded, 0);
    assert.ok(loaded > 0 && loaded < p.manifest.rows, `part of the file was committed (${loaded} rows)`);
    assert.equal(stopped.rows_loaded, loaded, "the job reports exactly the rows its batches committed");
    assert.deepEqual(
      await compare(sql, p.target, p.reference),
      { n: loaded, distinct_ids: loaded, foreign: 0 },
      "the table holds exactly the committed rows, each once, each from the file",
    );
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
