import assert from "node:assert/strict";
import { BadRequest } from "../_shared/platform/handler.ts";
import { intParam, operatorRoute } from "./operator.ts";

Deno.test("operator routes: …/jobs and …/series wherever the function is mounted; nothing else", () => {
  const cases: [string, string | null][] = [
    ["/functions/v1/csv-import-health/jobs", "jobs"],
    ["/csv-import-health/jobs/", "jobs"],
    ["/functions/v1/csv-import-health/series", "series"],
    ["/functions/v1/csv-import-health", null],
    ["/functions/v1/csv-import-health/metrics", null],
    ["/functions/v1/csv-import-health/jobs/1", null],
    ["/functions/v1/csv-import-health/seriesx", null],
  ];
  for (const [path, route] of cases) assert.equal(operatorRoute(path), route, path);
});

Deno.test("operator parameters: integers in range, the default when absent, 400 naming the value otherwise", () => {
  const o = { fallback: 60, min: 1, max: 1440 };
  const u = (q: string) => new URL(`http://x/series${q}`);
  assert.equal(intParam(u(""), "minutes", o), 60);
  assert.equal(intParam(u("?minutes="), "minutes", o), 60);
  assert.equal(intParam(u("?minutes=1"), "minutes", o), 1);
  assert.equal(intParam(u("?minutes=1440"), "minutes", o), 1440);
  for (const bad of ["0", "1441", "-1", "1.5", "abc", "1e2", " 5"]) {
    assert.throws(
      () => intParam(u(`?minutes=${encodeURIComponent(bad)}`), "minutes", o),
      (e: unknown) =>
        e instanceof BadRequest && e.message === `"minutes" must be an integer from 1 to 1440, got "${bad}"`,
      bad,
    );
  }
});
