/**
 * Local stand-in for pg_cron's scheduler on PostgreSQL 17 (local-stack only, never deployed). On 17 the database's
 * pg_cron is a catalog stand-in that records jobs and runs none (local-stack/pg17/pg_cron--1.6.sql: no honest
 * pg_cron for 17 is available here); this runner, started by the gateway (local-stack/main.ts), runs them. Written
 * for this project from pg_cron's documented behaviour, not from its source: https://github.com/citusdata/pg_cron
 * README (schedules, "runs at most one instance of a job at a time ... the second run is queued and started as
 * soon as the first run completes", cron.job_run_details, cron.max_running_jobs), the maintainers' answers on
 * queuing (citusdata/pg_cron#44: a counter of missed starts for cron schedules; #296: "at most 1 entry for jobs
 * that run every n seconds"), and https://supabase.com/docs/guides/cron (GMT, `N seconds`, "no more than 8 Jobs
 * run concurrently").
 *
 * What it reproduces, and its invariants:
 * - It runs only where the database's pg_cron is the catalog stand-in (the extension's comment names it,
 *   isCatalogStandIn); against a server with the real pg_cron (15) it stops at once and runs nothing, so no job
 *   ever runs twice. While the extension is absent (dropped and re-created by scripts/db_reset_pipeline.sh) it waits.
 * - Every second it reads the active rows of cron.job (as the bootstrap superuser supabase_admin, which sees every
 *   role's rows); a change to cron.job takes effect within a second, as pg_cron's cache invalidation does.
 * - Cron schedules (schedule.ts) are due at UTC minute boundaries; each due minute adds one queued start, so a job
 *   still running when it is due again runs again as soon as it ends, once per missed minute (#44). Minutes the
 *   runner did not see (a stalled event loop) are caught up, at most MAX_CATCH_UP_MINUTES of them.
 * - `N seconds` jobs are due N seconds after their previous start; at most one start is queued (#296).
 * - @reboot jobs run once, for the jobs present when the runner first reads cron.job.
 * - At most one run of a job at a time; at most `maxRunningJobs` runs at once (cron.max_running_jobs; 5 by
 *   default, see DEFAULT_MAX_RUNNING_JOBS); jobs waiting for a slot start in jobid order.
 * - Each run has its own connection, opened as the job's `username` to the job's `database` (pg_cron's libpq
 *   mode connects as that role; loopback is `trust` as in the Supabase image, so a NOLOGIN role fails as it does
 *   there), and sends the command as one simple-protocol query string, as libpq's PQsendQuery does: several
 *   statements run in one implicit transaction unless they manage their own. The connection is closed afterwards.
 * - cron.job_run_details gets a row per run, written as supabase_admin (the extension's owner, as pg_cron's
 *   scheduler writes it): inserted 'starting' (runid from cron.runid_seq, jobid, database, username, command),
 *   then 'running' with job_pid (the run's backend pid) and start_time, then 'succeeded' with the command tag of
 *   the last statement (e.g. `SELECT 1`, `INSERT 0 1`) or 'failed' with the error message, and end_time. A
 *   failing job is recorded and never stops other jobs or later runs of itself. When the runner starts and after
 *   the server restarted (pg_postmaster_start_time changed), rows left 'starting' or 'running' become 'failed'
 *   with "server restarted", as pg_cron does after a restart.
 * - Bounded: close() stops the loop, waits up to `shutdownGraceMs` for running commands, then closes their
 *   connections (those runs are recorded 'failed'), and ends every connection. The gateway closes it on SIGTERM.
 *
 * Differences from pg_cron (docs/platform-differences.md): the job's nodename and nodeport are ignored (every run
 * goes to the server the runner was given); cron.log_run, cron.log_statement, cron.enable_superuser_jobs and
 * cron.launch_active_jobs are not read; an error's return_message is the server's primary message only.
 */
import postgres from "postgres";
import { cronDue, parseSchedule, type Schedule } from "./schedule.ts";

/**
 * Runs at once (cron.max_running_jobs). pg_cron's default is 32 with client connections and 5 with background
 * workers (citusdata/pg_cron#197); Debian's 1.4 on the local 15 stack runs background workers and was seen
 * running about 5 at once; Supabase advises at most 8 concurrent jobs. 5 is the strictest of these, so a
 * pipeline that keeps up here keeps up on any of them.
 */
export const DEFAULT_MAX_RUNNING_JOBS = 5;
/** Missed minutes caught up after a stall (a longer gap runs each due job once per minute of the last five). */
export const MAX_CATCH_UP_MINUTES = 5;

export interface CronRunnerOptions {
  /** The cron database, as the bootstrap superuser (supabase_admin). */
  adminDbUrl: string;
  /** A job's connection URL: defaults to adminDbUrl with the job's role and database. */
  jobDbUrl?: (username: string, database: string) => string;
  /** cron.max_running_jobs (default DEFAULT_MAX_RUNNING_JOBS). */
  maxRunningJobs?: number;
  /** How long close() lets running commands finish before closing their connections (default 5000 ms). */
  shutdownGraceMs?: number;
  /** Start even if the extension is not the catalog stand-in (tests only: never with a real pg_cron). */
  force?: boolean;
  log?: (event: Record<string, unknown>) => void;
}

export interface CronRunner {
  /** Whether it runs jobs (false once it found a real pg_cron). */
  readonly active: () => boolean;
  close(): Promise<void>;
}

interface JobRow {
  jobid: string;
  schedule: string;
  command: string;
  database: string;
  username: string;
}

interface JobState {
  /** Queued starts. */
  pending: number;
  running: boolean;
  /** Start of the last run (ms), for `N seconds` schedules. */
  lastStart: number | null;
}

interface RunningRun {
  done: Promise<void>;
  conn: postgres.Sql | null;
}

/** Whether the server's pg_cron is the catalog stand-in (its control file's comment says so). */
export async function isCatalogStandIn(sql: postgres.Sql): Promise<boolean> {
  const rows = await sql`select comment from pg_catalog.pg_available_extensions where name = 'pg_cron'`;
  return rows.length === 1 && /local-stack catalog stand-in/.test(String(rows[0].comment));
}

/** The command tag PostgreSQL sent for a statement, rebuilt from postgres.js's result (`INSERT 0 n`, `SELECT n`). */
export function commandTag(result: { command?: string; count?: number | null }): string {
  const command = result.command ?? "";
  if (command === "INSERT") return `INSERT 0 ${result.count ?? 0}`;
  return result.count === null || result.count === undefined ? command : `${command} ${result.count}`;
}

export function startCronRunner(options: CronRunnerOptions): CronRunner {
  const maxRunning = options.maxRunningJobs ?? DEFAULT_MAX_RUNNING_JOBS;
  const graceMs = options.shutdownGraceMs ?? 5000;
  const log = options.log ?? (() => {});
  const jobDbUrl = options.jobDbUrl ?? ((username: string, database: string) => {
    const url = new URL(options.adminDbUrl);
    url.username = username;
    url.pathname = `/${database}`;
    return url.toString();
  });
  const admin = postgres(options.adminDbUrl, {
    max: 3,
    prepare: false,
    onnotice: () => {},
    idle_timeout: 30,
    connection: { application_name: "pg_cron scheduler (local-stack runner)" },
  });

  let closed = false;
  /** Null until the extension was looked at; true only in front of the catalog stand-in (or with force). */
  let enabled: boolean | null = options.force ? true : null;
  let wake: () => void = () => {};
  const states = new Map<string, JobState>();
  const schedules = new Map<string, Schedule | null>();
  const running = new Set<RunningRun>();
  let lastMinute: number | null = null;
  let rebootDone = false;

  const parsed = (text: string) => {
    if (!schedules.has(text)) schedules.set(text, parseSchedule(text));
    return schedules.get(text)!;
  };

  async function tick(now: number): Promise<void> {
    const [{ present }] = await admin`select pg_catalog.to_regclass('cron.job') is not null as present`;
    if (!present) {
      states.clear();
      return;
    }
    const jobs = await admin<JobRow[]>`
      select jobid::text as jobid, schedule, command, database, username
      from cron.job where active order by jobid`;
    const minute = Math.floor(now / 60_000);
    const dueMinutes: number[] = [];
    if (lastMinute !== null) {
      for (let m = Math.max(lastMinute + 1, minute - MAX_CATCH_UP_MINUTES + 1); m <= minute; m++) {
        dueMinutes.push(m);
      }
    }
    lastMinute = minute;
    const seen = new Set<string>();
    for (const job of jobs) {
      seen.add(job.jobid);
      let state = states.get(job.jobid);
      if (!state) states.set(job.jobid, state = { pending: 0, running: false, lastStart: null });
      const schedule = parsed(job.schedule);
      if (schedule === null) continue;
      if (schedule.kind === "cron") {
        for (const m of dueMinutes) if (cronDue(schedule.fields, new Date(m * 60_000))) state.pending++;
      } else if (schedule.kind === "seconds") {
        // Ticks fall on whole seconds; rounding absorbs timer jitter of a few ms either way.
        const elapsed = state.lastStart === null ? Infinity : Math.round((now - state.lastStart) / 1000);
        if (state.pending === 0 && elapsed >= schedule.seconds) {
          state.pending = 1;
        }
      } else if (!rebootDone) {
        state.pending++;
      }
    }
    rebootDone = true;
    // Unscheduled or deactivated jobs lose their queued starts; a run in progress finishes.
    for (const [jobid, state] of states) {
      if (!seen.has(jobid)) {
        if (state.running) state.pending = 0;
        else states.delete(jobid);
      }
    }
    for (const job of jobs) {
      if (running.size >= maxRunning) break;
      const state = states.get(job.jobid)!;
      if (state.pending === 0 || state.running) continue;
      state.pending--;
      state.running = true;
      state.lastStart = now;
      const run: RunningRun = { conn: null, done: Promise.resolve() };
      run.done = execute(job, run).finally(() => {
        state.running = false;
        running.delete(run);
        if (!seen.has(job.jobid) && state.pending === 0) states.delete(job.jobid);
      });
      running.add(run);
    }
  }

  async function execute(job: JobRow, run: RunningRun): Promise<void> {
    let runid: string | null = null;
    try {
      const [row] = await admin`
        insert into cron.job_run_details (jobid, database, username, command, status)
        values (${job.jobid}::bigint, ${job.database}, ${job.username}, ${job.command}, 'starting')
        returning runid::text as runid`;
      runid = row.runid as string;
      run.conn = postgres(jobDbUrl(job.username, job.database), {
        max: 1,
        prepare: false,
        onnotice: () => {},
        connect_timeout: 10,
        idle_timeout: 0,
        max_lifetime: null,
        connection: { application_name: "pg_cron" },
      });
      let tag = "";
      let failure: string | null = null;
      try {
        const [{ pid }] = await run.conn`select pg_catalog.pg_backend_pid() as pid`;
        await admin`
          update cron.job_run_details set job_pid = ${pid}, status = 'running', start_time = pg_catalog.now()
          where runid = ${runid}::bigint`;
        // One simple-protocol query string, as pg_cron sends it through libpq; postgres.js answers an array of
        // results when the string holds several statements.
        const results = await run.conn.unsafe(job.command).simple();
        // A result carries its command; an array of results (one per statement that returned rows) does not.
        type Tagged = { command?: string; count?: number | null };
        const last = (results as unknown as Tagged).command !== undefined
          ? results as unknown as Tagged
          : (results as unknown as Tagged[])[results.length - 1] ?? {};
        tag = commandTag(last);
      } catch (error) {
        failure = error instanceof Error ? error.message : String(error);
      }
      await admin`
        update cron.job_run_details
        set status = ${failure === null ? "succeeded" : "failed"}, return_message = ${failure ?? tag},
          end_time = pg_catalog.now()
        where runid = ${runid}::bigint`;
      log({
        event: "pg_cron.run",
        jobid: Number(job.jobid),
        runid: Number(runid),
        ok: failure === null,
        error: failure ?? undefined,
      });
    } catch (error) {
      log({ event: "pg_cron.run_not_recorded", jobid: Number(job.jobid), runid, error: String(error) });
    } finally {
      await run.conn?.end({ timeout: 1 }).catch(() => {});
    }
  }

  const loop = (async () => {
    // Only in front of the catalog stand-in: with a real pg_cron every job would run twice.
    while (!closed && !options.force) {
      try {
        enabled = await isCatalogStandIn(admin);
        break;
      } catch (error) {
        log({ event: "pg_cron.runner_waiting", error: String(error) });
        await sleep(1000);
      }
    }
    if (enabled !== true) {
      log({ event: "pg_cron.runner_disabled", reason: "the database's pg_cron is not the catalog stand-in" });
      return;
    }
    log({ event: "pg_cron.runner_started", maxRunningJobs: maxRunning });
    let serverStart: string | null = null;
    while (!closed) {
      try {
        // As pg_cron after a restart: runs left unfinished by a previous runner, or cut by a server restart
        // (which ends every session), are failed. Checked when the runner starts and whenever the server did.
        const [{ started }] = await admin`select pg_catalog.pg_postmaster_start_time()::text as started`;
        if (started !== serverStart) {
          await admin`
            update cron.job_run_details set status = 'failed', return_message = 'server restarted',
              end_time = coalesce(end_time, pg_catalog.now())
            where status in ('starting', 'running')`
            .catch((error) => {
              // No extension yet: nothing to recover.
              if (!/does not exist/.test(String(error))) throw error;
            });
          serverStart = started;
        }
        await tick(Date.now());
      } catch (error) {
        if (closed) break;
        log({ event: "pg_cron.tick_failed", error: String(error) });
      }
      // Next whole second, so minute jobs start within a few ms of the boundary.
      await sleep(1000 - (Date.now() % 1000) + 5);
    }
  })();

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  return {
    active: () => enabled === true && !closed,
    async close() {
      closed = true;
      wake();
      await loop;
      const all = Promise.all([...running].map((r) => r.done));
      let timer: number | undefined;
      const graceOver = new Promise<"timeout">((resolve) =>
        timer = setTimeout(() => resolve("timeout"), graceMs)
      );
      const outcome = await Promise.race([all.then(() => "done" as const), graceOver]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        log({ event: "pg_cron.runner_cancelling", running: running.size });
        await Promise.all([...running].map((r) => r.conn?.end({ timeout: 0 }).catch(() => {})));
        await Promise.race([all, new Promise((resolve) => setTimeout(resolve, 2000))]);
      }
      await admin.end({ timeout: 2 });
    },
  };
}
