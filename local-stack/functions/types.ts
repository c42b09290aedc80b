/**
 * Shared types and defaults of the local Edge Functions runtime.
 *
 * Invariant: DEFAULT_LIMITS are the hosted figures (docs "Limits" page and the CLI's main worker):
 * CPU 2000 ms hard, 256 MB memory, 150 s wall clock (free plan), 150 s request idle timeout.
 */

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
  /** Memory budget of a worker above its post-boot RSS, in MB; also V8's --max-old-space-size. */
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
  /** CPU time of the worker's main thread during this invocation (boot excluded). */
  cpuMs: number;
  /** Peak RSS during the invocation minus the RSS at its start: memory this invocation added. */
  peakMemoryMb: number;
  /** Raw peak RSS of the worker process during the invocation (includes the ~65 MB Deno baseline). */
  peakRssMb: number;
  coldStart: boolean;
  /** Time to boot the worker, when this invocation started it. */
  bootMs: number | null;
  /** SB_EXECUTION_ID of the worker process, or null when no worker served the request. */
  executionId: string | null;
  outcome: Outcome;
}
