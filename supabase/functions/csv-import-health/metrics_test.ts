/**
 * Unit tests of the health function's pure parts: Prometheus text exposition (HELP/TYPE once per family, label
 * escaping, null values, counters), the request options and the HTTP status.
 */
import assert from "node:assert/strict";
import {
  type HealthReport,
  httpStatus,
  metricFamilies,
  parseStuckAfter,
  renderPrometheus,
  toPrometheus,
  wantsPrometheus,
} from "./metrics.ts";

const REPORT: HealthReport = {
  status: "degraded",
  problems: ["1 chunk leases expired (workers stopped before finishing); the reconciler retries them"],
  checked_at: "2026-11-29T02:35:22.556Z",
  stuck_after_seconds: 300,
  queue: {
    depth: 3,
    pending: 5,
    in_flight: 2,
    oldest_ready_age_seconds: 12.5,
    expired_leases: 1,
    oldest_expired_lease_seconds: 4,
  },
  jobs: {
    by_state: {
      registering: 0,
      queued: 1,
      running: 2,
      succeeded: 10,
      succeeded_with_rejects: 3,
      failed: 1,
      cancelled: 0,
    },
    registering_stuck: 0,
    failed_in_window: 0,
  },
  window: {
    seconds: 300,
    batches: 12,
    rows_parsed: 60000,
    rows_loaded: 59000,
    rows_rejected: 1000,
    rows_skipped: 0,
    rows_per_second: 196.7,
    reject_rate: 0.0167,
  },
  totals: { rows_loaded: 11416250, rows_rejected: 8313, rows_skipped: 1600, bytes_loaded: 1489437562 },
  reconcile: {
    scheduled: true,
    active: true,
    last_start: "2026-11-29T02:35:00.000Z",
    last_end: "2026-11-29T02:35:00.013Z",
    last_status: "succeeded",
    last_message: null,
    seconds_since_last_start: 22.6,
  },
};

function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

Deno.test("prometheus: the documented metrics with their values", () => {
  const s = samples(toPrometheus(REPORT));
  const expected: [string, string][] = [
    ['csv_import_health_status{status="healthy"}', "0"],
    ['csv_import_health_status{status="degraded"}', "1"],
    ['csv_import_health_status{status="unhealthy"}', "0"],
    ["csv_import_queue_depth", "3"],
    ["csv_import_chunks_pending", "5"],
    ["csv_import_chunks_in_flight", "2"],
    ["csv_import_oldest_ready_chunk_age_seconds", "12.5"],
    ["csv_import_expired_leases", "1"],
    ['csv_import_jobs{state="running"}', "2"],
    ['csv_import_jobs{state="succeeded_with_rejects"}', "3"],
    ['csv_import_jobs{state="cancelled"}', "0"],
    ["csv_import_jobs_registering_stuck", "0"],
    ["csv_import_jobs_failed_recent", "0"],
    ["csv_import_rows_per_second", "196.7"],
    ["csv_import_reject_rate", "0.0167"],
    ["csv_import_rows_loaded_total", "11416250"],
    ["csv_import_rows_rejected_total", "8313"],
    ["csv_import_rows_skipped_total", "1600"],
    ["csv_import_bytes_loaded_total", "1489437562"],
    ["csv_import_reconcile_last_run_timestamp_seconds", "1795919700"],
    ["csv_import_reconcile_last_run_success", "1"],
    ["csv_import_reconcile_seconds_since_last_run", "22.6"],
  ];
  for (const [name, value] of expected) assert.equal(s.get(name), value, name);
  assert.equal(s.size, expected.length + 4, "the other four job states");
});

Deno.test("prometheus: one HELP and one TYPE line per family, before its samples; valid names", () => {
  const text = toPrometheus(REPORT);
  assert.ok(text.endsWith("\n") && !text.endsWith("\n\n"), "one trailing newline");
  const seen = new Map<string, { help: number; type: number; firstSample: number }>();
  text.trimEnd().split("\n").forEach((line, i) => {
    const meta = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    const name = meta ? meta[2] : /^([^{ ]+)/.exec(line)![1];
    assert.match(name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
    const entry = seen.get(name) ?? { help: 0, type: 0, firstSample: -1 };
    if (meta?.[1] === "HELP") entry.help++;
    else if (meta?.[1] === "TYPE") {
      entry.type++;
      assert.ok(["gauge", "counter"].includes(meta[3]), line);
      if (meta[3] === "counter") assert.ok(name.endsWith("_total"), `${name}: counters end in _total`);
    } else {
      assert.equal(entry.help + entry.type, 2, `${name}: HELP and TYPE come before the samples`);
      if (entry.firstSample < 0) entry.firstSample = i;
    }
    seen.set(name, entry);
  });
  for (const [name, entry] of seen) assert.deepEqual([entry.help, entry.type], [1, 1], name);
});

Deno.test("prometheus: null values give no sample but keep the family; empty history", () => {
  const report: HealthReport = {
    ...REPORT,
    status: "unhealthy",
    queue: { ...REPORT.queue, oldest_ready_age_seconds: null, oldest_expired_lease_seconds: null },
    window: { ...REPORT.window, reject_rate: null },
    reconcile: {
      ...REPORT.reconcile,
      last_start: null,
      last_end: null,
      last_status: null,
      seconds_since_last_start: null,
    },
  };
  const text = toPrometheus(report);
  const s = samples(text);
  assert.equal(s.get("csv_import_oldest_ready_chunk_age_seconds"), "0", "nothing waiting: age 0");
  assert.equal(s.get("csv_import_reject_rate"), "0");
  assert.equal(s.get('csv_import_health_status{status="unhealthy"}'), "1");
  for (
    const name of ["csv_import_reconcile_last_run_timestamp_seconds", "csv_import_reconcile_last_run_success"]
  ) {
    assert.equal(s.has(name), false, `${name}: no sample`);
    assert.ok(text.includes(`# TYPE ${name} gauge\n`), `${name}: still declared`);
  }
  const failed = samples(
    toPrometheus({ ...REPORT, reconcile: { ...REPORT.reconcile, last_status: "failed" } }),
  );
  assert.equal(failed.get("csv_import_reconcile_last_run_success"), "0");
});

Deno.test("prometheus: label values and help text are escaped; special numbers", () => {
  const text = renderPrometheus([
    {
      name: "x_info",
      help: 'Back\\slash and\nnewline "quoted"',
      type: "gauge",
      samples: [
        { labels: { a: 'q"uo\\te\nnl' }, value: 1 },
        { labels: { a: "nan" }, value: NaN },
        { labels: { a: "inf" }, value: Infinity },
        { labels: { a: "-inf" }, value: -Infinity },
        { labels: { a: "skip" }, value: null },
      ],
    },
  ]);
  assert.equal(
    text,
    [
      '# HELP x_info Back\\\\slash and\\nnewline "quoted"',
      "# TYPE x_info gauge",
      'x_info{a="q\\"uo\\\\te\\nnl"} 1',
      'x_info{a="nan"} NaN',
      'x_info{a="inf"} +Inf',
      'x_info{a="-inf"} -Inf',
      "",
    ].join("\n"),
  );
});

Deno.test("jobs by state are sorted, so the text is stable", () => {
  const jobs = metricFamilies(REPORT).find((f) => f.name === "csv_import_jobs")!;
  const states = jobs.samples.map((s) => s.labels!.state);
  assert.deepEqual(states, [...states].sort());
});

Deno.test("request options: format, stuck_after; HTTP status", () => {
  const u = (s: string) => new URL(`http://x${s}`);
  assert.equal(wantsPrometheus(u("/health")), false);
  assert.equal(wantsPrometheus(u("/health/metrics")), true);
  assert.equal(wantsPrometheus(u("/health/metrics/")), true);
  assert.equal(wantsPrometheus(u("/health?format=prometheus")), true);
  assert.equal(wantsPrometheus(u("/health?format=json")), false);
  assert.deepEqual(parseStuckAfter(u("/health")), { seconds: null });
  assert.deepEqual(parseStuckAfter(u("/health?stuck_after=60")), { seconds: 60 });
  for (const bad of ["0", "-5", "1.5", "abc", "86401"]) {
    assert.ok("error" in parseStuckAfter(u(`/health?stuck_after=${bad}`)), bad);
  }
  assert.equal(httpStatus({ status: "healthy" }), 200);
  assert.equal(httpStatus({ status: "degraded" }), 200);
  assert.equal(httpStatus({ status: "unhealthy" }), 503);
});
