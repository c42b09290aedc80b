/**
 * What the operator screen (operator.html, operator.ts) shows, as pure functions: the answers of the health
 * function's routes (the health document, `/jobs`, `/series`: supabase/functions/csv-import-health/), the
 * throughput chart's geometry and its text alternative.
 *
 * Invariants:
 * - Pure: no DOM, no I/O (unit-tested under Deno, web/src/operator_format_test.ts).
 * - The chart has one bar per minute of the series, in order; a bar's height is proportional to its minute's
 *   rows (loaded + rejected, rejected stacked on top), the tallest minute filling the plot; a series of zeros
 *   draws no bar taller than 0 (never divides by zero).
 */
import { count } from "./format.ts";

/** The part of the health document (csv_import.health()) the screen shows. */
export interface Health {
  status: "healthy" | "degraded" | "unhealthy";
  problems: string[];
  checked_at: string;
  queue: { depth: number; pending: number; in_flight: number; expired_leases: number };
  jobs: { by_state: Record<string, number> };
}

/** One job of `GET …/csv-import-health/jobs`. */
export interface JobOverview {
  job_id: number;
  bucket: string;
  object: string;
  owner_id: string | null;
  status: string;
  percent: number;
  rows_loaded: number;
  rows_rejected: number;
  created_at: string;
  finished_at: string | null;
  error: string | null;
}

/** One minute of `GET …/csv-import-health/series`. */
export interface SeriesPoint {
  minute: string;
  rows_loaded: number;
  rows_rejected: number;
  bytes: number;
}

export interface Bar {
  minute: string;
  loaded: number;
  rejected: number;
  x: number;
  width: number;
  /** The loaded part: from y to y + height. */
  y: number;
  height: number;
  /** The rejected part, above the loaded one. */
  rejectedY: number;
  rejectedHeight: number;
}

/** The bars of a series in a plot `width` × `height` (SVG user units, y down), and the value the top stands for. */
export function chartBars(
  series: SeriesPoint[],
  width: number,
  height: number,
): { bars: Bar[]; max: number } {
  const max = Math.max(0, ...series.map((p) => p.rows_loaded + p.rows_rejected));
  const step = series.length > 0 ? width / series.length : width;
  const scale = (n: number) => max > 0 ? (n / max) * height : 0;
  const bars = series.map((p, i) => {
    const loadedHeight = scale(p.rows_loaded);
    const rejectedHeight = scale(p.rows_rejected);
    return {
      minute: p.minute,
      loaded: p.rows_loaded,
      rejected: p.rows_rejected,
      x: i * step + step * 0.1,
      width: step * 0.8,
      y: height - loadedHeight,
      height: loadedHeight,
      rejectedY: height - loadedHeight - rejectedHeight,
      rejectedHeight,
    };
  });
  return { bars, max };
}

/** "14:05", the minute's local time. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** The chart in one sentence (its text alternative; the table beside it has every minute). */
export function seriesSummary(series: SeriesPoint[]): string {
  if (series.length === 0) return "No throughput data.";
  const loaded = series.reduce((n, p) => n + p.rows_loaded, 0);
  const rejected = series.reduce((n, p) => n + p.rows_rejected, 0);
  const span = `${series.length} minute${series.length === 1 ? "" : "s"}`;
  if (loaded + rejected === 0) return `No rows loaded in the last ${span}.`;
  const busiest = series.reduce((a, p) => p.rows_loaded > a.rows_loaded ? p : a, series[0]);
  return `${count(loaded)} rows loaded and ${count(rejected)} rejected in the last ${span}; ` +
    `busiest minute ${clockTime(busiest.minute)} with ${count(busiest.rows_loaded)} rows loaded.`;
}

/** The minutes in which anything happened (the chart's table lists these). */
export const busyMinutes = (series: SeriesPoint[]) =>
  series.filter((p) => p.rows_loaded > 0 || p.rows_rejected > 0 || p.bytes > 0);

/** Words for the overall status. */
export function healthText(status: Health["status"]): string {
  return { healthy: "Healthy", degraded: "Degraded", unhealthy: "Unhealthy" }[status] ?? status;
}

/** "2026-12-04 14:05", a timestamp in local time to the minute; "–" for none. */
export function dateTime(iso: string | null): string {
  if (!iso) return "–";
  const d = new Date(iso);
  const day = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${
    String(d.getDate()).padStart(2, "0")
  }`;
  return `${day} ${clockTime(iso)}`;
}
