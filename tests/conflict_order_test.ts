/**
 * A key repeated across chunks keeps file order, whatever order the chunks commit in:
 * - upsert: the last occurrence in the file wins (over pre-existing rows too);
 * - skip_duplicates: the first occurrence in the file wins, and a row that was in the table before the job stays.
 * The same holds for a key repeated within one batch. Rows parsed = loaded + rejected + skipped, exactly.
 *
 * The file has small chunks (2 KiB), keys 7, 8 and 9 in chunk 0, 8 again in a middle chunk and 5, 7, 8, 9 in the
 * last one. To make the later chunk commit first, a trigger on the target sleeps 2 s whenever a row of chunk 0
 * with a repeated key is inserted (note 'first'): its batch is then still open when the last chunk writes. Three
 * runs per mode, each into a fresh table.
 */
import assert from "node:assert/strict";
import { HEADER } from "./support/generate_csv.ts";
import { connect, E2E, Scope, type Sql, upload, waitForJob } from "./support/stack.ts";

interface Row {
  id: number;
  line: number;
  note: string;
}

/** The file's rows in order, with their physical lines (the header is line 1). */
function fileRows(): Row[] {
  const rows: Row[] = [];
  const add = (id: number, note: string) => rows.push({ id, line: rows.length + 2, note });
  add(7, "first");
  add(8, "first");
  add(9, "first");
  add(9, "second in the same batch");
  for (let id = 100; id < 400; id++) {
    add(id, "filler");
    if (id === 250) add(8, "middle");
  }
  add(7, "last");
  add(5, "last");
  add(8, "last");
  add(9, "last");
  return rows;
}

function csv(rows: Row[]): string {
  const line = (r: Row) =>
    `${r.id},00000000-0000-4000-8000-${
      String(r.id).padStart(12, "0")
    },l${r.line}@example.com,US,1.00,1,true,` +
    `2024-01-01T00:00:00Z,new,${r.note}\n`;
  return HEADER.join(",") + "\n" + rows.map(line).join("");
}

/** Rows in the table before the import: ids 1..5 and 8. */
const PRE_EXISTING = [1, 2, 3, 4, 5, 8];

/** id → email expected in the table after the import. */
function expected(rows: Row[], mode: "upsert" | "skip_duplicates"): Map<number, string> {
  const table = new Map(PRE_EXISTING.map((id) => [id, `old${id}@example.com`]));
  for (const r of rows) {
    if (mode === "upsert" || !table.has(r.id)) table.set(r.id, `l${r.line}@example.com`);
  }
  return table;
}

async function run(sql: Sql, scope: Scope, mode: "upsert" | "skip_duplicates", n: number): Promise<void> {
  const rows = fileRows();
  const target = await scope.table(`order_${mode}_${n}`);
  await sql.unsafe(
    `insert into ${target} (id, customer_id, email, note)
     select i, ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'old' || i || '@example.com', 'old'
     from unnest($1::bigint[]) as i`,
    [PRE_EXISTING],
  );
  // Chunk 0's repeated keys wait 2 s in their batch's transaction, so the last chunk's batch commits first.
  const fn = `${target}_delay`;
  await sql.unsafe(`create function ${fn}() returns trigger language plpgsql as $$
    begin
      if new.note = 'first' then perform pg_sleep(2); end if;
      return new;
    end $$`);
  scope.defer(() => sql.unsafe(`drop function if exists ${fn}() cascade`));
  await sql.unsafe(`create trigger delay before insert on ${target} for each row execute function ${fn}()`);
  await scope.profile({
    pathPattern: `${scope.prefix}/${mode}_${n}/%`,
    targetTable: target,
    onConflict: mode,
    conflictColumns: ["id"],
    chunkSizeBytes: 2048,
  });

  const name = scope.object(`${mode}_${n}/data.csv`);
  await upload(name, csv(rows));
  const job = await waitForJob(sql, name, 90_000);
  assert.equal(job.status, "succeeded", job.error ?? "");
  const [{ chunks }] = await sql`select count(*)::int as chunks from csv_import.chunks
                                 where job_id = ${job.id} and kind = 'load'`;
  assert.ok(chunks >= 5, `several load chunks (${chunks})`);

  const want = expected(rows, mode);
  const got = await sql.unsafe<{ id: string; email: string }[]>(
    `select id, email from ${target} order by id`,
  );
  const diff = got.filter((r) => want.get(Number(r.id)) !== r.email)
    .map((r) => `id ${r.id}: ${r.email}, expected ${want.get(Number(r.id))}`);
  assert.deepEqual(diff, [], `${mode} run ${n}: the occurrence in file order wins: ${diff.join("; ")}`);
  assert.equal(got.length, want.size, "one row per key");

  assert.equal(job.rows_parsed, rows.length);
  assert.equal(job.rows_rejected, 0);
  assert.equal(job.rows_parsed, job.rows_loaded + job.rows_rejected + job.rows_skipped, "rows add up");
  if (mode === "upsert") {
    assert.equal(job.rows_loaded, rows.length, "every row upserted");
  } else {
    const newKeys = new Set(rows.map((r) => r.id).filter((id) => !PRE_EXISTING.includes(id))).size;
    assert.equal(job.rows_loaded, newKeys, "one loaded row per key the table did not have");
    assert.equal(job.rows_skipped, rows.length - newKeys);
  }
}

for (const mode of ["upsert", "skip_duplicates"] as const) {
  Deno.test({ name: `conflict order: ${mode} keeps file order across chunks`, ...E2E }, async () => {
    const sql = connect();
    const scope = new Scope(sql, `order_${mode}`);
    try {
      for (let n = 1; n <= 3; n++) await run(sql, scope, mode, n);
    } finally {
      await scope.dispose();
      await sql.end();
    }
  });
}
