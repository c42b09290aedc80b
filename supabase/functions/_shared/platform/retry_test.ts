/** Table tests of the in-place backoff formula and of which errors count as transient. */
import assert from "node:assert/strict";
import { backoffMs, isTransient, TransientError } from "./retry.ts";

Deno.test("backoff: exponential, capped, with equal jitter (half the delay is always kept)", () => {
  const table: [number, number, number][] = [
    [1, 50, 100],
    [2, 100, 200],
    [3, 200, 400],
    [4, 400, 800],
    [5, 800, 1600],
    [6, 1000, 2000],
    [20, 1000, 2000],
  ];
  for (const [attempt, low, high] of table) {
    assert.equal(backoffMs(attempt, 100, 2000, 0), low, `attempt ${attempt} at jitter 0`);
    assert.equal(backoffMs(attempt, 100, 2000, 1), high, `attempt ${attempt} at jitter 1`);
  }
});

Deno.test("transient errors are recognised; the file's errors are not", () => {
  const pg = (code: string) => Object.assign(new Error("x"), { code });
  for (
    const e of [
      new TransientError("x"),
      pg("40001"),
      pg("40P01"),
      pg("08006"),
      pg("57P01"),
      pg("ECONNRESET"),
      new TypeError("error sending request: connection reset"),
    ]
  ) {
    assert.ok(isTransient(e), String((e as { code?: string }).code ?? e.message));
  }
  for (const e of [pg("23505"), pg("22P02"), new Error("File is empty"), "text"]) assert.ok(!isTransient(e));
});
