/**
 * HTTP `Range: bytes=…` parsing for downloads (RFC 9110 §14.1.2), single range only, as S3 (hosted's
 * backend) supports.
 *
 * Invariants:
 * - `bytes=a-b`, `bytes=a-` and suffix `bytes=-n` are understood; `b` is clamped to the last byte.
 * - A syntactically invalid header, a multi-range header or `a > b` is ignored (→ the full body, 200), as
 *   RFC 9110 allows and S3 does.
 * - A range that starts at or past the end (or a zero-length suffix) is unsatisfiable (→ errors.ts `invalidRange`, as the S3 backend answers it).
 */
export type RangeResult =
  | { kind: "full" }
  | { kind: "partial"; start: number; end: number }
  | { kind: "unsatisfiable" };

export function parseRange(header: string | null, size: number): RangeResult {
  const match = header ? /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header) : null;
  if (!match || (match[1] === "" && match[2] === "")) return { kind: "full" };
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? size - 1 : Number(match[2]);
  if (match[2] !== "" && end < start) return { kind: "full" };
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "partial", start, end: Math.min(end, size - 1) };
}
