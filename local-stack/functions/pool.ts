/**
 * The worker pool of one function, under one of edge-runtime's policies (`crates/base/src/worker/pool.rs`):
 *
 * - `per_worker` (shared): every request goes to the function's active worker while it lives and is not
 *   retired (pool.rs `maybe_active_worker`; a booting worker is shared too: its requests wait for the boot);
 *   with no such worker, a new one is spawned and becomes the active one. A retired worker takes no new request
 *   (pool.rs `send_request`: WorkerAlreadyRetired) but finishes the ones it has, then is dropped (beforeunload
 *   "early_drop", then killed: strategy_per_worker.rs `can_early_drop`). The real pool may spawn up to
 *   `max_parallelism` workers in a burst before the first one is registered; this one never does (stricter:
 *   everything a function does at once shares one worker's CPU, memory and JS thread).
 * - `per_request` (isolated): a worker serves one invocation (and its waitUntil tasks) at a time and is reused
 *   when idle; `oneshot`: the same, but every worker is dropped after its invocation.
 *
 * Invariants:
 * - Every live worker (booting, serving, idle or draining) counts towards `maxWorkers`; a request that finds no
 *   room waits, in arrival order, for a worker to be released (isolated) or to die.
 * - Isolated: a worker is "busy" from `acquire` until `release`. When no worker is idle but one has already
 *   sent its response (`finishing`), a request waits up to REUSE_WAIT_MS for it before a new worker is spawned.
 * - Shared: a worker is "busy" while it has an invocation open (acquired and not yet released), else "idle".
 * - A worker leaves `workers` only when its process is dead; `exited()` waits until every process started
 *   by the pool has exited and its output pipes are drained.
 */
import type { FunctionSpec } from "./config.ts";
import { delay } from "./timer.ts";
import type { Policy, RetireReason } from "./types.ts";
import type { WorkerProcess } from "./worker_process.ts";

/** A worker handed to one invocation; `cold` when it was spawned for it. */
export interface Lease {
  worker: WorkerProcess;
  cold: boolean;
}

interface Waiter {
  resolve(lease: Lease): void;
  reject(reason: unknown): void;
  /** Clears the waiter's timer once it is served. */
  done?: () => void;
}

/** Grace given to a dropped worker's beforeunload listeners. */
const DROP_GRACE_MS = 1000;
/** How long a request waits for a finishing worker before spawning a new one (isolated policies). */
const REUSE_WAIT_MS = 50;

export class FunctionPool {
  readonly workers = new Set<WorkerProcess>();
  /** Every process started and not yet exited, dead workers included. */
  #processes = new Set<WorkerProcess>();
  /** Open invocations per worker (shared policy). */
  #open = new Map<WorkerProcess, number>();
  #waiters: Waiter[] = [];
  #spec: FunctionSpec;
  #policy: Policy;
  #closed = false;

  constructor(
    spec: FunctionSpec,
    policy: Policy,
    readonly maxWorkers: number,
    readonly spawn: (spec: FunctionSpec, policy: Policy) => WorkerProcess,
  ) {
    this.#spec = spec;
    this.#policy = policy;
  }

  get policy(): Policy {
    return this.#policy;
  }

  /** Gets a worker for `spec`; a change of spec or policy retires the workers started with the old one. */
  acquire(spec: FunctionSpec, policy: Policy, signal: AbortSignal): Promise<Lease> {
    if (this.#closed) return Promise.reject(new Error("functions runtime closed"));
    if (JSON.stringify(spec) !== JSON.stringify(this.#spec) || policy !== this.#policy) {
      this.#spec = spec;
      this.#policy = policy;
      for (const worker of this.workers) this.retire(worker, "config");
    }
    return this.#policy === "per_worker" ? this.#acquireShared(signal) : this.#acquireIsolated(signal);
  }

  #acquireShared(signal: AbortSignal): Promise<Lease> {
    for (const worker of this.workers) {
      if (!worker.retired && !worker.dead) return Promise.resolve(this.#leaseShared(worker, false));
    }
    if (this.workers.size < this.maxWorkers) return Promise.resolve(this.#leaseShared(this.#start(), true));
    return this.#wait(signal, false);
  }

  #leaseShared(worker: WorkerProcess, cold: boolean): Lease {
    this.#open.set(worker, (this.#open.get(worker) ?? 0) + 1);
    worker.state = "busy";
    return { worker, cold };
  }

  #acquireIsolated(signal: AbortSignal): Promise<Lease> {
    for (const worker of this.workers) {
      if (worker.state === "idle" && !worker.retired) return Promise.resolve(this.#lease(worker, false));
    }
    const room = this.workers.size < this.maxWorkers;
    const finishing = [...this.workers].some((worker) => worker.finishing && !worker.retired);
    if (room && !finishing) return Promise.resolve(this.#lease(this.#start(), true));
    return this.#wait(signal, room);
  }

  /** Queues a request; with `spawnLater`, a worker is spawned for it after REUSE_WAIT_MS if none came free. */
  #wait(signal: AbortSignal, spawnLater: boolean): Promise<Lease> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.#waiters.push(waiter);
      const dequeue = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        return at >= 0;
      };
      const later = spawnLater ? delay(REUSE_WAIT_MS) : null;
      later?.promise.then(() => {
        if (this.workers.size < this.maxWorkers && dequeue()) resolve(this.#lease(this.#start(), true));
      });
      waiter.done = () => later?.cancel();
      signal.addEventListener("abort", () => {
        if (dequeue()) {
          later?.cancel();
          reject(signal.reason);
        }
      }, { once: true });
    });
  }

  #lease(worker: WorkerProcess, cold: boolean): Lease {
    worker.state = "busy";
    worker.finishing = false;
    return { worker, cold };
  }

  #serveWaiter(lease: () => Lease): boolean {
    const waiter = this.#waiters.shift();
    if (waiter === undefined) return false;
    waiter.done?.();
    waiter.resolve(lease());
    return true;
  }

  /** Serves every waiter (shared policy: they all go to one new worker), while there is room. */
  #serveWaitersShared(): void {
    if (this.#waiters.length === 0 || this.workers.size >= this.maxWorkers) return;
    const worker = this.#start();
    let first = true;
    while (this.#serveWaiter(() => this.#leaseShared(worker, first))) first = false;
  }

  /** Returns a worker after its invocation finished; `reuse` false drops it (oneshot policy). */
  release(worker: WorkerProcess, reuse: boolean): void {
    if (worker.dead) return;
    if (this.#open.has(worker)) {
      const left = this.#open.get(worker)! - 1;
      if (left > 0) {
        this.#open.set(worker, left);
        return;
      }
      this.#open.delete(worker);
      worker.state = "idle";
      if (worker.retired) this.#drop(worker);
      return;
    }
    if (!reuse) this.retire(worker, "oneshot");
    if (!worker.retired && this.#serveWaiter(() => this.#lease(worker, false))) return;
    worker.state = "idle";
    if (worker.retired) this.#drop(worker);
  }

  /** Marks a worker as taking no new invocation; one with nothing open is dropped now. */
  retire(worker: WorkerProcess, reason: RetireReason): void {
    if (worker.retired) return;
    worker.retired = true;
    worker.retiredBy = reason;
    if (worker.state === "idle") this.#drop(worker);
  }

  #drop(worker: WorkerProcess): void {
    worker.state = "busy";
    worker.earlyDrop(DROP_GRACE_MS);
  }

  #start(): WorkerProcess {
    const worker = this.spawn(this.#spec, this.#policy);
    this.workers.add(worker);
    this.#processes.add(worker);
    worker.exited().then(() => this.#processes.delete(worker));
    worker.death.then(() => {
      this.workers.delete(worker);
      this.#open.delete(worker);
      if (this.#closed) return;
      if (this.#policy === "per_worker") this.#serveWaitersShared();
      else this.#serveWaiter(() => this.#lease(this.#start(), true));
    });
    return worker;
  }

  /** Stops taking work: queued requests are rejected and no worker is started any more. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.done?.();
      waiter.reject(new Error("functions runtime closed"));
    }
  }

  /** Resolves once every process this pool started has exited. */
  async exited(): Promise<void> {
    await Promise.all([...this.#processes].map((worker) => worker.exited()));
  }
}
