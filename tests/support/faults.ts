/**
 * Shared pieces of the fault suites (tests/faults_*_test.ts, tests/scale_test.ts): a clean multi-chunk file
 * with its `psql \copy` reference, and the one check every fault ends with — no row lost, none duplicated,
 * the job terminal, its counts adding up.
 *
 * Invariants:
 * - Targets have NO primary key, so a row written twice stays in the table (a unique index would turn it into
 *   a reject and hide it); the reference is the same file loaded by `psql \copy`, compared by count and an
 *   order-independent checksum.
 * - `assertExactJob` checks the job against the file and the chunks against the job, never against numbers
 *   the pipeline reported about itself alone.
 */
import assert from "node:assert/strict";
import { type Manifest, writeCsv } from "./generate_csv.ts";
import {
  BUCKET,
  checksum,
  describeJob,
  jobByObject,
  type JobRow,
  psqlCopy,
  type Scope,
  type Sql,
  TERMINAL,
  waitFor,
} from "./stack.ts";

export interface Prepared {
  file: string;
  manifest: Manifest;
  target: string;
  reference: string;
  want: { count: number; sum: string };
}

/** A clean generated file (no planted rows), an empty target without a primary key and its \copy reference. */
export async function prepareFile(
  sql: Sql,
  scope: Scope,
  opts: { rows: number; seed: number; label: string; crlf?: boolean },
): Promise<Prepared> {
  const dir = await scope.tempDir();
  const file = `${dir}/${opts.label}.csv`;
  const manifest = await writeCsv(file, { rows: opts.rows, seed: opts.seed, crlf: opts.crlf ?? false });
  const target = await scope.table(opts.label, { primaryKey: false });
  const reference = await scope.table(`${opts.label}_ref`, { primaryKey: false });
  await psqlCopy(reference, file);
  return { file, manifest, target, reference, want: await checksum(sql, reference) };
}

export interface ChunkSummary {
  kind: string;
  status: string;
  n: number;
  attempts: number;
  max_attempts: number;
  rows_loaded: number;
  rows_parsed: number;
}

export async function chunkSummary(sql: Sql, jobId: number): Promise<ChunkSummary[]> {
  return await sql<ChunkSummary[]>`
    select kind::text, status::text, count(*)::int as n, sum(attempts)::int as attempts,
           max(attempts)::int as max_attempts, sum(rows_loaded)::float8 as rows_loaded,
           sum(rows_parsed)::float8 as rows_parsed
    from csv_import.chunks where job_id = ${jobId} group by 1, 2 order by 1, 2`;
}

/**
 * The job loaded the whole file exactly once: succeeded, every row parsed and loaded once (no rejects or
 * skips), at least `minChunks` load chunks (default 2), all chunks succeeded and their rows add up to the job's, and the target table
 * equals `psql \copy` of the same file. Returns the chunk summary (for attempt counts).
 */
export async function assertExactJob(
  sql: Sql,
  job: JobRow,
  p: Prepared,
  opts: { label?: string; minChunks?: number } = {},
): Promise<ChunkSummary[]> {
  const at = `${opts.label ?? ""}job ${job.id}`;
  assert.equal(job.status, "succeeded", `${at}: ${job.error}`);
  const minChunks = opts.minChunks ?? 2;
  assert.ok(job.chunk_count >= minChunks, `${at}: at least ${minChunks} load chunks (${job.chunk_count})`);
  assert.equal(job.rows_parsed, p.manifest.rows, `${at}: rows parsed`);
  assert.equal(job.rows_loaded, p.manifest.rows, `${at}: rows loaded`);
  assert.equal(job.rows_rejected, 0, `${at}: rows rejected`);
  assert.equal(job.rows_skipped, 0, `${at}: rows skipped`);
  const chunks = await chunkSummary(sql, job.id);
  assert.deepEqual(
    chunks.filter((c) => c.status !== "succeeded"),
    [],
    `${at}: every chunk succeeded`,
  );
  const loads = chunks.find((c) => c.kind === "load")!;
  assert.equal(loads.n, job.chunk_count, `${at}: load chunks`);
  assert.equal(loads.rows_loaded, p.manifest.rows, `${at}: the chunks' rows add up to the file's`);
  assert.equal(loads.rows_parsed, p.manifest.rows, `${at}: the chunks parsed every row once`);
  assert.deepEqual(await checksum(sql, p.target), p.want, `${at}: table = psql \\copy of the file`);
  return chunks;
}

/**
 * A trigger on `table` that makes the insert of row `id` wait while the test holds an advisory lock
 * (a gate): `waiters()` lists the backends waiting at it, `release()` lets them through.
 */
export async function blockAtRow(sql: Sql, scope: Scope, table: string, id: number) {
  const key = Math.floor(Math.random() * 1e9);
  const fn = `public.${table.split(".")[1]}_gate_${key}`;
  await sql.unsafe(`
    create function ${fn}() returns trigger language plpgsql as $$
    begin
      if new.id = ${id} then perform pg_advisory_xact_lock_shared(${key}); end if;
      return new;
    end $$;
    create trigger gate_${key} before insert on ${table} for each row execute function ${fn}();`);
  scope.defer(() => sql.unsafe(`drop function if exists ${fn}() cascade`));
  const holder = await sql.reserve();
  scope.defer(async () => {
    await holder`select pg_advisory_unlock_all()`;
    holder.release();
  });
  await holder`select pg_advisory_lock(${key})`;
  const waiters = async () =>
    (await sql<{ pid: number }[]>`
      select pid from pg_locks where locktype = 'advisory' and not granted
        and ((classid::bigint << 32) | objid::bigint) = ${key}`).map((r) => r.pid);
  return {
    /** Backends waiting at the gate. */
    waiters,
    /** Waits (30 s at most) until one backend waits at the gate; returns its pid. */
    blocked: async (what: string, describe?: () => Promise<string>): Promise<number> =>
      (await waitFor(
        what,
        async () => {
          const w = await waiters();
          return w.length === 1 ? w : undefined;
        },
        30_000,
        describe,
      ))[0],
    release: async () => {
      await holder`select pg_advisory_unlock(${key})`;
    },
  };
}

/**
 * Waits for the object's job to be terminal, running `csv_import.reconcile()` as pg_cron does whenever one of
 * the job's chunks is ready and waiting (pg_cron runs it once a minute; calling it sooner only saves the
 * wait). Fails with the job's state when the deadline passes.
 */
export function reconcileUntilDone(sql: Sql, objectName: string, timeoutMs: number): Promise<JobRow> {
  return waitFor(
    `the job of ${objectName} to finish (reconciling as pg_cron does)`,
    async () => {
      const [ready] = await sql`
        select 1 from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
        where j.bucket_id = ${BUCKET} and j.object_name = ${objectName} and j.status in ('queued', 'running')
          and ((c.status = 'pending' and c.available_at <= now()) or (c.status = 'running' and c.lease_until < now()))
        limit 1`;
      if (ready) await sql`select csv_import.reconcile()`;
      const job = await jobByObject(sql, objectName);
      return job && TERMINAL.includes(job.status) && job.rejects_status !== "pending" ? job : undefined;
    },
    timeoutMs,
    () => describeJob(sql, objectName),
    500,
  );
}

const GATEWAY_LOG = `${
  Deno.env.get("STATE_DIR") ?? new URL("../../.local", import.meta.url).pathname
}/logs/gateway.log`;

/**
 * The pipeline functions' structured log events about one job, from the local gateway's log; `fn` is the function
 * whose worker wrote the event, `executionId` that worker (as the runtime's worker records name it). Only events
 * from the job's creation on: the log outlives a database (a cluster of the other PostgreSQL major, a reset) whose
 * job ids start again.
 */
export async function functionEvents(job: { id: number | string; created_at: Date }): Promise<
  Record<string, unknown>[]
> {
  const jobId = Number(job.id); // bigint ids arrive as strings from postgres.js
  const since = job.created_at.toISOString();
  const events: Record<string, unknown>[] = [];
  for (const line of (await Deno.readTextFile(GATEWAY_LOG)).split("\n")) {
    if (!line.includes('"event":"log"') || !line.includes(`\\"job\\":${jobId},`)) continue;
    try {
      const outer = JSON.parse(line);
      const event = JSON.parse(outer.message);
      if (event.job !== jobId || String(event.at) < since) continue;
      events.push({ ...event, fn: outer.function, executionId: outer.executionId });
    } catch {
      // not a pipeline log line
    }
  }
  return events;
}

/**
 * Waits until a chunk runs again under another lease than `chunk.lease_token` (or has succeeded): the moment its
 * work was taken over after a kill, a freeze or a hand-back. Returns the seconds since `since`
 * (a `performance.now()` reading).
 */
export async function waitForNewLease(
  sql: Sql,
  chunk: { id: string; lease_token: string },
  options: { since: number; objectName: string; timeoutMs: number; intervalMs: number },
): Promise<number> {
  await waitFor(
    "the chunk to run again under a new lease",
    async () => {
      const [c] = await sql<{ token: string | null; status: string }[]>`
        select lease_token::text as token, status::text from csv_import.chunks where id = ${chunk.id}`;
      return c.status === "succeeded" || (c.token !== null && c.token !== chunk.lease_token)
        ? true
        : undefined;
    },
    options.timeoutMs,
    () => describeJob(sql, options.objectName),
    options.intervalMs,
  );
  return (performance.now() - options.since) / 1000;
}
