/**
 * Contract tests of the pg_cron job runner (runner.ts) against a PostgreSQL 17 with the catalog stand-in: on a
 * 17 stack (the default) the gateway's runner runs the jobs (its /_local/health says `pgCronRunner: true`); on a
 * 15 stack's short-lived 17 cluster (scripts/other_major.sh, no gateway of its own) the test starts a runner in this
 * process. Against a server with the real pg_cron (a 15 stack) every test here is ignored.
 *
 * What each test pins, with its source (https://github.com/citusdata/pg_cron README; citusdata/pg_cron#44, #296;
 * https://supabase.com/docs/guides/cron):
 * - `N seconds` jobs run repeatedly, each run in its own session as the job's username (session_user and
 *   current_user), with cron.job_run_details rows as pg_cron writes them; the command goes as one simple-protocol
 *   string (several statements, one implicit transaction); a failing job is recorded 'failed' with its message and
 *   stops neither itself nor other jobs;
 * - at most one run of a job at a time: a slow job's runs never overlap, and the start that fell due meanwhile is
 *   queued and starts as soon as the run ends (#296: at most one queued start for seconds jobs);
 * - a cron schedule runs at the UTC minute boundary;
 * - cron.unschedule and alter_job(active := false) stop a job within a second.
 * Each test uses its own role and table and removes them (and its jobs and their run rows) afterwards.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { commandTag, type CronRunner, isCatalogStandIn, startCronRunner } from "./runner.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL") ?? "";
const API_URL = Deno.env.get("SUPABASE_URL") ?? "";

function asAdmin(url: string): string {
  const u = new URL(url);
  u.username = "supabase_admin";
  return u.toString();
}

/** "gateway" when the stack's gateway runs the jobs, "own" when this process must, null when not on the stand-in. */
async function mode(): Promise<"gateway" | "own" | null> {
  if (DB_URL === "") return null;
  const sql = postgres(asAdmin(DB_URL), { max: 1, onnotice: () => {}, connect_timeout: 3 });
  try {
    if (!(await isCatalogStandIn(sql))) return null;
  } catch {
    return null;
  } finally {
    await sql.end();
  }
  try {
    const health = await (await fetch(`${API_URL}/_local/health`, { signal: AbortSignal.timeout(2000) }))
      .json();
    // The gateway's runner serves the gateway's database: trust it only when that is the database under test.
    const sameDb = new URL(DB_URL).port === String(health.dbPort);
    if (health.pgCronRunner === true && sameDb) return "gateway";
  } catch {
    // No gateway: run the jobs here.
  }
  return "own";
}

const MODE = await mode();
const OPTS = { ignore: MODE === null, sanitizeOps: false, sanitizeResources: false } as const;

let ownRunner: CronRunner | null = null;
function ensureRunner() {
  if (MODE === "own" && ownRunner === null) ownRunner = startCronRunner({ adminDbUrl: asAdmin(DB_URL) });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Fixture {
  sql: postgres.Sql;
  role: string;
  table: string;
  /** Schedules a job as the fixture's role; returns its jobid. */
  schedule(name: string, schedule: string, command: string): Promise<string>;
  runs(jobid: string): Promise<postgres.Row[]>;
}

/** A role of its own (LOGIN, as pg_cron's runs need) with a table it may write; everything dropped afterwards. */
async function withFixture(fn: (f: Fixture) => Promise<void>) {
  const { f, dispose } = await createFixture();
  try {
    await fn(f);
  } finally {
    await dispose();
  }
}

async function createFixture(): Promise<{ f: Fixture; dispose: () => Promise<void> }> {
  ensureRunner();
  const sql = postgres(asAdmin(DB_URL), { max: 2, onnotice: () => {} });
  const suffix = crypto.randomUUID().slice(0, 8);
  const role = `cron_runner_test_${suffix}`;
  const table = `public.cron_runner_test_${suffix}`;
  const jobs: string[] = [];
  await sql.unsafe(`create role ${role} login`);
  await sql.unsafe(`create table ${table} (id bigserial, kind text, who text, session_who text, pid int,
    at timestamptz default clock_timestamp())`);
  await sql.unsafe(
    `grant insert, select on ${table} to ${role}; grant usage on sequence ${table}_id_seq to ${role}`,
  );
  const f: Fixture = {
    sql,
    role,
    table,
    async schedule(name, schedule, command) {
      const [{ jobid }] =
        await sql`select cron.schedule_in_database(${`${name}_${suffix}`}, ${schedule}, ${command},
        current_database(), ${role})::text as jobid`;
      jobs.push(jobid);
      return jobid;
    },
    runs: (jobid) =>
      sql`select runid::text, jobid::text, job_pid, database, username, command, status,
      return_message, start_time, end_time from cron.job_run_details where jobid = ${jobid}::bigint order by runid`,
  };
  const dispose = async () => {
    for (const jobid of jobs) {
      await sql`select cron.unschedule(jobid) from cron.job where jobid = ${jobid}::bigint`;
    }
    // Let a run in progress end before its role goes.
    for (let i = 0; i < 50; i++) {
      const [{ n }] = await sql`select count(*)::int as n from cron.job_run_details
        where jobid = any(${jobs}::bigint[]) and status in ('starting', 'running')`;
      if (n === 0) break;
      await sleep(200);
    }
    await sql`delete from cron.job_run_details where jobid = any(${jobs}::bigint[])`;
    await sql.unsafe(`drop table if exists ${table}`);
    await sql.unsafe(`drop role if exists ${role}`);
    await sql.end();
  };
  return { f, dispose };
}

/**
 * The minute job is scheduled when the first test starts and checked by the last one, so the wait for a minute
 * boundary overlaps the other tests (this file also runs in a 15 stack's other-major phase, which is kept short).
 */
let minuteJob: Promise<{ f: Fixture; dispose: () => Promise<void>; jobid: string; since: number }> | null =
  null;
function startMinuteJob() {
  minuteJob ??= (async () => {
    const { f, dispose } = await createFixture();
    const since = Date.now();
    const jobid = await f.schedule("minute", "* * * * *", `insert into ${f.table} (kind) values ('minute')`);
    return { f, dispose, jobid, since };
  })();
  return minuteJob;
}

Deno.test({
  name:
    "'1 seconds' jobs run repeatedly as their username, with job_run_details rows as pg_cron writes them; " +
    "a failing job is recorded 'failed' with its message and stops nothing; the command is one simple query",
  ...OPTS,
  async fn() {
    await startMinuteJob();
    await withFixture(async (f) => {
      const insert = `insert into ${f.table} (kind, who, session_who, pid)
        values ('tick', current_user, session_user, pg_backend_pid())`;
      const good = await f.schedule("good", "1 seconds", insert);
      const bad = await f.schedule("bad", "1 seconds", "select 1/0");
      // Several statements in one string: only the simple protocol takes it (the extended one refuses it).
      const multi = await f.schedule(
        "multi",
        "2 seconds",
        `create temp table t (x int); insert into t values (1), (2); select count(*) from t`,
      );
      await sleep(4_500);
      const ticks = await f.sql.unsafe(`select who, session_who, pid from ${f.table} where kind = 'tick'`);
      assert.ok(ticks.length >= 3, `the 1 s job ran ${ticks.length} times in 4.5 s`);
      assert.ok(ticks.every((t) => t.who === f.role && t.session_who === f.role), "runs as the job's role");
      assert.equal(new Set(ticks.map((t) => t.pid)).size, ticks.length, "each run in its own session");

      const goodRuns = (await f.runs(good)).filter((r) => r.status !== "starting" && r.status !== "running");
      assert.ok(goodRuns.length >= 3);
      for (const r of goodRuns) {
        assert.equal(r.status, "succeeded");
        assert.equal(r.return_message, "INSERT 0 1");
        assert.equal(r.username, f.role);
        assert.equal(r.database, "postgres");
        assert.equal(r.command, insert);
        assert.ok(r.start_time && r.end_time && r.end_time >= r.start_time, "start_time ≤ end_time");
      }
      const tickPids = new Set(ticks.map((t) => t.pid));
      assert.ok(goodRuns.every((r) => tickPids.has(r.job_pid)), "job_pid is the run's backend");

      const badRuns = (await f.runs(bad)).filter((r) => r.status === "failed");
      assert.ok(badRuns.length >= 3, `the failing job kept running (${badRuns.length} failed runs)`);
      assert.ok(badRuns.every((r) => r.return_message === "division by zero"), badRuns[0]?.return_message);

      const multiRuns = (await f.runs(multi)).filter((r) => r.status === "succeeded");
      assert.ok(multiRuns.length >= 2, `the 2 s job ran ${multiRuns.length} times`);
      assert.equal(multiRuns[0].return_message, "SELECT 1", "the last statement's tag");
    });
  },
});

Deno.test({
  name:
    "a slow job's runs never overlap: a start that falls due meanwhile is queued and starts when the run ends",
  ...OPTS,
  async fn() {
    await withFixture(async (f) => {
      const command = `insert into ${f.table} (kind) values ('start'); select pg_sleep(2.2);
        insert into ${f.table} (kind) values ('end')`;
      const slow = await f.schedule("slow", "1 seconds", command);
      // While the first run sleeps, exactly one run row is 'running', with its pid and start time.
      await sleep(1_500);
      const during = await f.runs(slow);
      const running = during.filter((r) => r.status === "running");
      assert.equal(running.length, 1, JSON.stringify(during.map((r) => r.status)));
      assert.ok(running[0].job_pid && running[0].start_time && running[0].end_time === null);
      await sleep(6_000);
      const runs = (await f.runs(slow)).filter((r) => r.status === "succeeded");
      assert.ok(runs.length >= 2, `${runs.length} finished runs`);
      for (let i = 1; i < runs.length; i++) {
        assert.ok(runs[i].start_time >= runs[i - 1].end_time, `run ${i} started before run ${i - 1} ended`);
        const gap = runs[i].start_time.getTime() - runs[i - 1].end_time.getTime();
        assert.ok(gap < 1_500, `the queued start waited ${gap} ms after the previous run ended`);
      }
      const all = await f.runs(slow);
      assert.ok(all.filter((r) => r.status === "running" || r.status === "starting").length <= 1);
    });
  },
});

Deno.test({
  name: "unschedule and alter_job(active := false) stop a job within a second",
  ...OPTS,
  async fn() {
    await withFixture(async (f) => {
      const a = await f.schedule("a", "1 seconds", `insert into ${f.table} (kind) values ('a')`);
      const b = await f.schedule("b", "1 seconds", `insert into ${f.table} (kind) values ('b')`);
      await sleep(2_500);
      await f.sql`select cron.unschedule(${a}::bigint)`;
      await f.sql`select cron.alter_job(${b}::bigint, active := false)`;
      await sleep(1_200); // a run that had started may still finish
      const count = async () =>
        (await f.sql.unsafe(`select kind, count(*)::int as n from ${f.table} group by kind`))
          .map((r) => `${r.kind}:${r.n}`).sort().join(" ");
      const before = await count();
      assert.match(before, /a:\d+ b:\d+/);
      await sleep(2_500);
      assert.equal(await count(), before, "no run after unschedule / deactivation");
    });
  },
});

Deno.test({
  name: "a cron schedule ('* * * * *') runs at each UTC minute boundary, once per minute",
  ...OPTS,
  async fn() {
    const { f, dispose, jobid, since } = await startMinuteJob();
    try {
      // At least one boundary after the job was scheduled, and time for its run to finish.
      const first = Math.ceil((since + 1) / 60_000) * 60_000;
      if (Date.now() < first + 3_000) await sleep(first + 3_000 - Date.now());
      const boundaries: number[] = [];
      for (let b = first; b + 3_000 <= Date.now(); b += 60_000) boundaries.push(b);
      const rows = await f.sql.unsafe(`select at from ${f.table} where kind = 'minute' order by at`);
      const ran = rows.map((r) => r.at.getTime()).filter((t) =>
        t < boundaries[boundaries.length - 1] + 3_000
      );
      assert.equal(ran.length, boundaries.length, `${ran.length} runs for ${boundaries.length} minute(s)`);
      ran.forEach((t, i) => {
        const late = t - boundaries[i];
        assert.ok(late >= 0 && late < 2_000, `run ${i} came ${late} ms after its minute boundary`);
      });
      const runs = (await f.runs(jobid)).filter((r) => r.status === "succeeded");
      assert.ok(runs.length >= boundaries.length);
      assert.ok(runs[0].start_time.getTime() - boundaries[0] < 2_000);
    } finally {
      await dispose();
    }
  },
});

Deno.test({
  name: "the runner stops (its own, when this process started one)",
  ...OPTS,
  async fn() {
    if (ownRunner) {
      const started = Date.now();
      await ownRunner.close();
      assert.ok(Date.now() - started < 8_000);
      assert.equal(ownRunner.active(), false);
    }
  },
});

Deno.test("commandTag rebuilds PostgreSQL's command tags from postgres.js's command and count", () => {
  assert.equal(commandTag({ command: "SELECT", count: 1 }), "SELECT 1");
  assert.equal(commandTag({ command: "INSERT", count: 3 }), "INSERT 0 3");
  assert.equal(commandTag({ command: "DELETE", count: 0 }), "DELETE 0");
  assert.equal(commandTag({ command: "CREATE TABLE", count: null }), "CREATE TABLE");
  assert.equal(commandTag({ command: "CALL", count: null }), "CALL");
  assert.equal(commandTag({}), "");
});
