/**
 * Issue 14, "chunk and batch sizes from measured cost": a file's chunks are sized from what loads measured
 * (migration 20261216000000_chunk_sizes_from_measured_cost.sql, pipeline/chunk_size.ts).
 *
 * Against the real local stack, with tables of one narrow column (rows of 2 bytes: the most work per byte a file
 * has). Each planned size is compared with what chunk_size.ts (unit-tested there) computes from the measurement
 * csv_import.measured_row_cost gives just before the upload and the file's own rows per MiB, whatever this machine
 * measured:
 * - the first file into a fresh table is planned from other tables' work per field (none in a fresh database:
 *   CHUNK_SIZE), and its load invocations record what they covered (every byte of its data, once), its rows,
 *   fields and work;
 * - the second file is planned from the table's own measurement;
 * - once the table's recent loads say its rows are costly (a load of 200 µs a row recorded, as costly conversions
 *   on a slow machine would measure), the next file gets chunks of CHUNK_SIZE_MIN, several of them, and loads
 *   exactly;
 * - a fresh table then gets CHUNK_SIZE_MIN too, from the other tables' work per field times its one field.
 * The costs this test recorded are deleted at its end, so that later tests plan as they would without it.
 */
import assert from "node:assert/strict";
import { costedChunkSize, sampleRowsPerMiB } from "../supabase/functions/_shared/pipeline/chunk_size.ts";
import { DEFAULTS } from "../supabase/functions/_shared/platform/config.ts";
import { SNIFF_BYTES } from "../supabase/functions/_shared/csv/dialect.ts";
import { connect, E2E, Scope, upload, waitForJob } from "./support/stack.ts";

const MIB = 1024 * 1024;
const HEADER = "n\n";

/** `count` rows of one digit each, from `seed`, as bytes, and the digits' sum. */
function narrowFile(count: number, seed: number): { bytes: Uint8Array; sum: number } {
  const parts: string[] = [HEADER];
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const n = 1 + ((i * 7 + seed) % 9);
    sum += n;
    parts.push(`${n}\n`);
  }
  return { bytes: new TextEncoder().encode(parts.join("")), sum };
}

Deno.test("chunk sizes follow the measured cost of loads", E2E, async (t) => {
  const sql = connect();
  const scope = new Scope(sql, "chunkcost");
  const tables: string[] = [];
  scope.defer(() => sql`delete from csv_import.load_costs where target_table in ${sql(tables)}`);
  try {
    /** A one-column table, loaded from uploads under `<prefix>/<folder>/`. */
    const narrowTable = async (folder: string) => {
      const table = `public.${scope.prefix}_${folder}`;
      await sql.unsafe(`create table ${table} (n int not null)`);
      tables.push(table);
      scope.defer(() => sql.unsafe(`drop table if exists ${table}`));
      await scope.profile({ pathPattern: `${scope.prefix}/${folder}/%`, targetTable: table });
      return table;
    };
    const cost = async (table: string) =>
      (await sql<{ ms: number | null }[]>`select csv_import.measured_row_cost(${table}, 1) as ms`)[0].ms;
    /** The size chunk_size.ts gives a file of these bytes at this measured cost. */
    const expectedFor = (msPerRow: number | null, bytes: Uint8Array) => {
      const rowsPerMiB = sampleRowsPerMiB(bytes.subarray(HEADER.length, SNIFF_BYTES), {
        delimiter: ",",
        quote: '"',
        newline: "\n",
        encoding: "utf-8",
      })!;
      return costedChunkSize(msPerRow === null ? null : { msPerRow, rowsPerMiB }, {
        chunkSize: DEFAULTS.CHUNK_SIZE,
        chunkSizeMin: DEFAULTS.CHUNK_SIZE_MIN,
        chunkWorkMs: DEFAULTS.CHUNK_WORK_MS,
        maxChunksPerJob: DEFAULTS.MAX_CHUNKS_PER_JOB,
      });
    };
    /** Uploads the file into `table`'s folder; its job succeeded with the expected size; its plan. */
    const load = async (table: string, file: string, bytes: Uint8Array) => {
      const expected = expectedFor(await cost(table), bytes);
      const object = scope.object(`${table.split("_").at(-1)}/${file}`);
      await upload(object, bytes);
      const job = await waitForJob(sql, object, 180_000);
      assert.equal(job.status, "succeeded", JSON.stringify(job));
      const [plan] = await sql<{ id: number; chunk_size: number; chunk_count: number }[]>`
        select id::int, chunk_size::int, chunk_count from csv_import.jobs where id = ${job.id}`;
      assert.equal(
        plan.chunk_size,
        expected,
        `planned ${plan.chunk_size / MIB} MiB, expected ${expected / MIB}`,
      );
      assert.equal(plan.chunk_count, Math.ceil((bytes.length - HEADER.length) / plan.chunk_size));
      return plan;
    };
    const loaded = async (table: string) =>
      (await sql<{ count: number; sum: number }[]>`
        select count(*)::int as count, coalesce(sum(n), 0)::int as sum from ${sql.unsafe(table)}`)[0];

    const a = await narrowTable("a");
    const first = narrowFile(1_000_000, 1); // 2 MB
    let secondJob = 0;
    await t.step("the first file: planned, and its loads record their cost", async () => {
      const plan = await load(a, "first.csv", first.bytes);
      // Every chunk of at least CHUNK_SIZE_MIN records each of its invocations' parts: together, its range and rows.
      const [recorded] = await sql<
        { n: number; bytes: number; rows: number; fields: number[]; work_ms: number; target: string[] }[]
      >`
        select count(*)::int as n, sum(bytes)::int as bytes, sum(rows)::int as rows,
          array_agg(distinct fields) as fields, sum(work_ms)::float8 as work_ms, array_agg(distinct target_table) as target
        from csv_import.load_costs where job_id = ${plan.id}`;
      const [chunks] = await sql<{ bytes: number; rows: number }[]>`
        select sum(end_offset - start_offset)::int as bytes, sum(rows_parsed)::int as rows from csv_import.chunks
        where job_id = ${plan.id} and kind = 'load' and end_offset - start_offset >= ${DEFAULTS.CHUNK_SIZE_MIN}`;
      assert.ok(recorded.n >= 1 && chunks.bytes > 0, "its load invocations recorded their cost");
      assert.deepEqual(
        { bytes: recorded.bytes, rows: recorded.rows },
        chunks,
        "every byte and row of them, once",
      );
      assert.deepEqual(recorded.fields, [1]);
      assert.ok(recorded.work_ms > 0, `work ${recorded.work_ms} ms`);
      assert.deepEqual(recorded.target, [a]);
      const measured = await cost(a);
      assert.ok(
        measured !== null && Math.abs(measured - recorded.work_ms / recorded.rows) < 1e-9,
        `${measured}`,
      );
    });

    const second = narrowFile(1_300_000, 2); // 2.6 MB
    await t.step("the second file: planned from the table's measured cost", async () => {
      secondJob = (await load(a, "second.csv", second.bytes)).id;
      assert.deepEqual(await loaded(a), { count: 2_300_000, sum: first.sum + second.sum });
    });

    const costly = async () =>
      await sql`
        select csv_import.record_load_cost(
          (select id from csv_import.chunks where job_id = ${secondJob} and kind = 'load' and chunk_index = 0),
          2000000, 1000000, 0, 1, 200000)`;

    await t.step(
      "a table whose loads measured costly rows: chunks of CHUNK_SIZE_MIN, loaded exactly",
      async () => {
        await costly();
        const third = narrowFile(1_300_000, 3);
        assert.equal(expectedFor(await cost(a), third.bytes), DEFAULTS.CHUNK_SIZE_MIN);
        const plan = await load(a, "third.csv", third.bytes);
        assert.equal(plan.chunk_count, 3, "2.6 MB in chunks of 1 MiB");
        assert.deepEqual(await loaded(a), { count: 3_600_000, sum: first.sum + second.sum + third.sum });
      },
    );

    await t.step("a fresh table: planned from other tables' work per field", async () => {
      await costly(); // the third file's own (cheap) loads are among the latest too
      const b = await narrowTable("b");
      const file = narrowFile(1_300_000, 4);
      assert.equal(expectedFor(await cost(b), file.bytes), DEFAULTS.CHUNK_SIZE_MIN);
      const plan = await load(b, "fresh.csv", file.bytes);
      assert.equal(plan.chunk_count, 3);
      assert.deepEqual(await loaded(b), { count: 1_300_000, sum: file.sum });
    });
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
