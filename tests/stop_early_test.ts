/**
 * Stopping early on a bad file (profile max_rejects and reject_rate_after_rows; migration
 * 20261208000000_stop_early.sql), against the real local stack:
 * - a file of 400,000 rows that are all garbage, with max_rejects 1,000: the job fails with the numbers after
 *   reading a small part of the file (rows parsed under a tenth of it), nothing loaded, its rejects kept;
 * - 20,000 valid rows then garbage, with the rate judged from 10,000 rows on (1 % tolerated): the job stops
 *   once the garbage starts, and every valid row it committed is in the table (nothing accepted is lost).
 */
import assert from "node:assert/strict";
import { connect, E2E, type ProfileOptions, Scope, upload, waitForJob } from "./support/stack.ts";

/** A fresh target table (id int primary key, v text) and a profile for the scope's objects with `options`. */
async function targetWithProfile(
  sql: ReturnType<typeof connect>,
  scope: Scope,
  options: Omit<ProfileOptions, "name" | "pathPattern" | "targetTable">,
): Promise<string> {
  const table = `public.${scope.prefix}_t`;
  await sql.unsafe(`create table ${table} (id int primary key, v text)`);
  scope.defer(() => sql.unsafe(`drop table if exists ${table}`));
  await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table, ...options });
  return table;
}

const lines = (from: number, to: number, row: (i: number) => string) =>
  Array.from({ length: to - from }, (_, k) => row(from + k)).join("\n") + "\n";

Deno.test(
  { name: "stop early: a file of garbage stops at max_rejects, most of it unread", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "stopearly");
    try {
      const table = await targetWithProfile(sql, scope, { chunkSizeBytes: 1024 * 1024, maxRejects: 1000 });
      const total = 400_000;
      const name = scope.object("garbage.csv");
      await upload(name, "id,v\n" + lines(0, total, (i) => `row-${i},garbage ${i}`));
      const job = await waitForJob(sql, name, 120_000);
      assert.equal(job.status, "failed");
      assert.match(
        job.error ?? "",
        /^Stopped early: \d+ rows rejected, more than the profile's max_rejects \(1000\), after \d+ rows; the 0 valid rows seen were loaded and the rest of the file was not read$/,
      );
      const [j] = await sql<
        { rows_parsed: string; rows_loaded: string; rows_rejected: string; stored: number }[]
      >`
      select rows_parsed, rows_loaded, rows_rejected,
        (select count(*)::int from csv_import.rejects r where r.job_id = j.id) as stored
      from csv_import.jobs j where j.id = ${job.id}`;
      console.log(`  stopped after ${j.rows_parsed} of ${total} rows, ${j.rows_rejected} rejected`);
      assert.ok(
        Number(j.rows_parsed) < total / 10,
        `most of the file unread: ${j.rows_parsed} of ${total} parsed`,
      );
      assert.equal(Number(j.rows_loaded), 0);
      assert.ok(Number(j.rows_rejected) > 1000);
      assert.equal(j.stored, Number(j.rows_rejected), "every reject seen is kept for the report");
      const [{ n }] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table}`);
      assert.equal(n, 0);
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  { name: "stop early: the rate judged from 10,000 rows on; valid rows stay loaded", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "stoprate");
    try {
      const table = await targetWithProfile(sql, scope, {
        maxParallelChunks: 1, // in file order: the valid rows first
        toleratedRejectRate: 0.01,
        rejectRateAfterRows: 10_000,
      });
      const valid = 20_000;
      const total = 300_000;
      const name = scope.object("mixed.csv");
      await upload(
        name,
        "id,v\n" + lines(0, valid, (i) => `${i},ok ${i}`) + lines(valid, total, (i) => `bad-${i},garbage`),
      );
      const job = await waitForJob(sql, name, 120_000);
      assert.equal(job.status, "failed");
      assert.match(
        job.error ?? "",
        /^Stopped early: \d+ of the first \d+ rows rejected \([\d.]+%\), above the tolerated 1\.00% \(judged from 10000 rows on\); the \d+ valid rows seen were loaded and the rest of the file was not read$/,
      );
      const [j] = await sql<{ rows_parsed: string; rows_loaded: string }[]>`
      select rows_parsed, rows_loaded from csv_import.jobs where id = ${job.id}`;
      console.log(`  stopped after ${j.rows_parsed} of ${total} rows, ${j.rows_loaded} loaded`);
      assert.ok(Number(j.rows_parsed) < total / 2, `stopped early: ${j.rows_parsed} of ${total} parsed`);
      const [{ n, wrong }] = await sql.unsafe<{ n: number; wrong: number }[]>(
        `select count(*)::int as n, count(*) filter (where v <> 'ok ' || id)::int as wrong from ${table}`,
      );
      assert.equal(n, Number(j.rows_loaded), "every row the job counts as loaded is in the table");
      assert.ok(n >= 10_000 && n <= valid, `the valid rows committed before the stop: ${n}`);
      assert.equal(wrong, 0);
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
