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
