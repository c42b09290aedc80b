/**
 * Entry script of one worker process: loads a user's Edge Function and serves it to the supervisor.
 *
 * Usage (by worker_process.ts only): `deno run … worker_bootstrap.ts <entrypoint-file-url> <nonce>`.
 *
 * What it provides to the function, as the Supabase edge runtime does:
 * - `Deno.serve(handler)`, `Deno.serve(options, handler)` and `Deno.serve({ handler })` register the handler
 *   instead of opening a port; `export default { fetch }` is used when no Deno.serve call was made.
 * - `globalThis.EdgeRuntime.waitUntil(promise)` registers a background task.
 * - `beforeunload` is dispatched as `CustomEvent("beforeunload", { cancelable: true, detail: { reason } })`
 *   when the supervisor asks (limit at 90 %, retirement, shutdown), as edge-runtime's
 *   `ext/runtime/js/bootstrap.js` dispatchBeforeUnloadEvent does.
 * - Several invocations may run at once (per_worker policy): each runs in its own async context (its id from
 *   INVOCATION_HEADER), which attributes its waitUntil tasks and console lines to it (protocol.ts).
 *
 * Invariants:
 * - Exits as soon as its stdin (a pipe held by the supervisor) closes, so it never outlives the supervisor.
 * - Imports nothing but protocol.ts (a relative module) and node:async_hooks (built in), so the function's
 *   import map cannot affect it.
 * - Announces exactly once on stdout (see protocol.ts), with a write captured before the function's module
 *   runs, so a function that patches console cannot break the handshake.
 * - Serves on 127.0.0.1 only. An uncaught handler exception becomes a 500 marked with WORKER_ERROR_HEADER
 *   (unless the function's own `onError` answers), and the error is printed to stderr (the runtime's log).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  type Announcement,
  BEFOREUNLOAD_ROUTE,
  CONTROL_PREFIX,
  INVOCATION_HEADER,
  LOG_TAG,
  NONCE_HEADER,
  RESTORE_HEADER,
  SETTLED_ROUTE,
  URL_HEADER,
  WORKER_ERROR_BODY,
  WORKER_ERROR_HEADER,
} from "./protocol.ts";

type Handler = (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
type ErrorHandler = (error: unknown) => Response | Promise<Response>;
type ServeOptions = { handler?: Handler; onError?: ErrorHandler };

const [entrypoint, nonce] = Deno.args;
const realServe = Deno.serve.bind(Deno);
const stdout = Deno.stdout;

let handler: Handler | null = null;
let onError: ErrorHandler | null = null;
let inFlight = 0;
const backgroundTasks = new Set<Promise<unknown>>();
let settledWaiters: Array<() => void> = [];

/** What one invocation still runs: its handler, its waitUntil tasks, and who waits for both to end. */
interface Open {
  handler: boolean;
  tasks: Set<Promise<unknown>>;
  waiters: Array<() => void>;
}
const context = new AsyncLocalStorage<string>();
const open = new Map<string, Open>();

function openOf(id: string): Open {
  let entry = open.get(id);
  if (entry === undefined) {
    entry = { handler: false, tasks: new Set(), waiters: [] };
    open.set(id, entry);
  }
  return entry;
}

function notifyInvocation(id: string): void {
  const entry = open.get(id);
  if (entry === undefined || entry.handler || entry.tasks.size > 0 || entry.waiters.length === 0) return;
  open.delete(id);
  for (const wake of entry.waiters) wake();
}

/** Tags the function's console lines with the current invocation's id (protocol.ts LOG_TAG). */
function tagConsole(): void {
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => {
      const id = context.getStore();
      if (id === undefined) return original(...args);
      const tag = `${LOG_TAG}${id}${LOG_TAG}`;
      if (typeof args[0] === "string") return original(tag + args[0], ...args.slice(1));
      return original(tag, ...args);
    };
  }
}

function announce(message: Announcement): void {
  const bytes = new TextEncoder().encode(`${nonce} ${JSON.stringify(message)}\n`);
  let written = 0;
  while (written < bytes.length) written += stdout.writeSync(bytes.subarray(written));
}

function notifyIfSettled(): void {
  if (inFlight > 0 || backgroundTasks.size > 0) return;
  const waiters = settledWaiters;
  settledWaiters = [];
  for (const wake of waiters) wake();
}

function waitUntil<T>(task: Promise<T>): Promise<T> {
  const promise = Promise.resolve(task);
  const id = context.getStore();
  backgroundTasks.add(promise);
  if (id !== undefined) openOf(id).tasks.add(promise);
  promise
    .catch((error) => console.error("EdgeRuntime.waitUntil task failed:", error))
    .finally(() => {
      backgroundTasks.delete(promise);
      if (id !== undefined) {
        open.get(id)?.tasks.delete(promise);
        notifyInvocation(id);
      }
      notifyIfSettled();
    });
  return promise;
}

/** Stands in for Deno.serve: records the handler and returns an inert server object. */
function captureServe(first?: unknown, second?: unknown) {
  const options = (typeof first === "object" && first !== null ? first : {}) as ServeOptions;
  const found = typeof first === "function" ? first : typeof second === "function" ? second : options.handler;
  if (typeof found !== "function") throw new TypeError("Deno.serve: a handler function is required");
  handler = found as Handler;
  onError = options.onError ?? null;
  return {
    finished: new Promise<void>(() => {}),
    addr: { transport: "tcp", hostname: "0.0.0.0", port: 8000 },
    shutdown: () => Promise.resolve(),
    ref() {},
    unref() {},
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

function workerError(): Response {
  return Response.json(WORKER_ERROR_BODY, { status: 500, headers: { [WORKER_ERROR_HEADER]: "1" } });
}

async function control(req: Request, url: URL): Promise<Response> {
  if (req.headers.get(NONCE_HEADER) !== nonce) return new Response(null, { status: 404 });
  if (url.pathname === BEFOREUNLOAD_ROUTE) {
    const reason = url.searchParams.get("reason") ?? "termination";
    globalThis.dispatchEvent(new CustomEvent("beforeunload", { cancelable: true, detail: { reason } }));
    return new Response(null, { status: 204 });
  }
  if (url.pathname === SETTLED_ROUTE) {
    const id = url.searchParams.get("invocation");
    await new Promise<void>((resolve) => {
      if (id === null) {
        settledWaiters.push(resolve);
        notifyIfSettled();
      } else {
        openOf(id).waiters.push(resolve);
        notifyInvocation(id);
      }
    });
    return new Response(null, { status: 204 });
  }
  return new Response(null, { status: 404 });
}

/**
 * Reads to its end a request body the function answered without reading (a 401 before parsing, say). Deno's
 * server closes a connection whose request body is still arriving when the response is sent, so the
 * supervisor's upload failed with a reset and the caller got 500 WORKER_ERROR instead of the function's answer
 * (measured: 22 of 50 unauthenticated 1–2 MB POSTs to `register`). A body the function read, began to read, piped
 * somewhere or answers with (`new Response(req.body)`) is left alone: it owns that stream.
 */
async function drainUnread(req: Request, res: Response): Promise<void> {
  if (req.body === null || req.bodyUsed || req.body.locked || res.body === req.body) return;
  await req.body.pipeTo(new WritableStream()).catch(() => {});
}

function invoke(req: Request, info: Deno.ServeHandlerInfo, fn: Handler): Promise<Response> {
  const id = req.headers.get(INVOCATION_HEADER) ?? crypto.randomUUID();
  openOf(id).handler = true;
  return context.run(id, () => runHandler(req, info, fn)).finally(() => {
    const entry = open.get(id);
    if (entry !== undefined) entry.handler = false;
    notifyInvocation(id);
  });
}

async function runHandler(req: Request, info: Deno.ServeHandlerInfo, fn: Handler): Promise<Response> {
  const url = req.headers.get(URL_HEADER) ?? req.url;
  const headers = new Headers(req.headers);
  headers.delete(URL_HEADER);
  headers.delete(RESTORE_HEADER);
  headers.delete(INVOCATION_HEADER);
  headers.delete("accept-encoding");
  headers.set("host", new URL(url).host);
  const restored: Record<string, string> = JSON.parse(req.headers.get(RESTORE_HEADER) ?? "{}");
  for (const [name, value] of Object.entries(restored)) headers.set(name, value);
  if (headers.has("content-length")) headers.delete("transfer-encoding");
  const userReq = new Request(url, {
    method: req.method,
    headers,
    body: req.body,
    signal: req.signal,
  });
  inFlight++;
  try {
    const res = await fn(userReq, info);
    if (!(res instanceof Response)) throw new TypeError("The function's handler did not return a Response");
    await drainUnread(userReq, res);
    return res;
  } catch (error) {
    console.error(error);
    if (onError === null) return workerError();
    try {
      return await onError(error);
    } catch (secondError) {
      console.error(secondError);
      return workerError();
    }
  } finally {
    inFlight--;
    notifyIfSettled();
  }
}

Deno.stdin.readable.pipeTo(new WritableStream()).finally(() => Deno.exit(0));
tagConsole();

Object.defineProperty(globalThis, "EdgeRuntime", {
  value: Object.freeze({ waitUntil }),
  enumerable: false,
  configurable: false,
  writable: false,
});
Object.defineProperty(Deno, "serve", { value: captureServe, writable: true, configurable: true });

/** Imports the function's module and returns its handler (Deno.serve registration or default fetch). */
async function loadHandler(): Promise<Handler> {
  const mod = await import(entrypoint);
  if (handler !== null) return handler;
  const exported = mod.default;
  if (typeof exported?.fetch === "function") {
    return (req, info) => exported.fetch(req, info);
  }
  throw new Error("The function neither called Deno.serve() nor exported default { fetch }");
}

let userHandler: Handler;
try {
  userHandler = await loadHandler();
} catch (error) {
  console.error(error);
  announce({ bootError: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  Deno.exit(1);
}

realServe({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => announce({ port }) }, (req, info) => {
  const url = new URL(req.url);
  return url.pathname.startsWith(CONTROL_PREFIX) ? control(req, url) : invoke(req, info, userHandler);
});
