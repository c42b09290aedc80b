/**
 * The health function's operator routes (issue 17's operator view, web/operator.html), beside the health document:
 *
 * - `GET …/csv-import-health/jobs?limit=100` → `{jobs: JobOverview[]}`: every job, newest first, whoever owns it
 *   (`csv_import.jobs_overview`; limit 1..1000).
 * - `GET …/csv-import-health/series?minutes=60` → `{series: [{minute, rows_loaded, rows_rejected, bytes}]}`: one
 *   entry per minute of the last `minutes` (1..1440), oldest first, zeros where nothing ran
 *   (`csv_import.throughput_series`).
 *
 * Invariants:
 * - Only what the service-key check let through gets here (platform/handler.ts), as for the health document.
 * - A bad parameter is refused with 400 and a message naming it and the value given, before any query.
 * - Counts are JSON numbers (bigint columns arrive as strings from postgres.js and are converted here).
 */
import type { Sql } from "../_shared/platform/db.ts";
import { BadRequest } from "../_shared/platform/handler.ts";

export type OperatorRoute = "jobs" | "series";

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

export interface SeriesPoint {
  minute: string;
  rows_loaded: number;
  rows_rejected: number;
  bytes: number;
}

/** The operator route a path names (`…/jobs`, `…/series`, with or without a trailing slash), else null. */
export function operatorRoute(pathname: string): OperatorRoute | null {
  const match = /\/(jobs|series)\/?$/.exec(pathname);
  return match ? match[1] as OperatorRoute : null;
}

/** An integer query parameter from `min` to `max`, `fallback` when absent; BadRequest otherwise. */
export function intParam(url: URL, name: string, o: { fallback: number; min: number; max: number }): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return o.fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < o.min || value > o.max) {
    throw new BadRequest(`"${name}" must be an integer from ${o.min} to ${o.max}, got "${raw}"`);
  }
  return value;
}

const iso = (value: unknown): string | null =>
  value === null ? null : new Date(value as string).toISOString();

/** The answer to an operator route. */
export async function operatorResponse(route: OperatorRoute, url: URL, sql: Sql): Promise<Response> {
  const headers = { "Cache-Control": "no-store" };
  if (route === "jobs") {
    const limit = intParam(url, "limit", { fallback: 100, min: 1, max: 1000 });
    const rows = await sql`select * from csv_import.jobs_overview(${limit}::int)`;
    const jobs: JobOverview[] = rows.map((r) => ({
      job_id: Number(r.job_id),
      bucket: r.bucket,
      object: r.object,
      owner_id: r.owner_id,
      status: r.status,
      percent: Number(r.percent),
      rows_loaded: Number(r.rows_loaded),
      rows_rejected: Number(r.rows_rejected),
      created_at: iso(r.created_at)!,
      finished_at: iso(r.finished_at),
      error: r.error,
    }));
    return Response.json({ jobs }, { headers });
  }
  const minutes = intParam(url, "minutes", { fallback: 60, min: 1, max: 1440 });
  const rows = await sql`select * from csv_import.throughput_series(${minutes}::int)`;
  const series: SeriesPoint[] = rows.map((r) => ({
    minute: iso(r.minute)!,
    rows_loaded: Number(r.rows_loaded),
    rows_rejected: Number(r.rows_rejected),
    bytes: Number(r.bytes),
  }));
  return Response.json({ series }, { headers });
}
