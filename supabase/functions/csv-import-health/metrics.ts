/**
 * The health document of `csv_import.health()` and its rendering as Prometheus text exposition format (version
 * 0.0.4), for the health function's `/health/metrics` and `?format=prometheus`.
 *
 * Invariants:
 * - Pure: no I/O; the same document always renders the same text.
 * - Every metric family has exactly one `# HELP` and one `# TYPE` line, before its samples; names match
 *   `[a-zA-Z_:][a-zA-Z0-9_:]*` and counters end in `_total`.
 * - A value the document lacks (null: e.g. no chunk is waiting, so there is no oldest age) yields no sample, but the
 *   family's HELP/TYPE lines stay, so dashboards see the metric exists.
 * - Label values and HELP text are escaped as the format requires (backslash, double quote, newline).
 */

export type HealthStatus = "healthy" | "degraded" | "unhealthy";

/** The JSON document `csv_import.health()` returns (see supabase/migrations/20261204001300_create_health.sql). */
export interface HealthReport {
  status: HealthStatus;
  problems: string[];
  checked_at: string;
  stuck_after_seconds: number;
  queue: {
    depth: number;
    pending: number;
    in_flight: number;
    oldest_ready_age_seconds: number | null;
    expired_leases: number;
    oldest_expired_lease_seconds: number | null;
  };
  jobs: { by_state: Record<string, number>; registering_stuck: number; failed_in_window: number };
  window: {
    seconds: number;
    batches: number;
    rows_parsed: number;
    rows_loaded: number;
    rows_rejected: number;
    rows_skipped: number;
    rows_per_second: number;
    reject_rate: number | null;
  };
  totals: { rows_loaded: number; rows_rejected: number; rows_skipped: number; bytes_loaded: number };
  reconcile: {
    scheduled: boolean;
    active: boolean | null;
    last_start: string | null;
    last_end: string | null;
    last_status: string | null;
    last_message: string | null;
    seconds_since_last_start: number | null;
  };
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const HEALTH_STATUSES: readonly HealthStatus[] = ["healthy", "degraded", "unhealthy"];

type Sample = { labels?: Record<string, string>; value: number | null | undefined };
export interface MetricFamily {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: Sample[];
}

const num = (value: unknown): number | null => {
  if (value === null || value === undefined || value === "") return null;
  const n = Number(value);
  return Number.isNaN(n) ? null : n;
};
const epochSeconds = (iso: string | null): number | null => iso ? Date.parse(iso) / 1000 : null;

/** The metric families of a health report, in exposition order. */
export function metricFamilies(report: HealthReport): MetricFamily[] {
  const g = (name: string, help: string, value: unknown): MetricFamily => ({
    name,
    help,
    type: "gauge",
    samples: [{ value: num(value) }],
  });
  const c = (name: string, help: string, value: unknown): MetricFamily => ({
    name,
    help,
    type: "counter",
    samples: [{ value: num(value) }],
  });
  const w = report.window;
  const r = report.reconcile;
  return [
    {
      name: "csv_import_health_status",
      help: "Overall pipeline status: 1 for the current one of healthy, degraded, unhealthy.",
      type: "gauge",
      samples: HEALTH_STATUSES.map((s) => ({ labels: { status: s }, value: report.status === s ? 1 : 0 })),
    },
    g(
      "csv_import_queue_depth",
      "Chunks ready to run now (pending, due, entry state known).",
      report.queue.depth,
    ),
    g("csv_import_chunks_pending", "Pending chunks of active jobs, ready or not.", report.queue.pending),
    g("csv_import_chunks_in_flight", "Chunks leased to a worker.", report.queue.in_flight),
    g(
      "csv_import_oldest_ready_chunk_age_seconds",
      "How long the oldest ready chunk has been waiting.",
      report.queue.oldest_ready_age_seconds ?? 0,
    ),
    g("csv_import_expired_leases", "Running chunks whose lease has expired.", report.queue.expired_leases),
    {
      name: "csv_import_jobs",
      help: "Jobs by state.",
      type: "gauge",
      samples: Object.entries(report.jobs.by_state).sort(([a], [b]) => a.localeCompare(b)).map((
        [state, n],
      ) => ({ labels: { state }, value: num(n) })),
    },
    g(
      "csv_import_jobs_registering_stuck",
      `Jobs registering for longer than ${report.stuck_after_seconds} s.`,
      report.jobs.registering_stuck,
    ),
    g(
      "csv_import_jobs_failed_recent",
      `Jobs failed in the last ${w.seconds} s.`,
      report.jobs.failed_in_window,
    ),
    g(
      "csv_import_rows_per_second",
      `Rows loaded per second over the last ${w.seconds} s.`,
      w.rows_per_second,
    ),
    g(
      "csv_import_reject_rate",
      `Rejected share of the rows parsed in the last ${w.seconds} s.`,
      w.reject_rate ?? 0,
    ),
    c("csv_import_rows_loaded_total", "Rows loaded into target tables.", report.totals.rows_loaded),
    c(
      "csv_import_rows_rejected_total",
      "Rows rejected (kept in csv_import.rejects).",
      report.totals.rows_rejected,
    ),
    c("csv_import_rows_skipped_total", "Rows skipped as duplicates.", report.totals.rows_skipped),
    c("csv_import_bytes_loaded_total", "Bytes of finished load chunks.", report.totals.bytes_loaded),
    g(
      "csv_import_reconcile_last_run_timestamp_seconds",
      "Start of the reconciler's last run (Unix time).",
      epochSeconds(r.last_start),
    ),
    g(
      "csv_import_reconcile_last_run_success",
      "1 when the reconciler's last run succeeded (or is running), 0 when it failed.",
      r.last_status === null ? null : r.last_status === "failed" ? 0 : 1,
    ),
    g(
      "csv_import_reconcile_seconds_since_last_run",
      "Seconds since the reconciler last started.",
      r.seconds_since_last_start,
    ),
  ];
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function escapeHelp(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** Renders metric families as Prometheus text (one trailing newline). */
export function renderPrometheus(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      if (sample.value === null || sample.value === undefined) continue;
      const labels = Object.entries(sample.labels ?? {});
      const labelText = labels.length > 0
        ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
        : "";
      lines.push(`${family.name}${labelText} ${formatValue(sample.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** The health report as Prometheus text. */
export function toPrometheus(report: HealthReport): string {
  return renderPrometheus(metricFamilies(report));
}

/** Whether a request asks for Prometheus text: path ending in /metrics, or ?format=prometheus. */
export function wantsPrometheus(url: URL): boolean {
  return /\/metrics\/?$/.test(url.pathname) || url.searchParams.get("format") === "prometheus";
}

/**
 * `stuck_after` from the query string, in seconds (an integer from 1 to 86400); the SQL default when absent.
 * Returns an error message for anything else.
 */
export function parseStuckAfter(url: URL): { seconds: number | null } | { error: string } {
  const raw = url.searchParams.get("stuck_after");
  if (raw === null || raw === "") return { seconds: null };
  const seconds = Number(raw);
  if (!/^\d+$/.test(raw) || seconds < 1 || seconds > 86_400) {
    return { error: `"stuck_after" must be a number of seconds from 1 to 86400, got "${raw}"` };
  }
  return { seconds };
}

/** HTTP status for a health report: 503 when unhealthy, so load balancers and uptime checks see it. */
export function httpStatus(report: Pick<HealthReport, "status">): number {
  return report.status === "unhealthy" ? 503 : 200;
}
