/**
 * Lock ordering of the batch protocol's SQL (csv_import.begin_batch / commit_batch / finalize_job), driven
 * step by step from three database sessions, the way concurrent chunk invocations of one job interleave.
 *
 * What it proves: a chunk's final batch (commit_batch with p_final, which finalizes the job) and another
 * chunk's batch that carries rejects (whose INSERT into csv_import.rejects takes a KEY SHARE lock on the job row
 * through the foreign key) both commit — neither is chosen as a deadlock victim — when they queue up behind a
 * third batch holding the job row. This deadlock happened in the 1M-row end-to-end run (dozens of "deadlock
 * detected" batch retries, chunks failed and retried) before finalize_job stopped taking FOR UPDATE (which
 * conflicts with KEY SHARE) on the job row.
 */
import assert from "node:assert/strict";
import { connect, E2E, type Sql, unique, waitFor } from "./support/stack.ts";

const LOCKING_BUCKET = "e2e-locking";

async function fakeJob(sql: Sql): Promise<{ jobId: number; chunks: { id: number; token: string }[] }> {
  // A planned job of three load chunks that no dispatcher will touch (max_parallel_chunks 0), whose chunks the
  // test claims itself. Its object row exists (batches are refused once the object holds another version) in a
  // bucket no profile watches, so no upload trigger makes a job of it; nothing here reads the object's bytes.
  const name = unique("e2e_locking") + "/fake.csv";
  await sql`insert into storage.buckets (id, name) values (${LOCKING_BUCKET}, ${LOCKING_BUCKET}) on conflict do nothing`;
  await sql`insert into storage.objects (bucket_id, name, version) values (${LOCKING_BUCKET}, ${name}, 'v1')`;
  const [{ id: jobId }] = await sql<{ id: number }[]>`
    insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, register_after)
    values (${LOCKING_BUCKET}, ${name}, 'v1', 3000, now() + interval '1 hour')
    returning id::float8 as id`;
  await sql`select * from csv_import.register_job(${jobId}, ${
    sql.json({ data_start: 0, chunk_size: 1000, object_size: 3000, header_lines: 0, max_parallel_chunks: 0 })
  })`;
  await sql`update csv_import.chunks set status = 'succeeded' where job_id = ${jobId} and kind = 'scan'`;
  const chunks = await sql<{ id: number; token: string }[]>`
    update csv_import.chunks set status = 'running', attempts = 1, lease_token = gen_random_uuid(),
      lease_until = now() + interval '5 minutes', entry_parity = 0, lines_before = 0, at_record_start = true
    where job_id = ${jobId} and kind = 'load'
    returning id::float8 as id, lease_token::text as token`;
  chunks.sort((a, b) => a.id - b.id);
  await sql`update csv_import.jobs set status = 'running' where id = ${jobId}`;
  return { jobId, chunks };
}

/** One interleaving; returns how each of the two queued batches ended. */
async function round(sql: Sql): Promise<string[]> {
  const { jobId, chunks } = await fakeJob(sql);
  const [c, b, a] = [await sql.reserve(), await sql.reserve(), await sql.reserve()];
  try {
    const pids = await Promise.all([b, a].map(async (s) => (await s`select pg_backend_pid() as pid`)[0].pid));
    const batch = (s: Sql, chunk: { id: number; token: string }, rejects: unknown[], final: boolean) =>
      s`select csv_import.commit_batch(${chunk.id}, ${chunk.token}::uuid, 0, ${chunk.id * 10}::bigint,
          ${chunk.id * 10 + 5}::bigint, 3::bigint, ${1 + rejects.length}, 1, 0, ${s.json(rejects as never)},
          ${final}) as outcome`;
    const open = async (s: Sql, chunk: { id: number; token: string }) => {
      await s`begin`;
      const [{ state }] =
        await s`select csv_import.begin_batch(${chunk.id}, ${chunk.token}::uuid, 0) as state`;
      assert.equal(state, "ok");
    };
    const waiting = (n: number) =>
      waitFor(
        `${n} batch(es) to wait for the job row`,
        async () => {
          const [{ n: got }] = await sql<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and pid in ${
            sql(pids)
          }`;
          return got === n ? true : undefined;
        },
        10_000,
        undefined,
        20,
      );
    const run = (s: Sql, statement: Promise<unknown>) =>
      statement.then(async () => {
        await s`commit`;
        return "committed";
      }, (e) => `failed: ${e.message}`);

    // C: a batch in progress that has updated the job row (its counters) and not committed yet.
    await open(c, chunks[0]);
    await batch(c, chunks[0], [], false);
    // B: another chunk's final batch, queued behind C on the job row; then A: a third chunk's batch with a
    // reject (KEY SHARE on the job row through the FK), queued too. Each commits as soon as it can.
    await open(b, chunks[1]);
    const finalBatch = run(b, batch(b, chunks[1], [], true));
    await waiting(1);
    await open(a, chunks[2]);
    const rejectBatch = run(
      a,
      batch(a, chunks[2], [{ line: 3, column: "x", reason: "bad", raw: "x" }], false),
    );
    await waiting(2);

    await c`commit`;
    let timer = 0;
    const outcomes = await Promise.race([
      Promise.all([finalBatch, rejectBatch]),
      new Promise<string[]>((resolve) => {
        timer = setTimeout(() => resolve(["still waiting after 20 s"]), 20_000);
      }),
    ]);
    clearTimeout(timer);
    if (outcomes.every((o) => o === "committed")) {
      const [job] = await sql<{ rejects: number; done: number }[]>`
        select (select count(*)::int from csv_import.rejects where job_id = ${jobId}) as rejects,
               (select count(*)::int from csv_import.chunks where job_id = ${jobId} and status = 'succeeded'
                  and kind = 'load') as done`;
      assert.deepEqual(job, { rejects: 1, done: 1 }, "both batches' effects are committed");
    }
    return outcomes;
  } finally {
    for (const s of [a, b, c]) {
      await s`rollback`.catch(() => {});
      s.release();
    }
    await sql`delete from csv_import.jobs where id = ${jobId}`;
    await sql.begin(async (tx) => {
      await tx`set local storage.allow_delete_query = 'true'`;
      await tx`delete from storage.objects where bucket_id = ${LOCKING_BUCKET}`;
    });
  }
}

Deno.test(
  { name: "batch protocol: a final batch and a batch with rejects do not deadlock", ...E2E },
  async () => {
    const sql = connect(6);
    try {
      // Which of the two queued batches gets the job row first when C commits is up to the lock manager; the
      // deadlock needs the final batch first (about two rounds in three here), so a few rounds make it certain.
      for (let i = 1; i <= 6; i++) {
        const outcomes = await round(sql);
        assert.deepEqual(outcomes, ["committed", "committed"], `round ${i}: ${outcomes.join(", ")}`);
      }
    } finally {
      await sql.end();
    }
  },
);
