/**
 * What the target table refuses or drops, end to end on the real stack (issue 11, items 2 and 8). Each file
 * goes through the pipeline and through `psql \copy` of its acceptable rows into a twin table, and the two
 * tables must hold the same rows:
 * - a row a validation trigger refuses (RAISE, SQLSTATE P0001) becomes a reject; the others load;
 * - a row a deferred foreign key refuses (which PostgreSQL checks at commit) becomes a reject; the others load;
 * - values for an `identity always` column load as given, as `\copy` loads them, also when a refused row in the
 *   same piece sends the rows through the isolating INSERT, and in skip_duplicates mode;
 * - rows a BEFORE trigger drops (returns NULL) are not counted as loaded: the job's loaded count equals the
 *   table's rows, and the dropped ones are counted as skipped (rows parsed = loaded + rejected + skipped),
 *   on the COPY fast path and on the isolating path alike.
 */
import assert from "node:assert/strict";
import { isRowRefusal, mayBeInputRefusal } from "../supabase/functions/_shared/load/loader.ts";
import { connect, E2E, psqlCopy, Scope, type Sql, upload, waitForJob } from "./support/stack.ts";

const JOB_TIMEOUT = 60_000;

/** Creates `public.<label>_<suffix>` and its `\copy` twin with the same DDL; returns both names. */
async function twins(scope: Scope, label: string, ddl: (table: string) => string): Promise<[string, string]> {
  const names: string[] = [];
  for (const suffix of ["", "_copy"]) {
    const table = `public.${scope.prefix}_${label}${suffix}`;
    await scope.sql.unsafe(ddl(table));
    scope.tables.push(table);
    names.push(table);
  }
  return [names[0], names[1]];
}

async function rows(sql: Sql, table: string, order = "id"): Promise<Record<string, unknown>[]> {
  return [...await sql.unsafe(`select * from ${table} order by ${order}`)];
}

/** Uploads `text` under a profile for `target`; returns the finished job and its rejects. */
async function importFile(
  scope: Scope,
  target: string,
  text: string,
  opts: { onConflict?: "insert" | "skip_duplicates" } = {},
) {
  const folder = `${scope.prefix}/${crypto.randomUUID().slice(0, 8)}`;
  await scope.profile({
    pathPattern: `${folder}/%`,
    targetTable: target,
    hasHeader: true,
    toleratedRejectRate: 1,
    onConflict: opts.onConflict ?? "insert",
  });
  const name = scope.object(`${folder.slice(scope.prefix.length + 1)}/data.csv`);
  await upload(name, text);
  const job = await waitForJob(scope.sql, name, JOB_TIMEOUT);
  const rejects = await scope.sql<{ line_number: number; reason: string }[]>`
    select line_number::int, reason from csv_import.rejects where job_id = ${job.id} order by line_number`;
  return { job, rejects };
}

async function copyFile(scope: Scope, table: string, text: string): Promise<void> {
  const path = `${await scope.tempDir()}/good.csv`;
  await Deno.writeTextFile(path, text);
  await psqlCopy(table, path);
}

Deno.test({ name: "refusals: a row a validation trigger refuses is a reject", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "trg_raise");
  try {
    const [target, twin] = await twins(
      scope,
      "t",
      (t) => `create table ${t} (id int primary key, name text)`,
    );
    for (const t of [target, twin]) {
      const fn = `${t}_check`;
      await sql.unsafe(`create function ${fn}() returns trigger language plpgsql as $$
        begin
          if new.name = '' then raise exception 'name must not be empty (id %)', new.id; end if;
          return new;
        end $$`);
      scope.defer(() => sql.unsafe(`drop function if exists ${fn}() cascade`));
      await sql.unsafe(
        `create trigger check_name before insert on ${t} for each row execute function ${fn}()`,
      );
    }
    const { job, rejects } = await importFile(scope, target, 'id,name\n1,a\n2,""\n3,c\n');
    assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
    assert.deepEqual([job.rows_parsed, job.rows_loaded, job.rows_rejected], [3, 2, 1]);
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].line_number, 3);
    assert.match(rejects[0].reason, /^name must not be empty \(id 2\)/);
    await copyFile(scope, twin, "id,name\n1,a\n3,c\n");
    assert.deepEqual(await rows(sql, target), await rows(sql, twin));
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "refusals: a row a deferred foreign key refuses is a reject", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "deferred_fk");
  try {
    const parent = `public.${scope.prefix}_parent`;
    await sql.unsafe(`create table ${parent} (id int primary key)`);
    await sql.unsafe(`insert into ${parent} values (1), (2)`);
    const [target, twin] = await twins(scope, "child", (t) =>
      `create table ${t} (id int primary key,
         parent_id int references ${parent} (id) deferrable initially deferred)`);
    scope.tables.push(parent); // dropped after the children (tables are dropped in order)
    const { job, rejects } = await importFile(scope, target, "id,parent_id\n1,1\n2,99\n3,2\n");
    assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
    assert.deepEqual([job.rows_parsed, job.rows_loaded, job.rows_rejected], [3, 2, 1]);
    assert.equal(rejects[0].line_number, 3);
    assert.match(rejects[0].reason, /violates foreign key constraint/);
    await copyFile(scope, twin, "id,parent_id\n1,1\n3,2\n");
    assert.deepEqual(await rows(sql, target), await rows(sql, twin));
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "refusals: identity always values load as \\copy loads them", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "identity");
  try {
    for (const mode of ["insert", "skip_duplicates"] as const) {
      const [target, twin] = await twins(
        scope,
        mode,
        (t) => `create table ${t} (id int generated always as identity primary key, name text)`,
      );
      // Row 3 repeats id 5: in insert mode its piece is refused and goes through the isolating INSERT.
      const { job, rejects } = await importFile(scope, target, "id,name\n5,a\n7,b\n5,again\n", {
        onConflict: mode,
      });
      assert.equal(job.error, null, `${mode}: ${job.error}`);
      assert.equal(job.rows_loaded, 2, mode);
      assert.equal(job.rows_rejected + job.rows_skipped, 1, mode);
      if (mode === "insert") assert.match(rejects[0].reason, /^duplicate key value/);
      await copyFile(scope, twin, "id,name\n5,a\n7,b\n");
      assert.deepEqual(await rows(sql, target), await rows(sql, twin), mode);
    }
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "refusals: rows a BEFORE trigger drops are skipped, not loaded", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "trg_drop");
  try {
    // insert: the COPY fast path; skip_duplicates: the isolating INSERT.
    for (const mode of ["insert", "skip_duplicates"] as const) {
      const [target, twin] = await twins(
        scope,
        mode,
        (t) => `create table ${t} (id int primary key, name text)`,
      );
      for (const t of [target, twin]) {
        const fn = `${t}_drop`;
        await sql.unsafe(`create function ${fn}() returns trigger language plpgsql as $$
          begin if new.name = 'drop' then return null; end if; return new; end $$`);
        scope.defer(() => sql.unsafe(`drop function if exists ${fn}() cascade`));
        await sql.unsafe(
          `create trigger drop_some before insert on ${t} for each row execute function ${fn}()`,
        );
      }
      const text = "id,name\n1,a\n2,drop\n3,c\n4,drop\n5,e\n";
      const { job, rejects } = await importFile(scope, target, text, { onConflict: mode });
      assert.equal(job.status, "succeeded", `${mode}: ${job.error}`);
      const [{ n }] = await sql.unsafe(`select count(*)::int as n from ${target}`);
      assert.equal(n, 3, mode);
      assert.equal(job.rows_loaded, n, `${mode}: the loaded count is what the table holds`);
      assert.equal(job.rows_skipped, 2, `${mode}: the dropped rows are counted as skipped`);
      assert.equal(job.rows_parsed, job.rows_loaded + job.rows_rejected + job.rows_skipped, mode);
      assert.equal(rejects.length, 0, mode);
      await copyFile(scope, twin, text);
      assert.deepEqual(await rows(sql, target), await rows(sql, twin), mode);
    }
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "refusals: the worker and SQL agree on which errors refuse a row", ...E2E }, async () => {
  const sql = connect();
  try {
    // Row refusals, then errors that must propagate (the batch is retried): connection, transaction state,
    // rollback, resources, lock, cancel/shutdown, system, internal, a wrong statement, PL/pgSQL's generic error.
    const refusals = [
      "22P02",
      "23505",
      "23503",
      "23514",
      "21000",
      "P0001",
      "P0004",
      "42501",
      "27000",
      "54000",
    ];
    const others = ["08006", "25P02", "40001", "40P01", "53100", "55P03", "57014", "57P01", "58030", "XX000"];
    const wrong = ["42703", "42P01", "428C9", "0A000", "P0000", "", "2"];
    const codes = [...refusals, ...others, ...wrong];
    const rows = await sql<{ code: string; refusal: boolean }[]>`
      select code, csv_import.is_row_refusal(code) as refusal from unnest(${codes}::text[]) as code`;
    for (const { code, refusal } of rows) {
      assert.equal(refusal, refusals.includes(code), `SQL: ${code}`);
      assert.equal(isRowRefusal({ code }), refusal, `worker: ${code}`);
    }
    // The errors an input function may refuse a value with (decided by the probe of insert_isolating): one list too.
    const maybe = await sql<{ code: string; maybe: boolean }[]>`
      select code, csv_import.may_be_input_refusal(code) as maybe from unnest(${codes}::text[]) as code`;
    for (const { code, maybe: sqlSays } of maybe) {
      assert.equal(mayBeInputRefusal({ code }), sqlSays, `may be an input refusal: ${code}`);
    }
    assert.ok(mayBeInputRefusal({ code: "XX000" }) && mayBeInputRefusal({ code: "42P01" }));
  } finally {
    await sql.end();
  }
});
