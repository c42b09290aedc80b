/**
 * The object changing under its own import, on the real stack (the documented semantics: a new version of an
 * object is a new job and supersedes the old version's job; a deleted object cancels its job; a stopped job's
 * committed batches stay, nothing is rolled back, and its chunks stop at their next batch boundary):
 * - overwritten (upsert, a new version) mid-job: the old job ends cancelled with "Superseded by a newer version
 *   of <name> (job N)" and superseded_by = N; the new job loads the new content exactly; the old job's
 *   committed rows stay, exactly its chunks' count, each once and each from the old file;
 * - deleted mid-job: the job ends cancelled with "The object <name> was deleted during the import", no chunk
 *   left pending or running, and the table holds exactly the rows its chunks committed, each once.
 * Mid-job is made deterministic with a gate (a trigger that holds one row's insert): the upload or delete
 * then waits for the batch in progress to commit (csv_import.stop_job takes the chunk rows first), as the
 * pgTAP test concurrency/supersede_during_batch checks at the SQL level.
 */
import assert from "node:assert/strict";
import {
  BUCKET,
  connect,
  describeJob,
  E2E,
  jobByObject,
  removeObjects,
  Scope,
  type Sql,
  supabase,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";
import { blockAtRow, chunkSummary, prepareFile } from "./support/faults.ts";

/** Rows of `table` not in `reference` (as multisets), and whether any row appears twice. */
async function compare(sql: Sql, table: string, reference: string) {
  const [r] = await sql.unsafe<{ n: number; distinct_ids: number; foreign: number }[]>(`
    select count(*)::int as n, count(distinct id)::int as distinct_ids,
      (select count(*)::int from (select * from ${table} except all select * from ${reference}) x) as foreign
    from ${table}`);
  return r;
}

/**
 * Waits until the Storage API's upload / delete transaction (its storage.objects trigger stopping the job)
 * waits for the chunk row that the blocked batch holds.
 */
function waitForStopToWait(sql: Sql, blocked: number) {
  return waitFor("the object change to wait for the batch in progress", async () => {
    const [row] = await sql`
      select 1 from pg_stat_activity
      where ${blocked} = any(pg_blocking_pids(pid)) and query ~* '(insert into|delete from) storage\\.objects'`;
    return row ? true : undefined;
  }, 30_000);
}

Deno.test({ name: "faults: the object is overwritten with a new version mid-job", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "overwrite");
  try {
    // v1 and v2 differ in every row (different seeds); both load into one target without a primary key.
    const v1 = await prepareFile(sql, scope, { rows: 40_000, seed: 21, label: "v1" });
    const v2 = await prepareFile(sql, scope, { rows: 25_000, seed: 22, label: "v2" });
    const target = v1.target;
    // One chunk at a time (~4,000 rows each): while a gate holds one chunk, the later ones wait.
    await scope.profile({
      pathPattern: `${scope.prefix}/%`,
      targetTable: target,
      chunkSizeBytes: 512 * 1024,
      maxParallelChunks: 1,
    });
    const name = scope.object("orders.csv");
    // The Storage API first runs the upload's row write as a rolled-back probe (RLS permission test, as hosted
    // does), whose trigger also waits for the batch in progress; the real write comes after the bytes. Gate A
    // holds v1 for the probe, gate B (a later chunk, not the last) for the real write.
    const gateA = await blockAtRow(sql, scope, target, 20_000);
    const gateB = await blockAtRow(sql, scope, target, 30_000);
    await upload(name, { path: v1.file });
    const [blockedA] = await waitFor(
      "v1's import to block at gate A",
      async () => {
        const w = await gateA.waiters();
        return w.length === 1 ? w : undefined;
      },
      30_000,
      () => describeJob(sql, name),
    );
    const oldJob = (await jobByObject(sql, name))!;

    const overwrite = upload(name, { path: v2.file }, { upsert: true });
    await waitForStopToWait(sql, blockedA); // the probe
    await gateA.release();
    // v1 goes on up to gate B (a later chunk, not the last), so it cannot finish before the real write, which
    // cancels it either while its next chunk waits for a claim or while the batch at gate B is open.
    await waitFor(
      "the real write to stop v1",
      async () => {
        const [job] = await sql<
          { status: string }[]
        >`select status::text from csv_import.jobs where id = ${oldJob.id}`;
        if (job.status !== "queued" && job.status !== "running") return true;
        const [waiter] = await gateB.waiters();
        if (waiter === undefined) {
          // The probe held v1's pending chunks while it waited, so the dispatch after chunk 4 may have found
          // nothing to claim: run the reconciler as pg_cron would.
          const [running] =
            await sql`select 1 from csv_import.chunks where job_id = ${oldJob.id} and status = 'running'`;
          if (!running) await sql`select csv_import.reconcile()`;
          return undefined;
        }
        const [write] = await sql`select 1 from pg_stat_activity
        where ${waiter} = any(pg_blocking_pids(pid)) and query ~* 'insert into storage\\.objects'`;
        return write ? true : undefined;
      },
      60_000,
      () => describeJob(sql, name),
    );
    await gateB.release();
    await overwrite;

    const newJob = await waitForJob(sql, name, 90_000);
    assert.notEqual(newJob.id, oldJob.id, "the new version is a new job");
    const [old] = await sql<{ status: string; error: string; superseded_by: string; running: number }[]>`
      select status::text, error, superseded_by::text,
        (select count(*)::int from csv_import.chunks c where c.job_id = j.id and c.status in ('pending', 'running'))
          as running
      from csv_import.jobs j where id = ${oldJob.id}`;
    assert.deepEqual(old, {
      status: "cancelled",
      error: `Superseded by a newer version of ${name} (job ${newJob.id})`,
      superseded_by: String(newJob.id),
      running: 0,
    });

    // The new job loaded v2 exactly; everything else in the table is the old job's committed rows of v1.
    const oldRows = (await chunkSummary(sql, oldJob.id)).filter((c) => c.kind === "load")
      .reduce((n, c) => n + c.rows_loaded, 0);
    assert.ok(
      oldRows > 0 && oldRows < v1.manifest.rows,
      `the old job committed part of v1 (${oldRows} rows)`,
    );
    await sql.unsafe(
      `create temp table v1_part as select * from ${target} except all select * from ${v2.reference}`,
    );
    try {
      const fromV2 = await sql.unsafe<{ missing: number }[]>(
        `select count(*)::int as missing from (select * from ${v2.reference} except all select * from ${target}) x`,
      );
      assert.equal(fromV2[0].missing, 0, "every row of v2 is in the table");
      const [t] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${target}`);
      assert.equal(t.n, v2.manifest.rows + oldRows, "table = all of v2 + the old job's committed rows");
      assert.deepEqual(await compare(sql, "v1_part", v1.reference), {
        n: oldRows,
        distinct_ids: oldRows,
        foreign: 0,
      }, "the rest: exactly the old job's committed rows, each once, each from v1");
    } finally {
      await sql.unsafe("drop table if exists v1_part");
    }
    assert.equal(newJob.status, "succeeded", newJob.error ?? "");
    assert.equal(newJob.rows_loaded, v2.manifest.rows);
    assert.equal(newJob.rows_parsed, v2.manifest.rows);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "faults: the object is deleted mid-job", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "deleted");
  try {
    const p = await prepareFile(sql, scope, { rows: 40_000, seed: 23, label: "deleted" });
    // One chunk at a time, so that while the gate holds chunk 4 (rows ~16,000–20,000), chunks 5–9 wait.
    await scope.profile({
      pathPattern: `${scope.prefix}/%`,
      targetTable: p.target,
      chunkSizeBytes: 512 * 1024,
      maxParallelChunks: 1,
    });
    const name = scope.object("orders.csv");
    const gate = await blockAtRow(sql, scope, p.target, 20_000);
    await upload(name, { path: p.file });
    const [blocked] = await waitFor(
      "the import to block mid-job",
      async () => {
        const w = await gate.waiters();
        return w.length === 1 ? w : undefined;
      },
      30_000,
      () => describeJob(sql, name),
    );

    const removal = removeObjects([name]);
    await waitForStopToWait(sql, blocked);
    await gate.release();
    await removal;
    const { data: listed } = await supabase.storage.from(BUCKET).list(scope.prefix);
    assert.deepEqual(listed ?? [], [], "the object is gone");

    const job = await waitForJob(sql, name, 60_000);
    assert.equal(job.status, "cancelled");
    assert.equal(job.error, `The object ${name} was deleted during the import`);
    // Chunks stop at their next batch boundary; give any in flight a moment to see the stop, then none is left.
    const chunks = await waitFor("every chunk to be finished or cancelled", async () => {
      const c = await chunkSummary(sql, job.id);
      return c.some((x) => x.status === "pending" || x.status === "running") ? undefined : c;
    }, 30_000);
    const loaded = chunks.filter((c) => c.kind === "load").reduce((n, c) => n + c.rows_loaded, 0);
    assert.ok(loaded > 0 && loaded < p.manifest.rows, `part of the file was committed (${loaded} rows)`);
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
