/**
 * Contract tests of the assembled local stack (scripts/stack.sh up): a database trigger calling
 * net.http_post reaches a real Edge Function through the gateway only after its transaction commits, and never
 * when it rolls back — the property the pipeline's registration relies on — and the gateway serves Storage and
 * Functions on one base URL with the local keys.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { SECRET_KEY, SERVICE_ROLE_KEY } from "./keys.ts";

const API = Deno.env.get("SUPABASE_URL") ?? "http://127.0.0.1:54321";
const DB_URL = Deno.env.get("SUPABASE_DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("a trigger's net.http_post reaches a function only after commit, never on rollback", async () => {
  const sql = postgres(DB_URL, { max: 1, onnotice: () => {} });
  const schema = `stack_test_${crypto.randomUUID().slice(0, 8)}`;
  try {
    await sql.unsafe(`
      create schema ${schema};
      create table ${schema}.events (id int primary key, request_id bigint);
      create function ${schema}.call_function() returns trigger language plpgsql as $$
      begin
        new.request_id := net.http_post(
          url := '${API}/functions/v1/csv-import-dispatch',
          body := jsonb_build_object('reason', 'stack contract test ' || new.id),
          headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ${SERVICE_ROLE_KEY}'),
          timeout_milliseconds := 30000);
        return new;
      end $$;
      create trigger call_function before insert on ${schema}.events for each row execute function ${schema}.call_function();`);

    const response = (id: string, db: postgres.Sql | postgres.TransactionSql = sql) =>
      db`select status_code, content from net._http_response where id = ${id}`;

    // Committed: the request waits for the commit, then reaches the function, which answers 200 with JSON.
    const committed = await sql.begin(async (tx) => {
      const [row] = await tx.unsafe(`insert into ${schema}.events (id) values (1) returning request_id`);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(
        (await response(row.request_id, tx)).length,
        0,
        "the request left before its transaction committed",
      );
      return String(row.request_id);
    });
    const [answer] = await waitFor("the committed request's response", async () => {
      const rows = await response(committed);
      return rows.length > 0 ? rows : undefined;
    });
    assert.equal(answer.status_code, 200, `dispatch answered ${answer.status_code}: ${answer.content}`);
    assert.equal(typeof JSON.parse(answer.content).claimed, "number");

    // Rolled back: the request never leaves. A later committed request proves the worker ran after it.
    let rolledBack = "";
    await sql.begin(async (tx) => {
      const [row] = await tx.unsafe(`insert into ${schema}.events (id) values (2) returning request_id`);
      rolledBack = String(row.request_id);
      throw new Error("roll back");
    }).catch(() => {});
    const [later] = await sql.unsafe(`insert into ${schema}.events (id) values (3) returning request_id`);
    await waitFor(
      "the later request's response",
      async () => (await response(String(later.request_id))).length ? true : undefined,
    );
    assert.equal((await response(rolledBack)).length, 0, "a rolled-back request was sent");
  } finally {
    await sql.unsafe(`drop schema if exists ${schema} cascade`);
    await sql.end();
  }
});

Deno.test("the gateway serves Storage and Functions on one base URL, with the new and the legacy keys", async () => {
  for (const key of [SECRET_KEY, SERVICE_ROLE_KEY]) {
    const buckets = await fetch(`${API}/storage/v1/bucket`, {
      headers: { Authorization: `Bearer ${key}`, apikey: key },
    });
    assert.equal(buckets.status, 200);
    assert.ok(
      (await buckets.json()).some((b: { id: string }) => b.id === "csv-uploads"),
      "csv-uploads bucket from config.toml",
    );
  }
  const refused = await fetch(`${API}/functions/v1/csv-import-dispatch`, { method: "POST", body: "{}" });
  assert.equal(refused.status, 401, "a pipeline function refuses a caller without the service key");
  await refused.body?.cancel();
  const health = await fetch(`${API}/_local/health`);
  assert.equal((await health.json()).status, "ok");
});
