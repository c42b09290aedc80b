/**
 * The functions' database handle (supabase/functions/_shared/platform/db.ts) replaces a pool that answers
 * CONNECT_TIMEOUT: the first such failure that withRetry retries swaps in a new pool behind the same handle (the
 * retry and later callers use it), at most once per 2 s; any other transient failure leaves the pool alone.
 * Against the real local database; the pool's identity is read from postgres.js's per-instance `options`.
 */
import assert from "node:assert/strict";
import { db } from "../supabase/functions/_shared/platform/db.ts";
import { withRetry } from "../supabase/functions/_shared/platform/retry.ts";
import { DB_URL, E2E } from "./support/stack.ts";

const failOnce = (code: string) => (attempt: number) =>
  attempt === 1
    ? Promise.reject(Object.assign(new Error(`write ${code} undefined:undefined`), { code }))
    : Promise.resolve(attempt);

Deno.test({ name: "db pool: replaced after CONNECT_TIMEOUT, behind the same handle", ...E2E }, async () => {
  const sql = db(DB_URL, "db-pool-test");
  try {
    const pool = () => (sql as unknown as { options: object }).options;
    const [{ one }] = await sql`select 1 as one`;
    assert.equal(one, 1);

    const first = pool();
    assert.equal(await withRetry(failOnce("CONNECTION_CLOSED"), { baseMs: 1 }), 2);
    assert.equal(pool(), first, "another transient failure keeps the pool");

    assert.equal(await withRetry(failOnce("CONNECT_TIMEOUT"), { baseMs: 1 }), 2);
    const second = pool();
    assert.notEqual(second, first, "a CONNECT_TIMEOUT swaps the pool");
    const [{ two }] = await sql`select 2 as two`;
    assert.equal(two, 2, "the same handle queries through the new pool");
    await sql.begin(async (tx) => assert.equal((await tx`select 3 as n`)[0].n, 3));

    await withRetry(failOnce("CONNECT_TIMEOUT"), { baseMs: 1 });
    assert.equal(pool(), second, "at most one swap per 2 s");
  } finally {
    await sql.end();
  }
});
