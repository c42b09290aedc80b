/**
 * Runs one invocation on a ready worker: forwards the caller's request over loopback, relays the streamed
 * response, and reports when the invocation is over and what it cost.
 *
 * The invocation is over when the response body has been fully handed to the caller (or the caller went
 * away) AND the worker reports that its handler returned and its EdgeRuntime.waitUntil tasks have settled
 * (isolated policies: that no handler runs and every task of the worker has settled), or when the worker died. Only then is `finished` resolved and `onFinished` called, so the worker is never
 * handed to another invocation while this one still runs.
 *
 * Answers: the function's own response (a GET answered with `text/html` is relabelled `text/plain`, as the
 * hosted platform does outside custom domains); 546 WORKER_LIMIT when a limit (or killAll) stopped the worker
 * before it answered; 500 WORKER_ERROR when the handler threw or the worker died on its own; 504 when no
 * response started before the idle deadline (the request is then cancelled on the worker, as the
 * platform's proxy does, but the worker stays busy until its handler and tasks finish).
 */
import {
  INVOCATION_HEADER,
  RESTORE_HEADER,
  RESTORED_HEADERS,
  URL_HEADER,
  WORKER_ERROR_HEADER,
} from "./protocol.ts";
import { idleTimeout, workerError, workerLimit } from "./responses.ts";
import { delay, within } from "./timer.ts";
import type { Outcome } from "./types.ts";
import type { DeathCause, Usage, WorkerProcess } from "./worker_process.ts";

/** How long a failed forward waits to learn whether (and why) the worker died. */
const DEATH_GRACE_MS = 1000;

/** Request headers that describe the hop, not the request, and are never forwarded. */
const HOP_HEADERS = ["host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"];

export interface InvocationResult {
  status: number;
  outcome: Outcome;
  /** performance.now() when response headers went to the caller. */
  responseAt: number;
  /** performance.now() when the invocation was over. */
  finishedAt: number;
  usage: Usage;
}

export interface InvocationParams {
  /** The invocation's id (its InvocationRecord id), sent to the worker in INVOCATION_HEADER. */
  id: string;
  /** Whether other invocations may share the worker (per_worker): then only this one's tasks are awaited. */
  shared: boolean;
  worker: WorkerProcess;
  req: Request;
  /** The URL the function sees: gateway origin + `/<name>/rest?query`. */
  targetUrl: string;
  /** performance.now() by which response headers must have started. */
  idleDeadline: number;
  onFinished(result: InvocationResult): void;
}

function outcomeOf(cause: DeathCause): Outcome {
  switch (cause) {
    case "cpu":
    case "memory":
    case "wall_clock":
    case "killed":
      return cause;
    case "error":
    case "boot_error":
      return "error";
    case "early_drop":
    case "termination":
      return "killed";
  }
}

/** Wraps a body so that `done` resolves once it was read to the end, failed, or was cancelled. */
function relay(
  body: ReadableStream<Uint8Array>,
): { stream: ReadableStream<Uint8Array>; done: Promise<void> } {
  const reader = body.getReader();
  const done = Promise.withResolvers<void>();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await reader.read();
        if (chunk.done) {
          controller.close();
          done.resolve();
        } else {
          controller.enqueue(chunk.value);
        }
      } catch (error) {
        controller.error(error);
        done.resolve();
      }
    },
    async cancel(reason) {
      done.resolve();
      await reader.cancel(reason).catch(() => {});
    },
  });
  return { stream, done: done.promise };
}

function forwardHeaders(req: Request, targetUrl: string, id: string): Headers {
  const headers = new Headers(req.headers);
  const restore: Record<string, string> = {};
  for (const name of RESTORED_HEADERS) {
    const value = req.headers.get(name);
    if (value !== null) restore[name] = value;
  }
  for (const name of HOP_HEADERS) headers.delete(name);
  headers.set(URL_HEADER, targetUrl);
  headers.set(INVOCATION_HEADER, id);
  headers.set(RESTORE_HEADER, JSON.stringify(restore));
  headers.set("accept-encoding", "identity");
  return headers;
}

/** Starts the invocation; resolves to the caller's response and, separately, to its end. */
export async function invoke(p: InvocationParams): Promise<{ response: Response; finished: Promise<void> }> {
  const { worker, req } = p;
  const started = await worker.beginInvocation(p.id).then(() => true, () => false);
  const target = new URL(p.targetUrl);
  const abort = new AbortController();
  const signal = AbortSignal.any([abort.signal, req.signal]);
  const upstream = started
    ? fetch(worker.url(target.pathname + target.search), {
      method: req.method,
      headers: forwardHeaders(req, p.targetUrl, p.id),
      body: req.body,
      signal,
      redirect: "manual",
    }).then((res) => ({ kind: "response" as const, res }), () => ({ kind: "failed" as const }))
    : Promise.resolve({ kind: "failed" as const });
  const died = worker.death.then((cause) => ({ kind: "died" as const, cause }));
  const idle = delay(p.idleDeadline - performance.now());
  let first = await Promise.race([upstream, died, idle.promise.then(() => ({ kind: "idle" as const }))]);
  idle.cancel();
  if (first.kind === "failed") first = await within(died, DEATH_GRACE_MS, first);

  let status: number;
  let outcome: Outcome = "ok";
  let response: Response;
  let bodyDone = Promise.resolve();
  if (first.kind === "response") {
    const { res } = first;
    const headers = new Headers(res.headers);
    headers.delete(WORKER_ERROR_HEADER);
    if (res.headers.has(WORKER_ERROR_HEADER)) outcome = "error";
    const contentType = headers.get("content-type") ?? "";
    if (req.method === "GET" && /^text\/html/i.test(contentType)) {
      headers.set("content-type", contentType.replace(/^text\/html/i, "text/plain"));
    }
    status = res.status;
    let body: ReadableStream<Uint8Array> | null = null;
    if (res.body !== null) {
      const relayed = relay(res.body);
      body = relayed.stream;
      bodyDone = relayed.done;
    }
    response = new Response(body, { status, statusText: res.statusText, headers });
  } else {
    abort.abort();
    if (first.kind === "idle") {
      outcome = "idle_timeout";
      response = idleTimeout();
    } else if (first.kind === "died" && first.cause !== "error") {
      outcome = outcomeOf(first.cause);
      response = workerLimit();
    } else {
      outcome = "error";
      response = workerError();
    }
    status = response.status;
  }
  const responseAt = performance.now();

  const finished = (async () => {
    await Promise.race([bodyDone, worker.death]);
    if (!p.shared) worker.finishing = true;
    if (!worker.dead) await Promise.race([worker.settled(p.shared ? p.id : undefined), worker.death]);
    const usage = await worker.endInvocation(p.id);
    if (worker.dead && outcome === "ok") outcome = outcomeOf(await worker.death);
    p.onFinished({ status, outcome, responseAt, finishedAt: performance.now(), usage });
  })();
  return { response, finished };
}
