/**
 * The register isolate's registrations: at most `concurrency` run at once, the others wait here in arrival order,
 * and when the runtime announces that it stops this isolate, the waiting ones are handed to a fresh one at once.
 *
 * Why: edge-runtime's per_worker policy routes every concurrent request of a function to its one active isolate
 * (`crates/base/src/worker/pool.rs`, maybe_active_worker) and adds their CPU up against one hard limit (2 s).
 * A burst of uploads sends one registration per file through pg_net at once (up to 200 per batch): run all at
 * once, 183 registrations of ~11 ms CPU each shared one isolate, it reached the hard limit with all of them open,
 * 131 answered 546 and their jobs waited for reconcile (200 small files: 87 s instead of ~10; fresh-clone CI).
 * Bounded here, an isolate past its soft limit (retired: no new request) keeps registering the queue until
 * `beforeunload` (90 % of the hard limit), then starts no other registration and hands the rest on in one
 * request, which the runtime gives to a fresh isolate; what is open then is at most `concurrency` registrations.
 *
 * Invariants:
 * - At most `concurrency` registrations of this isolate run at once; a job waits at most once here (a job id
 *   already waiting or running is not queued again).
 * - A waiting job is registered here, or handed on (`handOff`) once the shutdown signal fired; if the hand-off
 *   fails, the job stays `registering` and csv_import.reconcile requests it again (register_after).
 * - Jobs are handed on at most once: a stopping isolate refuses a hand-off (`acceptHandOff`), so two isolates
 *   can never pass jobs back and forth.
 * - `submit` runs a job at once, and returns its outcome, only when a slot is free and nobody waits (a lone
 *   upload keeps its one-hop answer); otherwise it queues the job and returns null.
 * - Drain (`waiting`, optional): when the queue falls idle after a registration, it asks the database for jobs
 *   whose registration was requested and has not been reached (csv_import.registrations_waiting: created since
 *   this isolate started, so none that waits in another isolate's queue) and queues them, one query at a time, in
 *   id order from the last job it took (each job at most once per isolate). Why: pg_net sends a batch of requests
 *   and then sleeps (1 s, `supabase/pg_net` worker.c), so in a burst the isolate sat idle between batches with
 *   jobs waiting for the next one. A request that arrives for a job drained here finds it running (ignored) or
 *   registered (answered `unchanged`); another isolate registering it at the same time is safe, as any duplicate
 *   request (csv_import.register_job plans a job once).
 */
import { log } from "../platform/log.ts";
import type { RegisterOutcome } from "./register.ts";

export interface RegistrationQueueDeps {
  concurrency: number;
  /** Registers one job (registerJob with its dependencies). */
  register: (jobId: number) => Promise<RegisterOutcome>;
  /** Called with every outcome, after the job's slot was freed (dispatch of a planned job's chunks). */
  onRegistered: (result: RegisterOutcome) => void;
  /** Sends waiting jobs to a fresh isolate (a new request to the register function). */
  handOff: (jobIds: number[]) => Promise<void>;
  /** Background work that must outlive the request that queued it (EdgeRuntime.waitUntil). */
  background: (work: Promise<unknown>) => void;
  /** Fires when the runtime is about to stop this isolate (beforeunload). */
  signal: AbortSignal;
  /** Jobs past `after` whose registration was requested and not reached, in id order, at most `limit` (the
   * module doc's drain). */
  waiting?: (after: number, limit: number) => Promise<number[]>;
}

export class RegistrationQueue {
  #running = new Set<number>();
  /** Waiting job ids in arrival order (a Set keeps insertion order: a hand-off of 10,000 ids stays linear). */
  #waiting = new Set<number>();
  /** The last job this isolate took from the database (drain): later drains start after it, so a job is taken at
   * most once here (one whose registration could not be recorded, the database gone, is left to reconcile). */
  #drainedThrough = 0;
  #draining = false;

  constructor(readonly deps: RegistrationQueueDeps) {
    deps.signal.addEventListener("abort", () => this.#handOffWaiting());
  }

  /** No registration running or waiting in this isolate. */
  get idle(): boolean {
    return this.#running.size === 0 && this.#waiting.size === 0;
  }

  /** Registers `jobId` now when a slot is free and nobody waits (its outcome), else queues it (null). */
  async submit(jobId: number): Promise<RegisterOutcome | null> {
    if (this.#running.size >= this.deps.concurrency || this.#waiting.size > 0 || this.#running.has(jobId)) {
      this.enqueue([jobId]);
      return null;
    }
    return await this.#run(jobId);
  }

  /**
   * Takes jobs handed on by a stopping isolate; false (nothing taken) when this isolate is stopping too. Handing
   * them on again could loop: a `beforeunload` without retirement (memory) leaves this isolate the active one, so
   * the request would come back here. Refused, they stay `registering` for reconcile.
   */
  acceptHandOff(jobIds: number[]): boolean {
    if (this.deps.signal.aborted) return false;
    this.enqueue(jobIds);
    return true;
  }

  /** Queues jobs in order (skipping those already here) and starts as many as there are free slots. */
  enqueue(jobIds: number[]): void {
    for (const id of jobIds) {
      if (!this.#running.has(id)) this.#waiting.add(id);
    }
    this.#pump();
  }

  /** Starts waiting jobs while slots are free; once the runtime stops this isolate, hands them on instead. */
  #pump(): void {
    if (this.deps.signal.aborted) return this.#handOffWaiting();
    for (const jobId of this.#waiting) {
      if (this.#running.size >= this.deps.concurrency) break;
      this.#waiting.delete(jobId);
      this.deps.background(
        this.#run(jobId).catch((error) =>
          // registerJob records its own failures; this one could not be recorded (database gone): reconcile asks again.
          log("warn", "registration_failed", { job: jobId, error })
        ),
      );
    }
  }

  async #run(jobId: number): Promise<RegisterOutcome> {
    this.#running.add(jobId);
    let result: RegisterOutcome;
    try {
      result = await this.deps.register(jobId);
    } finally {
      this.#running.delete(jobId);
      this.#pump();
      if (this.idle) this.#drain();
    }
    this.deps.onRegistered(result);
    return result;
  }

  /** Queues jobs the database says wait for a registration request (the module doc's drain). */
  #drain(): void {
    const waiting = this.deps.waiting;
    if (waiting === undefined || this.#draining || this.deps.signal.aborted) return;
    this.#draining = true;
    this.deps.background(
      waiting(this.#drainedThrough, this.deps.concurrency * 2)
        .then((ids) => {
          this.#draining = false;
          if (ids.length === 0) return;
          this.#drainedThrough = Math.max(this.#drainedThrough, ...ids);
          log("info", "registrations_drained", { jobs: ids.length });
          this.enqueue(ids);
        })
        .catch((error) => {
          this.#draining = false;
          log("warn", "registrations_drain_failed", { error });
        }),
    );
  }

  #handOffWaiting(): void {
    if (this.#waiting.size === 0) return;
    const jobIds = [...this.#waiting];
    this.#waiting.clear();
    this.deps.background(
      this.deps.handOff(jobIds)
        .then(() => log("info", "registrations_handed_off", { jobs: jobIds.length }))
        .catch((error) => log("warn", "registration_hand_off_failed", { jobs: jobIds.length, error })),
    );
  }
}
