/**
 * The two Supabase Edge Runtime hooks the pipeline uses, behind functions so handlers stay testable:
 * `EdgeRuntime.waitUntil` (keep the isolate alive for background work after the response) and the
 * `beforeunload` event (the runtime is about to stop this isolate: a CPU, memory or wall-clock limit is near).
 *
 * Invariant: outside the Edge Runtime (tests, plain Deno) background work still runs to completion and its
 * failure is logged, never unhandled.
 */
import { log } from "./log.ts";

interface EdgeRuntimeGlobal {
  waitUntil(promise: Promise<unknown>): void;
}

/** Runs work after the response is sent, keeping the function instance alive until it settles. */
export function runInBackground(work: Promise<unknown>): void {
  const guarded = work.catch((error) => log("error", "background_task_failed", { error }));
  const runtime = (globalThis as { EdgeRuntime?: EdgeRuntimeGlobal }).EdgeRuntime;
  runtime?.waitUntil(guarded);
}

/** An AbortSignal that fires when the runtime announces shutdown (`beforeunload`), with the reason. */
export function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  addEventListener("beforeunload", (event) => {
    const reason = (event as CustomEvent<{ reason?: string }>).detail?.reason ?? "unknown";
    controller.abort(new Error(`The runtime is stopping this function (${reason})`));
  });
  return controller.signal;
}
