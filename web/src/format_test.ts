import assert from "node:assert/strict";
import {
  bytes,
  duration,
  type Import,
  importPercent,
  importSummary,
  isCsvUpload,
  objectNameFor,
  retriesUpload,
  statusText,
  uploadRetryText,
  wholePercent,
} from "./format.ts";

Deno.test("web format: whole percentages never reach 100 before the end", () => {
  const cases: [number, number, number][] = [
    [0, 10, 0],
    [5, 10, 50],
    [999, 1000, 99],
    [1000, 1000, 100],
    [
      3,
      0,
      0,
    ],
    [12, 10, 100],
  ];
  for (const [done, total, want] of cases) {
    assert.equal(wholePercent(done, total), want, `${done}/${total}`);
  }
  assert.equal(
    importPercent({ status: "running", percent: 100 }),
    99,
    "a running import is never at 100 %",
  );
  assert.equal(importPercent({ status: "running", percent: 42.9 }), 42);
  assert.equal(
    importPercent({ status: "succeeded_with_rejects", percent: 97 }),
    100,
  );
  assert.equal(importPercent({ status: "cancelled", percent: 30 }), 30);
  assert.equal(importPercent({ status: "queued", percent: null }), 0);
});

Deno.test("web format: numbers, sizes, durations, statuses", () => {
  assert.equal(bytes(20_500_000), "20.5 MB");
  assert.equal(bytes(999), "999 B");
  assert.equal(bytes(null), "–");
  assert.equal(duration(45), "45 s");
  assert.equal(duration(200), "3 min 20 s");
  assert.equal(duration(3900), "1 h 5 min");
  assert.equal(duration(null), "–");
  assert.equal(
    statusText("succeeded_with_rejects"),
    "Done, with rejected rows",
  );
  assert.equal(statusText("something_new"), "something_new");
  const job = {
    status: "running",
    rows_loaded: 120000,
    rows_rejected: 3,
    rows_per_second: 51234.4,
    eta_seconds: 12,
  } as Import;
  assert.equal(
    importSummary(job),
    "120,000 rows loaded · 3 rejected · 51,234 rows/s · ETA 12 s",
  );
  assert.equal(
    importSummary({ ...job, status: "succeeded" }),
    "120,000 rows loaded · 3 rejected",
  );
});

Deno.test("web format: object names are <folder>/<user id>/<file>", () => {
  assert.equal(objectNameFor("web", "u1", "orders.csv"), "web/u1/orders.csv");
  assert.equal(objectNameFor("/web/", "u1", "a/b.csv"), "web/u1/a_b.csv");
  assert.equal(objectNameFor("", "u1", "orders.csv"), "u1/orders.csv");
});

Deno.test("isCsvUpload: CSV text, .csv.gz and .zip by name, or by type", () => {
  for (const name of ["orders.csv", "ORDERS.CSV", "orders.csv.gz", "export.gz", "export.zip"]) {
    assert.equal(isCsvUpload({ name, type: "" }), true, name);
  }
  for (const name of ["orders.xlsx", "notes.txt", "orders.csv.bak", "archive.tar"]) {
    assert.equal(isCsvUpload({ name, type: "" }), false, name);
  }
  assert.equal(isCsvUpload({ name: "blob", type: "application/gzip" }), true);
  assert.equal(isCsvUpload({ name: "blob", type: "application/vnd.ms-excel" }), false);
});

Deno.test("web format: an upload's retries name dropped connections and server answers apart", () => {
  assert.equal(uploadRetryText([]), "");
  assert.equal(uploadRetryText([0]), "1 dropped connection");
  assert.equal(uploadRetryText([0, 0]), "2 dropped connections");
  assert.equal(uploadRetryText([0, 423]), "1 dropped connection and 1 server answer retried (HTTP 423)");
  assert.equal(
    uploadRetryText([502, 0, 423, 423]),
    "1 dropped connection and 3 server answers retried (HTTP 423, HTTP 502)",
  );
  for (const status of [0, 409, 423, 429, 500, 502, 503]) {
    assert.ok(retriesUpload(status), `${status} is retried`);
  }
  for (const status of [400, 401, 403, 404, 413]) assert.ok(!retriesUpload(status), `${status} is final`);
});
