/**
 * In-place retries of transient errors (Storage 5xx/429, timeouts, connection resets, Postgres serialization
 * failures and restarts) with exponential backoff and equal jitter — the same formula as SQL's
 * csv_import.retry_delay, at a smaller scale because these retries happen inside one invocation:
 *
 *   delay(attempt) = min(baseMs * 2^(attempt - 1), capMs) * (0.5 + jitter / 2)
 *   defaults baseMs 100, capMs 2000:  attempt 1: 50–100 ms, 2: 100–200, 3: 200–400, 4: 400–800, 5+: ≤ 2 s
 *
 * Errors that are the file's or the caller's fault are never retried here; a chunk whose in-place retries
 * run out fails, and SQL decides whether it is retried later (csv_import.fail_chunk).
 */

export function backoffMs(attempt: number, baseMs = 100, capMs = 2000, jitter = Math.random()): number {
  const exp = Math.min(baseMs * 2 ** (Math.max(attempt, 1) - 1), capMs);
  return exp * (0.5 + Math.min(Math.max(jitter, 0), 1) / 2);
}

/** An error worth retrying in place: it says nothing about the data. */
export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransientError";
  }
}

const TRANSIENT_PG_CODES = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "55P03", // lock_not_available
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "53400", // configuration_limit_exceeded
]);

export function isTransient(error: unknown): boolean {
  if (error instanceof TransientError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    if (TRANSIENT_PG_CODES.has(code) || code.startsWith("08")) return true; // 08xxx: connection exceptions
    if (
      [
        "ECONNRESET",
        "ECONNREFUSED",
        "EPIPE",
        "ETIMEDOUT",
        "CONNECTION_CLOSED",
        "CONNECTION_ENDED",
        "CONNECTION_DESTROYED",
        "CONNECT_TIMEOUT",
      ].includes(code)
    ) return true;
  }
  if (error.name === "TimeoutError" || error.name === "AbortError" && /timed? ?out/i.test(error.message)) {
    return true;
  }
  return error instanceof TypeError && /fetch|network|connection|reset|closed/i.test(error.message) ||
    /connection (reset|refused|closed|terminated)|broken pipe|socket hang up/i.test(error.message);
}

export interface RetryOptions {
  attempts?: number;
  baseMs?: number;
  capMs?: number;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** Called with every transient failure withRetry retries (db.ts replaces a stuck connection pool). */
const transientListeners = new Set<(error: unknown) => void>();
export function onTransientFailure(listener: (error: unknown) => void): void {
  transientListeners.add(listener);
}

/** Runs fn, retrying transient failures up to `attempts` times in total (default 5). */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 5;
  for (let attempt = 1;; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= attempts || !isTransient(error)) throw error;
      const delay = backoffMs(attempt, options.baseMs, options.capMs);
      for (const listener of transientListeners) listener(error);
      options.onRetry?.(error, attempt, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
