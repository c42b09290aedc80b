/**
 * The conflict modes of a profile, end to end on the real stack, against a target that already holds rows:
 * - upsert (conflict_columns {id}): rows whose key exists replace the old values, new keys are inserted, a key
 *   repeated within the file ends with its last occurrence, bad rows are rejected; loaded counts every upserted
 *   row, skipped is 0;
 * - skip_duplicates: rows whose key exists (before the import or earlier in the file) are skipped and counted
 *   in rows_skipped, not rejected; the old rows keep their values; rows parsed = loaded + rejected + skipped.
 * The expected table is computed independently in SQL from `psql \copy` of the file's valid rows (in file order)
 * and the pre-existing rows, and compared by count and order-independent checksum.
 */
import assert from "node:assert/strict";
import { generateRows, HEADER } from "./support/generate_csv.ts";
import { checksum, connect, E2E, psqlCopy, Scope, type Sql, upload, waitForJob } from "./support/stack.ts";

const COLUMNS = HEADER.join(", ");

function rowsText(rows: number, seed: number, from = 1, to = rows): string {
  let text = "";
  for (const row of generateRows({ rows, seed })) {
    const id = Number(row.text.slice(0, row.text.indexOf(",")));
    if (id >= from && id <= to) text += row.text;
  }
  return text;
}

const BAD_ROWS = [
  "abc,00000000-0000-4000-8000-000000000001,bad@example.com,US,1.00,1,true,2024-01-01T00:00:00Z,new,bad id\n",
  "5001,00000000-0000-4000-8000-000000000002,bad@example.com,US,1.00,1,maybe,2024-01-01T00:00:00Z,new,bad bool\n",
];

/** Writes the file (valid rows with the bad rows in the middle) and the same without the bad rows. */
async function files(scope: Scope, valid: string[]): Promise<{ path: string; clean: string }> {
  const dir = await scope.tempDir();
  const header = HEADER.join(",") + "\n";
  const path = `${dir}/data.csv`;
  const clean = `${dir}/data.clean.csv`;
  await Deno.writeTextFile(path, header + valid[0] + BAD_ROWS.join("") + valid.slice(1).join(""));
  await Deno.writeTextFile(clean, header + valid.join(""));
  return { path, clean };
}

/** Pre-existing rows with ids [1, n] (and one id no file has), the same in the target and the expected table. */
async function preExisting(sql: Sql, tables: string[], n: number): Promise<void> {
  for (const table of tables) {
    await sql.unsafe(
      `insert into ${table} (id, customer_id, email, note)
       select i, ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'old' || i || '@example.com', 'old'
       from generate_series(1, ${n}) as i union all
       select 900000, '00000000-0000-4000-8000-000000900000', 'keep@example.com', 'not in the file'`,
    );
  }
}

/** The valid rows in file order, in a table with a `seq` column. */
async function staged(scope: Scope, clean: string): Promise<string> {
  const stage = await scope.table("stage", { primaryKey: false });
  await scope.sql.unsafe(`alter table ${stage} add column seq bigint generated always as identity`);
  await psqlCopy(stage, clean, { columns: HEADER });
  return stage;
}

Deno.test(
  { name: "conflict modes: upsert replaces existing rows, last occurrence wins", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "upsert");
    try {
      // 1,000 rows (ids 1..1000), then ids 1..50 again with other values.
      const { path, clean } = await files(scope, [rowsText(1000, 11), rowsText(50, 12)]);
      const target = await scope.table("upsert");
      const expected = await scope.table("upsert_expected");
      await preExisting(sql, [target, expected], 400);
      const stage = await staged(scope, clean);
      const updates = HEADER.filter((c) => c !== "id").map((c) => `${c} = excluded.${c}`).join(", ");
      await sql.unsafe(
        `insert into ${expected} (${COLUMNS})
       select distinct on (id) ${COLUMNS} from ${stage} order by id, seq desc
       on conflict (id) do update set ${updates}`,
      );
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: target,
        onConflict: "upsert",
        conflictColumns: ["id"],
        toleratedRejectRate: 0.01,
      });

      const name = scope.object("data.csv");
      await upload(name, { path });
      const job = await waitForJob(sql, name, 60_000);
      assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
      assert.equal(job.rows_parsed, 1052);
      assert.equal(job.rows_loaded, 1050, "every valid row was upserted");
      assert.equal(job.rows_rejected, 2);
      assert.equal(job.rows_skipped, 0);
      const got = await checksum(sql, target);
      assert.equal(got.count, 1001, "ids 1..1000 and the untouched row 900000");
      assert.deepEqual(got, await checksum(sql, expected), "target = expected upsert result");
      const [{ old }] = await sql.unsafe(`select count(*)::int as old from ${target} where note = 'old'`);
      assert.equal(old, 0, "no pre-existing row in the file kept its old values");
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  { name: "conflict modes: skip_duplicates keeps existing rows and counts the skipped", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "skip");
    try {
      // 1,000 rows (ids 1..1000), then ids 900..919 again with other values.
      const { path, clean } = await files(scope, [rowsText(1000, 21), rowsText(919, 22, 900, 919)]);
      const target = await scope.table("skip");
      const expected = await scope.table("skip_expected");
      await preExisting(sql, [target, expected], 300);
      const stage = await staged(scope, clean);
      await sql.unsafe(
        `insert into ${expected} (${COLUMNS})
       select distinct on (id) ${COLUMNS} from ${stage} order by id, seq
       on conflict (id) do nothing`,
      );
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: target,
        onConflict: "skip_duplicates",
        toleratedRejectRate: 0.01,
      });

      const name = scope.object("data.csv");
      await upload(name, { path });
      const job = await waitForJob(sql, name, 60_000);
      assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
      assert.equal(job.rows_parsed, 1022);
      assert.equal(job.rows_loaded, 700, "ids 301..1000");
      assert.equal(job.rows_skipped, 320, "300 already in the table + 20 repeated in the file");
      assert.equal(job.rows_rejected, 2);
      assert.equal(job.rows_parsed, job.rows_loaded + job.rows_skipped + job.rows_rejected);
      const got = await checksum(sql, target);
      assert.equal(got.count, 1001);
      assert.deepEqual(got, await checksum(sql, expected), "target = expected skip result");
      const [{ old }] = await sql.unsafe(`select count(*)::int as old from ${target} where note = 'old'`);
      assert.equal(old, 300, "the pre-existing rows kept their values");
      const rejects = await sql`select count(*)::int as n from csv_import.rejects where job_id = ${job.id}`;
      assert.equal(rejects[0].n, 2, "skipped rows are not rejects");
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
