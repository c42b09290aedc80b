/**
 * The JSON error responses the runtime itself answers, with the hosted platform's codes and texts
 * (docs "Status codes" page; WORKER_LIMIT / BOOT_ERROR / WORKER_ERROR texts from the CLI's main worker).
 *
 * Invariant: every body is JSON with `code` and `message`; only these statuses are produced here:
 * 401, 404, 405, 500, 503, 504, 546.
 */
import { WORKER_ERROR_BODY } from "./protocol.ts";

function json(status: number, body: Record<string, unknown>): Response {
  return Response.json(body, { status });
}

export const notFound = (): Response =>
  json(404, { code: "NOT_FOUND", message: "Requested function was not found" });

export const methodNotAllowed = (): Response =>
  json(405, { code: "METHOD_NOT_ALLOWED", message: "Method not allowed" });

export const missingAuthorization = (): Response =>
  json(401, { code: 401, message: "Missing authorization header" });

export const invalidJwt = (): Response => json(401, { code: 401, message: "Invalid JWT" });

/** 500: uncaught exception in the function, or the worker process died on its own. */
export const workerError = (): Response => json(500, WORKER_ERROR_BODY);

/** 503: the function's module failed to load. */
export const bootError = (): Response =>
  json(503, { code: "BOOT_ERROR", message: "Worker failed to boot (please check logs)" });

/** 503: the runtime is shutting down. */
export const unavailable = (): Response =>
  json(503, { code: "SERVICE_UNAVAILABLE", message: "Functions runtime is shutting down" });

/** 504: no response started within the request idle timeout. */
export const idleTimeout = (): Response =>
  json(504, { code: "IDLE_TIMEOUT", message: "Function did not respond within the request idle timeout" });

/** 546: the worker was stopped by a resource limit (or killed) before it answered. */
export const workerLimit = (): Response =>
  json(546, {
    code: "WORKER_LIMIT",
    message: "Worker failed to respond due to a resource limit (please check logs)",
  });
