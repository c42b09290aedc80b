/**
 * What one isolate takes on, whatever number of requests share it: its chunk slots and its work account.
 * edge-runtime's per_worker policy routes every concurrent request of a function to its one active isolate
 * (`crates/base/src/worker/pool.rs`) and counts their CPU and memory together; the fan-out width bounds the
 * chunks in flight across all isolates, not in one.
 *
 * - Chunk slots (WORKER_CHUNKS_PER_ISOLATE): a chunk request that finds every slot taken waits here, in arrival
 *   order, holding its lease; when the runtime announces that it stops the isolate (beforeunload), every waiting
 *   chunk is let through at once, and processChunk, seeing the signal, hands it straight back
 *   (csv_import.yield_chunk) for a fresh worker (pipeline/chunk_worker.ts). Why: unbounded, the four chunks of a
 *   width-4 job ran in one isolate at once, each holding its range (8 MiB) and two COPY pieces: 91–94 MB added
 *   per chunk worker (p95, 1M and 5M rows), over the 64 MB budget per isolate. One isolate has one JavaScript
 *   thread: beyond a few chunks at once more only adds memory (5M rows, five runs each: 2 slots 33.4 s, 3 slots
 *   28.7 s, 4 slots 35.2 s).
 * - Work account (`isolateWork`): the load bytes the isolate's invocations took on (WORKER_INVOCATION_BUDGET_BYTES:
 *   whether an invocation keeps the next chunk itself) and the milliseconds of synchronous work its chunks did
 *   (WorkMeter). Once that work reaches WORKER_ISOLATE_WORK_MS, the isolate's CPU is past the runtime's soft limit
 *   (the timed work is part of the CPU the runtime counts), so the runtime has retired it: it gets no new request,
 *   and a chunk handed back from here goes to a fresh isolate. Its open loads then hand the rest of their chunk
 *   on at their next batch, and a chunk that reaches a slot hands itself back at once (isolateSpent), instead of
 *   running on towards the hard limit: with 16 MiB chunks the open work of a retired isolate took it to the
 *   `beforeunload` mark (1.8 s) and 2–8 chunks per 5M-row job were interrupted.
 *
 * Invariants:
 * - At most `limit` chunks hold a slot at once while the signal has not fired; waiters are served first come,
 *   first served, and a new request does not overtake one that waits.
 * - Once the signal fired, `acquire` resolves at once (its holder hands its chunk back and costs nothing).
 * - Every `acquire` is paired with exactly one `release` (the caller's `finally`).
 * - Every millisecond a WorkMeter adds is added to the isolate's account too; the account never decreases.
 */

/** The isolate's work account. Module state: one per isolate, shared by every invocation running in it. */
export const isolateWork = { bytes: 0, ms: 0 };

/** Whether the isolate's chunks have done WORKER_ISOLATE_WORK_MS of work: it takes on no more (module doc). */
export function isolateSpent(config: { isolateWorkMs: number }): boolean {
  return isolateWork.ms >= config.isolateWorkMs;
}

/** One load's synchronous work (ms), added to the isolate's account as it is measured. */
export class WorkMeter {
  ms = 0;

  add(ms: number): void {
    this.ms += ms;
    isolateWork.ms += ms;
  }
}

export class ChunkSlots {
  #open = 0;
  #waiting: (() => void)[] = [];

  constructor(readonly limit: number, readonly signal?: AbortSignal) {
    signal?.addEventListener("abort", () => {
      for (const admit of this.#waiting.splice(0)) this.#admit(admit);
    });
  }

  /** Chunks holding a slot now. */
  get open(): number {
    return this.#open;
  }

  /** Chunks waiting for a slot now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves when the caller may process its chunk: a slot is free, or the runtime is stopping the isolate. */
  acquire(): Promise<void> {
    if (this.signal?.aborted || (this.#open < this.limit && this.#waiting.length === 0)) {
      this.#open++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Frees the caller's slot for the longest-waiting chunk. */
  release(): void {
    this.#open--;
    const next = this.#waiting.shift();
    if (next) this.#admit(next);
  }

  #admit(admit: () => void): void {
    this.#open++;
    admit();
  }
}
