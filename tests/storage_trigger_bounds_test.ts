/**
 * The storage trigger never makes an upload or delete fail or wait long, and does nothing for objects nobody
 * watches (migration 20261205000101_bound_storage_trigger.sql; platform-fidelity review rows 8 and 11). Each case
 * writes storage.objects as Storage does — connected as supabase_storage_admin, the owner of the table — while a
 * second session (postgres) holds the pipeline's locks the way a batch or a migration would.
 *
 * Invariants tested:
 * - An upload, new version and delete in a bucket nobody watches finish at once even while csv_import.jobs and
 *   csv_import.chunks are locked ACCESS EXCLUSIVE (the trigger touches neither).
 * - An overwrite while a batch holds the old job's row and its chunk (as commit_batch does) returns within the
 *   trigger's 2 s lock bound; the new version's job exists at once, and reconcile stops the old job afterwards.
 * - An upload while the registration must wait (csv_import.jobs locked SHARE, as a CREATE INDEX holds it) returns
 *   within the bound with no job; reconcile registers the version once the lock is gone.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { BUCKET, DB_URL, E2E, unique } from "./support/stack.ts";

/** The local database as another role (127.0.0.1 is trusted, as in the Supabase image). */
function connectAs(user: string, onnotice: (notice: postgres.Notice) => void = () => {}) {
  const url = new URL(DB_URL);
  url.username = user;
  return postgres(url.toString(), { max: 2, onnotice, idle_timeout: 5, prepare: false });
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await work();
  return [result, performance.now() - start];
}

/** Holds `lock` in an open transaction of `sql` until the returned release() is called. */
async function hold(sql: postgres.Sql, statements: string[]): Promise<() => Promise<void>> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const tx = sql.begin(async (tx) => {
    for (const statement of statements) await tx.unsafe(statement);
    ready();
    await released;
  });
  await isReady;
  return async () => {
    release();
    await tx;
  };
}

Deno.test(
  "storage trigger: a bucket nobody watches does no pipeline work, even with csv_import's tables locked",
  E2E,
  async () => {
    const storage = connectAs("supabase_storage_admin");
    const pg = connectAs("postgres");
    const bucket = unique("unwatched").replaceAll("_", "-");
    try {
      await storage`insert into storage.buckets (id, name) values (${bucket}, ${bucket})`;
      const release = await hold(pg, [
        "lock table csv_import.jobs, csv_import.chunks in access exclusive mode",
      ]);
      try {
        const [, elapsed] = await timed(() =>
          storage.begin(async (tx) => {
            await tx`set local statement_timeout = '5s'`;
            await tx`set local storage.allow_delete_query = 'true'`;
            await tx`insert into storage.objects (bucket_id, name, version, metadata)
                   values (${bucket}, 'a.csv', 'v1', '{"size": 3}')`;
            await tx`update storage.objects set version = 'v2' where bucket_id = ${bucket} and name = 'a.csv'`;
            await tx`update storage.objects set name = 'b.csv' where bucket_id = ${bucket} and name = 'a.csv'`;
            await tx`delete from storage.objects where bucket_id = ${bucket} and name = 'b.csv'`;
          })
        );
        assert(
          elapsed < 1000,
          `upload, overwrite, move and delete took ${elapsed.toFixed(0)} ms behind the lock`,
        );
      } finally {
        await release();
      }
    } finally {
      await storage.begin(async (tx) => {
        await tx`set local storage.allow_delete_query = 'true'`;
        await tx`delete from storage.objects where bucket_id = ${bucket}`;
        await tx`delete from storage.buckets where id = ${bucket}`;
      });
      await storage.end();
      await pg.end();
    }
  },
);

Deno.test(
  "storage trigger: an overwrite while a batch holds the old job returns within 2 s, and reconcile stops the old job",
  E2E,
  async () => {
    const storage = connectAs("supabase_storage_admin");
    const pg = connectAs("postgres");
    const name = `trigger-bounds/${unique("overwrite")}.csv`;
    try {
      // The old version's job, running, with one chunk; its register request is withdrawn so nothing else moves it.
      const [{ id: oldJob }] = await pg.begin(async (tx) => {
        await tx`insert into storage.objects (bucket_id, name, version, metadata)
               values (${BUCKET}, ${name}, 'v1', '{"size": 100}')`;
        const rows = await tx<{ id: number }[]>`update csv_import.jobs set status = 'running'
        where bucket_id = ${BUCKET} and object_name = ${name} returning id`;
        await tx`delete from net.http_request_queue where convert_from(body, 'UTF8')::jsonb = jsonb_build_object('job_id', ${
          rows[0].id
        }::bigint)`;
        await tx`insert into csv_import.chunks (job_id, kind, chunk_index, start_offset, end_offset, status)
               values (${rows[0].id}, 'load', 0, 0, 100, 'running')`;
        return rows;
      });
      // A batch in commit_batch: the job row and its chunk row, held.
      const release = await hold(pg, [
        `select 1 from csv_import.jobs where id = ${oldJob} for update`,
        `select 1 from csv_import.chunks where job_id = ${oldJob} for update`,
      ]);
      let elapsed: number;
      try {
        [, elapsed] = await timed(() =>
          storage.begin(async (tx) => {
            await tx`set local statement_timeout = '10s'`;
            await tx`update storage.objects set version = 'v2' where bucket_id = ${BUCKET} and name = ${name}`;
          })
        );
      } finally {
        await release();
      }
      assert(elapsed < 4000, `the overwrite took ${elapsed.toFixed(0)} ms (bound: 2 s per lock wait)`);
      assert(
        elapsed > 1500,
        `the overwrite took ${elapsed.toFixed(0)} ms: it did not wait for the held job row at all`,
      );
      const jobs = await pg<{ id: number; object_version: string; status: string }[]>`
      select id, object_version, status::text from csv_import.jobs
      where bucket_id = ${BUCKET} and object_name = ${name} order by id`;
      assert.deepEqual(
        jobs.map((j) => j.object_version),
        ["v1", "v2"],
        "the new version has its job at once",
      );
      assert.deepEqual(jobs[0].status, "running", "the old job's stop was left to reconcile");
      await pg`select csv_import.reconcile()`;
      const [old] = await pg<
        { status: string }[]
      >`select status::text from csv_import.jobs where id = ${oldJob}`;
      assert.deepEqual(old.status, "cancelled", "reconcile stopped the superseded job");
    } finally {
      await storage.begin(async (tx) => {
        await tx`set local storage.allow_delete_query = 'true'`;
        await tx`delete from storage.objects where bucket_id = ${BUCKET} and name = ${name}`;
      });
      await pg`select csv_import.stop_job(id, 'cancelled', 'test cleanup') from csv_import.jobs
             where bucket_id = ${BUCKET} and object_name = ${name}`;
      await storage.end();
      await pg.end();
    }
  },
);

Deno.test(
  "storage trigger: an upload whose registration must wait returns within 2 s, and reconcile registers it",
  E2E,
  async () => {
    const storage = connectAs("supabase_storage_admin");
    const pg = connectAs("postgres");
    const name = `trigger-bounds/${unique("waiting")}.csv`;
    const warnings: string[] = [];
    const storageWarned = connectAs(
      "supabase_storage_admin",
      (notice) => warnings.push(String(notice.message)),
    );
    try {
      // SHARE on csv_import.jobs (what CREATE INDEX holds) blocks the job's insert.
      const release = await hold(pg, ["lock table csv_import.jobs in share mode"]);
      let elapsed: number;
      try {
        [, elapsed] = await timed(() =>
          storageWarned.begin(async (tx) => {
            await tx`set local statement_timeout = '10s'`;
            // Dated two minutes back: reconcile registers versions older than a minute (the trigger's own
            // transaction has committed by then), and this one stands for an upload made that long ago.
            await tx`insert into storage.objects (bucket_id, name, version, metadata, created_at, updated_at)
                   values (${BUCKET}, ${name}, 'v1', '{"size": 100}', now() - interval '2 minutes',
                           now() - interval '2 minutes')`;
          })
        );
      } finally {
        await release();
      }
      assert(elapsed < 4000, `the upload took ${elapsed.toFixed(0)} ms (bound: 2 s per lock wait)`);
      assert(
        warnings.some((w) => w.includes("reconcile will")),
        `no warning from the trigger: ${warnings.join("; ")}`,
      );
      const before =
        await pg`select 1 from csv_import.jobs where bucket_id = ${BUCKET} and object_name = ${name}`;
      // pg_cron's reconcile may have run in between; either way the version is registered by reconcile.
      if (before.length === 0) {
        await pg`select csv_import.reconcile()`;
      }
      const after = await pg<{ object_version: string }[]>`
      select object_version from csv_import.jobs where bucket_id = ${BUCKET} and object_name = ${name}`;
      assert.deepEqual(
        after.map((j) => j.object_version),
        ["v1"],
        "reconcile registered the version the trigger left",
      );
    } finally {
      await storage.begin(async (tx) => {
        await tx`set local storage.allow_delete_query = 'true'`;
        await tx`delete from storage.objects where bucket_id = ${BUCKET} and name = ${name}`;
      });
      await pg`select csv_import.stop_job(id, 'cancelled', 'test cleanup') from csv_import.jobs
             where bucket_id = ${BUCKET} and object_name = ${name}`;
      await storageWarned.end();
      await storage.end();
      await pg.end();
    }
  },
);
