/**
 * health (deployed as csv-import-health): the pipeline's health and metrics from one SQL call, `csv_import.health(stuck_after)`.
 *
 * - `GET /functions/v1/health` → the JSON document; HTTP 200 when healthy or degraded, 503 when unhealthy.
 * - `GET /functions/v1/health/metrics` or `?format=prometheus` → Prometheus text. Always 200 when the database
 *   answered (a scrape with a non-2xx status is discarded by Prometheus, losing the metrics exactly when they
 *   matter); the status is the gauge `csv_import_health_status{status=…}`.
 * - `?stuck_after=SECONDS` (default 300): how long ready work may wait with nothing running before it counts as stuck.
 * - `GET /functions/v1/health/jobs?limit=100` and `/series?minutes=60`: every job and throughput per minute, for
 *   the operator view (operator.ts).
 *
 * Auth: service role key, secret key, or the pipeline's internal secret (verify_jwt = false). GET or POST. CORS
 * headers on every answer, so the operator view works from any static host.
 */
import { FUNCTION_NAMES } from "../_shared/pipeline/function_names.ts";
import { db } from "../_shared/platform/db.ts";
import { BadRequest, serveService } from "../_shared/platform/handler.ts";
import {
  type HealthReport,
  httpStatus,
  parseStuckAfter,
  PROMETHEUS_CONTENT_TYPE,
  toPrometheus,
  wantsPrometheus,
} from "./metrics.ts";
import { operatorResponse, operatorRoute } from "./operator.ts";

serveService(FUNCTION_NAMES.health, async (_body, cfg, req) => {
  const url = new URL(req.url);
  const route = operatorRoute(url.pathname);
  if (route) return await operatorResponse(route, url, db(cfg.dbUrl, FUNCTION_NAMES.health));
  const stuckAfter = parseStuckAfter(url);
  if ("error" in stuckAfter) throw new BadRequest(stuckAfter.error);
  const sql = db(cfg.dbUrl, FUNCTION_NAMES.health);
  const [{ health }] = await sql<{ health: HealthReport }[]>`
    select csv_import.health(coalesce(make_interval(secs => ${stuckAfter.seconds}::int), interval '5 minutes'))
      as health`;
  const headers = { "Cache-Control": "no-store" };
  if (wantsPrometheus(url)) {
    return new Response(toPrometheus(health), {
      headers: { ...headers, "Content-Type": PROMETHEUS_CONTENT_TYPE },
    });
  }
  return Response.json(health, { status: httpStatus(health), headers });
}, { cors: true });
