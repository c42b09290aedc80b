/**
 * Polices resource limits: samples every worker every SAMPLE_INTERVAL_MS and retires, warns or kills it,
 * following edge-runtime's per_worker supervisor (`crates/base/src/worker/supervisor/strategy_per_worker.rs`)
 * with the CLI's limits (`supabase/cli:apps/cli-go/internal/functions/serve/templates/main.ts`: cpuTimeSoftLimitMs
 * 1000, cpuTimeHardLimitMs 2000, memoryLimitMb 256).
 *
 * Per worker, when limits are enforced:
 * - CPU (its main thread since boot, across every request it served, shared or not): retire at 50 % of `cpuMs`
 *   (the soft limit: strategy_per_worker.rs `early_retire_fn` — no new request, the ones open finish, then the
 *   worker is dropped), beforeunload "cpu" at 90 % (edge-runtime `--dispatch-beforeunload-cpu-ratio`, default 90,
 *   of the hard limit: `crates/base/src/runtime/mod.rs` beforeunload_cpu_threshold, WillTerminateReason::CPU),
 *   SIGKILL at 100 % (the hard limit: ShutdownReason::CPUTime; every request still open answers 546).
 * - Memory (peak RSS above the post-boot RSS, sampled and via VmHWM so spikes between samples count):
 *   beforeunload "memory" at 90 %, SIGKILL at 100 %.
 * - Wall clock (process lifetime, booting included): retire at 50 %, beforeunload "wall_clock" at 90 %,
 *   SIGKILL at 100 %.
 *
 * Invariants: ticks never overlap; a tick only reads /proc and sends signals or control requests, so a
 * worker stuck in a CPU loop cannot delay its own kill. Idle workers are not sampled (they run nothing).
 */
import type { FunctionPool } from "./pool.ts";
import { BEFOREUNLOAD_RATIO, type Limits } from "./types.ts";
import type { WorkerProcess } from "./worker_process.ts";

export const SAMPLE_INTERVAL_MS = 25;

/** Share of the CPU budget and of the lifetime after which a worker takes no new invocation. */
const RETIRE_RATIO = 0.5;

export class Supervisor {
  #timer: number | null = null;
  #ticking = false;

  constructor(readonly pools: () => Iterable<FunctionPool>, readonly limits: Limits) {}

  start(): void {
    this.#timer = setInterval(() => this.#tick(), SAMPLE_INTERVAL_MS);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const checks: Promise<void>[] = [];
      for (const pool of this.pools()) {
        for (const worker of pool.workers) checks.push(this.#check(pool, worker));
      }
      await Promise.all(checks);
    } finally {
      this.#ticking = false;
    }
  }

  async #check(pool: FunctionPool, worker: WorkerProcess): Promise<void> {
    if (worker.dead) return;
    const usage = worker.state === "busy" || worker.openInvocations > 0 ? await worker.sample() : null;
    const { cpuMs, memoryMb, wallClockMs, enforce } = this.limits;
    if (!enforce || worker.dead) return;
    const age = performance.now() - worker.spawnedAt;
    if (age >= wallClockMs) return worker.kill("wall_clock");
    if (usage !== null) {
      const cpuUsedMs = usage.cpuNs / 1e6;
      const memoryUsedMb = usage.memoryKb / 1024;
      if (cpuUsedMs >= cpuMs) return worker.kill("cpu");
      if (memoryUsedMb >= memoryMb) return worker.kill("memory");
      if (cpuUsedMs >= cpuMs * BEFOREUNLOAD_RATIO) void worker.beforeunload("cpu");
      if (memoryUsedMb >= memoryMb * BEFOREUNLOAD_RATIO) void worker.beforeunload("memory");
      if (cpuUsedMs >= cpuMs * RETIRE_RATIO) pool.retire(worker, "cpu");
    }
    if (age >= wallClockMs * BEFOREUNLOAD_RATIO) void worker.beforeunload("wall_clock");
    if (age >= wallClockMs * RETIRE_RATIO) pool.retire(worker, "wall_clock");
  }
}
