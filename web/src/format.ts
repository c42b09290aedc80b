/**
 * What the upload page shows, as pure functions of the client API's data (no DOM here, so they are unit-tested
 * under Deno: format_test.ts): an import's state and numbers as text, the object name a file is uploaded to.
 *
 * Invariants:
 * - Percentages are whole numbers 0–100, never above 100 and never 100 before the work is done (a bar at
 *   "100 %" means finished).
 * - A missing number (null: not known yet) is shown as "–", never as 0.
 */

/** An import as the client API returns it (csv-import-api: GET /imports/:id). */
export interface Import {
  id: number;
  bucket: string;
  object: string;
  status: string;
  table_name: string | null;
  bytes_total: number | null;
  bytes_done: number | null;
  percent: number | null;
  rows_parsed: number | null;
  rows_loaded: number | null;
  rows_rejected: number | null;
  rows_skipped: number | null;
  rows_per_second: number | null;
  eta_seconds: number | null;
  error: string | null;
  dry_run: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  rejects_status: string | null;
  rejects_object: string | null;
}

/** One stored reject (GET /imports/:id/rejects). */
export interface Reject {
  line: number;
  column_name: string | null;
  reason: string;
  raw: string | null;
}

/** Statuses after which nothing changes any more. */
export const TERMINAL = [
  "succeeded",
  "succeeded_with_rejects",
  "validated",
  "failed",
  "cancelled",
];

export const isTerminal = (status: string) => TERMINAL.includes(status);

/** Words for each status (the page shows these, the test reads them). */
const STATUS_TEXT: Record<string, string> = {
  registering: "Registering",
  queued: "Queued",
  running: "Importing",
  succeeded: "Done",
  succeeded_with_rejects: "Done, with rejected rows",
  validated: "Validated (dry run)",
  failed: "Failed",
  cancelled: "Cancelled",
};

export function statusText(status: string): string {
  return STATUS_TEXT[status] ?? status;
}

/** A whole percentage of done out of total: floor, so 100 only when all is done; 0 when total is unknown. */
export function wholePercent(done: number, total: number): number {
  if (!(total > 0)) return 0;
  return Math.max(0, Math.min(100, Math.floor((done / total) * 100)));
}

/** The import bar's percentage: the API's percent, 100 once the import succeeded, floored to a whole number. */
export function importPercent(job: Pick<Import, "status" | "percent">): number {
  if (
    job.status === "succeeded" || job.status === "succeeded_with_rejects" ||
    job.status === "validated"
  ) {
    return 100;
  }
  const value = Math.floor(job.percent ?? 0);
  return Math.max(0, Math.min(isTerminal(job.status) ? 100 : 99, value));
}

const DASH = "–";

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? DASH : Math.round(n).toLocaleString("en-US");
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return DASH;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Seconds as "45 s", "3 min 20 s", "1 h 5 min". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return DASH;
  }
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** The import's numbers in one line: rows, rejects, rate, ETA. */
export function importSummary(job: Import): string {
  const parts = [
    `${count(job.rows_loaded)} rows loaded`,
    `${count(job.rows_rejected)} rejected`,
  ];
  if (!isTerminal(job.status)) {
    parts.push(
      `${job.rows_per_second === null ? DASH : count(job.rows_per_second)} rows/s`,
    );
    parts.push(`ETA ${duration(job.eta_seconds)}`);
  }
  return parts.join(" · ");
}

/** The file's name: the last part of the object name. */
export function fileName(object: string): string {
  return object.split("/").pop() ?? object;
}

/**
 * The object a signed-in user's file is uploaded to: `<folder>/<user id>/<file name>` (folder from config.json,
 * so a profile with pattern `<folder>/<user id>/%`, or `<folder>/%`, maps it to a table, and a Storage policy can
 * let each user write under their own id only). Slashes in the file name become "_" (the name is one path part).
 */
export function objectNameFor(
  folder: string,
  userId: string,
  file: string,
): string {
  const name = file.replaceAll("/", "_").replaceAll("\\", "_");
  return [folder.replace(/^\/+|\/+$/g, ""), userId, name].filter((part) => part !== "").join("/");
}

/** File types the pipeline loads: CSV text, gzip-compressed CSV (.csv.gz) and a ZIP archive holding one CSV. */
const CSV_UPLOAD_NAME = /\.(csv|csv\.gz|gz|zip)$/i;
const CSV_UPLOAD_TYPES = new Set(["text/csv", "application/gzip", "application/x-gzip", "application/zip"]);

/** Whether a chosen file is one the pipeline loads (by its name, or its type when the name says nothing). */
export function isCsvUpload(file: { name: string; type: string }): boolean {
  return CSV_UPLOAD_NAME.test(file.name) || CSV_UPLOAD_TYPES.has(file.type);
}

/**
 * Whether the upload page retries a failed TUS request, from its HTTP status (0: no answer, the connection
 * dropped): a network problem or a passing server state (5xx; 409 offset conflict, 423 upload locked, 429 busy)
 * is retried, from the offset the server stored; any other refusal is final.
 */
export function retriesUpload(status: number): boolean {
  return status === 0 || status >= 500 || status === 409 || status === 423 || status === 429;
}

/**
 * What an upload went through before it resumed, from the statuses of its retried requests: dropped
 * connections (status 0) and server answers apart, since one dropped connection can be followed by an answer that
 * is retried too before the upload goes on (seen under load: HTTP 409, the offset the resumed request asked for
 * moved on before its PATCH; 423 while the server still holds the cut request's lock). "" when none.
 */
export function uploadRetryText(statuses: readonly number[]): string {
  const drops = statuses.filter((status) => status === 0).length;
  const answers = statuses.filter((status) => status !== 0);
  const parts: string[] = [];
  if (drops > 0) parts.push(`${drops} dropped connection${drops > 1 ? "s" : ""}`);
  if (answers.length > 0) {
    const codes = [...new Set(answers)].sort((a, b) => a - b).map((code) => `HTTP ${code}`).join(", ");
    parts.push(`${answers.length} server answer${answers.length > 1 ? "s" : ""} retried (${codes})`);
  }
  return parts.join(" and ");
}
