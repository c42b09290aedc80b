/**
 * Shared types and defaults of the local Edge Functions runtime.
 *
 * Invariant: DEFAULT_LIMITS are the hosted figures (docs "Limits" page and the CLI's main worker):
 * CPU 2000 ms hard, 256 MB memory, 150 s wall clock (free plan), 150 s request idle timeout.
 */

/**
 * How requests of one function are given workers (edge-runtime `crates/base/src/worker/pool.rs`, SupervisorPolicy):
 * - `per_worker` (the default, as `supabase functions serve` and hosted): concurrent requests share the function's
 *   active worker while it lives; CPU, memory and wall clock are the worker's, across all its requests.
 * - `per_request`: a worker serves one request (and its waitUntil tasks) at a time and is reused when idle: every
 *   request is isolated from the others (the stand-in's mode before per_worker sharing; kept to test under both).
 * - `oneshot`: as per_request, but every worker is dropped after its request.
 */
export type Policy = "per_worker" | "per_request" | "oneshot";

export const POLICIES: readonly Policy[] = ["per_worker", "per_request", "oneshot"];

/** How an invocation ended. */
export type Outcome =
  | "ok"
  | "error"
  | "cpu"
  | "memory"
  | "wall_clock"
  | "idle_timeout"
  | "boot_error"
  | "killed";

/** Resource limits applied to workers. */
export interface Limits {
  /** Hard CPU budget of a worker, in ms (the worker retires at half of it, like the CLI's 1000/2000). */
  cpuMs: number;
  /** Memory budget of a worker above its post-boot RSS, in MB; also V8's whole heap (--max-heap-size). */
  memoryMb: number;
  /** Lifetime of a worker process, in ms (retired at 50 %, beforeunload at 90 %, killed at 100 %). */
  wallClockMs: number;
  /** Time a request may wait for response headers, in ms, before the caller gets 504. */
  requestIdleMs: number;
  /** When false, limits are measured and reported but never enforced. */
  enforce: boolean;
}

export const DEFAULT_LIMITS: Limits = {
  cpuMs: 2000,
  memoryMb: 256,
  wallClockMs: 150_000,
  requestIdleMs: 150_000,
  enforce: true,
};

/** Share of a limit at which `beforeunload` is dispatched (edge-runtime's default ratios are 90 %). */
export const BEFOREUNLOAD_RATIO = 0.9;

/** Structured log sink (boot, log, invocation, shutdown events). */
export type LogFn = (event: Record<string, unknown>) => void;

/** One finished invocation. */
export interface InvocationRecord {
  id: string;
  function: string;
  method: string;
  /** Path the function saw, `/<name>/rest` (query string excluded). */
  path: string;
  /** Status sent to the caller (546/500/503/504 when the runtime answered for the worker). */
  status: number;
  /** ISO time the request reached the runtime. */
  startedAt: string;
  /** Arrival until the body was fully sent and every waitUntil task settled (or the worker died). */
  wallMs: number;
  /** Arrival until response headers were sent to the caller (includes queueing and a cold boot). */
  responseMs: number;
  /**
   * CPU time of the worker's main thread attributed to this invocation (boot excluded): alone on its worker, all
   * of it; sharing the worker (per_worker), each sampling interval's CPU (SAMPLE_INTERVAL_MS) split equally among
   * the invocations open in it, so the records of one worker add up to its CPU.
   */
  cpuMs: number;
  /** CPU used by the worker so far (every invocation it served, this one included), at this one's end. */
  workerCpuMs: number;
  /** Most other invocations open on the same worker at once while this one was (0: it ran alone). */
  sharedWith: number;
  /** Peak RSS during the invocation minus the RSS at its start: memory added while it ran (by anything on the
   * worker, when shared). */
  peakMemoryMb: number;
  /** Raw peak RSS of the worker process during the invocation (includes the ~65 MB Deno baseline). */
  peakRssMb: number;
  coldStart: boolean;
  /** Time to boot the worker, when this invocation started it. */
  bootMs: number | null;
  /** SB_EXECUTION_ID of the worker process, or null when no worker served the request. */
  executionId: string | null;
  outcome: Outcome;
  /** The worker policy the invocation ran under. */
  policy: Policy;
}

/** Why a worker took no new request before it ended (null: it never retired). */
export type RetireReason = "cpu" | "wall_clock" | "config" | "oneshot" | "shutdown";

/** One worker process, from spawn to exit (GET /_local/functions/workers lists them). */
export interface WorkerRecord {
  executionId: string;
  function: string;
  policy: Policy;
  /** ISO time the process was spawned. */
  spawnedAt: string;
  bootMs: number | null;
  /** Invocations it served (so far). */
  invocations: number;
  /** Most invocations it had open at once. */
  peakConcurrency: number;
  /** CPU of its main thread since boot. */
  cpuMs: number;
  /** Peak RSS above its RSS right after boot. */
  peakMemoryMb: number;
  retired: RetireReason | null;
  /** `beforeunload` reasons dispatched to it, in order. */
  beforeunload: string[];
  /** Why it ended (a DeathCause), or null while it lives. */
  ended: string | null;
  /** ISO time it ended, or null while it lives. */
  endedAt: string | null;
}
