/**
 * Issue 11, item 13: an unauthenticated POST with a large body must get the function's own 401, every time.
 *
 * The pipeline's functions answer 401 before reading the body. The local runtime's worker used to send that
 * answer while the body was still arriving; Deno's server then closed the connection, the runtime's upload to
 * the worker failed with a reset, and the caller got 500 WORKER_ERROR in 10–45 % of calls (1–2 MB bodies).
 * Bounded: 50 sequential requests on loopback, each with a 1–2 MB body.
 */
import assert from "node:assert/strict";
import { E2E, SUPABASE_URL } from "./support/stack.ts";

const FUNCTIONS = ["csv-import-register", "csv-import-dispatch", "csv-import-chunk", "csv-import-health"];
const REQUESTS = 50;

Deno.test("unauthenticated POSTs with 1–2 MB bodies get 401 every time", E2E, async () => {
  const statuses: Record<string, number> = {};
  const unexpected: string[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const name = FUNCTIONS[i % FUNCTIONS.length];
    const size = 1024 * 1024 + Math.floor((i / REQUESTS) * 1024 * 1024);
    const res = await fetch(`${SUPABASE_URL}/functions/v1/${name}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array(size).fill(0x20),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.status !== 401) unexpected.push(`${name} (${size} bytes): ${res.status} ${text.slice(0, 200)}`);
  }
  assert.deepEqual(unexpected, [], `statuses: ${JSON.stringify(statuses)}`);
});
