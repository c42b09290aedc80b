/**
 * The local Edge Functions runtime: a stand-in for Supabase's edge runtime that the local gateway mounts at
 * `/functions/v1/`. Workers are OS processes (worker_process.ts), so CPU time and memory can be measured and
 * limited per worker, and the hosted limits and status codes are reproduced. Under the default `per_worker`
 * policy, concurrent requests of a function share its active worker as on the platform (pool.ts); `per_request`
 * and `oneshot` give every request a worker of its own (FunctionsRuntimeOptions.policy, else config.toml).
 *
 * Request path: `/functions/v1/<name>[/rest][?query]` → 405 for methods other than POST, GET, PUT, PATCH,
 * DELETE, OPTIONS → 404 for unknown or disabled functions → 401 when verify_jwt fails → the function sees
 * `<origin>/<name>/rest?query` with the caller's method, headers and streamed body.
 *
 * Invariants:
 * - Every request that reached a worker (or tried to boot one) yields exactly one InvocationRecord, added
 *   when the invocation is over (body sent and its waitUntil tasks settled, or the worker died).
 * - Every worker process started yields one WorkerRecord (`workers()`), kept after it ended.
 * - Gateway rejections (401/404/405) and requests after close() (503) are not invocations: no record.
 * - close() resolves only when every worker process has exited and every record has been written.
 */
import { checkJwt } from "./auth.ts";
import { FunctionsConfig, type FunctionSpec } from "./config.ts";
import { buildWorkerEnv } from "./env.ts";
import { invoke } from "./invocation.ts";
import { InvocationLog } from "./invocation_log.ts";
import { FunctionPool, type Lease } from "./pool.ts";
import type { BeforeUnloadReason } from "./protocol.ts";
import { bootError, idleTimeout, methodNotAllowed, notFound, unavailable } from "./responses.ts";
import { Supervisor } from "./supervisor.ts";
import { delay, within } from "./timer.ts";
import {
  DEFAULT_LIMITS,
  type InvocationRecord,
  type Limits,
  type LogFn,
  type Outcome,
  type Policy,
  type WorkerRecord,
} from "./types.ts";
import { type Usage, WorkerProcess } from "./worker_process.ts";

export type { InvocationRecord, Limits, Outcome, Policy, WorkerRecord } from "./types.ts";

export interface FunctionsRuntimeOptions {
  /** Directory holding `<name>/index.ts`, e.g. /work/main/supabase/functions. */
  functionsDir: string;
  /** config.toml with `[functions.<name>]` blocks and `[edge_runtime] policy`. */
  configToml: string;
  /** Variables injected into every worker (SUPABASE_URL, SUPABASE_DB_URL, …); override the defaults. */
  env: Record<string, string>;
  /** Optional KEY=VALUE secrets file (supabase/functions/.env); ignored when it does not exist. */
  envFile?: string;
  limits?: Partial<Limits>;
  /** Worker policy; overrides `[edge_runtime] policy` of config.toml (default there: per_worker). */
  policy?: Policy;
  /** Most worker processes per function (default 16); further requests queue. */
  maxWorkersPerFunction?: number;
  /** Structured events: boot, log, invocation, shutdown, kill_all. Default: JSON lines on stderr. */
  log?: LogFn;
  /** Optional file to which every InvocationRecord is appended as one JSON line. */
  invocationsLog?: string;
}

export interface FunctionsRuntime {
  handle(req: Request): Promise<Response>;
  invocations(): InvocationRecord[];
  /** Every worker started (most recent WORKER_CAPACITY), live or ended. */
  workers(): WorkerRecord[];
  killAll(reason?: string): Promise<void>;
  /**
   * Fault injection: does to every live worker of `fn` what the supervisor does when a limit nears (retires it,
   * for "cpu" and "wall_clock", then dispatches `beforeunload` with `reason`); the execution ids it reached.
   */
  beforeunload(fn: string, reason: BeforeUnloadReason): Promise<string[]>;
  close(): Promise<void>;
}

const ALLOWED_METHODS = new Set(["POST", "GET", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const ROUTE = /^\/functions\/v1\/([^/]+)(\/.*)?$/;
const RECORD_CAPACITY = 10_000;
const WORKER_CAPACITY = 2_000;
/** Time close() gives beforeunload("termination") listeners and unfinished invocations. */
const CLOSE_GRACE_MS = 1000;

async function readEnv(options: FunctionsRuntimeOptions, log: LogFn): Promise<Record<string, string>> {
  let envFile = options.envFile;
  if (envFile !== undefined) {
    try {
      await Deno.stat(envFile);
    } catch {
      envFile = undefined;
    }
  }
  return await buildWorkerEnv(options.env, envFile, log);
}

export function createFunctionsRuntime(options: FunctionsRuntimeOptions): FunctionsRuntime {
  const log: LogFn = options.log ?? ((event) => console.error(JSON.stringify(event)));
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const maxWorkers = options.maxWorkersPerFunction ?? 16;
  const config = new FunctionsConfig(options.configToml, options.functionsDir);
  const records = new InvocationLog(
    RECORD_CAPACITY,
    options.invocationsLog,
    (error) => log({ event: "invocations_log_error", message: String(error) }),
  );
  const envReady = readEnv(options, log);
  envReady.catch((error) => log({ event: "env_error", message: String(error) }));
  const pools = new Map<string, FunctionPool>();
  const started: WorkerProcess[] = [];
  const unfinished = new Set<Promise<void>>();
  const supervisor = new Supervisor(() => pools.values(), limits);
  let closed = false;
  supervisor.start();

  function poolFor(spec: FunctionSpec, policy: Policy, env: Record<string, string>): FunctionPool {
    let pool = pools.get(spec.name);
    if (pool === undefined) {
      const memoryMb = limits.enforce ? limits.memoryMb : null;
      pool = new FunctionPool(spec, policy, maxWorkers, (s, p) => {
        const worker = new WorkerProcess({ spec: s, policy: p, env, memoryMb, log });
        started.push(worker);
        if (started.length > WORKER_CAPACITY) started.shift();
        return worker;
      });
      pools.set(spec.name, pool);
    }
    return pool;
  }

  function track(finished: Promise<void>): void {
    unfinished.add(finished);
    finished.finally(() => unfinished.delete(finished));
  }

  async function run(req: Request, spec: FunctionSpec, url: URL, rest: string): Promise<Response> {
    const arrivedAt = performance.now();
    const path = `/${spec.name}${rest}`;
    const policy = options.policy ?? await config.policy();
    const base = { id: crypto.randomUUID(), function: spec.name, method: req.method, path };
    const startedAt = new Date().toISOString();
    const record = (
      fields: { status: number; outcome: Outcome; responseAt: number; finishedAt: number; usage?: Usage },
      lease: Lease | null,
    ) => {
      const full: InvocationRecord = {
        ...base,
        status: fields.status,
        startedAt,
        wallMs: Math.round(fields.finishedAt - arrivedAt),
        responseMs: Math.round(fields.responseAt - arrivedAt),
        cpuMs: fields.usage?.cpuMs ?? 0,
        workerCpuMs: fields.usage?.workerCpuMs ?? 0,
        sharedWith: fields.usage?.sharedWith ?? 0,
        peakMemoryMb: fields.usage?.peakMemoryMb ?? 0,
        peakRssMb: fields.usage?.peakRssMb ?? 0,
        coldStart: lease?.cold ?? false,
        bootMs: lease?.cold ? lease.worker.bootMs : null,
        executionId: lease?.worker.executionId ?? null,
        outcome: fields.outcome,
        policy,
      };
      records.add(full);
      log({ event: "invocation", ...full });
    };
    const answerNow = (response: Response, outcome: Outcome, lease: Lease | null) => {
      const now = performance.now();
      record({ status: response.status, outcome, responseAt: now, finishedAt: now }, lease);
      return response;
    };

    const env = await envReady;
    const pool = poolFor(spec, policy, env);
    const idle = delay(limits.requestIdleMs);
    const idleAbort = new AbortController();
    idle.promise.then(() => idleAbort.abort());
    let lease: Lease;
    try {
      lease = await pool.acquire(spec, policy, idleAbort.signal);
    } catch {
      idle.cancel();
      return closed ? unavailable() : answerNow(idleTimeout(), "idle_timeout", null);
    }
    const { worker } = lease;
    // A cold worker, or (per_worker) one still booting that this request shares with the one that spawned it.
    if (lease.cold || !worker.isReady) {
      const boot = await Promise.race([
        worker.ready.then(() => "ready" as const, () => "failed" as const),
        idle.promise.then(() => "idle" as const),
      ]);
      if (boot === "failed") {
        idle.cancel();
        pool.release(worker, false);
        return answerNow(bootError(), "boot_error", lease);
      }
      if (boot === "idle") {
        worker.ready.then(() => pool.release(worker, true), () => {});
        return answerNow(idleTimeout(), "idle_timeout", lease);
      }
    }
    idle.cancel();
    const { response, finished } = await invoke({
      id: base.id,
      shared: policy === "per_worker",
      worker,
      req,
      targetUrl: `${url.origin}${path}${url.search}`,
      idleDeadline: arrivedAt + limits.requestIdleMs,
      onFinished: (result) => {
        record(result, lease);
        pool.release(worker, policy !== "oneshot");
      },
    });
    track(finished);
    return response;
  }

  return {
    async handle(req) {
      if (closed) return unavailable();
      const url = new URL(req.url);
      const route = ROUTE.exec(url.pathname);
      if (route === null) return notFound();
      if (!ALLOWED_METHODS.has(req.method)) return methodNotAllowed();
      const spec = await config.resolve(route[1]);
      if (spec === null || !spec.enabled) return notFound();
      if (spec.verifyJwt) {
        const denied = await checkJwt(req);
        if (denied !== null) return denied;
      }
      return await run(req, spec, url, route[2] ?? "");
    },

    invocations: () => records.list(),

    workers: () => started.map((worker) => worker.record()),

    async killAll(reason = "runtime killed") {
      log({ event: "kill_all", reason });
      const workers = [...pools.values()].flatMap((pool) => [...pool.workers]);
      for (const worker of workers) worker.kill("killed");
      await Promise.all(workers.map((worker) => worker.exited()));
    },

    async beforeunload(fn, reason) {
      const pool = pools.get(fn);
      const workers = pool ? [...pool.workers].filter((worker) => !worker.dead && worker.isReady) : [];
      log({ event: "inject_beforeunload", function: fn, reason, workers: workers.length });
      for (const worker of workers) {
        if (reason === "cpu" || reason === "wall_clock") pool!.retire(worker, reason);
      }
      await Promise.all(workers.map((worker) => worker.beforeunload(reason)));
      return workers.map((worker) => worker.executionId);
    },

    async close() {
      closed = true;
      supervisor.stop();
      for (const pool of pools.values()) pool.close();
      const workers = [...pools.values()].flatMap((pool) => [...pool.workers]);
      const goodbyes = workers.map((worker) => worker.beforeunload("termination"));
      await within(Promise.all([...goodbyes, ...unfinished]), CLOSE_GRACE_MS, undefined);
      for (const worker of workers) worker.kill("termination");
      await Promise.all([...pools.values()].map((pool) => pool.exited()));
      await Promise.all([...unfinished]);
      await records.flush();
    },
  };
}
