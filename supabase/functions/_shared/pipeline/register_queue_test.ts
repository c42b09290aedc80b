/**
 * The register isolate's queue (RegistrationQueue) with registrations the test finishes by hand: at most
 * `concurrency` at once, in arrival order; a lone job answered at once; waiting jobs handed on in one call when
 * the runtime stops the isolate, and none started after; a failed registration frees its slot; an idle queue
 * takes the registrations the database says are waiting, each once.
 */
import assert from "node:assert/strict";
import type { RegisterOutcome } from "./register.ts";
import { RegistrationQueue } from "./register_queue.ts";

/**
 * A queue whose registrations stay open until `finish(jobId)`; records starts, outcomes and hand-offs. With
 * `database`: the job ids registrations_waiting would find, and the (after, limit) of every drain query.
 */
function harness(concurrency = 2, database?: { ids: number[]; queries: [number, number][] }) {
  const started: number[] = [];
  const registered: number[] = [];
  const handedOff: number[][] = [];
  const open = new Map<number, { resolve: (r: RegisterOutcome) => void; reject: (e: Error) => void }>();
  const finished: number[] = [];
  const background: Promise<unknown>[] = [];
  const controller = new AbortController();
  const queue = new RegistrationQueue({
    concurrency,
    register: (jobId) => {
      started.push(jobId);
      return new Promise((resolve, reject) => open.set(jobId, { resolve, reject }));
    },
    onRegistered: (result) => registered.push(result.jobId),
    handOff: (jobIds) => {
      handedOff.push(jobIds);
      return Promise.resolve();
    },
    background: (work) => background.push(work),
    signal: controller.signal,
    ...(database
      ? {
        waiting: (after: number, limit: number) => {
          database.queries.push([after, limit]);
          // A registration's commit comes before its promise settles: those finished are no longer waiting.
          const waiting = database.ids.filter((id) => id > after && !finished.includes(id));
          return Promise.resolve(waiting.slice(0, limit));
        },
      }
      : {}),
  });
  const running = () => [...open.keys()];
  const finish = async (jobId: number, error?: Error) => {
    const pending = open.get(jobId)!;
    open.delete(jobId);
    finished.push(jobId);
    if (error) pending.reject(error);
    else pending.resolve({ outcome: "planned", jobId, chunks: 1, bytes: 10 });
    await new Promise((r) => setTimeout(r, 0));
  };
  return { queue, started, registered, handedOff, running, finish, background, controller };
}

Deno.test("register queue: a lone job runs at once and its outcome is the answer", async () => {
  const h = harness();
  const answer = h.queue.submit(7);
  assert.deepEqual(h.running(), [7]);
  await h.finish(7);
  assert.deepEqual(await answer, { outcome: "planned", jobId: 7, chunks: 1, bytes: 10 });
  assert.deepEqual(h.registered, [7]);
  assert.equal(h.queue.idle, true);
});

Deno.test("register queue: at most `concurrency` at once, the rest in arrival order", async () => {
  const h = harness(2);
  const first = h.queue.submit(1);
  const second = h.queue.submit(2);
  assert.equal(await h.queue.submit(3), null, "a third waits: answered as queued");
  h.queue.enqueue([4, 5, 3]); // 3 is waiting already
  assert.deepEqual(h.running(), [1, 2]);
  await h.finish(2);
  assert.deepEqual(h.running(), [1, 3]);
  await h.finish(1);
  await h.finish(3);
  assert.deepEqual(h.running(), [4, 5]);
  await h.finish(5);
  await h.finish(4);
  await Promise.all([first, second, ...h.background]);
  assert.deepEqual(h.started, [1, 2, 3, 4, 5]);
  assert.deepEqual(h.registered, [2, 1, 3, 5, 4]);
  assert.equal(h.queue.idle, true);
});

Deno.test("register queue: once the runtime stops the isolate, the waiting jobs are handed on in one call", async () => {
  const h = harness(2);
  h.queue.enqueue([1, 2, 3, 4, 5]);
  assert.deepEqual(h.running(), [1, 2]);
  h.controller.abort(new Error("beforeunload cpu"));
  assert.deepEqual(h.handedOff, [[3, 4, 5]]);
  await h.finish(1);
  await h.finish(2);
  assert.deepEqual(h.started, [1, 2], "nothing started after the signal");
  assert.deepEqual(h.registered, [1, 2], "the open ones finished");
  h.queue.enqueue([6]);
  assert.deepEqual(h.handedOff, [[3, 4, 5], [6]], "a job queued after the signal is handed on at once");
  await Promise.all(h.background);
  assert.equal(h.queue.idle, true);
});

Deno.test("register queue: a registration that throws frees its slot for the next", async () => {
  const h = harness(1);
  h.queue.enqueue([1, 2]);
  await h.finish(1, new Error("database gone"));
  assert.deepEqual(h.running(), [2]);
  await h.finish(2);
  await Promise.all(h.background);
  assert.deepEqual(h.registered, [2]);
});

Deno.test("register queue: a stopping isolate refuses a hand-off instead of passing it on again", async () => {
  const h = harness(2);
  assert.equal(h.queue.acceptHandOff([1, 2, 3]), true, "a live isolate takes a hand-off");
  assert.deepEqual(h.running(), [1, 2]);
  h.controller.abort(new Error("beforeunload memory"));
  assert.deepEqual(h.handedOff, [[3]], "its own waiting job is handed on once");
  assert.equal(h.queue.acceptHandOff([4, 5]), false, "a stopping isolate refuses one");
  assert.deepEqual(h.handedOff, [[3]], "… and hands nothing on: no loop between isolates");
  await h.finish(1);
  await h.finish(2);
  await Promise.all(h.background);
  assert.deepEqual(h.started, [1, 2]);
});

Deno.test("register queue: falling idle, it takes the requested registrations pg_net has not delivered", async () => {
  // Jobs 1..7 were requested; pg_net delivered only job 1 so far (its next batch comes after a sleep). The fake
  // database finds every job not registered yet, as csv_import.registrations_waiting does.
  const database = { ids: [1, 2, 3, 4, 5, 6, 7], queries: [] as [number, number][] };
  const h = harness(2, database);
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
  const answer = h.queue.submit(1);
  assert.deepEqual(database.queries, [], "no query while a registration runs");
  await h.finish(1);
  await answer;
  await tick();
  assert.deepEqual(database.queries, [[0, 4]], "idle: one query for twice the slots");
  assert.deepEqual(h.running(), [2, 3]);
  // pg_net's next batch brings jobs taken already: the running ones are ignored, the waiting one kept once.
  h.queue.enqueue([2, 3, 4]);
  for (const id of [2, 3, 4, 5]) await h.finish(id);
  await tick();
  assert.deepEqual(database.queries, [[0, 4], [5, 4]], "the next drain starts after the last job taken");
  assert.deepEqual(h.running(), [6, 7]);
  for (const id of [6, 7]) await h.finish(id);
  await tick();
  assert.deepEqual(database.queries, [[0, 4], [5, 4], [7, 4]], "idle again: asks, finds none, stops");
  assert.deepEqual(h.started, [1, 2, 3, 4, 5, 6, 7], "each job registered once");
  assert.equal(h.queue.idle, true);
});

Deno.test("register queue: a stopping isolate takes nothing from the database", async () => {
  const database = { ids: [1, 2, 3], queries: [] as [number, number][] };
  const h = harness(2, database);
  const answer = h.queue.submit(1);
  h.controller.abort(new Error("beforeunload cpu"));
  await h.finish(1);
  await answer;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(database.queries, [], "no drain once the runtime stops the isolate");
  assert.deepEqual(h.started, [1]);
});
