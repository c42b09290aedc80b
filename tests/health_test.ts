/**
 * The health function through the local API gateway, as a monitoring system would call it: the JSON document and
 * its HTTP status (200 healthy/degraded, 503 unhealthy), the Prometheus text on /health/metrics and
 * ?format=prometheus, the caller check, and a stuck condition turning the status unhealthy.
 *
 * Other imports may run in the same database, so the test asserts relations (status ↔ HTTP code, document ↔ text)
 * rather than absolute numbers, except for the condition it creates itself.
 */
import assert from "node:assert/strict";
import { ANON_KEY, PUBLISHABLE_KEY, SECRET_KEY, SERVICE_ROLE_KEY } from "../local-stack/keys.ts";
import { connect, E2E, SUPABASE_URL, unique } from "./support/stack.ts";

const HEALTH = `${SUPABASE_URL}/functions/v1/csv-import-health`;

async function get(path: string, key: string | null = SECRET_KEY, init: RequestInit = {}) {
  const headers: Record<string, string> = key ? { Authorization: `Bearer ${key}`, apikey: key } : {};
  const res = await fetch(`${HEALTH}${path}`, { ...init, headers: { ...headers, ...init.headers } });
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

Deno.test("health: the JSON document, with HTTP 503 exactly when unhealthy", E2E, async () => {
  for (const key of [SECRET_KEY, SERVICE_ROLE_KEY]) {
    const res = await get("", key);
    assert.match(res.type, /^application\/json/);
    const body = JSON.parse(res.text);
    assert.ok(["healthy", "degraded", "unhealthy"].includes(body.status), res.text);
    assert.equal(res.status, body.status === "unhealthy" ? 503 : 200, res.text);
    assert.equal(body.problems.length === 0, body.status === "healthy", "problems are listed unless healthy");
    for (const field of ["depth", "pending", "in_flight", "expired_leases"]) {
      assert.equal(typeof body.queue[field], "number", `queue.${field}`);
    }
    assert.ok("oldest_ready_age_seconds" in body.queue);
    assert.deepEqual(
      Object.keys(body.jobs.by_state).sort(),
      [
        "cancelled",
        "failed",
        "queued",
        "registering",
        "running",
        "succeeded",
        "succeeded_with_rejects",
        "validated",
      ],
    );
    assert.equal(body.window.seconds, 300);
    assert.equal(typeof body.window.rows_per_second, "number");
    assert.equal(typeof body.totals.rows_loaded, "number");
    assert.equal(body.reconcile.scheduled, true, "the reconciler is scheduled");
    assert.equal(body.stuck_after_seconds, 300);
  }
  const post = await get("", SECRET_KEY, { method: "POST", body: "{}" });
  assert.ok([200, 503].includes(post.status), "POST works too");
});

Deno.test("health: Prometheus text on /health/metrics and ?format=prometheus", E2E, async () => {
  for (const path of ["/metrics", "?format=prometheus"]) {
    const res = await get(path);
    assert.equal(res.status, 200, "a scrape always succeeds when the database answers");
    assert.equal(res.type, "text/plain; version=0.0.4; charset=utf-8");
    for (
      const line of [
        "# TYPE csv_import_queue_depth gauge",
        "# TYPE csv_import_chunks_in_flight gauge",
        "# TYPE csv_import_jobs gauge",
        "# TYPE csv_import_rows_loaded_total counter",
        "# HELP csv_import_rows_loaded_total Rows loaded into target tables.",
      ]
    ) assert.ok(res.text.includes(`${line}\n`), `${path}: ${line}`);
    assert.match(res.text, /^csv_import_jobs\{state="running"\} \d+$/m);
    assert.match(res.text, /^csv_import_rows_loaded_total \d+$/m);
    assert.match(res.text, /^csv_import_health_status\{status="(healthy|degraded|unhealthy)"\} 1$/m);
  }
});

Deno.test("health: only the service role may call; bad options answer 400", E2E, async () => {
  for (const key of [null, ANON_KEY, PUBLISHABLE_KEY, "sb_secret_wrong"]) {
    const res = await get("", key);
    assert.equal(res.status, 401, `key ${key?.slice(0, 16)}`);
    assert.doesNotMatch(res.text, /csv_import_|queue/);
  }
  const bad = await get("?stuck_after=soon");
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.text).message, /"stuck_after" must be a number of seconds/);
});

Deno.test("health: a job stuck registering makes it unhealthy (503), named in problems", E2E, async () => {
  const sql = connect(1);
  const name = `${unique("health")}/stuck.csv`;
  // register_after in the future: the reconciler leaves it alone during the test.
  const [{ id }] = await sql<{ id: number }[]>`
    insert into csv_import.jobs (bucket_id, object_name, object_version, created_at, register_after)
    values ('health-test', ${name}, 'v1', now() - interval '10 minutes', now() + interval '1 hour')
    returning id`;
  try {
    const res = await get("?stuck_after=60");
    assert.equal(res.status, 503, res.text);
    const body = JSON.parse(res.text);
    assert.equal(body.status, "unhealthy");
    assert.equal(body.stuck_after_seconds, 60);
    assert.ok(body.jobs.registering_stuck >= 1);
    assert.ok(
      body.problems.some((p: string) => /jobs have been registering for more than 60 s/.test(p)),
      JSON.stringify(body.problems),
    );
    const metrics = await get("/metrics?stuck_after=60");
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^csv_import_health_status\{status="unhealthy"\} 1$/m);
    assert.match(metrics.text, /^csv_import_jobs_registering_stuck [1-9]\d*$/m);
  } finally {
    await sql`delete from csv_import.jobs where id = ${id}`;
    await sql.end();
  }
});

Deno.test(
  "health: the operator routes /jobs and /series (service key only, parameters checked, CORS)",
  E2E,
  async () => {
    const sql = connect(1);
    const name = `${unique("health")}/operator.csv`;
    // A job the reconciler leaves alone during the test (register_after in the future) and a batch it logged now.
    const [{ id }] = await sql<{ id: number }[]>`
    insert into csv_import.jobs (bucket_id, object_name, object_version, register_after)
    values ('health-test', ${name}, 'v1', now() + interval '1 hour')
    returning id`;
    await sql`insert into csv_import.batch_log (job_id, chunk_id, rows_parsed, rows_loaded, rows_rejected, rows_skipped)
    values (${id}, -1, 12, 11, 1, 0)`;
    try {
      for (const path of ["/jobs", "/series"]) {
        for (const key of [null, ANON_KEY, PUBLISHABLE_KEY, "sb_secret_wrong"]) {
          const res = await get(path, key);
          assert.equal(res.status, 401, `${path} with key ${key?.slice(0, 16)}`);
          assert.doesNotMatch(res.text, /operator\.csv|rows_loaded/);
        }
      }
      for (
        const [path, message] of [
          ["/jobs?limit=0", '"limit" must be an integer from 1 to 1000, got "0"'],
          ["/jobs?limit=many", '"limit" must be an integer from 1 to 1000, got "many"'],
          ["/series?minutes=1441", '"minutes" must be an integer from 1 to 1440, got "1441"'],
          ["/series?minutes=-5", '"minutes" must be an integer from 1 to 1440, got "-5"'],
        ]
      ) {
        const res = await get(path);
        assert.equal(res.status, 400, path);
        assert.deepEqual(JSON.parse(res.text), { error: "bad_request", message }, path);
      }

      const jobs = await get("/jobs?limit=1000", SERVICE_ROLE_KEY);
      assert.equal(jobs.status, 200, jobs.text);
      const list = JSON.parse(jobs.text).jobs;
      const ids = list.map((j: { job_id: number }) => j.job_id);
      assert.deepEqual(ids, [...ids].sort((a, b) => b - a), "newest first");
      const mine = list.find((j: { object: string }) => j.object === name);
      assert.deepEqual(Object.keys(mine).sort(), [
        "bucket",
        "created_at",
        "error",
        "finished_at",
        "job_id",
        "object",
        "owner_id",
        "percent",
        "rows_loaded",
        "rows_rejected",
        "status",
      ]);
      assert.equal(mine.job_id, Number(id));
      assert.equal(mine.status, "registering");
      assert.equal(typeof mine.percent, "number");
      assert.equal(JSON.parse((await get("/jobs?limit=1")).text).jobs.length, 1, "limit");

      const series = await get("/series");
      assert.equal(series.status, 200, series.text);
      const points = JSON.parse(series.text).series;
      assert.equal(points.length, 60, "one entry per minute of the last hour");
      for (const [i, p] of points.entries()) {
        assert.deepEqual(Object.keys(p).sort(), ["bytes", "minute", "rows_loaded", "rows_rejected"]);
        if (i > 0) {
          assert.equal(
            Date.parse(p.minute) - Date.parse(points[i - 1].minute),
            60_000,
            "consecutive minutes",
          );
        }
      }
      const sum = (field: string) => points.reduce((n: number, p: Record<string, number>) => n + p[field], 0);
      assert.ok(sum("rows_loaded") >= 11 && sum("rows_rejected") >= 1, "the batch logged now is counted");
      assert.equal(JSON.parse((await get("/series?minutes=5")).text).series.length, 5);

      // A browser on another origin (the page on a static host) may call: preflight and answers carry CORS headers.
      const preflight = await fetch(`${HEALTH}/jobs`, { method: "OPTIONS" });
      await preflight.body?.cancel();
      assert.equal(preflight.status, 204);
      assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /authorization.*apikey/);
      const refused = await fetch(`${HEALTH}/jobs`);
      await refused.body?.cancel();
      assert.equal(refused.headers.get("access-control-allow-origin"), "*", "even a refusal is readable");
    } finally {
      await sql`delete from csv_import.batch_log where job_id = ${id}`;
      await sql`delete from csv_import.jobs where id = ${id}`;
      await sql.end();
    }
  },
);
