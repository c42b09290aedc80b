/**
 * End-to-end tests of the local Edge Functions runtime: real worker processes on loopback, fixture
 * functions under testdata/functions, the runtime mounted behind a Deno.serve on port 0 and called with fetch.
 *
 * Invariants: every test starts its own runtime and server and closes both (so no process, port or timer
 * outlives it), and every test is bounded by TEST_TIMEOUT_MS.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { ANON_KEY, PUBLISHABLE_KEY, SECRET_KEY, SERVICE_ROLE_KEY } from "../keys.ts";
import { HOST_PASSTHROUGH } from "./env.ts";
import { createFunctionsRuntime, type FunctionsRuntime, type FunctionsRuntimeOptions } from "./runtime.ts";
import type { InvocationRecord } from "./types.ts";

const TESTDATA = fileURLToPath(new URL("./testdata", import.meta.url));
const TEST_TIMEOUT_MS = 45_000;

interface Ctx {
  /** `http://127.0.0.1:<port>/functions/v1` */
  base: string;
  origin: string;
  rt: FunctionsRuntime;
  events: Record<string, unknown>[];
  tmp: string;
}

async function withRuntime(
  options: Partial<FunctionsRuntimeOptions>,
  body: (ctx: Ctx) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "functions-runtime-test-" });
  const events: Record<string, unknown>[] = [];
  const rt = createFunctionsRuntime({
    functionsDir: join(TESTDATA, "functions"),
    configToml: join(TESTDATA, "config.toml"),
    env: { SUPABASE_URL: "http://127.0.0.1:54321", SUPABASE_DB_URL: "postgresql://postgres@127.0.0.1/x" },
    log: (event) => events.push(event),
    ...options,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, rt.handle);
  const origin = `http://127.0.0.1:${server.addr.port}`;
  let timer = 0;
  try {
    await Promise.race([
      body({ base: `${origin}/functions/v1`, origin, rt, events, tmp }),
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

/** fetch that always consumes the body; returns status, text and elapsed ms. */
async function call(url: string, init?: RequestInit) {
  const started = performance.now();
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - started, headers: res.headers };
}

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function recordsOf(rt: FunctionsRuntime, fn: string): InvocationRecord[] {
  return rt.invocations().filter((r) => r.function === fn);
}

function waitForRecords(rt: FunctionsRuntime, fn: string, count: number): Promise<InvocationRecord[]> {
  return waitFor(() => {
    const found = recordsOf(rt, fn);
    return found.length >= count ? found : undefined;
  }, `${count} record(s) of ${fn}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("a function sees exactly the injected environment", async () => {
  Deno.env.set("PARENT_ONLY_SENTINEL", "must-not-leak");
  try {
    const tmpEnv = await Deno.makeTempFile({ suffix: ".env" });
    await Deno.writeTextFile(tmpEnv, '# secrets\nMY_SECRET=shh\nQUOTED="a b"\nSUPABASE_URL=http://ignored\n');
    try {
      await withRuntime({ envFile: tmpEnv }, async ({ base, rt }) => {
        const { status, text } = await call(`${base}/env-dump`);
        assert.equal(status, 200);
        const env: Record<string, string> = JSON.parse(text);
        const injected = [
          "SUPABASE_URL",
          "SUPABASE_DB_URL",
          "SUPABASE_ANON_KEY",
          "SUPABASE_SERVICE_ROLE_KEY",
          "SUPABASE_PUBLISHABLE_KEYS",
          "SUPABASE_SECRET_KEYS",
          "SUPABASE_JWKS",
          "SB_EXECUTION_ID",
          "MY_SECRET",
          "QUOTED",
        ];
        const host = HOST_PASSTHROUGH.filter((name) => Deno.env.get(name) !== undefined);
        assert.deepEqual(Object.keys(env).sort(), [...injected, ...host].sort());
        assert.equal(env.SUPABASE_URL, "http://127.0.0.1:54321");
        assert.equal(env.SUPABASE_DB_URL, "postgresql://postgres@127.0.0.1/x");
        assert.equal(env.SUPABASE_ANON_KEY, ANON_KEY);
        assert.equal(env.SUPABASE_SERVICE_ROLE_KEY, SERVICE_ROLE_KEY);
        assert.deepEqual(JSON.parse(env.SUPABASE_PUBLISHABLE_KEYS), { default: PUBLISHABLE_KEY });
        assert.deepEqual(JSON.parse(env.SUPABASE_SECRET_KEYS), { default: SECRET_KEY });
        assert.equal(JSON.parse(env.SUPABASE_JWKS).keys[0].kty, "oct");
        assert.equal(env.MY_SECRET, "shh");
        assert.equal(env.QUOTED, "a b");
        assert.equal(env.PARENT_ONLY_SENTINEL, undefined);
        const [record] = await waitForRecords(rt, "env-dump", 1);
        assert.equal(env.SB_EXECUTION_ID, record.executionId);
      });
    } finally {
      await Deno.remove(tmpEnv);
    }
  } finally {
    Deno.env.delete("PARENT_ONLY_SENTINEL");
  }
});

Deno.test("verify_jwt: keys, JWTs and the opt-out", async () => {
  await withRuntime({}, async ({ base }) => {
    const secure = `${base}/secure`;
    const missing = await call(secure);
    assert.equal(missing.status, 401);
    assert.deepEqual(JSON.parse(missing.text), { code: 401, message: "Missing authorization header" });
    const garbage = await call(secure, { headers: { authorization: "Bearer not.a.jwt" } });
    assert.equal(garbage.status, 401);
    assert.deepEqual(JSON.parse(garbage.text), { code: 401, message: "Invalid JWT" });
    const legacyApikeyOnly = await call(secure, { headers: { apikey: ANON_KEY } });
    assert.equal(legacyApikeyOnly.status, 401);
    const anon = await call(secure, { headers: { authorization: `Bearer ${ANON_KEY}` } });
    assert.equal(anon.status, 200);
    assert.equal(JSON.parse(anon.text).authorization, `Bearer ${ANON_KEY}`);
    assert.equal((await call(secure, { headers: { authorization: `Bearer ${SECRET_KEY}` } })).status, 200);
    assert.equal((await call(secure, { headers: { apikey: PUBLISHABLE_KEY } })).status, 200);
    assert.equal((await call(secure, { method: "OPTIONS" })).status, 200);
    assert.equal((await call(`${base}/default-export`)).status, 200);
  });
});

Deno.test("routing: handler styles, the request the function sees, HTML relabelling, 404 and 405", async () => {
  await withRuntime({}, async ({ base, origin, rt }) => {
    const byDefault = await call(`${base}/default-export/a/b?x=1`, { method: "PATCH" });
    assert.equal(byDefault.status, 200);
    assert.deepEqual(JSON.parse(byDefault.text), {
      style: "default",
      method: "PATCH",
      pathname: "/default-export/a/b",
      search: "?x=1",
    });
    const byOptions = await call(`${base}/serve-options/rest?q=2`, {
      method: "POST",
      headers: { "x-custom": "yes", "content-type": "text/plain" },
      body: "hello",
    });
    assert.equal(byOptions.status, 200);
    assert.deepEqual(JSON.parse(byOptions.text), {
      style: "options",
      method: "POST",
      href: `${origin}/serve-options/rest?q=2`,
      pathname: "/serve-options/rest",
      search: "?q=2",
      host: new URL(origin).host,
      contentLength: "5",
      custom: "yes",
      body: "hello",
    });
    const mapped = await call(`${base}/custom-entry`);
    assert.equal(mapped.status, 200);
    assert.equal(mapped.text, "hello from the import map");
    const htmlGet = await call(`${base}/html`);
    assert.equal(htmlGet.headers.get("content-type"), "text/plain; charset=utf-8");
    const htmlPost = await call(`${base}/html`, { method: "POST" });
    assert.equal(htmlPost.headers.get("content-type"), "text/html; charset=utf-8");
    const unknown = await call(`${base}/no-such-function`);
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.text).code, "NOT_FOUND");
    assert.equal((await call(`${base}/disabled`)).status, 404);
    assert.equal((await call(`${base}/_shared`)).status, 404);
    assert.equal((await call(`${base}/default-export`, { method: "HEAD" })).status, 405);
    await waitForRecords(rt, "custom-entry", 1);
    assert.equal(recordsOf(rt, "disabled").length, 0);
  });
});

Deno.test("EdgeRuntime.waitUntil (per_request): response first, task completes, worker busy until it does", async () => {
  await withRuntime({ policy: "per_request" }, async ({ base, rt, tmp }) => {
    const file = join(tmp, "done.txt");
    const first = await call(`${base}/background?ms=800&file=${file}`);
    assert.equal(first.status, 200);
    assert.equal(await exists(file), false, "the response must arrive before the background task ends");
    const second = await call(`${base}/background/second?ms=10&file=${join(tmp, "other.txt")}`);
    assert.equal(second.status, 200);
    const records = await waitForRecords(rt, "background", 2);
    const a = records.find((r) => r.path === "/background")!;
    const b = records.find((r) => r.path === "/background/second")!;
    assert.equal(await exists(file), true, "the background task must complete");
    assert.ok(a.responseMs < 800, `responseMs ${a.responseMs}`);
    assert.ok(a.wallMs >= 800, `wallMs ${a.wallMs} must cover the background task`);
    assert.notEqual(a.executionId, b.executionId, "a worker with a pending task is not reused");
    const third = await call(`${base}/background?ms=10&file=${join(tmp, "third.txt")}`);
    assert.equal(third.status, 200);
    assert.equal((await waitForRecords(rt, "background", 3))[2].coldStart, false);
  });
});

Deno.test("CPU limit: a busy loop is killed with 546 and the next call gets a new worker", async () => {
  await withRuntime({}, async ({ base, rt, events }) => {
    const killed = await call(`${base}/cpu-burn`);
    assert.equal(killed.status, 546);
    assert.deepEqual(JSON.parse(killed.text), {
      code: "WORKER_LIMIT",
      message: "Worker failed to respond due to a resource limit (please check logs)",
    });
    assert.ok(killed.ms < 10_000, `killed after ${killed.ms} ms`);
    const [record] = await waitForRecords(rt, "cpu-burn", 1);
    assert.equal(record.outcome, "cpu");
    assert.equal(record.status, 546);
    assert.ok(record.cpuMs >= 1500, `cpuMs ${record.cpuMs}`);
    assert.ok(events.some((e) => e.event === "shutdown" && e.message === "CPU time limit reached"));
    const next = await call(`${base}/cpu-burn?ms=10`);
    assert.equal(next.status, 200);
    const [, second] = await waitForRecords(rt, "cpu-burn", 2);
    assert.equal(second.coldStart, true);
    assert.notEqual(second.executionId, record.executionId);
  });
});

Deno.test("memory limit: allocations past the limit end with 546 and outcome memory", async () => {
  await withRuntime({ limits: { memoryMb: 64 } }, async ({ base, rt, events }) => {
    for (const kind of ["buffer", "heap"]) {
      const res = await call(`${base}/memory-hog?kind=${kind}`);
      assert.equal(res.status, 546, `${kind}: ${res.text}`);
    }
    const records = await waitForRecords(rt, "memory-hog", 2);
    assert.deepEqual(records.map((r) => r.outcome), ["memory", "memory"]);
    assert.ok(records[0].peakMemoryMb >= 48, `peakMemoryMb ${records[0].peakMemoryMb}`);
    assert.ok(events.some((e) => e.event === "shutdown" && e.message === "Memory limit exceeded"));
  });
});

Deno.test("memory limit: V8's whole heap is sized from it, young generation included, as edge-runtime does", async () => {
  // edge-runtime gives a user worker's isolate `heap_limits(0, memory_limit_bytes)` (crates/base/src/runtime/mod.rs),
  // from which V8 derives both generations; the heap limit V8 reports is then the memory limit, not the old space's
  // cap plus a default young generation (--max-old-space-size=256 reports 448 MB).
  for (const memoryMb of [64, 256]) {
    await withRuntime({ limits: { memoryMb } }, async ({ base }) => {
      const res = await call(`${base}/heap-limit`);
      assert.equal(res.status, 200, res.text);
      const limitMb = JSON.parse(res.text).heapSizeLimit / (1024 * 1024);
      assert.ok(
        limitMb <= memoryMb && limitMb >= memoryMb * 0.9,
        `${memoryMb} MB limit: V8 heap limit ${limitMb} MB`,
      );
    });
  }
});

Deno.test("wall clock: beforeunload(wall_clock) fires before the kill", async () => {
  await withRuntime({ limits: { wallClockMs: 2000 } }, async ({ base, rt, events, tmp }) => {
    const file = join(tmp, "beforeunload.json");
    const res = await call(`${base}/wall-clock?file=${file}`);
    assert.equal(res.status, 546);
    assert.ok(res.ms < 5000, `killed after ${res.ms} ms`);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(file)), { reason: "wall_clock", cancelable: true });
    const [record] = await waitForRecords(rt, "wall-clock", 1);
    assert.equal(record.outcome, "wall_clock");
    assert.ok(events.some((e) => e.event === "shutdown" && e.message === "wall clock time limit reached"));
  });
});

Deno.test("errors: uncaught exception 500, syntax and import errors 503", async () => {
  const dir = await Deno.makeTempDir({ prefix: "functions-runtime-broken-" });
  try {
    await Deno.mkdir(join(dir, "broken"));
    await Deno.writeTextFile(join(dir, "broken", "index.ts"), 'Deno.serve(() => new Response("never" ;\n');
    await Deno.writeTextFile(join(dir, "config.toml"), "[functions.broken]\nverify_jwt = false\n");
    await withRuntime({ functionsDir: dir, configToml: join(dir, "config.toml") }, async ({ base, rt }) => {
      const syntax = await call(`${base}/broken`);
      assert.equal(syntax.status, 503);
      assert.equal(JSON.parse(syntax.text).code, "BOOT_ERROR");
      const [record] = await waitForRecords(rt, "broken", 1);
      assert.equal(record.outcome, "boot_error");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await withRuntime({}, async ({ base, rt }) => {
    const thrown = await call(`${base}/throws`);
    assert.equal(thrown.status, 500);
    assert.equal(JSON.parse(thrown.text).code, "WORKER_ERROR");
    const missing = await call(`${base}/import-error`);
    assert.equal(missing.status, 503);
    assert.equal(JSON.parse(missing.text).code, "BOOT_ERROR");
    assert.equal((await waitForRecords(rt, "throws", 1))[0].outcome, "error");
    assert.equal((await waitForRecords(rt, "import-error", 1))[0].outcome, "boot_error");
    assert.equal((await call(`${base}/throws`)).status, 500, "the worker survives a handler exception");
    const [first, second] = await waitForRecords(rt, "throws", 2);
    assert.equal(first.executionId, second.executionId);
  });
});

Deno.test("measurement: CPU of a 300 ms burn and of a 500 ms sleep", async () => {
  await withRuntime({}, async ({ base, rt }) => {
    assert.equal((await call(`${base}/cpu-burn?ms=300`)).status, 200);
    assert.equal((await call(`${base}/sleep?ms=500`)).status, 200);
    const [burn] = await waitForRecords(rt, "cpu-burn", 1);
    const [sleep] = await waitForRecords(rt, "sleep", 1);
    assert.ok(burn.cpuMs >= 200 && burn.cpuMs <= 1500, `burn cpuMs ${burn.cpuMs}`);
    assert.ok(sleep.cpuMs < 150, `sleep cpuMs ${sleep.cpuMs}`);
    assert.ok(sleep.wallMs >= 500, `sleep wallMs ${sleep.wallMs}`);
    assert.ok(sleep.peakRssMb > sleep.peakMemoryMb && sleep.peakMemoryMb >= 0);
  });
});

Deno.test("concurrency (per_request): six slow calls run in parallel on several workers", async () => {
  await withRuntime({ policy: "per_request" }, async ({ base, rt }) => {
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 6 }, () => call(`${base}/sleep?ms=1000`)));
    const total = performance.now() - started;
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    assert.ok(total < 3000, `6 × 1 s calls took ${total} ms`);
    const records = await waitForRecords(rt, "sleep", 6);
    assert.ok(new Set(records.map((r) => r.executionId)).size >= 3);
  });
});

Deno.test("queueing (per_request): beyond maxWorkersPerFunction requests wait for a free worker", async () => {
  await withRuntime({ policy: "per_request", maxWorkersPerFunction: 2 }, async ({ base, rt }) => {
    const results = await Promise.all(Array.from({ length: 4 }, () => call(`${base}/sleep?ms=400`)));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200]);
    const records = await waitForRecords(rt, "sleep", 4);
    assert.equal(new Set(records.map((r) => r.executionId)).size, 2);
    assert.equal(records.filter((r) => r.coldStart).length, 2);
  });
});

Deno.test("idle timeout: no response within requestIdleMs gives 504", async () => {
  await withRuntime({ limits: { requestIdleMs: 500 } }, async ({ base, rt }) => {
    const res = await call(`${base}/sleep?ms=1500`);
    assert.equal(res.status, 504);
    assert.ok(res.ms < 1400, `answered after ${res.ms} ms`);
    const [record] = await waitForRecords(rt, "sleep", 1);
    assert.equal(record.outcome, "idle_timeout");
    assert.ok(record.wallMs >= 1500, "the worker stays busy until its handler returns");
  });
});

Deno.test("killAll: in-flight calls end with 546 'killed', the next call boots a new worker; JSONL log", async () => {
  const logFile = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await withRuntime({ invocationsLog: logFile }, async ({ base, rt }) => {
      const pending = call(`${base}/sleep?ms=5000`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await rt.killAll("test fault injection");
      const res = await pending;
      assert.equal(res.status, 546);
      assert.ok(res.ms < 4000, `answered after ${res.ms} ms`);
      assert.equal((await call(`${base}/sleep?ms=10`)).status, 200);
      const [killed, next] = await waitForRecords(rt, "sleep", 2);
      assert.equal(killed.outcome, "killed");
      assert.equal(next.coldStart, true);
    });
    const lines = (await Deno.readTextFile(logFile)).trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((r) => r.outcome), ["killed", "ok"]);
  } finally {
    await Deno.remove(logFile);
  }
});
