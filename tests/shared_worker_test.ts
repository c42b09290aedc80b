/**
 * The pipeline under the per_worker runtime (issue 13): chunk requests share one isolate, its CPU adds up across
 * them, and the runtime may announce (beforeunload) that it is stopping the isolate in the middle of a chunk.
 *
 * - beforeunload mid-chunk: the open batch rolls back, the chunk is handed back at once without spending an
 *   attempt (csv_import.yield_chunk) and csv-import-dispatch is kicked, so a fresh worker resumes it within
 *   seconds (not when its lease expires); the job ends with the file's rows exactly once.
 * - four chunks at once in one worker, default settings: no chunk interrupted, no worker killed, every row
 *   exactly once, and a worker processes at most WORKER_CHUNKS_PER_ISOLATE of them at once (the others wait in
 *   it: pipeline/isolate_budget.ts).
 * - an isolate whose chunks spent its work budget (WORKER_ISOLATE_WORK_MS, at the soft limit: retired) hands
 *   the rest of its open loads on and sends later chunks straight back; fresh workers finish the job exactly.
 *
 * The beforeunload is injected through the local-only POST /_local/functions/beforeunload, which does what the
 * runtime's supervisor does at 90 % of the CPU limit: retire the worker, then dispatch beforeunload "cpu".
 * Skipped (passes trivially) when the stack runs an isolated policy (per_request/oneshot): the second test needs
 * sharing; the first holds under both and runs under both.
 */
import assert from "node:assert/strict";
import { SERVICE_ROLE_KEY } from "../local-stack/keys.ts";
import type { WorkerRecord } from "../local-stack/functions/types.ts";
import { DEFAULTS } from "../supabase/functions/_shared/platform/config.ts";
import {
  assertExactJob,
  blockAtRow,
  functionEvents,
  prepareFile,
  waitForNewLease,
} from "./support/faults.ts";
import {
  connect,
  describeJob,
  E2E,
  jobByObject,
  Scope,
  stack,
  SUPABASE_URL,
  upload,
  waitForJob,
} from "./support/stack.ts";

async function admin(path: string, method = "GET"): Promise<unknown> {
  const res = await fetch(`${SUPABASE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${SERVICE_ROLE_KEY}` },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

const chunkWorkers = async (): Promise<WorkerRecord[]> =>
  ((await admin("/_local/functions/workers")) as WorkerRecord[]).filter((w) =>
    w.function === "csv-import-chunk"
  );

Deno.test(
  {
    name:
      "beforeunload mid-chunk: handed back at once with its attempt, resumed in seconds, rows exactly once",
    ...E2E,
  },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "beforeunload");
    try {
      const p = await prepareFile(sql, scope, { rows: 40_000, seed: 71, label: "beforeunload" });
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: p.target,
        chunkSizeBytes: 4 * 1024 * 1024,
        maxParallelChunks: 1,
      });
      const name = scope.object("orders.csv");
      // Row 8,000: in the first COPY piece of the first chunk's second batch (rows 5,001–15,000, two pieces), so
      // the beforeunload is seen with that batch open: it rolls back, and the chunk resumes after row 5,000.
      const gate = await blockAtRow(sql, scope, p.target, 8_000);
      await upload(name, { path: p.file });
      await gate.blocked("the import to block at the gate", () => describeJob(sql, name));
      const job = (await jobByObject(sql, name))!;
      const [chunk] = await sql<{ id: string; lease_token: string; attempts: number }[]>`
        select id::text, lease_token::text, attempts from csv_import.chunks
        where job_id = ${job.id} and kind = 'load' and status = 'running' limit 1`;
      const { workers } = (await admin(
        "/_local/functions/beforeunload?function=csv-import-chunk&reason=cpu",
        "POST",
      )) as { workers: string[] };
      assert.ok(workers.length >= 1, "a chunk worker was running");
      const interruptedAt = performance.now();
      await gate.release(); // the piece at the gate completes; the batch then rolls back at the next piece
      const seconds = await waitForNewLease(sql, chunk, {
        since: interruptedAt,
        objectName: name,
        timeoutMs: 15_000,
        intervalMs: 100,
      });
      console.log(`interrupted chunk resumed after ${seconds.toFixed(1)} s`);
      assert.ok(seconds < 10, `resumed after ${seconds.toFixed(1)} s, not after its lease`);
      const done = await waitForJob(sql, name, 120_000);
      await assertExactJob(sql, done, p);
      const [after] = await sql<{ attempts: number }[]>`
        select attempts from csv_import.chunks where id = ${chunk.id}`;
      assert.equal(after.attempts, chunk.attempts, "the interruption spent no attempt");
      const events = await functionEvents(job);
      const interrupted = events.filter((e) => e.event === "chunk_interrupted");
      assert.equal(interrupted.length, 1, JSON.stringify(interrupted));
      assert.equal(interrupted[0].handed_back, "yielded");
      assert.match(String(interrupted[0].reason), /\(cpu\)/);
      const old = (await chunkWorkers()).filter((w) => workers.includes(w.executionId));
      assert.ok(old.every((w) => w.retired === "cpu" && w.beforeunload.includes("cpu")));
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  {
    name: "four chunks at once share a worker at default settings: none interrupted, rows exactly once",
    ...E2E,
  },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "shared");
    try {
      const p = await prepareFile(sql, scope, { rows: 200_000, seed: 72, label: "shared" });
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: p.target,
        chunkSizeBytes: 2 * 1024 * 1024,
        maxParallelChunks: 4,
      });
      const name = scope.object("orders.csv");
      await upload(name, { path: p.file });
      const job = await waitForJob(sql, name, 180_000);
      const chunks = await assertExactJob(sql, job, p, { minChunks: 8 });
      const events = await functionEvents(job);
      assert.deepEqual(events.filter((e) => e.event === "chunk_interrupted"), [], "no chunk interrupted");
      assert.ok(
        chunks.every((c) => c.max_attempts === 1),
        `one attempt per chunk: ${JSON.stringify(chunks)}`,
      );
      // The workers that logged this job's chunk events (a worker alive from an earlier test may be one of them:
      // "new since the upload" once found none, when an earlier test's worker served the whole job).
      const jobWorkers = new Set(events.filter((e) => e.fn === "csv-import-chunk").map((e) => e.executionId));
      const mine = (await chunkWorkers()).filter((w) => jobWorkers.has(w.executionId));
      assert.ok(mine.length >= 1, "chunk workers ran");
      assert.deepEqual(mine.filter((w) => w.ended === "cpu" || w.ended === "memory"), [], "no worker killed");
      if (mine[0].policy === "per_worker") {
        assert.ok(
          Math.max(...mine.map((w) => w.peakConcurrency)) >= 2,
          `chunk requests shared a worker: ${mine.map((w) => w.peakConcurrency)}`,
        );
        assert.ok(mine.every((w) => w.cpuMs < 2000), `CPU per worker: ${mine.map((w) => w.cpuMs)}`);
      }
      const atOnce = chunksAtOnce(events);
      assert.ok(atOnce.size >= 1, "the job's chunk events give each chunk's span (at, ms)");
      assert.ok(
        Math.max(...atOnce.values()) <= DEFAULTS.WORKER_CHUNKS_PER_ISOLATE,
        `chunks processed at once per worker (WORKER_CHUNKS_PER_ISOLATE ${DEFAULTS.WORKER_CHUNKS_PER_ISOLATE}): ${[
          ...atOnce.values(),
        ]}`,
      );
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  {
    name:
      "isolate work budget spent: open loads hand their rest on, later chunks go straight back, rows exactly once",
    ...E2E,
  },
  async () => {
    // A small CPU limit (FUNCTIONS_CPU_LIMIT_MS 1000: retired at 500 ms) and a work budget below that soft limit
    // (WORKER_ISOLATE_WORK_MS 300), so that an 800,000-row job (104 MB, 8 MiB chunks) spends several isolates'
    // budgets: an isolate's open loads (up to WORKER_CHUNKS_PER_ISOLATE) hand their rest on once it has done 300 ms
    // of work. (With the budget at the soft limit, 500, whether a load was still open when it was spent depended on
    // the machine's speed: fresh-clone CI once saw no hand-on at all.)
    // The gateway is restarted with the default policy: under scripts/test.sh's per_request rerun that would
    // change the mode of the tests after this one, so it runs only under per_worker (the newest worker's policy).
    const newest = ((await admin("/_local/functions/workers")) as WorkerRecord[]).at(-1);
    if (newest !== undefined && newest.policy !== "per_worker") {
      console.log(`  skipped: the stack runs ${newest.policy}`);
      return;
    }
    const envFile = new URL("../supabase/functions/.env", import.meta.url).pathname;
    const saved = await Deno.readTextFile(envFile).catch(() => null);
    const savedLimit = Deno.env.get("FUNCTIONS_CPU_LIMIT_MS");
    const sql = connect();
    const scope = new Scope(sql, "isolatebudget");
    try {
      await Deno.writeTextFile(envFile, `${saved ?? ""}\nWORKER_ISOLATE_WORK_MS=300\n`);
      Deno.env.set("FUNCTIONS_CPU_LIMIT_MS", "1000");
      await stack("restart-api");
      const p = await prepareFile(sql, scope, { rows: 800_000, seed: 73, label: "isolatebudget" });
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: p.target,
        maxParallelChunks: 4,
      });
      const name = scope.object("orders.csv");
      await upload(name, { path: p.file });
      const job = await waitForJob(sql, name, 180_000);
      await assertExactJob(sql, job, p, { minChunks: 6 });
      const events = await functionEvents(job);
      const handedOn = events.filter((e) =>
        e.event === "chunk_yielded" || (e.event === "chunk_handed_back" && e.handed_back === "yielded")
      );
      console.log(
        `  ${events.filter((e) => e.event === "chunk_yielded").length} loads handed their rest on, ` +
          `${events.filter((e) => e.event === "chunk_handed_back").length} chunks went straight back`,
      );
      const jobWorkers = new Set(events.filter((e) => e.fn === "csv-import-chunk").map((e) => e.executionId));
      const mine = (await chunkWorkers()).filter((w) => jobWorkers.has(w.executionId));
      assert.ok(handedOn.length >= 1, "the isolate budget handed work on");
      assert.ok(mine.length >= 2, `fresh workers took the handed-on work: ${mine.length}`);
      assert.deepEqual(mine.filter((w) => w.ended === "cpu" || w.ended === "memory"), [], "no worker killed");
    } finally {
      if (saved === null) await Deno.remove(envFile).catch(() => {});
      else await Deno.writeTextFile(envFile, saved);
      if (savedLimit === undefined) Deno.env.delete("FUNCTIONS_CPU_LIMIT_MS");
      else Deno.env.set("FUNCTIONS_CPU_LIMIT_MS", savedLimit);
      await stack("restart-api").catch(() => {}); // never leave the stack down or changed for the next test
      await scope.dispose();
      await sql.end();
    }
  },
);

/**
 * The most chunks each chunk worker processed at once, from its chunk events (each logs when it ended and how
 * long it took): a sweep over start and end times, an end before a start at the same millisecond.
 */
function chunksAtOnce(events: Record<string, unknown>[]): Map<string, number> {
  const edges = new Map<string, [number, number][]>();
  for (const e of events) {
    if (e.fn !== "csv-import-chunk" || typeof e.ms !== "number" || typeof e.at !== "string") continue;
    const end = Date.parse(e.at);
    const list = edges.get(String(e.executionId)) ?? [];
    list.push([end - e.ms, 1], [end, -1]);
    edges.set(String(e.executionId), list);
  }
  const most = new Map<string, number>();
  for (const [worker, list] of edges) {
    list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let open = 0;
    let peak = 0;
    for (const [, step] of list) peak = Math.max(peak, open += step);
    most.set(worker, peak);
  }
  return most;
}
