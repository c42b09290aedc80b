/**
 * Contract tests: the PostgreSQL majors the project is tested on, and the version-dependent behaviours the pipeline
 * meets, pinned against a real server of each version (SUPABASE_DB_URL).
 *
 * The project declares 17 (supabase/config.toml, as new hosted projects), and the full local stack runs 17
 * (PG_MAJOR's default), where pg_cron is a catalog stand-in that runs no job itself (local-stack/pg17/
 * pg_cron--1.6.sql; its differential tests against the real pg_cron are tests/conformance/database_pg_cron17_test.ts)
 * and the gateway's runner runs its jobs (local-stack/pg_cron/runner.ts). 15 is covered by CI's other-major phase:
 * scripts/test.sh runs this file against the stack's 17 and, from scripts/other_major.sh, against a short-lived 15
 * cluster with every migration applied and Debian's real pg_cron 1.4 (PG_MAJOR=15 runs the whole stack there).
 *
 * Sources:
 * - supabase/config.toml `[db] major_version = 17`; the CLI's template says it "has to be the same as your remote
 *   database's" (supabase/cli:apps/cli-go/pkg/config/templates/config.toml, `major_version = 17`).
 * - to_regclass on malformed names: since PostgreSQL 16 the to_reg* functions are "thin wrappers around a
 *   soft-error call of the corresponding datatype input function" (postgres/postgres commit 3ea7329c9a79,
 *   "Simplify the implementations of the to_reg* functions"), so a syntax error returns NULL; on 15 it raises
 *   42602 invalid_name. https://www.postgresql.org/docs/17/functions-info.html (to_regclass: "return NULL rather
 *   than throwing an error").
 * - pg_cron: Supabase Cron schedules jobs "from every second to once a year" (https://supabase.com/docs/guides/cron),
 *   i.e. pg_cron 1.5+; on 15 the stack has Debian's postgresql-15-cron 1.4, preloaded, whose launcher runs the jobs.
 */

import assert from "node:assert/strict";
import { parse } from "smol-toml";
import postgres from "postgres";

const DB_URL = Deno.env.get("SUPABASE_DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const ROOT = new URL("../../", import.meta.url);
const OPTS = { sanitizeOps: false, sanitizeResources: false } as const;

function connect(): postgres.Sql {
  return postgres(DB_URL, { max: 1, onnotice: () => {}, idle_timeout: 2 });
}

async function serverMajor(sql: postgres.Sql): Promise<number> {
  const [{ v }] = await sql`select current_setting('server_version_num')::int / 10000 as v`;
  return v as number;
}

function configMajor(): number {
  const config = parse(Deno.readTextFileSync(new URL("supabase/config.toml", ROOT))) as {
    db?: { major_version?: number };
  };
  const major = config.db?.major_version;
  assert.equal(typeof major, "number", "supabase/config.toml has no [db] major_version");
  return major as number;
}

Deno.test("the running stack's default major is supabase/config.toml's major_version (17); CI also runs 15", () => {
  const lib = Deno.readTextFileSync(new URL("scripts/lib.sh", ROOT));
  const m = lib.match(/PG_MAJOR="\$\{PG_MAJOR:-(\d+)\}"/);
  assert.ok(m, "scripts/lib.sh does not set a default PG_MAJOR");
  assert.equal(configMajor(), 17);
  assert.equal(Number(m[1]), configMajor(), "the full stack runs config.toml's major");
  // With the default stack, the other major that scripts/other_major.sh tests is 15 (the real pg_cron 1.4).
  const other = lib.match(/if \[ "\$PG_MAJOR" = 17 \]; then PG_OTHER_MAJOR=(\d+);/);
  assert.ok(other, "scripts/lib.sh does not pick the other major for a 17 stack");
  assert.equal(Number(other[1]), 15);
  const test = Deno.readTextFileSync(new URL("scripts/test.sh", ROOT));
  assert.match(test, /bash scripts\/other_major\.sh/, "scripts/test.sh does not run the other major");
});

Deno.test({
  name: "the server is the major selected (PG_MAJOR: 17 for the stack, 15 in CI's other-major phase)",
  ...OPTS,
  async fn() {
    const expected = Number(Deno.env.get("PG_MAJOR") ?? 17);
    const sql = connect();
    try {
      assert.equal(await serverMajor(sql), expected);
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "to_regclass of a malformed name: NULL on 16+ (postgres commit 3ea7329), 42602 invalid_name on 15",
  ...OPTS,
  async fn() {
    const sql = connect();
    try {
      const major = await serverMajor(sql);
      for (const name of ["public.t; drop table x", '"unterminated']) {
        if (major >= 16) {
          const [{ oid }] = await sql`select pg_catalog.to_regclass(${name})::oid as oid`;
          assert.equal(oid, null, `to_regclass(${name}) on ${major}`);
        } else {
          await assert.rejects(
            sql`select pg_catalog.to_regclass(${name})`,
            (e: { code?: string }) => e.code === "42602",
            `to_regclass(${name}) on ${major} raises invalid_name`,
          );
        }
      }
      // A well-formed name of a missing table is NULL on every version (the documented contract).
      const [{ oid }] = await sql`select pg_catalog.to_regclass('public.no_such_table_anywhere')::oid as oid`;
      assert.equal(oid, null);
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name:
    "pg_cron: on 15 Debian's real 1.4, preloaded, its launcher running; on 17 the catalog stand-in, nothing " +
    "preloaded (the gateway's runner, not the server, runs its jobs)",
  ...OPTS,
  async fn() {
    const sql = connect();
    try {
      const major = await serverMajor(sql);
      const [{ version, comment }] = await sql`
        select e.extversion as version, a.comment from pg_catalog.pg_extension e
        join pg_catalog.pg_available_extensions a on a.name = e.extname where e.extname = 'pg_cron'`;
      const [{ preload }] = await sql`select current_setting('shared_preload_libraries') as preload`;
      const launchers =
        await sql`select 1 from pg_catalog.pg_stat_activity where backend_type = 'pg_cron launcher'`;
      if (major >= 17) {
        assert.equal(version, "1.6");
        assert.match(String(comment), /local-stack catalog stand-in/);
        assert.doesNotMatch(String(preload), /pg_cron/);
        assert.equal(launchers.length, 0);
      } else {
        assert.match(String(version), /^1\.4/);
        assert.doesNotMatch(String(comment), /stand-in/);
        assert.match(String(preload), /pg_cron/);
        assert.equal(launchers.length, 1, "pg_cron's launcher is running");
        const [{ bgw }] = await sql`select current_setting('cron.use_background_workers') as bgw`;
        assert.equal(bgw, "on");
      }
    } finally {
      await sql.end();
    }
  },
});
