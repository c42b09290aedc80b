/**
 * Contract tests of the pg_net stand-in against the real local database: requests leave only after the
 * enqueuing transaction commits, never on rollback, with pg_net's signatures, and outcomes are recorded in
 * net._http_response (status, body, timeouts).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { startPgNetWorker } from "./worker.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";

interface Received {
  method: string;
  path: string;
  body: string;
  headers: Headers;
  at: number;
}

async function withHarness(
  fn: (h: {
    sql: postgres.Sql;
    url: string;
    received: Received[];
  }) => Promise<void>,
) {
  const received: Received[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = await req.text();
    if (url.pathname === "/slow") await new Promise((r) => setTimeout(r, 2_000));
    received.push({
      method: req.method,
      path: url.pathname + url.search,
      body,
      headers: req.headers,
      at: Date.now(),
    });
    return Response.json({ ok: true }, { status: 201 });
  });
  const sql = postgres(DB_URL, { max: 2, prepare: false, onnotice: () => {} });
  const worker = await startPgNetWorker({ dbUrl: DB_URL, batchPauseMs: 50 });
  try {
    await fn({ sql, url: `http://127.0.0.1:${server.addr.port}`, received });
  } finally {
    await worker.close();
    await sql.end();
    await server.shutdown();
  }
}

async function responseFor(sql: postgres.Sql, id: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await sql`select * from net._http_response where id = ${id}`;
    if (row) return row;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no response recorded for request ${id} within ${timeoutMs} ms`);
}

Deno.test("http_post is sent only after the enqueuing transaction commits", async () => {
  await withHarness(async ({ sql, url, received }) => {
    let committedAt = 0;
    const id = await sql.begin(async (tx) => {
      const [{ id }] = await tx`select net.http_post(${url + "/hook"}, '{"job": 7}'::jsonb,
        '{"a": "b c"}'::jsonb, '{"Content-Type": "application/json", "Authorization": "Bearer t"}'::jsonb) as id`;
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(received.length, 0, "a request left before its transaction committed");
      return id as string;
    });
    committedAt = Date.now();
    const row = await responseFor(sql, id);
    assert.equal(received.length, 1);
    assert.ok(received[0].at >= committedAt - 5);
    assert.equal(received[0].method, "POST");
    assert.equal(received[0].path, "/hook?a=b%20c");
    assert.deepEqual(JSON.parse(received[0].body), { job: 7 });
    assert.equal(received[0].headers.get("authorization"), "Bearer t");
    assert.equal(row.status_code, 201);
    assert.deepEqual(JSON.parse(row.content), { ok: true });
    assert.equal(row.timed_out, false);
  });
});

Deno.test("a rolled-back http_post is never sent", async () => {
  await withHarness(async ({ sql, url, received }) => {
    await sql.begin(async (tx) => {
      await tx`select net.http_post(${url + "/never"})`;
      await tx`select 1/0`;
    }).catch(() => {});
    // A later committed request proves the worker ran in between.
    const [{ id }] = await sql`select net.http_get(${url + "/later"}, '{"x": "1"}'::jsonb) as id`;
    await responseFor(sql, id);
    assert.deepEqual(received.map((r) => r.path), ["/later?x=1"]);
  });
});

Deno.test("http_post refuses a non-JSON content type, like pg_net", async () => {
  const sql = postgres(DB_URL, { max: 1, onnotice: () => {} });
  try {
    await assert.rejects(
      sql`select net.http_post('http://127.0.0.1:9/x', '{}'::jsonb, '{}'::jsonb, '{"Content-Type": "text/plain"}'::jsonb)`,
      /Content-Type header must be "application\/json"/,
    );
  } finally {
    await sql.end();
  }
});

Deno.test("timeouts and connection failures are recorded, not lost", async () => {
  await withHarness(async ({ sql, url }) => {
    const [{ slow }] = await sql`select net.http_post(${url + "/slow"}, timeout_milliseconds => 200) as slow`;
    const [{ dead }] = await sql`select net.http_get('http://127.0.0.1:9/closed') as dead`;
    const timedOut = await responseFor(sql, slow);
    assert.equal(timedOut.timed_out, true);
    assert.equal(timedOut.error_msg, "Timeout was reached");
    assert.equal(timedOut.status_code, null);
    const refused = await responseFor(sql, dead);
    assert.equal(refused.status_code, null);
    assert.match(refused.error_msg, /Couldn't connect to server/);
  });
});

Deno.test("check_worker_is_up sees the worker", async () => {
  await withHarness(async ({ sql }) => {
    await sql`select net.check_worker_is_up()`;
  });
});
