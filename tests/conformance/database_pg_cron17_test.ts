/**
 * Contract tests of the pg_cron CATALOG STAND-IN on PostgreSQL 17 (local-stack/pg17/pg_cron--1.6.sql), differential
 * against the real pg_cron: the same inputs go to the stand-in (SUPABASE_DB_URL, a PostgreSQL 17) and to Debian's
 * real pg_cron 1.4 on a PostgreSQL 15 (CRON_REFERENCE_DB_URL), and the outcomes must agree. Then it shows the
 * stand-in itself runs nothing (the gateway's runner, local-stack/pg_cron/runner.ts, runs its jobs on a 17 stack).
 *
 * Run by scripts/other_major.sh: with the default 17 stack, the stack's database is the stand-in and the phase's
 * short-lived 15 cluster the reference (CRON_STANDIN_RUNNER=gateway: the test that commits jobs is skipped there,
 * since the gateway's runner would rightly run them); with a 15 stack, the other way round. In the main Deno run
 * (no reference) every test here is reported as ignored.
 *
 * Sources (the API the stand-in was written from; no pg_cron source was used):
 * - https://github.com/citusdata/pg_cron README: cron.schedule / schedule(job_name, ...) ("update ... if a job with
 *   the same name exists"), unschedule by id and name, alter_job, schedule_in_database, the cron syntax
 *   (`┌ min (0 - 59)`, hour 0-23, day of month 1-31, month 1-12, day of week 0-6 with 7 also Sunday, names, `*`,
 *   ranges, steps, lists), `'[1-59] seconds'` since 1.5, "a user can only see their own jobs" (row-level security).
 * - https://supabase.com/docs/guides/cron: the same functions and cron.job / cron.job_run_details columns.
 * - ../shared/reference/supabase-platform.md §3 (signatures, cron.job_run_details columns).
 * Known, deliberate differences (asserted below, so they cannot drift unnoticed):
 * - `N seconds` (N 1..59) is accepted by the stand-in (pg_cron 1.5+, Supabase's 17) and refused by 1.4;
 * - the stand-in refuses text real pg_cron ignores: trailing characters inside a field (`1-2-3`, `MON#2`,
 *   `*\/5/2`) and fields after the fifth (pg_cron reads the rest of a crontab line as the command);
 * - no cron.job_cache_invalidate() trigger (there is no scheduler cache); 17's MAINTAIN privilege (`m`) in ACLs.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { fuzzSchedules, SAME, SECONDS, STRICTER } from "../support/cron_schedules.ts";

const STANDIN_URL = Deno.env.get("SUPABASE_DB_URL") ?? "";
const REFERENCE_URL = Deno.env.get("CRON_REFERENCE_DB_URL") ?? "";
const ignore = REFERENCE_URL === "" || STANDIN_URL === "";
const OPTS = { sanitizeOps: false, sanitizeResources: false, ignore } as const;

function connect(url: string): postgres.Sql {
  return postgres(url, { max: 1, onnotice: () => {}, idle_timeout: 2 });
}

class Rollback extends Error {
  constructor(readonly value: unknown) {
    super("rollback");
  }
}

/** Runs fn in a transaction that is always rolled back; returns fn's value. */
async function rolledBack<T>(sql: postgres.Sql, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  try {
    await sql.begin(async (tx) => {
      throw new Rollback(await fn(tx));
    });
  } catch (e) {
    if (e instanceof Rollback) return e.value as T;
    throw e;
  }
  throw new Error("unreachable");
}

/** Both servers, the stand-in (17) and the reference (real pg_cron 1.4 on 15). */
async function both<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<{ standin: T; real: T }> {
  const a = connect(STANDIN_URL);
  const b = connect(REFERENCE_URL);
  try {
    return { standin: await fn(a), real: await fn(b) };
  } finally {
    await a.end();
    await b.end();
  }
}

/** Whether cron.schedule accepts each schedule (in one rolled-back transaction; each call in a subtransaction). */
function outcomes(schedules: string[]) {
  return (sql: postgres.Sql) =>
    rolledBack(sql, async (tx) => {
      await tx.unsafe(`create function pg_temp.try_schedule(s text) returns text language plpgsql as $f$
        begin
          perform cron.schedule('conformance_try', s, 'select 1');
          return 'ok';
        exception when others then return sqlerrm;
        end $f$`);
      const rows =
        await tx`select pg_temp.try_schedule(s) as r from unnest(${schedules}::text[]) with ordinality as t(s, i)
        order by i`;
      return rows.map((r) => r.r as string);
    });
}

Deno.test({
  name:
    "the servers are the stand-in on 17 and the real pg_cron 1.4 on 15 (README: pg_cron; Debian postgresql-15-cron)",
  ...OPTS,
  async fn() {
    const v = await both(async (sql) => {
      const [row] = await sql`select current_setting('server_version_num')::int / 10000 as major,
        (select extversion from pg_extension where extname = 'pg_cron') as version,
        (select comment from pg_available_extensions where name = 'pg_cron') as comment`;
      return row;
    });
    assert.equal(v.standin.major, 17);
    assert.equal(v.standin.version, "1.6");
    assert.match(String(v.standin.comment), /local-stack catalog stand-in/);
    assert.equal(v.real.major, 15);
    assert.match(String(v.real.version), /^1\.4/);
  },
});

Deno.test({
  name:
    "cron.job and cron.job_run_details: same columns, types, defaults, constraints, RLS policies and public grants",
  ...OPTS,
  async fn() {
    const shape = await both(async (sql) => {
      const columns = await sql`
        select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || case when a.attnotnull
          then ' not null' else '' end || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') as col
        from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
        where c.relnamespace = 'cron'::regnamespace and c.relkind = 'r' order by c.relname, a.attnum`;
      const constraints =
        await sql`select conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) as c
        from pg_constraint where connamespace = 'cron'::regnamespace order by 1`;
      const policies = await sql`select polrelid::regclass || ' ' || polname || ' ' || polcmd::text || ' ' ||
          pg_get_expr(polqual, polrelid) as p
        from pg_policy where polrelid in (select oid from pg_class where relnamespace = 'cron'::regnamespace) order by 1`;
      const rls = await sql`select relname || ' ' || relrowsecurity || ' ' || relforcerowsecurity as r
        from pg_class where relnamespace = 'cron'::regnamespace and relkind = 'r' order by 1`;
      // Public's grants (the `=` entries), without 17's MAINTAIN.
      const grants = await sql`select c.relname || ' ' || coalesce((select string_agg(
          case when a.grantee = 0 then a.privilege_type end, ',' order by a.privilege_type)
          from aclexplode(c.relacl) a), '') as g
        from pg_class c where c.relnamespace = 'cron'::regnamespace and c.relkind in ('r', 'S') order by 1`;
      const schemaPublic = await sql`select has_schema_privilege('public', 'cron', 'usage') as u`;
      return {
        columns: columns.map((r) => r.col),
        constraints: constraints.map((r) => r.c),
        policies: policies.map((r) => r.p),
        rls: rls.map((r) => r.r),
        grants: grants.map((r) => r.g),
        schemaPublic: schemaPublic[0].u,
      };
    });
    assert.deepEqual(shape.standin, shape.real);
    assert.ok(shape.standin.columns.includes("job.username text not null default CURRENT_USER"));
    assert.ok(shape.standin.policies.length === 2, "a policy on each table");
  },
});

Deno.test({
  name: "the documented functions: same signatures, return types, strictness and who may call them",
  ...OPTS,
  async fn() {
    const fns = await both(async (sql) => {
      const rows = await sql`
        select p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' || p.prorettype::regtype ||
          case when p.proisstrict then ' strict' else '' end ||
          case when has_function_privilege('public', p.oid, 'execute') then ' public' else '' end as f
        from pg_proc p where p.pronamespace = 'cron'::regnamespace
          and p.proname in ('schedule', 'schedule_in_database', 'unschedule', 'alter_job') order by 1`;
      return rows.map((r) => r.f as string);
    });
    assert.deepEqual(fns.standin, fns.real);
    assert.equal(fns.standin.length, 6);
  },
});

Deno.test({
  name:
    "schedules: the stand-in accepts and refuses what the real pg_cron does (README cron syntax), 1,500 seeded " +
    "random schedules included; `N seconds` as 1.5+; stricter only where pg_cron ignores text",
  ...OPTS,
  async fn() {
    const fuzz = fuzzSchedules(1500, 13);
    const inputs = [...SAME, ...SECONDS, ...STRICTER, ...fuzz];
    const r = await both(outcomes(inputs));
    const accepted = (x: string) => x === "ok";
    const mismatches: string[] = [];
    inputs.forEach((input, i) => {
      const [a, b] = [accepted(r.standin[i]), accepted(r.real[i])];
      if (SECONDS.includes(input)) {
        if (!a || b) mismatches.push(`${JSON.stringify(input)}: seconds schedule, stand-in ${a}, 1.4 ${b}`);
      } else if (STRICTER.includes(input)) {
        if (a || !b) {
          mismatches.push(`${JSON.stringify(input)}: expected real-only, stand-in ${a}, real ${b}`);
        }
      } else if (a !== b) {
        mismatches.push(`${JSON.stringify(input)}: stand-in ${r.standin[i]}, real ${r.real[i]}`);
      }
    });
    assert.deepEqual(mismatches, []);
    // Both refuse with pg_cron's message.
    assert.equal(r.standin[inputs.indexOf("* * * 13 *")], "invalid schedule: * * * 13 *");
    assert.equal(r.real[inputs.indexOf("* * * 13 *")], "invalid schedule: * * * 13 *");
    // The fuzz exercises both outcomes.
    const fuzzAccepted = fuzz.filter((_, i) =>
      accepted(r.real[SAME.length + SECONDS.length + STRICTER.length + i])
    );
    assert.ok(
      fuzzAccepted.length > 50 && fuzzAccepted.length < fuzz.length - 50,
      `${fuzzAccepted.length} accepted`,
    );
  },
});

/** One scenario's observable outcome: each step's result or error message. */
async function scenario(sql: postgres.Sql, steps: string[]): Promise<string[]> {
  return await rolledBack(sql, async (tx) => {
    const out: string[] = [];
    for (const step of steps) {
      try {
        await tx.unsafe("savepoint s");
        const rows = await tx.unsafe(step);
        out.push(JSON.stringify(rows.map((row) => Object.values(row))));
        await tx.unsafe("release savepoint s");
      } catch (e) {
        out.push(`error: ${(e as Error).message}`);
        await tx.unsafe("rollback to savepoint s");
      }
    }
    return out;
  });
}

const ROLE_SETUP = [
  "create role conformance_cron_a",
  "create role conformance_cron_b",
  "grant conformance_cron_a, conformance_cron_b to current_user",
  "grant usage on schema cron to conformance_cron_a, conformance_cron_b",
];

const SCENARIOS: Record<string, string[]> = {
  "schedule(job_name, ...) with an existing name replaces schedule and command, keeps the id and active flag":
    [
      "select cron.schedule('conformance_up', '1 * * * *', 'select 1') is not null",
      "select cron.alter_job((select jobid from cron.job where jobname = 'conformance_up'), active := false)",
      "select cron.schedule('conformance_up', '2 * * * *', 'select 2') = (select jobid from cron.job where jobname = 'conformance_up')",
      "select schedule, command, active, database, username = current_user, nodename from cron.job where jobname = 'conformance_up'",
      "select count(*) from cron.job where jobname = 'conformance_up'",
    ],
  "NULL arguments and missing jobs are refused with pg_cron's messages": [
    "select cron.schedule(null, '* * * * *', 'select 1')",
    "select cron.schedule('conformance_n', null, 'select 1')",
    "select cron.schedule('conformance_n', '* * * * *', null)",
    "select cron.schedule(null, 'select 1') is null",
    "select cron.unschedule(-42)",
    "select cron.unschedule('conformance_no_such_job')",
    "select cron.alter_job(-42, command := 'select 1')",
    "select cron.alter_job(null, command := 'select 1')",
    "select cron.schedule_in_database('conformance_db', '* * * * *', 'select 1', 'conformance_no_such_db')",
  ],
  "unschedule by name and by id; alter_job validates the schedule": [
    "select cron.unschedule(cron.schedule('conformance_u1', '* * * * *', 'select 1'))",
    "select cron.schedule('conformance_u2', '* * * * *', 'select 1') is not null",
    "select cron.unschedule('conformance_u2')",
    "select cron.unschedule('conformance_u2')",
    "select cron.alter_job(cron.schedule('conformance_u3', '* * * * *', 'select 1'), schedule := '61 * * * *')",
    "select cron.alter_job((select jobid from cron.job where jobname = 'conformance_u3'), schedule := '@hourly', command := 'select 3')",
    "select schedule, command from cron.job where jobname = 'conformance_u3'",
  ],
  "a role's job belongs to it; another role neither sees nor unschedules it (row-level security)": [
    ...ROLE_SETUP,
    "set local role conformance_cron_a",
    "select cron.schedule('conformance_a', '* * * * *', 'select 1') is not null",
    "select jobname, username from cron.job",
    "set local role conformance_cron_b",
    "select count(*) from cron.job",
    "select cron.unschedule('conformance_a')",
    "reset role",
    "set local role conformance_cron_b",
    "select cron.schedule('conformance_a', '* * * * *', 'select 2') is not null",
    "select jobname, username, command from cron.job",
    "reset role",
    "select count(*) from cron.job where jobname = 'conformance_a'",
  ],
  "cron.job is written only through the functions; alter_job and schedule_in_database are not granted to public":
    [
      ...ROLE_SETUP,
      "set local role conformance_cron_a",
      "insert into cron.job (schedule, command) values ('* * * * *', 'select 1')",
      "select cron.schedule('conformance_w', '* * * * *', 'select 1') is not null",
      "update cron.job set command = 'select 2' where jobname = 'conformance_w'",
      "select cron.alter_job((select jobid from cron.job where jobname = 'conformance_w'), command := 'select 2')",
      "select cron.schedule_in_database('conformance_w2', '* * * * *', 'select 1', current_database())",
      "select count(*) from cron.job_run_details",
    ],
};

for (const [name, steps] of Object.entries(SCENARIOS)) {
  Deno.test({
    name: `same outcome on the stand-in and the real pg_cron: ${name}`,
    ...OPTS,
    async fn() {
      const r = await both((sql) => scenario(sql, steps));
      assert.deepEqual(r.standin, r.real);
      assert.ok(r.standin.some((x) => !x.startsWith("error")), "some step succeeds");
    },
  });
}

Deno.test({
  ignore: ignore || Deno.env.get("CRON_STANDIN_RUNNER") === "gateway",
  name:
    "without the gateway's runner the stand-in runs nothing: a committed '1 seconds' job never runs, no scheduler " +
    "process, no run history (local-stack/pg_cron/runner.ts is what runs jobs on a 17 stack)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const sql = connect(STANDIN_URL);
    const table = `conformance_cron_ran_${crypto.randomUUID().slice(0, 8)}`;
    try {
      const [{ preload }] = await sql`select current_setting('shared_preload_libraries') as preload`;
      assert.doesNotMatch(String(preload), /pg_cron/);
      await sql.unsafe(`create table public.${table} (at timestamptz default now())`);
      const [{ jobid }] = await sql`select cron.schedule(${table}, '1 seconds',
        ${`insert into public.${table} default values`}) as jobid`;
      const [{ every }] = await sql`select cron.schedule(${table + "_m"}, '* * * * *',
        ${`insert into public.${table} default values`}) as every`;
      try {
        // Its own insert works, so a scheduler that ran the command would leave rows.
        await sql.unsafe(`insert into public.${table} default values; delete from public.${table}`);
        await new Promise((r) => setTimeout(r, 3_000));
        const [{ n }] = await sql.unsafe(`select count(*)::int as n from public.${table}`);
        assert.equal(n, 0, "the job's command ran");
        // Its own jobs only: runner_test.ts, in the same CI phase, runs jobs with a runner of its own.
        const [{ runs }] = await sql`select count(*)::int as runs from cron.job_run_details
          where jobid in (${jobid}::bigint, ${every}::bigint)`;
        assert.equal(runs, 0);
        const workers =
          await sql`select backend_type from pg_stat_activity where backend_type ilike '%cron%'`;
        assert.deepEqual(workers.map((w) => w.backend_type), []);
      } finally {
        await sql`select cron.unschedule(${jobid}::bigint), cron.unschedule(${every}::bigint)`;
      }
    } finally {
      await sql.unsafe(`drop table if exists public.${table}`);
      await sql.end();
    }
  },
});
