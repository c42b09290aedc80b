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
 * Invariants: a worker serves one invocation at a time; `settled` answers only when no handler is running
 * and every EdgeRuntime.waitUntil promise has settled.
 */

/** Path prefix of the worker's control routes. */
export const CONTROL_PREFIX = "/__edge_runtime/";
/** Control route: dispatch `beforeunload` with `?reason=<reason>`. */
export const BEFOREUNLOAD_ROUTE = `${CONTROL_PREFIX}beforeunload`;
/** Control route: answers 204 once no handler is running and all waitUntil promises have settled. */
export const SETTLED_ROUTE = `${CONTROL_PREFIX}settled`;
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
