/**
 * The isolate budget: chunk slots (the bound on chunks processed at once in one isolate, their order, the release
 * at shutdown) and the work account every load's meter adds to.
 */
import assert from "node:assert/strict";
import { ChunkSlots, isolateSpent, isolateWork, WorkMeter } from "./isolate_budget.ts";

/** Lets every settled promise's callbacks run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("chunk slots: at most `limit` at once, the rest served in arrival order", async () => {
  const slots = new ChunkSlots(2);
  const admitted: number[] = [];
  for (let i = 1; i <= 5; i++) slots.acquire().then(() => admitted.push(i));
  await settle();
  assert.deepEqual(admitted, [1, 2]);
  assert.equal(slots.open, 2);
  assert.equal(slots.waiting, 3);
  slots.release();
  await settle();
  assert.deepEqual(admitted, [1, 2, 3]);
  slots.release();
  slots.release();
  await settle();
  assert.deepEqual(admitted, [1, 2, 3, 4, 5]);
  assert.equal(slots.open, 2);
  slots.release();
  slots.release();
  assert.equal(slots.open, 0);
});

Deno.test("chunk slots: a new request does not overtake one that waits", async () => {
  const slots = new ChunkSlots(1);
  const admitted: string[] = [];
  await slots.acquire();
  slots.acquire().then(() => admitted.push("waiting"));
  slots.release(); // the slot goes to the waiter, not to the next caller
  slots.acquire().then(() => admitted.push("newcomer"));
  await settle();
  assert.deepEqual(admitted, ["waiting"]);
  slots.release();
  await settle();
  assert.deepEqual(admitted, ["waiting", "newcomer"]);
});

Deno.test("chunk slots: when the runtime stops the isolate, every waiter is let through at once", async () => {
  const stop = new AbortController();
  const slots = new ChunkSlots(1, stop.signal);
  const admitted: number[] = [];
  for (let i = 1; i <= 4; i++) slots.acquire().then(() => admitted.push(i));
  await settle();
  assert.deepEqual(admitted, [1]);
  stop.abort(new Error("beforeunload cpu"));
  await settle();
  assert.deepEqual(admitted, [1, 2, 3, 4], "waiters admitted (they hand their chunks back)");
  assert.equal(slots.waiting, 0);
  let late = false;
  slots.acquire().then(() => late = true);
  await settle();
  assert.ok(late, "a request after the signal is admitted at once");
});

Deno.test("work account: every load's meter adds to the isolate's, which decides when the isolate is spent", () => {
  const before = isolateWork.ms;
  const config = { isolateWorkMs: before + 100 };
  const a = new WorkMeter();
  const b = new WorkMeter();
  a.add(40);
  b.add(30);
  assert.equal(a.ms, 40);
  assert.equal(b.ms, 30);
  assert.equal(isolateWork.ms, before + 70);
  assert.equal(isolateSpent(config), false);
  b.add(30);
  assert.equal(isolateSpent(config), true, "two loads of 40 and 60 ms spend a 100 ms isolate budget");
});
