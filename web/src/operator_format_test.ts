import assert from "node:assert/strict";
import { busyMinutes, chartBars, type SeriesPoint, seriesSummary } from "./operator_format.ts";

const minute = (i: number) => new Date(Date.UTC(2026, 11, 4, 14, i)).toISOString();
const point = (i: number, loaded: number, rejected = 0, bytes = 0): SeriesPoint => ({
  minute: minute(i),
  rows_loaded: loaded,
  rows_rejected: rejected,
  bytes,
});

Deno.test("chart: one bar per minute, in order, the busiest minute fills the plot, rejected stacked on top", () => {
  const series = [point(0, 0), point(1, 50, 50), point(2, 25)];
  const { bars, max } = chartBars(series, 300, 100);
  assert.equal(max, 100);
  assert.deepEqual(bars.map((b) => b.minute), series.map((p) => p.minute));
  assert.deepEqual(bars.map((b) => b.x), [10, 110, 210]);
  assert.deepEqual(bars.map((b) => b.width), [80, 80, 80]);
  assert.deepEqual(bars.map((b) => [b.y, b.height, b.rejectedY, b.rejectedHeight]), [
    [100, 0, 100, 0],
    [50, 50, 0, 50],
    [75, 25, 75, 0],
  ]);
});

Deno.test("chart: a series of zeros and an empty one draw nothing, without dividing by zero", () => {
  const zeros = chartBars([point(0, 0), point(1, 0)], 200, 100);
  assert.equal(zeros.max, 0);
  assert.ok(zeros.bars.every((b) => b.height === 0 && b.rejectedHeight === 0 && b.y === 100));
  assert.deepEqual(chartBars([], 200, 100), { bars: [], max: 0 });
});

Deno.test("chart text: totals and the busiest minute; quiet and empty series said so", () => {
  const text = seriesSummary([point(0, 0), point(1, 1500, 3), point(2, 20)]);
  assert.match(
    text,
    /^1,520 rows loaded and 3 rejected in the last 3 minutes; busiest minute \d\d:01 with 1,500 rows loaded\.$/,
  );
  assert.equal(seriesSummary([point(0, 0), point(1, 0)]), "No rows loaded in the last 2 minutes.");
  assert.equal(seriesSummary([]), "No throughput data.");
  assert.deepEqual(busyMinutes([point(0, 0), point(1, 0, 1), point(2, 0, 0, 9)]).map((p) => p.minute), [
    minute(1),
    minute(2),
  ]);
});
