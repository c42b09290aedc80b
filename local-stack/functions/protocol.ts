/**
 * The private wire protocol between the supervisor (runtime.ts and friends) and a worker process
 * (worker_bootstrap.ts). Both sides import these constants, so they can never drift apart.
 *
 * Protocol:
 * - The supervisor starts `deno run … worker_bootstrap.ts <entrypoint-file-url> <nonce>`.
 * - The worker writes exactly one announcement line to stdout: `<nonce> {"port":N}` once it is serving on
 *   127.0.0.1:N, or `<nonce> {"bootError":"…"}` when the function's module failed to load (then it exits).
 *   Every other stdout/stderr line is function output and goes to the runtime's log.
 * - An invocation is one HTTP request to `http://127.0.0.1:N<path>` whose URL_HEADER carries the URL the
 *   function must see and whose RESTORE_HEADER carries (as JSON) the caller's headers that the loopback hop
 *   changes: `content-length` (fetch streams the body chunked) and `accept-encoding` (sent as `identity`, so
 *   the worker never spends its CPU budget compressing). The worker puts them back, with `host` taken from
 *   the URL. An uncaught exception is answered 500 with WORKER_ERROR_HEADER set.
 * - Control requests go to CONTROL_PREFIX routes and must carry NONCE_HEADER; function names can never
 *   collide with them because a function name starts with a letter.
 *
 * - Each invocation request carries INVOCATION_HEADER, its id: the worker runs the handler in that id's async
 *   context (AsyncLocalStorage), so an EdgeRuntime.waitUntil task is the invocation's whose code registered it,
 *   and the function's console lines are tagged with it (LOG_TAG id LOG_TAG at the line's start, which the
 *   supervisor strips into the log event's `invocation`).
 *
 * Invariants: `settled?invocation=<id>` answers only when that invocation's handler has returned and every
 * waitUntil task registered in its context has settled; `settled` without an id, when no handler runs at all
 * and every waitUntil task of the worker has settled (the per_request and oneshot policies, one invocation at a
 * time, use that one).
 */

/** Path prefix of the worker's control routes. */
export const CONTROL_PREFIX = "/__edge_runtime/";
/** Control route: dispatch `beforeunload` with `?reason=<reason>`. */
export const BEFOREUNLOAD_ROUTE = `${CONTROL_PREFIX}beforeunload`;
/** Control route: answers 204 once no handler is running and all waitUntil promises have settled. */
export const SETTLED_ROUTE = `${CONTROL_PREFIX}settled`;
/** Header carrying the invocation's id (the InvocationRecord id) on an invocation request. */
export const INVOCATION_HEADER = "x-edge-runtime-invocation";
/** Marks the invocation id at the start of a console line (ASCII record separator, never in JSON logs). */
export const LOG_TAG = "\x1e";
/** Header carrying the per-worker nonce on control requests. */
export const NONCE_HEADER = "x-edge-runtime-nonce";
/** Header carrying the URL the function sees (gateway origin + `/<name>/rest?query`). */
export const URL_HEADER = "x-edge-runtime-url";
/** Header carrying a JSON object of caller headers the worker must restore on the function's request. */
export const RESTORE_HEADER = "x-edge-runtime-restore";
/** Caller headers the loopback hop changes, and which RESTORE_HEADER therefore carries when present. */
export const RESTORED_HEADERS = ["content-length", "accept-encoding"];
/** Response header a worker sets when the handler threw (the body is the WORKER_ERROR JSON). */
export const WORKER_ERROR_HEADER = "x-edge-runtime-worker-error";

/** The body of the 500 a worker answers when the handler throws (same text as the CLI's main worker). */
export const WORKER_ERROR_BODY = {
  code: "WORKER_ERROR",
  message: "Function exited due to an error (please check logs)",
};

/** What the worker announces on stdout after `<nonce> `. */
export type Announcement = { port: number } | { bootError: string };

/** Reasons carried by `beforeunload` events (edge-runtime's WillTerminateReason, snake_case). */
export type BeforeUnloadReason = "cpu" | "memory" | "wall_clock" | "early_drop" | "termination";
