/**
 * A table made from the file (issue 15), against the real local stack:
 * - zero configuration: a CSV dropped under auto/ becomes a table in public named after the file, with types
 *   inferred from the records (mixed integers and decimals → numeric, quoted numbers are numbers, leading zeros and
 *   empty columns stay text, zoned timestamps, uuids, JSON), row-level security on, its CREATE TABLE on the job and
 *   in the CLI's status; its rows are exactly what `psql \copy` stores into a table made by that CREATE TABLE;
 * - a file without a header gets column_1…N and loads its first line as data;
 * - a type break far from the head (no sample window covers it) is a reject that says where: line, column, reason;
 * - a second file under the same name loads into the table the first one made;
 * - a dry run makes no table: it validates against a stand-in, reports the CREATE TABLE and ends validated; the
 *   stand-in is dropped by csv_import.prune_finished_jobs.
 */
import assert from "node:assert/strict";
import { sampleWindows } from "../supabase/functions/_shared/csv/infer_schema.ts";
import { checksum, connect, E2E, psqlCopy, Scope, type Sql, upload, waitForJob } from "./support/stack.ts";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

async function columnsOf(sql: Sql, schema: string, table: string): Promise<string[]> {
  const rows = await sql<{ column_name: string; data_type: string }[]>`
    select column_name, data_type from information_schema.columns
    where table_schema = ${schema} and table_name = ${table} order by ordinal_position`;
  return rows.map((r) => `${r.column_name} ${r.data_type}`);
}

async function tableSqlOf(sql: Sql, jobId: number): Promise<string | null> {
  const [{ table_sql }] = await sql<{ table_sql: string | null }[]>`
    select table_sql from csv_import.jobs where id = ${jobId}`;
  return table_sql;
}

const MIXED = [
  `Order ID,Placed At,Customer,Amount,Qty,Zip,Notes,Paid,Ref,Payload,Nothing`,
  `1,2024-01-05 10:00:00+01,Alice,12.50,"3",02134,,true,6f1c2a9e-2d4b-4c1e-9b1a-0c6d8e2f4a11,"{""a"": 1}",`,
  `2,2024-01-06 11:30:00Z,"Bob ""B"" Smith",7,"12",10001,"multi`,
  `line",false,0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d,[1],`,
  `3,2024-02-29 23:59:59.5+05:30,"Carol, Jr.",-0.25,"-4",94105,x,yes,1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9,{},`,
].join("\n") + "\n";

Deno.test(
  { name: "a CSV dropped under auto/ becomes a typed table, as \\copy loads it", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "tff");
    try {
      const table = `${scope.prefix}_orders`;
      scope.tables.push(`public.${table}`, `public.${table}_ref`);
      const name = `auto/${table}.csv`;
      scope.objects.push(name, `${name}.rejects.csv`);
      await upload(name, MIXED);
      const job = await waitForJob(sql, name, 60_000);
      assert.equal(job.status, "succeeded", job.error ?? "");
      assert.deepEqual(await columnsOf(sql, "public", table), [
        "order_id bigint",
        "placed_at timestamp with time zone",
        "customer text",
        "amount numeric",
        "qty bigint",
        "zip text",
        "notes text",
        "paid boolean",
        "ref uuid",
        "payload jsonb",
        "nothing text",
      ]);
      const tableSql = await tableSqlOf(sql, job.id);
      assert.ok(
        tableSql?.startsWith(`create table "public"."${table}" (\n  "order_id" bigint,`),
        tableSql ?? "",
      );
      const [{ rls }] = await sql<{ rls: boolean }[]>`
      select relrowsecurity as rls from pg_class where oid = ${`public.${table}`}::regclass`;
      assert.equal(rls, true, "row-level security is on");
      // The same file through \copy into a table made by the job's own CREATE TABLE: the same rows.
      await sql.unsafe(tableSql!.replace(`"${table}"`, `"${table}_ref"`));
      const dir = await scope.tempDir();
      await Deno.writeTextFile(`${dir}/orders.csv`, MIXED);
      await psqlCopy(`public.${table}_ref`, `${dir}/orders.csv`);
      assert.deepEqual(await checksum(sql, `public.${table}`), await checksum(sql, `public.${table}_ref`));
      assert.equal((await checksum(sql, `public.${table}`)).count, 3);

      // The CLI shows the CREATE TABLE.
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", CONFIG, CLI, "status", String(job.id)],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.ok(text.includes(`  table    made from the file:\n${tableSql!.replace(/^/gm, "    ")}\n`), text);

      // A second file of the same name elsewhere under auto/ loads into the table the first one made.
      const again = `auto/more/${table}.csv`;
      scope.objects.push(again, `${again}.rejects.csv`);
      await upload(
        again,
        `Order ID,Placed At,Customer,Amount,Qty,Zip,Notes,Paid,Ref,Payload,Nothing\n4,,Dan,1,1,00501,,no,,,\n`,
      );
      const second = await waitForJob(sql, again);
      assert.equal(second.status, "succeeded", second.error ?? "");
      assert.equal(await tableSqlOf(sql, second.id), null, "no table made this time");
      assert.equal((await checksum(sql, `public.${table}`)).count, 4);
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test({ name: "a file without a header gets column_1…N and loads its first line", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "tffnohdr");
  try {
    const table = `${scope.prefix}_readings`;
    scope.tables.push(`public.${table}`);
    const name = `auto/${table}.csv`;
    scope.objects.push(name, `${name}.rejects.csv`);
    const lines = Array.from(
      { length: 50 },
      (_, i) => `${i + 1},2024-03-${String(i % 28 + 1).padStart(2, "0")},${(i * 1.5).toFixed(1)}`,
    );
    await upload(name, lines.join("\n") + "\n");
    const job = await waitForJob(sql, name);
    assert.equal(job.status, "succeeded", job.error ?? "");
    assert.deepEqual(await columnsOf(sql, "public", table), [
      "column_1 bigint",
      "column_2 date",
      "column_3 numeric",
    ]);
    const [{ n, first }] = await sql.unsafe<{ n: number; first: string }[]>(
      `select count(*)::int as n, min(column_1)::text as first from public.${table}`,
    );
    assert.deepEqual([n, first], [50, "1"]);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "a type break far from the head is a reject that says where", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "tffbreak");
  try {
    const table = `${scope.prefix}_events`;
    scope.tables.push(`public.${table}`);
    const name = `auto/${table}.csv`;
    scope.objects.push(name, `${name}.rejects.csv`);
    const header = "id,count,label\n";
    const rows = Array.from({ length: 120_000 }, (_, i) => `${i + 1},${i % 1000},event ${i % 97}\n`);
    // A line no sample window covers (the windows are computed as the register function computes them).
    const size = header.length + rows.reduce((n, r) => n + r.length, 0);
    const windows = sampleWindows(size, { dataStart: header.length });
    let offset = header.length;
    let bad = -1;
    for (let i = 0; i < rows.length; i++) {
      const outside = windows.every((w) => offset + rows[i].length + 100 < w.start || offset > w.end + 100);
      if (i >= 60_000 && outside) {
        bad = i;
        break;
      }
      offset += rows[i].length;
    }
    assert.ok(bad > 0);
    rows[bad] = `${bad + 1},n/a,event\n`; // shorter: the windows move by a few bytes, within the margin
    await upload(name, header + rows.join(""));
    const job = await waitForJob(sql, name, 120_000);
    assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
    assert.deepEqual(await columnsOf(sql, "public", table), ["id bigint", "count bigint", "label text"]);
    const rejects = await sql<
      { line_number: string; column_name: string; reason: string; raw_record: string }[]
    >`
      select line_number, column_name, reason, raw_record from csv_import.rejects where job_id = ${job.id}`;
    assert.equal(rejects.length, 1);
    assert.equal(Number(rejects[0].line_number), bad + 2, "the line (header is line 1)");
    assert.equal(rejects[0].column_name, "count");
    assert.match(rejects[0].reason, /invalid input syntax for type bigint: "n\/a"/);
    assert.equal(Number(job.rows_loaded), 119_999);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "a file whose rows do not have the header's fields makes no table", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "tffmismatch");
  try {
    const table = `${scope.prefix}_odd`;
    scope.tables.push(`public.${table}`);
    const name = `auto/${table}.csv`;
    scope.objects.push(name, `${name}.rejects.csv`);
    await upload(name, "a,b,c\n1,2\n3,4\n5,6\n");
    const job = await waitForJob(sql, name);
    assert.equal(job.status, "failed");
    assert.match(
      job.error ?? "",
      /^No table was made from the file: none of the 3 sampled rows has the header's 3 fields/,
    );
    const [{ made }] = await sql<
      { made: string | null }[]
    >`select to_regclass(${`public.${table}`})::text as made`;
    assert.equal(made, null);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "a dry run of a table made from the file makes no table", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "tffdry");
  try {
    const schema = `${scope.prefix}_s`;
    await sql.unsafe(`create schema ${schema}`);
    scope.defer(() => sql.unsafe(`drop schema if exists ${schema} cascade`));
    await sql`insert into csv_import.profiles (name, path_pattern, target_table, target_schema, create_table, dry_run,
      tolerated_reject_rate) values (${`${scope.prefix}_p`}, ${`${scope.prefix}/%`}, null, ${schema}, true, true, 1)`;
    scope.profiles.push(`${scope.prefix}_p`);
    const name = scope.object("Monthly Sales.csv");
    await upload(name, "month,total\n2024-01-01,10.5\n2024-02-01,oops\n2024-03-01,7\n");
    const job = await waitForJob(sql, name);
    assert.equal(job.status, "validated", job.error ?? "");
    assert.deepEqual([job.rows_loaded, job.rows_rejected].map(Number), [3, 0], "total is text: oops fits");
    assert.equal(
      await tableSqlOf(sql, job.id),
      `create table "${schema}"."monthly_sales" (\n  "month" date,\n  "total" text\n)`,
    );
    const [{ made }] = await sql<{ made: string | null }[]>`
      select to_regclass(${`${schema}.monthly_sales`})::text as made`;
    assert.equal(made, null, "no table where the profile points");
    const [{ scratch }] = await sql<{ scratch: string }[]>`
      select scratch_table as scratch from csv_import.jobs where id = ${job.id}`;
    assert.equal(scratch, `csv_import_scratch."job_${job.id}"`);
    await sql`select csv_import.prune_finished_jobs()`;
    const [{ gone }] = await sql<{ gone: string | null }[]>`select to_regclass(${scratch})::text as gone`;
    assert.equal(gone, null, "the stand-in is dropped once the job is done");
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "a UTF-16 file under auto/ is sampled over the whole file too", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "tffutf16");
  try {
    const table = `${scope.prefix}_städte`;
    scope.tables.push(`public.${table}`);
    const name = `auto/${table}.txt`;
    scope.objects.push(name, `${name}.rejects.csv`);
    // ~2.6 MB: the 20 sample windows start on odd and even bytes, inside characters of two code units too.
    const lines = ["Stadt\tEinwohner\tGegründet\tFläche"];
    for (let i = 1; i <= 60_000; i++) {
      lines.push(`Zürich 😀 ${i}\t${i * 7}\t${1000 + (i % 900)}-01-0${1 + (i % 9)}\t${(i % 500) / 4}`);
    }
    const text = lines.join("\r\n") + "\r\n";
    const bytes = new Uint8Array(2 + text.length * 2);
    bytes.set([0xff, 0xfe]);
    for (let i = 0; i < text.length; i++) {
      bytes.set([text.charCodeAt(i) & 0xff, text.charCodeAt(i) >> 8], 2 + 2 * i);
    }
    await upload(name, bytes);
    const job = await waitForJob(sql, name, 120_000);
    assert.equal(job.status, "succeeded", job.error ?? "");
    assert.deepEqual(await columnsOf(sql, "public", table), [
      "stadt text",
      "einwohner bigint",
      "gegründet date",
      "fläche numeric",
    ]);
    const [{ n, sum }] = await sql.unsafe<{ n: number; sum: string }[]>(
      `select count(*)::int as n, sum(einwohner)::text as sum from public."${table}" where stadt like 'Zürich 😀 %'`,
    );
    assert.deepEqual([n, sum], [60_000, String(7 * 60_000 * 60_001 / 2)]);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
