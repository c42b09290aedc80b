/**
 * Issue 11, item 6: a job's chunk count is bounded (MAX_CHUNKS_PER_JOB, 10,000 by default), so a tiny
 * `chunk_size_bytes` cannot plan millions of chunk rows that slow every other job's claims.
 *
 * Against the real local stack:
 * - a small file with `chunk_size_bytes = 1` (one chunk per byte: under the bound) still loads exactly;
 * - a 120 KB file with `chunk_size_bytes = 1` is planned with at most 10,000 load chunks, and the job records
 *   the chunk size it got (ceil(bytes / 10,000)); it is cancelled once planned (running 10,000 tiny chunks
 *   is not what this test is about).
 */
import assert from "node:assert/strict";
import { checksum, connect, E2E, jobByObject, Scope, upload, waitFor, waitForJob } from "./support/stack.ts";

/** MAX_CHUNKS_PER_JOB of the local stack's functions (the default, DEFAULTS.MAX_CHUNKS_PER_JOB). */
const MAX_CHUNKS = 10_000;

function rows(from: number, to: number): string[] {
  const out: string[] = [];
  for (let id = from; id <= to; id++) {
    out.push(
      `${id},00000000-0000-4000-8000-${
        String(id).padStart(12, "0")
      },u${id}@example.com,US,"a ""quoted""\nnote"`,
    );
  }
  return out;
}

Deno.test(
  "chunk counts are bounded per job; a tiny chunk size still loads small files exactly",
  E2E,
  async (t) => {
    const sql = connect();
    const scope = new Scope(sql, "chunkbound");
    try {
      await t.step("small file, chunk_size_bytes = 1: exact rows", async () => {
        const table = await scope.table("small");
        const object = scope.object("small.csv");
        await scope.profile({ pathPattern: object, targetTable: table, chunkSizeBytes: 1 });
        const text = "id,customer_id,email,country,note\n" + rows(1, 3).join("\n") + "\n";
        await upload(object, text);
        const job = await waitForJob(sql, object, 120_000);
        assert.equal(job.status, "succeeded", JSON.stringify(job));
        const dataBytes = new TextEncoder().encode(text).length -
          "id,customer_id,email,country,note\n".length;
        assert.equal(job.chunk_count, dataBytes, "one chunk per byte: under the bound, the size is kept");
        const loaded = await sql<{ id: number; note: string }[]>`
        select id::int, note from ${sql(table.split(".")[0])}.${sql(table.split(".")[1])} order by id`;
        assert.deepEqual(loaded.map((r) => r.id), [1, 2, 3]);
        assert.ok(loaded.every((r) => r.note === 'a "quoted"\nnote'), JSON.stringify(loaded));
        assert.equal((await checksum(sql, table)).count, 3);
      });

      await t.step(`120 KB file, chunk_size_bytes = 1: at most ${MAX_CHUNKS} chunks`, async () => {
        const table = await scope.table("large");
        const object = scope.object("large.csv");
        await scope.profile({ pathPattern: object, targetTable: table, chunkSizeBytes: 1 });
        const header = "id,customer_id,email,country,note\n";
        let body = "";
        for (let id = 1; body.length < 120_000; id += 100) body += rows(id, id + 99).join("\n") + "\n";
        await upload(object, header + body);
        const dataBytes = new TextEncoder().encode(body).length;
        const job = await waitFor("the job to be planned", async () => {
          const j = await jobByObject(sql, object);
          return j && j.status !== "registering" ? j : undefined;
        }, 120_000);
        try {
          const [plan] = await sql<{ chunk_size: number; chunk_count: number; rows: number }[]>`
          select j.chunk_size::int, j.chunk_count, (select count(*)::int from csv_import.chunks c where c.job_id = j.id) as rows
          from csv_import.jobs j where j.id = ${job.id}`;
          assert.ok(plan.chunk_count <= MAX_CHUNKS, `${plan.chunk_count} chunks planned`);
          assert.equal(
            plan.chunk_size,
            Math.ceil(dataBytes / MAX_CHUNKS),
            "the job records the chunk size it got",
          );
          assert.equal(plan.chunk_count, Math.ceil(dataBytes / plan.chunk_size));
          assert.ok(plan.rows <= 2 * MAX_CHUNKS - 1, `${plan.rows} chunk rows`);
        } finally {
          await sql`select csv_import.cancel_job(${job.id}, 'chunk_bound_test: planning checked')`;
          await waitForJob(sql, object, 120_000);
        }
      });
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
