/**
 * Exactly-once rows (invariant 2) under the failures a queue-driven pipeline actually sees, on the real stack:
 * - the same claimed chunk invoked twice at once (the pg_net / dispatcher "delivered twice" case);
 * - a duplicate arriving while the first invocation holds a batch open (deterministic interleaving);
 * - a replay of a chunk that already finished, with its old lease token;
 * - the functions runtime killed while a chunk is in the middle of a batch, the lease expiring and the
 *   reconciler handing the chunk to a new worker, which resumes after the last committed batch.
 * Each target table has NO primary key, so a row written twice would stay in the table (instead of being turned
 * into a reject by a unique index); every test compares the table with `psql \copy` of the same file (count
 * and order-independent checksum) and checks the job's and chunk's counters.
 */
import assert from "node:assert/strict";
import { writeCsv } from "./support/generate_csv.ts";
import {
  checksum,
  connect,
  describeJob,
  E2E,
  invocations,
  invokeFunction,
  jobByObject,
  killFunctionWorkers,
  psqlCopy,
  Scope,
  type Sql,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";
import { blockAtRow } from "./support/faults.ts";

const CLAIM_LOCK = "hashtext('csv_import.claim_chunks')";

interface Claimed {
  chunk_id: number;
  job_id: number;
  kind: string;
  chunk_index: number;
  lease_token: string;
}

/**
 * Uploads a file whose job no dispatcher may claim from: while the test holds claim_chunks' advisory lock, the
 * registration's dispatch waits; once the job is planned its max_parallel_chunks is set to 0, then the lock is
 * released. Returns the job id.
 */
async function uploadPaused(sql: Sql, objectName: string, path: string): Promise<number> {
  const lock = await sql.reserve();
  try {
    await lock`begin`;
    await lock.unsafe(`select pg_advisory_xact_lock(${CLAIM_LOCK})`);
    await upload(objectName, { path });
    const jobId = await waitFor(`the job of ${objectName} to be planned`, async () => {
      const job = await jobByObject(sql, objectName);
      if (job && job.status !== "registering" && job.status !== "queued") {
        throw new Error(`job ${job.id} is ${job.status}, expected queued: ${job.error}`);
      }
      return job?.status === "queued" ? job.id : undefined;
    }, 30_000);
    await lock`update csv_import.jobs set max_parallel_chunks = 0 where id = ${jobId}`;
    await lock`commit`;
    return Number(jobId);
  } catch (error) {
    await lock`rollback`.catch(() => {});
    throw error;
  } finally {
    lock.release();
  }
}

/** Claims the job's next chunk with csv_import.claim_chunks itself (one slot, top priority, then closed again). */
async function claimOne(sql: Sql, jobId: number): Promise<Claimed> {
  const claimed = await sql.begin(async (tx) => {
    await tx`update csv_import.jobs set max_parallel_chunks = 1, priority = 1000000 where id = ${jobId}`;
    const rows = await tx<Claimed[]>`
      select chunk_id::float8 as chunk_id, job_id::float8 as job_id, kind::text, chunk_index, lease_token::text
      from csv_import.claim_chunks(1, 1000, interval '5 minutes')`;
    await tx`update csv_import.jobs set max_parallel_chunks = 0 where id = ${jobId}`;
    return rows;
  });
  assert.equal(claimed.length, 1, "claim_chunks claimed one chunk");
  assert.equal(claimed[0].job_id, jobId, "the claimed chunk is the paused job's");
  return claimed[0];
}

async function chunkState(sql: Sql, chunkId: number) {
  const [c] = await sql<
    {
      status: string;
      attempts: number;
      batches_committed: number;
      rows_parsed: number;
      rows_loaded: number;
    }[]
  >`
    select status::text, attempts, batches_committed, rows_parsed::float8 as rows_parsed,
           rows_loaded::float8 as rows_loaded
    from csv_import.chunks where id = ${chunkId}`;
  return c;
}

/**
 * Waits until `n` chunk invocations that started at or after `since` and took a chunk (202) are recorded as
 * finished; a warm-up the registration sent (204, csv-import-register/index.ts) does not count.
 */
function chunkInvocationsSince(since: string, n: number) {
  return waitFor(`${n} chunk invocation(s) to finish`, async () => {
    const found = (await invocations()).filter((i) =>
      i.function === "csv-import-chunk" && i.status === 202 && i.startedAt >= since
    );
    return found.length >= n ? found : undefined;
  }, 30_000);
}

/** A clean file (no planted rows) and a reference table loaded from it with psql \copy. */
async function prepare(sql: Sql, scope: Scope, rows: number) {
  const dir = await scope.tempDir();
  const file = `${dir}/rows.csv`;
  const manifest = await writeCsv(file, { rows, seed: rows, crlf: false });
  const target = await scope.table("once", { primaryKey: false });
  const reference = await scope.table("once_ref", { primaryKey: false });
  await psqlCopy(reference, file);
  await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: target });
  return { file, manifest, target, reference, want: await checksum(sql, reference) };
}

Deno.test({ name: "exactly once: one chunk invoked twice at once, then replayed", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "twice");
  try {
    const { file, manifest, target, want } = await prepare(sql, scope, 20_000);
    const objectName = scope.object("rows.csv");
    const jobId = await uploadPaused(sql, objectName, file);
    const chunk = await claimOne(sql, jobId);
    assert.equal(chunk.kind, "load");

    const since = new Date().toISOString();
    const body = { chunk_id: chunk.chunk_id, lease_token: chunk.lease_token };
    const answers = await Promise.all([
      invokeFunction("csv-import-chunk", body),
      invokeFunction("csv-import-chunk", body),
    ]);
    assert.deepEqual(answers.map((a) => a.status), [202, 202], "both invocations were accepted");
    const job = await waitForJob(sql, objectName, 60_000);
    await chunkInvocationsSince(since, 2);

    assert.equal(job.status, "succeeded", `job error: ${job.error}`);
    assert.equal(job.rows_parsed, manifest.rows);
    assert.equal(job.rows_loaded, manifest.rows);
    assert.equal(job.rows_rejected, 0);
    const after = await chunkState(sql, chunk.chunk_id);
    assert.equal(after.status, "succeeded");
    assert.equal(after.attempts, 1, "the chunk was claimed once");
    assert.ok(after.batches_committed >= 3, `the chunk spans several batches (${after.batches_committed})`);
    assert.equal(after.rows_loaded, manifest.rows);
    assert.deepEqual(await checksum(sql, target), want, "table = psql \\copy of the file: no row twice");

    // Replay with the old lease token: refused, nothing changes.
    const replaySince = new Date().toISOString();
    const replay = await invokeFunction("csv-import-chunk", body);
    assert.equal(replay.status, 202);
    await chunkInvocationsSince(replaySince, 1);
    assert.deepEqual(await checksum(sql, target), want, "a replay writes nothing");
    assert.deepEqual(await chunkState(sql, chunk.chunk_id), after, "a replay leaves the chunk as it was");
    const jobAfter = await jobByObject(sql, objectName);
    assert.deepEqual(jobAfter, job, "a replay leaves the job as it was");
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test(
  { name: "exactly once: a duplicate arrives while the first holds a batch open", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "dup");
    try {
      const { file, manifest, target, want } = await prepare(sql, scope, 20_000);
      // Row 12000 is past the first batch (batches are >= 5,000 rows, closed at a read boundary).
      const gate = await blockAtRow(sql, scope, target, 12_000);
      const objectName = scope.object("rows.csv");
      const jobId = await uploadPaused(sql, objectName, file);
      const chunk = await claimOne(sql, jobId);
      const body = { chunk_id: chunk.chunk_id, lease_token: chunk.lease_token };
      const since = new Date().toISOString();

      // First invocation: commits a batch or two, then blocks inside the next one (holding the chunk row).
      assert.equal((await invokeFunction("csv-import-chunk", body)).status, 202);
      const [first] = await waitFor("the first invocation to block mid-chunk", async () => {
        const waiters = await gate.waiters();
        return waiters.length === 1 ? waiters : undefined;
      }, 30_000);
      const blocked = await chunkState(sql, chunk.chunk_id);
      assert.ok(blocked.batches_committed >= 1 && blocked.rows_loaded < 12_000, JSON.stringify(blocked));

      // The duplicate: resumes after the committed batches and waits in begin_batch for the chunk row that the
      // first invocation holds.
      assert.equal((await invokeFunction("csv-import-chunk", body)).status, 202);
      await waitFor("the duplicate to wait for the chunk row", async () => {
        const rows = await sql`
        select 1 from pg_stat_activity a
        where a.wait_event_type = 'Lock' and a.pid <> ${first} and ${first} = any(pg_blocking_pids(a.pid))
          and a.query like '%begin_batch%'`;
        return rows.length > 0 ? true : undefined;
      }, 30_000);

      await gate.release();
      const job = await waitForJob(sql, objectName, 60_000);
      await chunkInvocationsSince(since, 2);
      assert.equal(job.status, "succeeded", `job error: ${job.error}`);
      assert.equal(job.rows_loaded, manifest.rows);
      assert.equal(job.rows_parsed, manifest.rows);
      const after = await chunkState(sql, chunk.chunk_id);
      assert.equal(after.rows_parsed, manifest.rows, "the chunk counted every row once");
      assert.deepEqual(await checksum(sql, target), want, "table = psql \\copy of the file: no row twice");
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  { name: "exactly once: workers killed mid-chunk, lease expires, chunk resumes", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "kill");
    try {
      const { file, manifest, target, want } = await prepare(sql, scope, 30_000);
      // Row 16000 is past the first batches: they commit, then the worker blocks inside the next one.
      const gate = await blockAtRow(sql, scope, target, 16_000);
      const objectName = scope.object("rows.csv");
      await upload(objectName, { path: file });
      const [blocked] = await waitFor(
        "the chunk to block mid-way",
        async () => {
          const waiters = await gate.waiters();
          return waiters.length === 1 ? waiters : undefined;
        },
        30_000,
        () => describeJob(sql, objectName),
      );
      const job = (await jobByObject(sql, objectName))!;
      const [{ id: chunkId }] = await sql<{ id: number }[]>`
      select id::float8 as id from csv_import.chunks where job_id = ${job.id} and kind = 'load'`;
      const before = await chunkState(sql, chunkId);
      assert.ok(
        before.batches_committed >= 1,
        `batches committed before the kill: ${before.batches_committed}`,
      );
      assert.ok(before.rows_loaded > 0 && before.rows_loaded < 16_000);

      // Kill every worker of the functions runtime; the blocked transaction dies with its client.
      await killFunctionWorkers();
      await gate.release();
      await waitFor("the killed worker's transaction to end", async () => {
        const [row] = await sql`select 1 from pg_stat_activity where pid = ${blocked}`;
        return row ? undefined : true;
      }, 30_000);
      const stranded = await chunkState(sql, chunkId);
      assert.equal(stranded.status, "running", "the chunk still holds its lease");
      assert.equal(stranded.batches_committed, before.batches_committed, "the killed batch did not commit");

      // Let the lease expire instead of waiting 2 minutes, then run the reconciler as pg_cron does, until done.
      await sql`update csv_import.chunks set lease_until = now() - interval '1 second' where id = ${chunkId}`;
      const [{ summary }] = await sql`select csv_import.reconcile() as summary`;
      // Reclaimed by this reconcile, or a moment before it by the lease round pg_cron runs every 10 s (or by a
      // dispatch, which reclaims expired leases first): either way the stranded lease is gone, and no more.
      const reclaimed = await chunkState(sql, chunkId);
      assert.ok(
        summary.expired_leases === 1 || (summary.expired_leases === 0 && reclaimed.status !== "running") ||
          reclaimed.attempts > stranded.attempts,
        `the expired lease was reclaimed (reconcile: ${summary.expired_leases}; chunk ${
          JSON.stringify(reclaimed)
        })`,
      );
      const finished = await waitFor(
        "the retried chunk to finish the job",
        async () => {
          const [ready] = await sql`
        select 1 from csv_import.chunks where id = ${chunkId} and status = 'pending' and available_at <= now()`;
          if (ready) await sql`select csv_import.reconcile()`;
          const current = await jobByObject(sql, objectName);
          return current &&
              ["succeeded", "succeeded_with_rejects", "failed", "cancelled"].includes(current.status)
            ? current
            : undefined;
        },
        60_000,
        async () => JSON.stringify(await chunkState(sql, chunkId)),
        500,
      );

      assert.equal(finished.status, "succeeded", `job error: ${finished.error}`);
      assert.equal(finished.rows_parsed, manifest.rows, "rows parsed once in total over both attempts");
      assert.equal(finished.rows_loaded, manifest.rows);
      const after = await chunkState(sql, chunkId);
      assert.equal(after.attempts, 2, "the chunk ran twice");
      assert.ok(after.batches_committed > before.batches_committed);
      assert.deepEqual(await checksum(sql, target), want, "table = psql \\copy of the file: no row twice");
      const killed = (await invocations()).filter((i) =>
        i.function === "csv-import-chunk" && i.outcome === "killed"
      );
      assert.ok(killed.length >= 1, "the runtime recorded the killed chunk invocation");
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
