/**
 * The worker pool of one function: hands each invocation a worker of its own, reusing idle workers
 * (per_worker policy), spawning up to `maxWorkers`, and queueing requests beyond that.
 *
 * Invariants:
 * - A worker serves one invocation at a time: it is "busy" from `acquire` until `release`.
 * - Every live worker (booting, busy, idle or draining) counts towards `maxWorkers`.
 * - Waiters are served in arrival order, by a released worker or by a new worker when one dies.
 * - When no worker is idle but one has already sent its response (`finishing`), a request waits up to
 *   REUSE_WAIT_MS for it before a new worker is spawned: a caller that sends its next request as soon as
 *   it has read the previous response reuses the warm worker, as it would reuse the hosted isolate.
 * - Retired workers (limit reached, config changed, oneshot policy) take no new invocation and are dropped
 *   (beforeunload "early_drop", then killed) as soon as they are idle.
 * - A worker leaves `workers` only when its process is dead; `exited()` waits until every process started
 *   by the pool has exited and its output pipes are drained.
 */
import type { FunctionSpec } from "./config.ts";
import { delay } from "./timer.ts";
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
/** How long a request waits for a finishing worker before spawning a new one. */
const REUSE_WAIT_MS = 50;

export class FunctionPool {
  readonly workers = new Set<WorkerProcess>();
  /** Every process started and not yet exited, dead workers included. */
  #processes = new Set<WorkerProcess>();
  #waiters: Waiter[] = [];
  #spec: FunctionSpec;
  #closed = false;

  constructor(
    spec: FunctionSpec,
    readonly maxWorkers: number,
    readonly spawn: (spec: FunctionSpec) => WorkerProcess,
  ) {
    this.#spec = spec;
  }

  /** Gets a worker for `spec`; a change of spec retires the workers started with the old one. */
  acquire(spec: FunctionSpec, signal: AbortSignal): Promise<Lease> {
    if (this.#closed) return Promise.reject(new Error("functions runtime closed"));
    if (JSON.stringify(spec) !== JSON.stringify(this.#spec)) {
      this.#spec = spec;
      for (const worker of this.workers) this.retire(worker);
    }
    for (const worker of this.workers) {
      if (worker.state === "idle" && !worker.retired) return Promise.resolve(this.#lease(worker, false));
    }
    const room = this.workers.size < this.maxWorkers;
    const finishing = [...this.workers].some((worker) => worker.finishing && !worker.retired);
    if (room && !finishing) return Promise.resolve(this.#lease(this.#start(), true));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.#waiters.push(waiter);
      const dequeue = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        return at >= 0;
      };
      const spawnLater = room ? delay(REUSE_WAIT_MS) : null;
      spawnLater?.promise.then(() => {
        if (this.workers.size < this.maxWorkers && dequeue()) resolve(this.#lease(this.#start(), true));
      });
      waiter.done = () => spawnLater?.cancel();
      signal.addEventListener("abort", () => {
        if (dequeue()) {
          spawnLater?.cancel();
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

  /** Returns a worker after its invocation finished; `reuse` false drops it (oneshot policy). */
  release(worker: WorkerProcess, reuse: boolean): void {
    if (worker.dead) return;
    if (!reuse) worker.retired = true;
    if (!worker.retired && this.#serveWaiter(() => this.#lease(worker, false))) return;
    worker.state = "idle";
    if (worker.retired) this.#drop(worker);
  }

  /** Marks a worker as taking no new invocation; an idle one is dropped now. */
  retire(worker: WorkerProcess): void {
    if (worker.retired) return;
    worker.retired = true;
    if (worker.state === "idle") this.#drop(worker);
  }

  #drop(worker: WorkerProcess): void {
    worker.state = "busy";
    worker.earlyDrop(DROP_GRACE_MS);
  }

  #start(): WorkerProcess {
    const worker = this.spawn(this.#spec);
    this.workers.add(worker);
    this.#processes.add(worker);
    worker.exited().then(() => this.#processes.delete(worker));
    worker.death.then(() => {
      this.workers.delete(worker);
      if (!this.#closed) this.#serveWaiter(() => this.#lease(this.#start(), true));
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
