/**
 * The invocation loop (runInvocation) against a fake database: it processes the chunk it was given, then takes
 * the chunk dispatch keeps for it while the budget lasts (past it, dispatch posts that chunk to a new
 * invocation), and stops once dispatch keeps none or the runtime announces shutdown.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../platform/config.ts";
import type { Sql } from "../platform/db.ts";
import type { StorageClient } from "../platform/storage.ts";
import { runInvocation } from "./chunk_worker.ts";

const config = loadConfig({
  SUPABASE_URL: "http://x",
  SUPABASE_DB_URL: "postgresql://x",
  SUPABASE_SERVICE_ROLE_KEY: "service-jwt",
});

/**
 * A tagged-template stand-in for postgres.js: every chunk's context is gone (the lease moved on, so the chunk
 * is not processed and counts no work), and each claim returns the next of `claims`.
 */
function fakeSql(calls: string[], claims: { chunk_id: number; lease_token: string }[][]): Sql {
  const sql = (strings: TemplateStringsArray, ...values: unknown[]) => {
    const text = strings.join("$");
    if (text.includes("csv_import.chunk_context(")) {
      calls.push(`context ${values[0]}`);
      return Promise.resolve([{ context: null }]);
    }
    if (text.includes("csv_import.reclaim_and_claim_chunks(")) {
      calls.push("claim");
      const rows = (claims.shift() ?? []).map((c) => ({ ...c, job_id: 1, kind: "load", chunk_index: 0 }));
      return Promise.resolve(rows);
    }
    if (text.includes("csv_import.claim_rejects_files(")) return Promise.resolve([]);
    return Promise.reject(new Error(`unexpected statement: ${text}`));
  };
  return sql as unknown as Sql;
}

const storage = {} as StorageClient;

Deno.test("an invocation takes the chunk dispatch keeps for it, until dispatch keeps none", async () => {
  const calls: string[] = [];
  const sql = fakeSql(calls, [[{ chunk_id: 2, lease_token: "t2" }], []]);
  await runInvocation({ sql, config, storage }, { chunk_id: 1, lease_token: "t1" });
  assert.deepEqual(calls, ["context 1", "claim", "context 2", "claim"]);
});

Deno.test("an invocation whose runtime is stopping takes on nothing after its chunk", async () => {
  const calls: string[] = [];
  const sql = fakeSql(calls, [[{ chunk_id: 2, lease_token: "t2" }]]);
  const signal = AbortSignal.abort(new Error("stopping"));
  await runInvocation({ sql, config, storage, signal }, { chunk_id: 1, lease_token: "t1" });
  assert.deepEqual(calls, ["context 1"]);
});

Deno.test("an invocation whose budget is spent hands the next chunk to a new invocation", async () => {
  const calls: string[] = [];
  const posted: unknown[] = [];
  const sql = fakeSql(calls, [[{ chunk_id: 2, lease_token: "t2" }]]);
  const spent = loadConfig({
    SUPABASE_URL: "http://x",
    SUPABASE_DB_URL: "postgresql://x",
    SUPABASE_SERVICE_ROLE_KEY: "service-jwt",
    WORKER_INVOCATION_BUDGET_BYTES: "0",
  });
  const fetch = (_url: string | URL | Request, init?: RequestInit) => {
    posted.push(JSON.parse(String(init?.body)));
    return Promise.resolve(new Response(null, { status: 202 }));
  };
  const deps = { sql, config: spent, storage, fetch };
  await runInvocation(deps, { chunk_id: 1, lease_token: "t1" });
  assert.deepEqual(calls, ["context 1", "claim"]);
  assert.deepEqual(posted, [{ chunk_id: 2, lease_token: "t2" }]);
});
