/**
 * Crashes and stale workers during a multi-chunk import, on the real stack:
 * - the whole API process (functions runtime with every worker, Storage, pg_net) killed with SIGKILL mid-job
 *   and started again: the leases of the chunks it was running expire, the reconciler (as pg_cron runs it)
 *   requeues them and re-dispatches, and each resumes after its last committed batch;
 * - Postgres restarted mid-job (fast shutdown: every session, the workers' included, is terminated): workers
 *   retry in place or fail their chunk, and the job still finishes;
 * - a lease expiring while its first worker still runs: the reconciler requeues the chunk, and the first
 *   worker's next write is refused (stale lease token) while the chunk's new holder finishes it;
 * - a poison chunk (its batch fails the same way on every attempt: an I/O-class error from the target, not a
 *   data error): dead-lettered after the profile's max_attempts, the job failed with the reason, the rows of
 *   the other chunks loaded exactly once, and a job running at the same time unaffected.
 * Every case ends with the table compared with `psql \copy` of the file (targets without a primary key), the
 * job terminal and its counts adding up.
 */
import assert from "node:assert/strict";
import {
  checksum,
  connect,
  describeJob,
  E2E,
  jobByObject,
  killGateway,
  Scope,
  type Sql,
  stack,
  SUPABASE_URL,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";
import {
  assertExactJob,
  blockAtRow,
  chunkSummary,
  functionEvents,
  prepareFile,
  reconcileUntilDone,
} from "./support/faults.ts";

/** Load chunks of the job by status. */
async function loadChunks(sql: Sql, objectName: string) {
  const [row] = await sql<{ done: number; running: number; pending: number }[]>`
    select count(*) filter (where c.status = 'succeeded')::int as done,
           count(*) filter (where c.status = 'running')::int as running,
           count(*) filter (where c.status = 'pending')::int as pending
    from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
    where j.object_name = ${objectName} and c.kind = 'load'`;
  return row;
}

/** Waits until the job has committed rows in some load chunks while others are still to do. */
function waitMidJob(sql: Sql, objectName: string) {
  return waitFor(
    "the job to be mid-way (load chunks done, running and pending)",
    async () => {
      const c = await loadChunks(sql, objectName);
      return c.done >= 2 && c.running >= 1 && c.pending >= 3 ? c : undefined;
    },
    60_000,
    () => describeJob(sql, objectName),
    20,
  );
}

/**
 * Starts a 60,000-row (~7.8 MB) import in 256 KiB chunks, two at a time (~30 load chunks), into a fresh table,
 * and returns once it is mid-way.
 */
async function startMidJob(sql: Sql, scope: Scope, seed: number, label: string) {
  const p = await prepareFile(sql, scope, { rows: 60_000, seed, label });
  await scope.profile({
    pathPattern: `${scope.prefix}/%`,
    targetTable: p.target,
    chunkSizeBytes: 256 * 1024,
    maxParallelChunks: 2,
  });
  const name = scope.object("rows.csv");
  await upload(name, { path: p.file });
  return { p, name, before: await waitMidJob(sql, name) };
}

Deno.test({ name: "faults: the functions runtime killed mid-job and restarted", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "crash");
  try {
    const { p, name, before } = await startMidJob(sql, scope, 11, "crash");

    const killed = await killGateway();
    assert.ok(killed.length >= 2, `the gateway and its function workers were killed (${killed.length})`);
    const alive = await fetch(`${SUPABASE_URL}/_local/health`).then((r) => r.body?.cancel(), () => "down");
    assert.equal(alive, "down", "the API is down");
    const stranded = await loadChunks(sql, name);
    assert.ok(stranded.running >= 1, "chunks were left running with their dead workers' leases");

    // Their leases would expire within LEASE_SECONDS (120 s); let them expire now, then start the API again.
    const job = (await jobByObject(sql, name))!;
    await sql`update csv_import.chunks set lease_until = now() - interval '1 second'
              where job_id = ${job.id} and status = 'running'`;
    await stack("restart-api");
    const finished = await reconcileUntilDone(sql, name, 120_000);

    const chunks = await assertExactJob(sql, finished, p);
    const loads = chunks.find((c) => c.kind === "load")!;
    assert.ok(loads.max_attempts >= 2, "the chunks stranded by the crash ran again");
    console.log(
      `  crash with ${before.done} load chunks done, ${stranded.running} running: job succeeded, ` +
        `${loads.attempts} load attempts for ${loads.n} chunks`,
    );
  } finally {
    await stack("restart-api").catch(() => {}); // never leave the stack down for the next test
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "faults: Postgres restarted mid-job", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "pgrestart");
  try {
    const { p, name, before } = await startMidJob(sql, scope, 12, "pgrestart");
    const restarted = Date.now();
    await stack("restart-db");
    // The test's own pooled connections died too; the pool reconnects on the next query.
    await waitFor(
      "the database to answer again",
      () => sql`select 1`.then(() => true, () => undefined),
      30_000,
    );

    const finished = await reconcileUntilDone(sql, name, 180_000);
    const chunks = await assertExactJob(sql, finished, p);
    const loads = chunks.find((c) => c.kind === "load")!;
    const events = await functionEvents(finished);
    const retried = events.filter((e) => e.event === "batch_retry" || e.event === "chunk_failed").length;
    console.log(
      `  Postgres restarted with ${before.done} load chunks done: job succeeded ` +
        `${
          ((Date.now() - restarted) / 1000).toFixed(1)
        } s later; ${retried} batch retries / chunk failures ` +
        `logged, ${loads.attempts} load attempts for ${loads.n} chunks`,
    );
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test(
  { name: "faults: a lease expires under a running worker, whose next write is refused", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "stale");
    try {
      // One load chunk (default chunk size) of 50,000 rows: batches of 5,000, 10,000, 20,000 and the rest.
      const p = await prepareFile(sql, scope, { rows: 50_000, seed: 13, label: "stale" });
      await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: p.target });
      // Row 16,000 lies in the third batch: two commit, then worker A blocks inside the third, not its last.
      const gate = await blockAtRow(sql, scope, p.target, 16_000);
      const name = scope.object("rows.csv");
      await upload(name, { path: p.file });
      const workerA = await gate.blocked("worker A to block mid-chunk", () => describeJob(sql, name));
      const job = (await jobByObject(sql, name))!;
      const [{ id: chunkId }] = await sql<{ id: number }[]>`
      select id::float8 as id from csv_import.chunks where job_id = ${job.id} and kind = 'load'`;

      // The "reconciler" session: queue for the chunk row (A holds it inside its open batch), let A's batch
      // commit, and hold the row before A's next batch can lock it.
      const rec = await sql.reserve();
      try {
        await rec`begin`;
        const locked = rec<{ lease_token: string; batches_committed: number }[]>`
        select lease_token::text, batches_committed from csv_import.chunks where id = ${chunkId} for update`
          .execute(); // sent now, awaited below
        await waitFor("the reconciler session to queue behind worker A", async () => {
          const [row] = await sql`
          select 1 from pg_stat_activity where ${workerA} = any(pg_blocking_pids(pid)) and query like '%for update%'`;
          return row ? true : undefined;
        }, 30_000);
        await gate.release();
        const [held] = await locked;
        assert.ok(held.batches_committed >= 2, `A committed its first batches (${held.batches_committed})`);
        const tokenA = held.lease_token;
        // A's next batch now waits in begin_batch for the row this session holds.
        await waitFor("worker A's next batch to wait for the chunk row", async () => {
          const [row] = await sql`
          select 1 from pg_stat_activity a, pg_stat_activity r
          where r.pid <> a.pid and r.pid = any(pg_blocking_pids(a.pid)) and a.query like '%begin_batch%'
            and r.query like '%for update%'`;
          return row ? true : undefined;
        }, 30_000);
        // The lease expires (instead of waiting LEASE_SECONDS) and the reconciler, as pg_cron runs it, requeues.
        await rec`update csv_import.chunks set lease_until = now() - interval '1 second' where id = ${chunkId}`;
        const [{ summary }] = await rec`select csv_import.reconcile() as summary`;
        // (other tests' leftover leases may expire in the same round: LEASE_SECONDS is 20 s)
        assert.ok(summary.expired_leases >= 1, "the reconciler took the expired lease");
        const [requeued] = await rec<{ status: string; token: string | null }[]>`
          select status::text, lease_token::text as token from csv_import.chunks where id = ${chunkId}`;
        assert.deepEqual(requeued, { status: "pending", token: null }, "… this chunk's, requeued");
        await rec`commit`;

        const finished = await reconcileUntilDone(sql, name, 90_000);
        await assertExactJob(sql, finished, p, { minChunks: 1 });
        const [chunk] = await sql<{ attempts: number; batches_committed: number }[]>`
        select attempts, batches_committed from csv_import.chunks where id = ${chunkId}`;
        assert.equal(chunk.attempts, 2, "the chunk was claimed again after the lease expired");
        assert.ok(
          chunk.batches_committed > held.batches_committed,
          "the new holder resumed after A's batches",
        );

        // Worker A's next batch was refused: it stopped with lease_lost and wrote nothing.
        const stopped = await waitFor("worker A's stop to be logged", async () => {
          const events = await functionEvents(finished);
          const e = events.find((e) => e.event === "chunk_stopped" && e.attempt === "1/5");
          return e;
        }, 10_000);
        assert.equal(stopped.outcome, "lease_lost");

        // And should A (or any late duplicate) try again with its old token, nothing of it is accepted.
        const retry = await sql.begin(async (tx) => {
          const [{ state }] = await tx`select csv_import.begin_batch(${chunkId}, ${tokenA}::uuid,
          ${held.batches_committed}) as state`;
          return state;
        });
        assert.equal(
          retry,
          "stopped",
          'begin_batch refuses the old lease (the job has ended; only "ok" allows a write)',
        );
        await assert.rejects(
          sql`select csv_import.commit_batch(${chunkId}, ${tokenA}::uuid, ${held.batches_committed}, null,
          1, 1, 1, 1, 0, '[]'::jsonb, true)`,
          (e: Error & { code?: string }) => e.code === "40001" && /not open for this lease/.test(e.message),
          "commit_batch refuses the old lease",
        );
        assert.deepEqual(await checksum(sql, p.target), p.want, "still exactly the file's rows");
      } finally {
        await rec`rollback`.catch(() => {});
        rec.release();
      }
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test({
  name: "faults: a poison chunk is dead-lettered, its job fails, another job is unaffected",
  ...E2E,
}, async () => {
  const sql = connect();
  const scope = new Scope(sql, "poison");
  try {
    const bad = await prepareFile(sql, scope, { rows: 20_000, seed: 14, label: "poison" });
    const good = await prepareFile(sql, scope, { rows: 20_000, seed: 15, label: "healthy" });
    // The target fails the insert of row 12,345 with an I/O-class error (SQLSTATE 58030): not the data's
    // fault, so not a reject; the same every attempt.
    const fn = `${bad.target}_poison`;
    await sql.unsafe(`
      create function ${fn}() returns trigger language plpgsql as $$
      begin
        if new.id = 12345 then
          raise exception 'could not extend file "base/5/16384": simulated I/O error' using errcode = '58030';
        end if;
        return new;
      end $$;
      create trigger poison before insert on ${bad.target} for each row execute function ${fn}();`);
    scope.defer(() => sql.unsafe(`drop function if exists ${fn}() cascade`));
    for (const [p, dir] of [[bad, "poison"], [good, "healthy"]] as const) {
      await scope.profile({
        pathPattern: `${scope.prefix}/${dir}/%`,
        targetTable: p.target,
        chunkSizeBytes: 256 * 1024,
        maxAttempts: 3,
      });
    }
    const badName = scope.object("poison/rows.csv");
    const goodName = scope.object("healthy/rows.csv");
    await Promise.all([upload(badName, { path: bad.file }), upload(goodName, { path: good.file })]);

    const goodJob = await waitForJob(sql, goodName, 60_000);
    await assertExactJob(sql, goodJob, good, { label: "the other job: " });
    // The poison chunk is retried with backoff (2.5–5 s, then 5–10 s) before its third attempt.
    const badJob = await reconcileUntilDone(sql, badName, 120_000);

    assert.equal(badJob.status, "failed");
    assert.match(
      badJob.error ?? "",
      /^Chunk \d+ \(load, bytes \d+–\d+\) failed: could not extend file "base\/5\/16384": simulated I\/O error \(attempt 3 of 3\)$/,
    );
    const chunks = await chunkSummary(sql, badJob.id);
    const dead = chunks.filter((c) => c.status === "dead");
    assert.deepEqual(
      dead.map((c) => [c.kind, c.n, c.attempts]),
      [["load", 1, 3]],
      "one load chunk dead after 3",
    );
    assert.deepEqual(
      chunks.filter((c) => c.status !== "dead" && c.status !== "succeeded"),
      [],
      "every other chunk finished",
    );
    // Nothing lost or doubled outside the poison chunk: the table holds exactly the rows the chunks committed,
    // each once, each from the file, and not the poison row.
    const loaded = chunks.filter((c) => c.kind === "load").reduce((n, c) => n + c.rows_loaded, 0);
    assert.equal(badJob.rows_loaded, loaded, "the job's count is its chunks'");
    const [t] = await sql.unsafe<{ n: number; ids: number; poison: number; foreign: number }[]>(`
      select count(*)::int as n, count(distinct id)::int as ids,
             count(*) filter (where id = 12345)::int as poison,
             (select count(*)::int from (select * from ${bad.target} except all select * from ${bad.reference}) x)
               as foreign
      from ${bad.target}`);
    assert.deepEqual(t, { n: loaded, ids: loaded, poison: 0, foreign: 0 });
    assert.ok(loaded >= 20_000 - 3_000 && loaded < 20_000, `most rows loaded (${loaded})`);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
