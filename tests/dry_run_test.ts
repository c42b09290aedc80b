/**
 * Dry runs (issue 15) against the real local stack: a file validated against its profile without writing a row.
 * - A profile's dry run over a table with constraints PostgreSQL alone can judge (CHECK, a server-checked inet
 *   column, a unique key against rows already there) ends 'validated' with the counts and the rejected lines a
 *   real load of the same file then has, row for row: the dry run predicts the load. The table is untouched by
 *   the dry run, and its rejects CSV is written.
 * - A dry run past the tolerated reject rate fails as the load would, saying nothing was written.
 * - An upload can ask for a dry run itself (user metadata {"csv_import": {"dry_run": true}}), under a profile
 *   that loads: tested with the CLI's `import --dry-run` in tests/cli_test.ts.
 */
import assert from "node:assert/strict";
import { connect, download, E2E, Scope, type Sql, supabase, upload, waitForJob } from "./support/stack.ts";

const COLUMNS = `id int primary key, email text not null, qty int check (qty >= 0), addr inet`;

/** 300 rows, 5 of them refused for different reasons, one of them only by PostgreSQL's own checks. */
function file(): { text: string; badLines: number[] } {
  const lines = ["id,email,qty,addr"];
  const badLines: number[] = [];
  for (let id = 1; id <= 300; id++) {
    let row = `${id},u${id}@example.com,${id % 7},10.0.${id % 256}.1`;
    if (id === 17) row = `${id},u${id}@example.com,x,10.0.0.1`; // integer syntax (the chunk worker)
    if (id === 99) row = `${id},u${id}@example.com,-3,10.0.0.1`; // CHECK (PostgreSQL)
    if (id === 150) row = `${id},,4,10.0.0.1`; // NOT NULL
    if (id === 201) row = `${id},u${id}@example.com,1,999.0.0.1`; // inet (PostgreSQL)
    if (id === 250) row = `5000,dup@example.com,1,10.0.0.1`; // the key of a row already in the table
    if ([17, 99, 150, 201, 250].includes(id)) badLines.push(lines.length + 1);
    lines.push(row);
  }
  return { text: lines.join("\n") + "\n", badLines };
}

async function rejectsOf(sql: Sql, jobId: number) {
  return (await sql<{ line_number: string; reason: string }[]>`
    select line_number, reason from csv_import.rejects where job_id = ${jobId} order by line_number`)
    .map((r) => ({ line: Number(r.line_number), reason: r.reason }));
}

Deno.test({ name: "a dry run validates like the load it predicts, and writes nothing", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "dryrun");
  try {
    const table = `public.${scope.prefix}_t`;
    await sql.unsafe(`create table ${table} (${COLUMNS})`);
    scope.defer(() => sql.unsafe(`drop table if exists ${table}`));
    await sql.unsafe(`insert into ${table} values (5000, 'kept@example.com', 1, '10.9.9.9')`);
    const { text, badLines } = file();
    for (const [dir, dryRun] of [["dry", true], ["real", false]] as const) {
      await scope.profile({
        pathPattern: `${scope.prefix}/${dir}/%`,
        targetTable: table,
        chunkSizeBytes: 2048,
        toleratedRejectRate: 0.1,
        dryRun,
      });
    }

    const dryName = scope.object("dry/orders.csv");
    await upload(dryName, text);
    const dry = await waitForJob(sql, dryName, 120_000);
    assert.equal(dry.status, "validated", dry.error ?? "");
    assert.ok(Number(dry.chunk_count) >= 4, `several chunks: ${dry.chunk_count}`);
    assert.deepEqual([dry.rows_parsed, dry.rows_loaded, dry.rows_rejected].map(Number), [300, 295, 5]);
    const [{ n }] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table}`);
    assert.equal(n, 1, "nothing written: only the row that was there");
    const dryRejects = await rejectsOf(sql, dry.id);
    assert.deepEqual(dryRejects.map((r) => r.line), badLines);
    assert.match(dryRejects[1].reason, /violates check constraint/);
    assert.match(dryRejects[3].reason, /invalid input syntax for type inet: "999\.0\.0\.1"/);
    assert.match(dryRejects[4].reason, /duplicate key value violates unique constraint/);
    const rejectsCsv = await download(dry.rejects_object!);
    assert.ok(rejectsCsv?.includes("999.0.0.1"), "the rejects CSV is written");

    const realName = scope.object("real/orders.csv");
    await upload(realName, text);
    const real = await waitForJob(sql, realName, 120_000);
    assert.equal(real.status, "succeeded_with_rejects", real.error ?? "");
    assert.deepEqual(
      [real.rows_parsed, real.rows_loaded, real.rows_rejected].map(Number),
      [dry.rows_parsed, dry.rows_loaded, dry.rows_rejected].map(Number),
      "the load has the counts the dry run predicted",
    );
    assert.deepEqual(await rejectsOf(sql, real.id), dryRejects, "and the same rejects, line for line");
    const [{ loaded }] = await sql.unsafe<{ loaded: number }[]>(
      `select count(*)::int as loaded from ${table}`,
    );
    assert.equal(loaded, 296);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "a dry run past the tolerated reject rate fails as the load would", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "dryrunfail");
  try {
    const table = `public.${scope.prefix}_t`;
    await sql.unsafe(`create table ${table} (${COLUMNS})`);
    scope.defer(() => sql.unsafe(`drop table if exists ${table}`));
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table, dryRun: true });
    const name = scope.object("bad.csv");
    await upload(name, file().text);
    const job = await waitForJob(sql, name, 120_000);
    assert.equal(job.status, "failed");
    assert.match(
      job.error ?? "",
      /^Rejected 4 of 300 rows \(1\.33%\), above the tolerated 0\.00%; a dry run: the 296 valid rows were not written$/,
    );
    const [{ n }] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table}`);
    assert.equal(n, 0);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "an upload asks for a dry run in its user metadata", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "dryrunmeta");
  try {
    const table = `public.${scope.prefix}_t`;
    await sql.unsafe(`create table ${table} (${COLUMNS})`);
    scope.defer(() => sql.unsafe(`drop table if exists ${table}`));
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table, toleratedRejectRate: 1 });
    const name = scope.object("asked.csv");
    const { error } = await supabase.storage.from("csv-uploads").upload(
      name,
      new TextEncoder().encode("id,email,qty,addr\n1,a@example.com,1,10.0.0.1\n"),
      { contentType: "text/csv", metadata: { csv_import: { dry_run: true } } },
    );
    assert.equal(error, null);
    const job = await waitForJob(sql, name);
    assert.equal(job.status, "validated", job.error ?? "");
    assert.equal(Number(job.rows_loaded), 1);
    const [{ n }] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table}`);
    assert.equal(n, 0);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
