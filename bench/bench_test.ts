/**
 * Smoke test of the benchmark's pure helpers (bench/bench_lib.ts): percentiles, list parsing, the .env
 * rewrite, concurrency, invocation attribution, /proc parsing and the table. The benchmark itself is a command
 * (`deno task bench`), not a test.
 */
import assert from "node:assert/strict";
import type { InvocationRecord } from "../local-stack/functions/types.ts";
import {
  attributeInvocations,
  burstCpuBound,
  COMPRESSED_HEADER,
  type CompressedRow,
  envValue,
  formatCompressedTable,
  formatCpuCeiling,
  formatFaults,
  formatPlannedChunkSizes,
  formatRowPath,
  formatTable,
  inflateSteps,
  interruptedChunks,
  maxConcurrency,
  medianBy,
  parseCountList,
  parseProcStat,
  parseWorkerLog,
  percentile,
  rowPathMs,
  splitByInflate,
  summarize,
  TABLE_HEADER,
  type TableRow,
  treeFaults,
  treeTicks,
  withEnvValue,
  workersOfJob,
} from "./bench_lib.ts";

Deno.test("percentiles are nearest-rank and summarize does not mutate its input", () => {
  const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile(values, 50), 5);
  assert.equal(percentile(values, 95), 10);
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile([], 50), null);
  assert.deepEqual(summarize(values), { n: 10, p50: 5, p95: 10, max: 10, sum: 55 });
  assert.deepEqual(values, [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
  assert.deepEqual(summarize([]), { n: 0, p50: null, p95: null, max: null, sum: 0 });
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(hundred, 95), 95);
});

Deno.test("medianBy picks the middle run (the lower middle one for an even count)", () => {
  const runs = [{ s: 3 }, { s: 1 }, { s: 2 }];
  assert.deepEqual(medianBy(runs, (r) => r.s), { s: 2 });
  assert.deepEqual(medianBy([{ s: 4 }, { s: 1 }], (r) => r.s), { s: 1 });
  assert.throws(() => medianBy([], () => 0));
});

Deno.test("count lists accept k/m suffixes and reject junk", () => {
  assert.deepEqual(parseCountList("100000,1m, 5M"), [100000, 1000000, 5000000]);
  assert.deepEqual(parseCountList("1,2,4,8"), [1, 2, 4, 8]);
  assert.deepEqual(parseCountList("100k"), [100000]);
  assert.throws(() => parseCountList("1,x"));
  assert.throws(() => parseCountList("0"));
  assert.throws(() => parseCountList(""));
});

Deno.test(".env rewrite changes one key and keeps the rest", () => {
  assert.equal(withEnvValue(null, "W", "8"), "W=8\n");
  assert.equal(withEnvValue("A=1\n# c\nW=4\nB=2\n", "W", "8"), "A=1\n# c\nW=8\nB=2\n");
  assert.equal(withEnvValue("export W=4\nW=5\nA=1", "W", "2"), "W=2\nA=1\n");
  assert.equal(withEnvValue("A=1", "W", "2"), "A=1\nW=2\n");
  assert.equal(withEnvValue("WW=1\n", "W", "2"), "WW=1\nW=2\n");
  assert.equal(envValue("A=1\nW='8'\n", "W"), "8");
  assert.equal(envValue("A=1\n", "W"), null);
  assert.equal(envValue(null, "W"), null);
});

Deno.test("peak concurrency of intervals", () => {
  assert.equal(maxConcurrency([]), 0);
  assert.equal(maxConcurrency([{ start: 0, end: 10 }, { start: 10, end: 20 }]), 1);
  assert.equal(maxConcurrency([{ start: 0, end: 10 }, { start: 5, end: 20 }, { start: 6, end: 7 }]), 3);
});

Deno.test("invocations are attributed to a job through their worker's log lines", () => {
  const log = (executionId: string, at: string, job: number, kind: string, event = "chunk_loaded") =>
    JSON.stringify({
      at,
      event: "log",
      function: "csv-import-chunk",
      executionId,
      level: "info",
      message: JSON.stringify({ level: "info", event, job, kind, at }),
    });
  const text = [
    log("w1", "2026-01-01T00:00:01.500Z", 7, "scan", "chunk_scanned"),
    log("w1", "2026-01-01T00:00:03.500Z", 8, "load"),
    log("w2", "2026-01-01T00:00:02.000Z", 7, "load"),
    log("w2", "2026-01-01T00:00:02.100Z", 7, "scan", "dispatched"),
    log("w2", "2026-01-01T00:00:02.150Z", 7, "scan", "chunk_scanned"),
    '{"event":"invocation","function":"csv-import-chunk"}',
    "not json",
  ].join("\n");
  const events = parseWorkerLog(text);
  assert.equal(events.length, 5);
  const record = (id: string, executionId: string, startedAt: string, wallMs: number): InvocationRecord => ({
    id,
    function: "csv-import-chunk",
    method: "POST",
    path: "/chunk",
    status: 202,
    startedAt,
    wallMs,
    responseMs: 5,
    cpuMs: 100,
    workerCpuMs: 100,
    sharedWith: 0,
    peakMemoryMb: 10,
    peakRssMb: 90,
    coldStart: false,
    bootMs: null,
    executionId,
    outcome: "ok",
    policy: "per_worker",
  });
  const records = [
    record("a", "w1", "2026-01-01T00:00:01.000Z", 600),
    record("b", "w1", "2026-01-01T00:00:03.000Z", 600),
    record("c", "w2", "2026-01-01T00:00:01.000Z", 1200),
    { ...record("d", "w3", "2026-01-01T00:00:01.000Z", 1200), function: "csv-import-dispatch" },
  ];
  const mine = attributeInvocations(records, events, 7);
  // w2's invocation processed a load and then, within its budget, a scan: both count, "dispatched" does not.
  assert.deepEqual(mine.map((r) => [r.id, r.kind, r.chunks]), [["a", "scan", 1], ["c", "load+scan", 2]]);
  assert.deepEqual(attributeInvocations(records, events, 8).map((r) => r.id), ["b"]);

  // One shared worker (per_worker), two overlapping invocations: a tagged event goes to the invocation it names,
  // an untagged one to the latest invocation open then; no event counts twice.
  const tagged = [
    JSON.stringify({ ...JSON.parse(log("w9", "2026-01-01T00:00:01.200Z", 9, "load")), invocation: "x" }),
    JSON.stringify({ ...JSON.parse(log("w9", "2026-01-01T00:00:01.300Z", 9, "load")), invocation: "y" }),
    log("w9", "2026-01-01T00:00:01.400Z", 9, "load", "chunk_interrupted"),
  ];
  const sharedEvents = parseWorkerLog(tagged.join("\n"));
  const overlapping = [
    record("x", "w9", "2026-01-01T00:00:01.000Z", 1000),
    record("y", "w9", "2026-01-01T00:00:01.100Z", 1000),
  ];
  assert.deepEqual(
    attributeInvocations(overlapping, sharedEvents, 9).map((r) => [r.id, r.chunks]),
    [["x", 1], ["y", 2]],
  );
  assert.equal(interruptedChunks(sharedEvents, 9), 1);
  assert.deepEqual([...workersOfJob(sharedEvents, 9)], ["w9"]);

  // A compressed job: its inflate chain's steps end chunk_yielded (handed on) or chunk_inflated (the last one);
  // both attribute the step's invocation to the job, and a load that worked after a step in one invocation
  // counts as a chain step when split by kind.
  const chain = parseWorkerLog([
    log("w5", "2026-01-01T00:00:01.100Z", 11, "inflate", "chunk_yielded"),
    log("w5", "2026-01-01T00:00:02.100Z", 11, "inflate", "chunk_inflated"),
    log("w6", "2026-01-01T00:00:01.600Z", 11, "load"),
    log("w6", "2026-01-01T00:00:01.700Z", 11, "inflate", "chunk_handed_back"),
  ].join("\n"));
  const chainRecords = [
    record("s1", "w5", "2026-01-01T00:00:01.000Z", 500),
    record("s2", "w5", "2026-01-01T00:00:02.000Z", 500),
    record("l1", "w6", "2026-01-01T00:00:01.500Z", 500),
  ];
  const attributed = attributeInvocations(chainRecords, chain, 11);
  assert.deepEqual(attributed.map((r) => [r.id, r.kind]), [["s1", "inflate"], ["s2", "inflate"], [
    "l1",
    "load",
  ]]);
  assert.equal(inflateSteps(chain, 11), 2, "a handed-back claim is no step");
  assert.equal(inflateSteps(chain, 7), 0);
  const split = splitByInflate([...attributed, { ...attributed[2], id: "m", kind: "inflate+load" }]);
  assert.deepEqual(split.inflate.map((r) => r.id), ["s1", "s2", "m"]);
  assert.deepEqual(split.load.map((r) => r.id), ["l1"]);
});

Deno.test("the row path's time is the sum of the job's loads' work_ms, shown against the functions' CPU", () => {
  const line = (job: number, fields: Record<string, unknown>) =>
    JSON.stringify({
      at: "2026-01-01T00:00:01.000Z",
      event: "log",
      function: "csv-import-chunk",
      executionId: "w1",
      message: JSON.stringify({ level: "info", job, kind: "load", ...fields }),
    });
  const events = parseWorkerLog([
    line(7, { event: "chunk_loaded", work_ms: 120 }),
    line(7, { event: "chunk_yielded", work_ms: 30 }),
    line(7, { event: "chunk_scanned" }),
    line(8, { event: "chunk_loaded", work_ms: 999 }),
  ].join("\n"));
  assert.deepEqual(events.map((e) => e.workMs), [120, 30, null, 999]);
  assert.equal(rowPathMs(events, 7), 150);
  assert.equal(rowPathMs(events, 9), 0);
  assert.equal(
    formatRowPath(1.62, 3.4),
    "the row path (parsing, checking, encoding) 1.62 s of the functions' 3.40 CPU-s (48 %)",
  );
  assert.equal(
    formatRowPath(0, 0),
    "the row path (parsing, checking, encoding) 0.00 s of the functions' 0.00 CPU-s",
  );
});

Deno.test("the footer names the chunk sizes the jobs were planned with", () => {
  const MIB = 1048576;
  assert.equal(formatPlannedChunkSizes([8 * MIB, null, 8 * MIB], 8 * MIB), "8.00 MiB");
  assert.equal(
    formatPlannedChunkSizes([null, null], 16 * MIB),
    "16.00 MiB",
    "no pipeline run: the configured size",
  );
  assert.equal(
    formatPlannedChunkSizes([7 * MIB, 8 * MIB, 8 * MIB], 8 * MIB),
    "8.00 MiB (2 jobs), 7.00 MiB (1 job)",
  );
});

Deno.test("/proc stat parsing and process-tree CPU and page faults", () => {
  // Fields 10–13 are minflt, cminflt, majflt, cmajflt (proc(5)); majflt values differ so a shifted index shows.
  const line = (pid: number, comm: string, ppid: number, u: number, s: number, cu: number, cs: number) =>
    `${pid} (${comm}) S ${ppid} 1 1 0 -1 4194560 ${pid * 100} ${
      pid * 1000
    } 7 9 ${u} ${s} ${cu} ${cs} 20 0 1 0 ` +
    `100 1000 10`;
  const root = parseProcStat(line(10, "post gres (x)", 1, 100, 50, 7, 3));
  assert.deepEqual(root, {
    pid: 10,
    ppid: 1,
    minflt: 1000,
    cminflt: 10000,
    utime: 100,
    stime: 50,
    cutime: 7,
    cstime: 3,
  });
  const stats = [
    root,
    parseProcStat(line(11, "child", 10, 20, 5, 0, 0)),
    parseProcStat(line(12, "grandchild", 11, 1, 1, 0, 0)),
    parseProcStat(line(13, "other", 1, 999, 999, 0, 0)),
  ];
  assert.equal(treeTicks(stats, 10), 100 + 50 + 7 + 3 + 25 + 2);
  assert.equal(treeTicks(stats, 99), 0);
  // Own faults of 10, 11, 12 and what each one's reaped children left; 13 is not in the tree.
  assert.equal(treeFaults(stats, 10), 1000 + 10000 + 1100 + 11000 + 1200 + 12000);
  assert.equal(treeFaults(stats, 99), 0);
});

Deno.test("page faults are shown per part, with their cost at the machine's price", () => {
  assert.equal(
    formatFaults({ db: 92_400, functions: 95_000, standIns: 2_000, client: null }, 10.9),
    "page faults: database 92k, function workers 95k, stand-ins 2,000; at 10.9 µs each ≈ 1.01, 1.04, 0.02 CPU-s",
  );
  assert.equal(
    formatFaults({ db: 17_000, functions: null, standIns: null, client: 900 }, null),
    "page faults: database 17k, client 900",
  );
});

Deno.test("the CPU ceiling: the best ratio a run's CPU allows on the machine's cores", () => {
  // 4.7 + 4.5 + 1.2 = 10.4 CPU-s over 2 cores: at least 5.2 s; \copy took 3.2 s: at most 3.2 / 5.2 = 0.62×.
  assert.equal(
    formatCpuCeiling({ db: 4.7, functions: 4.5, standIns: 1.2, client: 0 }, 2, 3.2),
    "at best 0.62× \\copy on 2 cores: the run used 10.4 CPU-s (database 4.7, function workers 4.5, stand-ins 1.2), " +
      "at least 5.2 s of wall on 2 cores against \\copy's 3.2 s; 0.70× without the stand-ins' 1.2",
  );
  // More cores lift the bound; no stand-ins measured: no second figure.
  assert.equal(
    formatCpuCeiling({ db: 4, functions: 4, standIns: null, client: null }, 8, 3),
    "at best 3.00× \\copy on 8 cores: the run used 8.0 CPU-s (database 4.0, function workers 4.0), " +
      "at least 1.0 s of wall on 8 cores against \\copy's 3.0 s",
  );
  assert.equal(formatCpuCeiling({ db: null, functions: 4, standIns: 1, client: 0 }, 2, 3), null);
  assert.equal(formatCpuCeiling({ db: 4, functions: 4, standIns: 1, client: 0 }, 2, null), null);
});

Deno.test("the burst's CPU bound: the least wall time, and with small files only the most a second", () => {
  // 11.05 + 8.3 + 5.82 = 25.17 CPU-s on 2 cores: at least 12.585 s; 300 files in it: at most 23.8 a second.
  assert.deepEqual(burstCpuBound([11.05, 8.3, 5.82], 2, 300), {
    cores: 2,
    cpu_s: 25.2,
    wall_s_at_least: 12.59,
    small_files_per_s_at_most: 23.8,
  });
  assert.deepEqual(burstCpuBound([11, null, 5], 4, null), { cores: 4, cpu_s: 16, wall_s_at_least: 4 });
});

Deno.test("the table has one aligned line per row", () => {
  const row: TableRow = {
    method: "pipeline",
    rows: 1_000_000,
    width: 4,
    concurrency: 4,
    seconds: 10.04,
    rowsPerSecond: 99_601.5,
    mbPerSecond: 12.94,
    ratioToCopy: 0.3361,
    scanSeconds: 1.2,
    firstRowSeconds: 1.5,
    cpuMs: summarize([300, 350, 900]),
    peakMemoryMb: 19.1,
    peakRssMb: 173.2,
    invocations: 32,
    retries: 0,
    limits: { interrupted: 0, retired: 3, killed: 0 },
    dbCpuSeconds: 8.25,
    appCpuSeconds: 9.5,
    fnProcessCpuSeconds: 11.75,
    standInCpuSeconds: 4.25,
    valid: true,
  };
  const copy: TableRow = {
    ...row,
    method: "psql \\copy",
    rows: 100_000,
    width: null,
    concurrency: null,
    ratioToCopy: 1,
    scanSeconds: null,
    firstRowSeconds: null,
    cpuMs: null,
    peakMemoryMb: null,
    peakRssMb: null,
    invocations: null,
    retries: null,
    limits: null,
    fnProcessCpuSeconds: null,
    standInCpuSeconds: null,
    valid: false,
  };
  const lines = formatTable([row, copy]).split("\n");
  assert.equal(lines.length, 4);
  assert.equal(new Set(lines.map((l) => l.length)).size, 1, "every line has the same width");
  assert.equal(lines[0].split("|").length - 2, TABLE_HEADER.length);
  assert.match(lines[2], /\| pipeline +\| +1M \| +4 \| +4 \| +10\.0 \| +99,602 \| +12\.9 \| +0\.34× \|/);
  assert.match(lines[2], /350\/900\/900/);
  assert.match(lines[2], /19\/173/);
  assert.match(lines[3], /\| psql \\copy +\| +100k \| +– \|/);
  assert.match(lines[3], /\| +NO \|$/);
  assert.match(
    lines[2],
    /\| +8\.3 \| +9\.5 \| +11\.8 \| +4\.3 \| +yes \|$/,
    "DB, functions' (metered, whole processes) and the stand-ins' CPU",
  );
  // A run that failed its checks shows no rate and no ratio.
  assert.match(lines[3], /\| +10\.0 \| +– \| +– \| +– \|/);
});

Deno.test("the compressed runs' table shows both ratios, the p95s by kind and the chain", () => {
  const pipeline: CompressedRow = {
    method: "pipeline",
    rows: 5_000_000,
    codec: "multi",
    compressedBytes: 251_300_000,
    seconds: 20.04,
    ratioToCopy: 0.812,
    ratioToPlainCopy: 0.655,
    inflateCpuP95: 640.4,
    loadCpuP95: 520.6,
    inflateMemoryP95: 30.2,
    loadMemoryP95: 47.7,
    chainSeconds: 12.34,
    steps: 21,
    valid: true,
  };
  const copy: CompressedRow = {
    ...pipeline,
    method: "psql \\copy",
    codec: "gzip",
    ratioToCopy: 1,
    ratioToPlainCopy: null,
    inflateCpuP95: null,
    loadCpuP95: null,
    inflateMemoryP95: null,
    loadMemoryP95: null,
    chainSeconds: null,
    steps: null,
    valid: false,
  };
  const lines = formatCompressedTable([pipeline, copy]).split("\n");
  assert.equal(lines.length, 4);
  assert.equal(new Set(lines.map((l) => l.length)).size, 1, "every line has the same width");
  assert.equal(lines[0].split("|").length - 2, COMPRESSED_HEADER.length);
  assert.match(
    lines[2],
    /\| pipeline +\| +5M \| multi +\| +251\.3 \| +20\.0 \| +0\.81× \| +0\.66× \| +640\/521 \| +30\/48 \| +12\.3 \/ 20\.0 \| +21 \| +yes \|$/,
  );
  // A run that failed its checks shows no ratio; a baseline has no chain.
  assert.match(lines[3], /\| +– \| +– \| +– \| +– \| +– \| +– \| +NO \|$/);
});
