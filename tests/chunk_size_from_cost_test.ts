/**
 * Issue 14, "chunk and batch sizes from measured cost": a file's chunks are sized from what loads into the same
 * table measured (migration 20261216000000_chunk_sizes_from_measured_cost.sql, pipeline/chunk_size.ts).
 *
 * Against the real local stack, with a table of one narrow column (rows of 2 bytes: the most work per byte a
 * file has):
 * - the first file into the table has no measurement: it is planned with CHUNK_SIZE, and its load invocations
 *   record what they covered (every byte of its data, once), its rows and their work;
 * - the second file is planned from that measurement and its own rows per MiB: the size registration gives it
 *   is the one chunk_size.ts (unit-tested there) computes from them, whatever this machine measured;
 * - once the table's recent loads say its rows are costly (a load of 5 µs a row recorded, as a slow machine or
 *   costly conversions would measure), the next file gets chunks of CHUNK_SIZE_MIN, several of them, and
 *   loads exactly.
 */
import assert from "node:assert/strict";
import { costedChunkSize, sampleRowsPerMiB } from "../supabase/functions/_shared/pipeline/chunk_size.ts";
import { DEFAULTS } from "../supabase/functions/_shared/platform/config.ts";
import { SNIFF_BYTES } from "../supabase/functions/_shared/csv/dialect.ts";
import { connect, E2E, Scope, upload, waitForJob } from "./support/stack.ts";

const MIB = 1024 * 1024;
const HEADER = "n\n";

/** `count` rows of one digit each, from `seed`. */
function narrowFile(count: number, seed: number): { text: string; sum: number } {
  const parts: string[] = [HEADER];
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const n = 1 + ((i * 7 + seed) % 9);
    sum += n;
    parts.push(`${n}\n`);
  }
  return { text: parts.join(""), sum };
}

Deno.test("chunk sizes follow the measured cost of loads into the same table", E2E, async (t) => {
  const sql = connect();
  const scope = new Scope(sql, "chunkcost");
  try {
    const { table } = await scope.tableAndReference("n int not null");
    const [schema, name] = table.split(".");
    const cost = async () =>
      (await sql<{ ms: number | null }[]>`select csv_import.measured_row_cost(${table}) as ms`)[0].ms;
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table });

    const first = narrowFile(1_000_000, 1); // 2 MB: one CHUNK_SIZE chunk
    await t.step("the first file: CHUNK_SIZE, and its loads record their cost", async () => {
      assert.equal(await cost(), null, "nothing measured yet");
      const object = scope.object("first.csv");
      await upload(object, first.text);
      const job = await waitForJob(sql, object, 180_000);
      assert.equal(job.status, "succeeded", JSON.stringify(job));
      const [plan] = await sql<{ chunk_size: number; data_start: number; object_size: number }[]>`
        select chunk_size::int, data_start::int, object_size::int from csv_import.jobs where id = ${job.id}`;
      assert.equal(plan.chunk_size, DEFAULTS.CHUNK_SIZE);
      const [recorded] = await sql<
        { n: number; bytes: number; rows: number; work_ms: number; target: string[] }[]
      >`
        select count(*)::int as n, sum(bytes)::int as bytes, sum(rows)::int as rows, sum(work_ms)::float8 as work_ms,
          array_agg(distinct target_table) as target
        from csv_import.load_costs where job_id = ${job.id}`;
      assert.ok(recorded.n >= 1, "its load invocations recorded their cost");
      assert.equal(recorded.bytes, plan.object_size - plan.data_start, "every byte of its data, once");
      assert.equal(recorded.rows, 1_000_000, "every row, once");
      assert.ok(recorded.work_ms > 0, `work ${recorded.work_ms} ms`);
      assert.deepEqual(recorded.target, [table]);
      const measured = await cost();
      assert.ok(
        measured !== null && Math.abs(measured - recorded.work_ms / recorded.rows) < 1e-9,
        `${measured}`,
      );
    });

    const plannedFor = async (object: string, bytes: Uint8Array) => {
      const job = await waitForJob(sql, object, 180_000);
      assert.equal(job.status, "succeeded", JSON.stringify(job));
      const [plan] = await sql<{ id: number; chunk_size: number; chunk_count: number }[]>`
        select id::int, chunk_size::int, chunk_count from csv_import.jobs where id = ${job.id}`;
      assert.equal(plan.chunk_count, Math.ceil((bytes.length - HEADER.length) / plan.chunk_size));
      return plan;
    };
    const expectedFor = (msPerRow: number, bytes: Uint8Array) => {
      const rowsPerMiB = sampleRowsPerMiB(bytes.subarray(HEADER.length, SNIFF_BYTES), {
        delimiter: ",",
        quote: '"',
        newline: "\n",
        encoding: "utf-8",
      })!;
      return costedChunkSize({ msPerRow, rowsPerMiB }, {
        chunkSize: DEFAULTS.CHUNK_SIZE,
        chunkSizeMin: DEFAULTS.CHUNK_SIZE_MIN,
        chunkWorkMs: DEFAULTS.CHUNK_WORK_MS,
        maxChunksPerJob: DEFAULTS.MAX_CHUNKS_PER_JOB,
      });
    };
    const loaded = async () =>
      (await sql<{ count: number; sum: number }[]>`
        select count(*)::int as count, coalesce(sum(n), 0)::int as sum from ${sql(schema)}.${sql(name)}`)[0];

    const second = narrowFile(1_300_000, 2); // 2.6 MB
    let secondJob = 0;
    await t.step("the second file: planned from the measured cost and its rows per MiB", async () => {
      const bytes = new TextEncoder().encode(second.text);
      const expected = expectedFor((await cost())!, bytes);
      const object = scope.object("second.csv");
      await upload(object, bytes);
      const plan = await plannedFor(object, bytes);
      secondJob = plan.id;
      assert.equal(
        plan.chunk_size,
        expected,
        `planned ${plan.chunk_size / MIB} MiB, expected ${expected / MIB}`,
      );
      assert.deepEqual(await loaded(), { count: 2_300_000, sum: first.sum + second.sum });
    });

    await t.step(
      "a table whose loads measured costly rows: chunks of CHUNK_SIZE_MIN, loaded exactly",
      async () => {
        // One load of 5 µs a row among the table's recent ones outweighs the ~0.1–0.3 µs this machine measures.
        await sql`
        select csv_import.record_load_cost(
          (select id from csv_import.chunks where job_id = ${secondJob} and kind = 'load' and chunk_index = 0),
          2000000, 1000000, 5000)`;
        const third = narrowFile(1_300_000, 3);
        const bytes = new TextEncoder().encode(third.text);
        assert.equal(expectedFor((await cost())!, bytes), DEFAULTS.CHUNK_SIZE_MIN);
        const object = scope.object("third.csv");
        await upload(object, bytes);
        const plan = await plannedFor(object, bytes);
        assert.equal(plan.chunk_size, DEFAULTS.CHUNK_SIZE_MIN);
        assert.equal(plan.chunk_count, 3, "2.6 MB in chunks of 1 MiB");
        assert.deepEqual(await loaded(), { count: 3_600_000, sum: first.sum + second.sum + third.sum });
      },
    );
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
