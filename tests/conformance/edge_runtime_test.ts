/**
 * Conformance of the local Edge Runtime stand-in (local-stack/functions/) with Supabase's edge runtime under the
 * `per_worker` policy, which `supabase functions serve` (config.toml `[edge_runtime] policy`) and hosted projects
 * use. Each test starts the stand-in on a loopback port with the fixture functions of
 * local-stack/functions/testdata/ (real HTTP, real worker processes) and asserts what the platform's source
 * does. Sources (supabase/edge-runtime at b1edf45, supabase/cli at 1d1e719):
 *
 * - Reuse: a request for a function goes to its active worker unless that one is retired
 *   (`supabase/edge-runtime:crates/base/src/worker/pool.rs` maybe_active_worker, send_request →
 *   WorkerAlreadyRetired); hosted docs: "An isolate is a worker that can handle multiple requests"
 *   (`supabase/supabase:apps/docs/content/troubleshooting/edge-function-cpu-limits.mdx`).
 * - CPU accumulates per isolate across its requests; at the soft limit the worker is retired (no new request, a
 *   fresh worker takes the next), at the hard limit it is terminated with ShutdownReason::CPUTime
 *   (`crates/base/src/worker/supervisor/strategy_per_worker.rs`, CPUUsageMetrics::Leave and the CPU alarm).
 * - beforeunload "cpu" at `--dispatch-beforeunload-cpu-ratio` (default 90) % of the hard limit
 *   (`crates/base/src/runtime/mod.rs` beforeunload_cpu_threshold, `cli/src/flags.rs`), dispatched as
 *   `CustomEvent("beforeunload", { cancelable: true, detail: { reason } })` (`ext/runtime/js/bootstrap.js`).
 * - A retired worker with nothing pending is dropped (beforeunload "early_drop", strategy_per_worker.rs
 *   can_early_drop / v8_handler.rs v8_handle_early_drop_beforeunload).
 * - Requests still open when the worker is terminated fail with WorkerRequestCancelled
 *   (`crates/base/src/worker/utils.rs` send_user_worker_request), which the CLI's main worker answers 546
 *   WORKER_LIMIT (`supabase/cli:apps/cli-go/internal/functions/serve/templates/main.ts` DENO_SB_ERROR_MAP).
 * - Local limits: soft 1000 ms, hard 2000 ms, 256 MB, forceCreate false (same main.ts).
 * - `per_request` / `oneshot` (pool.rs SupervisorPolicy::PerRequest): one request per worker at a time.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createFunctionsRuntime,
  type FunctionsRuntime,
  type FunctionsRuntimeOptions,
  type InvocationRecord,
  type WorkerRecord,
} from "../../local-stack/functions/runtime.ts";

const TESTDATA = fileURLToPath(new URL("../../local-stack/functions/testdata", import.meta.url));
const TEST_TIMEOUT_MS = 60_000;

interface Ctx {
  base: string;
  rt: FunctionsRuntime;
  tmp: string;
}

async function withRuntime(options: Partial<FunctionsRuntimeOptions>, body: (ctx: Ctx) => Promise<void>) {
  const tmp = await Deno.makeTempDir({ prefix: "edge-runtime-conformance-" });
  const rt = createFunctionsRuntime({
    functionsDir: join(TESTDATA, "functions"),
    configToml: join(TESTDATA, "config.toml"),
    env: { SUPABASE_URL: "http://127.0.0.1:54321", SUPABASE_DB_URL: "postgresql://postgres@127.0.0.1/x" },
    log: () => {},
    ...options,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, rt.handle);
  let timer = 0;
  try {
    await Promise.race([
      body({ base: `http://127.0.0.1:${server.addr.port}/functions/v1`, rt, tmp }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`test exceeded ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await rt.close();
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

async function call(url: string) {
  const started = performance.now();
  const res = await fetch(url);
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json, ms: performance.now() - started };
}

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const records = (rt: FunctionsRuntime, fn: string, n: number): Promise<InvocationRecord[]> =>
  waitFor(() => {
    const list = rt.invocations().filter((r) => r.function === fn);
    return list.length >= n ? list : undefined;
  }, `${n} records of ${fn}`);

const workerOf = (rt: FunctionsRuntime, executionId: unknown): WorkerRecord => {
  const found = rt.workers().find((w) => w.executionId === executionId);
  assert.ok(found, `no worker record for ${executionId}`);
  return found;
};

Deno.test("per_worker (pool.rs maybe_active_worker): concurrent requests of a function share its active worker", async () => {
  await withRuntime({}, async ({ base, rt }) => {
    const results = await Promise.all(Array.from({ length: 4 }, () => call(`${base}/sleep?ms=700`)));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(new Set(results.map((r) => r.json.executionId)).size, 1, "one worker served all four");
    const list = await records(rt, "sleep", 4);
    assert.equal(list.filter((r) => r.coldStart).length, 1, "one cold start");
    assert.ok(list.every((r) => r.policy === "per_worker"));
    assert.ok(list.some((r) => r.sharedWith >= 3), `sharedWith ${list.map((r) => r.sharedWith)}`);
    const worker = workerOf(rt, results[0].json.executionId);
    assert.equal(worker.invocations, 4);
    assert.equal(worker.peakConcurrency, 4, "the four were open in it at once");
    // A later request still goes to the same (warm) worker.
    const later = await call(`${base}/sleep?ms=10`);
    assert.equal(later.json.executionId, results[0].json.executionId);
  });
});

Deno.test("per_worker (strategy_per_worker.rs CPUUsageMetrics::Leave): CPU accumulates per worker across its requests", async () => {
  await withRuntime({}, async ({ base, rt }) => {
    // Three concurrent 250 ms burns: 750 ms on one worker, below the 1000 ms soft limit (no retirement).
    const results = await Promise.all(Array.from({ length: 3 }, () => call(`${base}/limits-probe?burn=250`)));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
    assert.equal(new Set(results.map((r) => r.json.executionId)).size, 1);
    const list = await records(rt, "limits-probe", 3);
    const worker = workerOf(rt, results[0].json.executionId);
    assert.ok(worker.cpuMs >= 650, `worker CPU ${worker.cpuMs} ms is the sum of its requests'`);
    assert.equal(worker.retired, null, "below the soft limit the worker is not retired");
    const attributed = list.reduce((sum, r) => sum + r.cpuMs, 0);
    assert.ok(
      Math.abs(attributed - worker.cpuMs) <= 0.15 * worker.cpuMs + 30,
      `per-request CPU adds up to the worker's: ${attributed} vs ${worker.cpuMs}`,
    );
    const last = list.reduce((a, b) => (a.workerCpuMs > b.workerCpuMs ? a : b));
    assert.ok(last.workerCpuMs >= 650, `workerCpuMs ${last.workerCpuMs}`);
    // A fourth request of 400 ms crosses the soft limit on the same worker: it is the worker's total that counts.
    const fourth = await call(`${base}/limits-probe?burn=400`);
    assert.equal(fourth.status, 200);
    assert.equal(fourth.json.executionId, results[0].json.executionId);
    await waitFor(() => workerOf(rt, fourth.json.executionId).retired === "cpu" || undefined, "retirement");
  });
});

Deno.test("per_worker soft limit (strategy_per_worker.rs early_retire_fn): retired, no new request, dropped with beforeunload early_drop; the next request gets a fresh worker", async () => {
  await withRuntime({}, async ({ base, rt, tmp }) => {
    const file = join(tmp, "beforeunload.jsonl");
    const first = await call(`${base}/limits-probe?burn=1200&file=${file}`);
    assert.equal(first.status, 200, "crossing the soft limit does not stop the request");
    assert.deepEqual(first.json.beforeunload, [], "no beforeunload before 90 % of the hard limit");
    const old = await waitFor(() => {
      const w = workerOf(rt, first.json.executionId);
      return w.ended !== null ? w : undefined;
    }, "the retired worker to be dropped");
    assert.equal(old.retired, "cpu");
    assert.equal(old.ended, "early_drop");
    assert.deepEqual(old.beforeunload, ["early_drop"]);
    const lines = (await Deno.readTextFile(file)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines, [{ reason: "early_drop", cancelable: true }]);
    const next = await call(`${base}/limits-probe?burn=10`);
    assert.equal(next.status, 200);
    assert.notEqual(next.json.executionId, first.json.executionId, "a retired worker takes no new request");
    const [, second] = await records(rt, "limits-probe", 2);
    assert.equal(second.coldStart, true);
  });
});

Deno.test("per_worker (runtime/mod.rs beforeunload_cpu_threshold, bootstrap.js): beforeunload reason cpu at 90 % of the hard limit, while requests are still open", async () => {
  await withRuntime({}, async ({ base, rt, tmp }) => {
    const file = join(tmp, "beforeunload.jsonl");
    // Two requests share the worker; together they pass 1800 ms: each stops burning when the event arrives.
    const results = await Promise.all([
      call(`${base}/limits-probe?burn=1950&untilBeforeunload=1&file=${file}`),
      call(`${base}/limits-probe?burn=1950&untilBeforeunload=1`),
    ]);
    assert.deepEqual(results.map((r) => r.status), [200, 200]);
    assert.equal(results[0].json.executionId, results[1].json.executionId);
    for (const r of results) {
      assert.deepEqual(r.json.beforeunload, ["cpu"], "both requests saw it (one isolate)");
    }
    const lines = (await Deno.readTextFile(file)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines[0], { reason: "cpu", cancelable: true });
    const worker = workerOf(rt, results[0].json.executionId);
    assert.equal(worker.retired, "cpu");
    assert.ok(worker.cpuMs >= 1800 * 0.95, `beforeunload came at ${worker.cpuMs} ms CPU`);
    assert.ok(worker.cpuMs < 2000 || worker.ended !== "cpu", "not killed: the requests stopped in time");
  });
});

Deno.test("per_worker hard limit (ShutdownReason::CPUTime; WorkerRequestCancelled → 546 WORKER_LIMIT): the worker is killed and every request still open in it fails", async () => {
  await withRuntime({}, async ({ base, rt }) => {
    const sleeper = call(`${base}/limits-probe?sleep=20000`);
    await waitFor(
      () => rt.workers().find((w) => w.function === "limits-probe" && w.invocations === 1),
      "boot",
    );
    const burner = call(`${base}/limits-probe?burn=Infinity`);
    const [slept, burnt] = await Promise.all([sleeper, burner]);
    for (const r of [slept, burnt]) {
      assert.equal(r.status, 546);
      assert.deepEqual(r.json, {
        code: "WORKER_LIMIT",
        message: "Worker failed to respond due to a resource limit (please check logs)",
      });
    }
    assert.ok(slept.ms < 15_000, "the sleeping request ended with its worker, not after its sleep");
    const list = await records(rt, "limits-probe", 2);
    assert.deepEqual(list.map((r) => r.outcome), ["cpu", "cpu"]);
    assert.equal(list[0].executionId, list[1].executionId, "both were in the one worker");
    const worker = workerOf(rt, list[0].executionId);
    assert.equal(worker.ended, "cpu");
    assert.ok(worker.cpuMs >= 1900, `killed at ${worker.cpuMs} ms`);
    assert.deepEqual(worker.beforeunload, ["cpu"], "beforeunload cpu came first");
    const next = await call(`${base}/limits-probe?burn=10`);
    assert.equal(next.status, 200);
    assert.notEqual(next.json.executionId, worker.executionId);
  });
});

Deno.test("per_worker (strategy_per_worker.rs memory_limit_rx → ShutdownReason::Memory): memory is the worker's, shared by its requests", async () => {
  await withRuntime({ limits: { memoryMb: 96 } }, async ({ base, rt }) => {
    // Each request alone would stay far below 96 MB (it sleeps after 40 MB); together they pass it.
    const first = call(`${base}/limits-probe?hold=40&sleep=20000`);
    await waitFor(
      () => rt.workers().find((w) => w.function === "limits-probe" && w.invocations === 1),
      "boot",
    );
    const second = call(`${base}/limits-probe?hold=40&sleep=20000`);
    const third = call(`${base}/limits-probe?hold=40&sleep=20000`);
    const results = await Promise.all([first, second, third]);
    assert.deepEqual(results.map((r) => r.status), [546, 546, 546]);
    const list = await records(rt, "limits-probe", 3);
    assert.deepEqual(list.map((r) => r.outcome), ["memory", "memory", "memory"]);
    assert.equal(new Set(list.map((r) => r.executionId)).size, 1, "one worker, one memory budget");
    assert.equal(workerOf(rt, list[0].executionId).ended, "memory");
  });
});

Deno.test("per_worker (strategy_per_worker.rs wall_clock_duration_alert): the wall clock is the worker's lifetime, not a request's", async () => {
  await withRuntime({ limits: { wallClockMs: 3000 } }, async ({ base, rt }) => {
    const early = call(`${base}/limits-probe?sleep=20000`);
    await waitFor(
      () => rt.workers().find((w) => w.function === "limits-probe" && w.invocations === 1),
      "boot",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Retired at half the lifetime: a request after that goes to a fresh worker; one before it shares the old one.
    const late = call(`${base}/limits-probe?sleep=20000`);
    const [a, b] = await Promise.all([early, late]);
    assert.equal(a.status, 546);
    const list = await records(rt, "limits-probe", 2);
    const first = list.find((r) => r.status === 546 && r.outcome === "wall_clock");
    assert.ok(first, `the first request ended with its worker's lifetime: ${JSON.stringify(list)}`);
    const worker = workerOf(rt, first.executionId);
    assert.equal(worker.ended, "wall_clock");
    assert.deepEqual(worker.beforeunload.includes("wall_clock"), true);
    if (worker.invocations === 2) {
      assert.equal(b.status, 546, "a request that shared the worker ends with it, whatever its own age");
    }
  });
});

Deno.test("per_worker: waitUntil tasks are each request's own (a request ends with its tasks, not its neighbours')", async () => {
  await withRuntime({}, async ({ base, rt, tmp }) => {
    const slow = call(`${base}/background?ms=1500&file=${join(tmp, "slow.txt")}`);
    await waitFor(() => rt.workers().find((w) => w.function === "background" && w.invocations === 1), "boot");
    const quick = await call(`${base}/background/quick?ms=10&file=${join(tmp, "quick.txt")}`);
    assert.equal(quick.status, 200);
    assert.equal((await slow).status, 200);
    const list = await records(rt, "background", 2);
    const a = list.find((r) => r.path === "/background")!;
    const b = list.find((r) => r.path === "/background/quick")!;
    assert.equal(a.executionId, b.executionId, "one worker");
    assert.ok(a.wallMs >= 1500, `the slow request lasts as long as its task (${a.wallMs} ms)`);
    assert.ok(b.wallMs < 1000, `the quick one does not wait for its neighbour's task (${b.wallMs} ms)`);
  });
});

for (const policy of ["per_request", "oneshot"] as const) {
  Deno.test(`${policy} (pool.rs SupervisorPolicy::PerRequest): every request has a worker of its own`, async () => {
    await withRuntime({ policy }, async ({ base, rt }) => {
      const results = await Promise.all(
        Array.from({ length: 3 }, () => call(`${base}/limits-probe?burn=300`)),
      );
      assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
      assert.equal(new Set(results.map((r) => r.json.executionId)).size, 3, "three workers");
      const list = await records(rt, "limits-probe", 3);
      assert.ok(list.every((r) => r.sharedWith === 0 && r.policy === policy));
      for (const r of list) {
        const worker = workerOf(rt, r.executionId);
        assert.ok(worker.cpuMs < 1000, `each worker has only its own request's CPU (${worker.cpuMs} ms)`);
        assert.equal(worker.peakConcurrency, 1);
      }
    });
  });
}
