/**
 * Structured logs: one JSON line per event (job, chunk, attempt x/y, bytes, rows, ms, outcome), so the
 * Supabase dashboard's log explorer can filter on any field.
 *
 * Invariants:
 * - Never prints a secret: values that look like JWTs, sb_secret_/sb_publishable_ keys, bearer tokens,
 *   passwords inside URLs and connection strings, and `apikey=` / `password=` / `secret:` / `token=` values are
 *   masked, in messages and in nested fields alike. The same masking applies to error texts the pipeline stores
 *   (job and chunk errors) or returns (500 responses).
 * - Lines stay under the hosted 10,000-character log limit (long strings are truncated).
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const MAX_STRING = 2000;

const SECRET_PATTERNS: [RegExp, string][] = [
  [/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, "[jwt]"],
  [/sb_(secret|publishable)_[A-Za-z0-9_-]+/g, "sb_$1_[redacted]"],
  [/(bearer\s+)[^\s"']+/gi, "$1[redacted]"],
  // user:password@ in any URL (postgresql://, https://, …).
  [/([a-z][a-z0-9+.-]*:\/\/[^:/\s@]+:)[^@\s]+@/gi, "$1[redacted]@"],
  // key=value / key: value forms of credentials (query strings, connection strings, headers).
  [
    /\b((?:apikey|api_key|password|passwd|secret|token|x-pipeline-secret)["']?\s*[=:]\s*["']?)[^\s"'&,;]+/gi,
    "$1[redacted]",
  ],
];

/** Masks anything that looks like a credential in a string. */
export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

function clean(value: unknown, depth = 0): unknown {
  if (typeof value === "string") {
    const masked = redact(value);
    return masked.length > MAX_STRING ? `${masked.slice(0, MAX_STRING)}…` : masked;
  }
  if (value instanceof Error) return clean(`${value.name}: ${value.message}`, depth);
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => clean(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v, depth + 1)]));
}

export function log(level: LogLevel, event: string, fields: LogFields = {}): void {
  const line = JSON.stringify({
    level,
    event,
    ...(clean(fields) as LogFields),
    at: new Date().toISOString(),
  });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
