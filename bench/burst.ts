/**
 * Usage: deno run -A bench/burst.ts [--small 300] [--big 3] [--big-rows 200000]
 *
 * Issue 14's burst on the local stack: `--small` files of 1–500 rows and `--big` files of `--big-rows` rows,
 * all uploaded at once (small and big interleaved, so neither goes first), into one table. Prints, as JSON:
 * - small files per second: how many small files finished per second from the first upload to the last small
 *   job finished (the goal: ≥ 20 per second);
 * - small-file latency, job created → finished, p50 / p95 (the goal: p95 ≤ 5 s while the big ones run), and
 *   how long they waited to start (created → their first chunk claimed: registration and dispatch), and their
 *   phases, p50 / p95 in ms: register (created → chunk planned), wait_for_slot (planned → claimed), load
 *   (claimed → the chunk's last batch began), finish (that → the job's verdict);
 * - how many small files finished before the first big one, and when each big one finished;
 * - CPU seconds while it ran: every function invocation (what hosted runs too), the database, the gateway's
 *   tree (function workers plus the local stand-ins: Storage, pg_net, routing), split into the function workers'
 *   processes in full (isolate threads plus V8's helper threads and boots) and the gateway's own process (the
 *   stand-ins), and the machine's busy cores
 *   (2 here: the burst is bound by this machine's CPU, most of it spent by what hosted runs elsewhere);
 * - minor page faults of the database, the function workers and the stand-ins (cpu.ts);
 * - the least wall time the burst's CPU allows on this machine's cores (and, with `--big 0`, the most small files a
 *   second), so a run shows how far it is bound by the CPU;
 * - what this machine charges for a page fault and a system call (machine_costs.ts), without which two runs on
 *   two machines cannot be compared.
 * Every job must succeed with its file's row count (the run fails otherwise). A table and profile of its own,
 * removed at the end; loopback only (tests/support/stack.ts).
 */
import { parseArgs } from "node:util";
import { writeCsv } from "../tests/support/generate_csv.ts";
import { connect, invocations, Scope, TERMINAL, upload } from "../tests/support/stack.ts";
import { burstCpuBound } from "./bench_lib.ts";
import { endSample, sampleCpu } from "./cpu.ts";
import { measureMachineCosts } from "./machine_costs.ts";

const { values } = parseArgs({
  options: { small: { type: "string" }, big: { type: "string" }, "big-rows": { type: "string" } },
});
const smallCount = Number(values.small ?? 300);
const bigCount = Number(values.big ?? 3);
const bigRows = Number(values["big-rows"] ?? 200_000);

const sql = connect(8);
const scope = new Scope(sql, "bench_burst");
try {
  const dir = await scope.tempDir();
  const files: { path: string; rows: number; big: boolean }[] = [];
  for (let i = 0; i < smallCount; i++) {
    const path = `${dir}/s${i}.csv`;
    const { rows } = await writeCsv(path, { rows: 1 + ((i * 167) % 500), seed: 500 + i });
    files.push({ path, rows, big: false });
  }
  for (let i = 0; i < bigCount; i++) {
    const path = `${dir}/b${i}.csv`;
    const { rows } = await writeCsv(path, { rows: bigRows, seed: 9000 + i });
    // Spread over the burst: one big file after every smallCount/bigCount small ones.
    files.splice(Math.floor(((i + 0.5) * smallCount) / bigCount) + i, 0, { path, rows, big: true });
  }
  const table = await scope.table("burst", { primaryKey: false });
  await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table });
  const names = files.map((f, i) => scope.object(`${f.big ? "big" : "small"}${i}.csv`));

  const cpuStart = await sampleCpu();
  const since = new Date().toISOString();
  const started = Date.now();
  await Promise.all(files.map((f, i) => upload(names[i], { path: f.path })));
  const uploadedMs = Date.now() - started;
  // One query for all the jobs (303 pollers of their own would load the database the burst is measured on).
  for (let tries = 0;; tries++) {
    const [{ open }] = await sql<{ open: number }[]>`
      select ${names.length} - count(*) filter (where status::text = any(${TERMINAL}::text[])
        and rejects_status is distinct from 'pending')::int as open
      from csv_import.jobs where object_name = any(${names}::text[])`;
    if (open === 0) break;
    if (tries > 2400) throw new Error(`${open} jobs still open after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const cpu = await endSample(cpuStart);
  const functionsCpuS = (await invocations()).filter((i) => i.startedAt >= since)
    .reduce((sum, i) => sum + i.cpuMs, 0) / 1000;
  // Every job, with its times, in one query (by object name: the uploads' order is the files' order).
  const rows = await sql<
    {
      object_name: string;
      status: string;
      rows_loaded: number;
      error: string | null;
      created: number;
      started: number;
      finished: number;
      planned: number | null;
      claimed: number | null;
      loaded: number | null;
    }[]
  >`
    select object_name, status::text, rows_loaded::float8 as rows_loaded, error,
      extract(epoch from created_at) * 1000 as created,
      extract(epoch from coalesce(started_at, finished_at)) * 1000 as started,
      extract(epoch from finished_at) * 1000 as finished,
      c.planned, c.claimed, c.loaded
    from csv_import.jobs j
    cross join lateral (
      -- available_at is when the chunk was made ready, until a retry or a hand-back moves it past its first claim.
      select extract(epoch from least(min(available_at), min(started_at))) * 1000 as planned,
        extract(epoch from min(started_at)) * 1000 as claimed,
        extract(epoch from max(finished_at)) * 1000 as loaded
      from csv_import.chunks where job_id = j.id) c
    where object_name = any(${names}::text[])`;
  const byName = new Map(rows.map((r) => [r.object_name, r]));
  const jobs = names.map((n) => byName.get(n)!);
  for (const [i, job] of jobs.entries()) {
    if (job.status !== "succeeded" || job.rows_loaded !== files[i].rows) {
      throw new Error(
        `${names[i]}: ${job.status}, ${job.rows_loaded} of ${files[i].rows} rows: ${job.error}`,
      );
    }
  }
  const small = jobs.filter((_, i) => !files[i].big);
  const big = jobs.filter((_, i) => files[i].big);
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * p) - 1] ?? 0;
  const seconds = (ms: number) => Math.round(ms / 10) / 100;
  // Every small job has a chunk (succeeded, checked above): its times are set.
  const phased = small.map((t) => ({ ...t, planned: t.planned!, claimed: t.claimed!, loaded: t.loaded! }));
  const lastSmall = Math.max(...small.map((t) => t.finished));
  const firstBig = Math.min(...big.map((t) => t.finished));
  console.log(JSON.stringify({
    small: smallCount,
    big: bigCount,
    big_rows: bigRows,
    upload_s: seconds(uploadedMs),
    small_files_per_s: Math.round((smallCount / ((lastSmall - started) / 1000)) * 10) / 10,
    small_latency_s: {
      p50: seconds(pct(small.map((t) => t.finished - t.created), 0.5)),
      p95: seconds(pct(small.map((t) => t.finished - t.created), 0.95)),
    },
    small_wait_to_start_s: {
      p50: seconds(pct(small.map((t) => t.started - t.created), 0.5)),
      p95: seconds(pct(small.map((t) => t.started - t.created), 0.95)),
    },
    // A small file's phases (ms, p50 / p95): created → its chunk planned (registration), planned → claimed (waiting
    // for a slot), claimed → the chunk's last batch began (the load), that → the job's verdict.
    small_phases_ms: Object.fromEntries(
      Object.entries({
        register: phased.map((t) => t.planned - t.created),
        wait_for_slot: phased.map((t) => t.claimed - t.planned),
        load: phased.map((t) => t.loaded - t.claimed),
        finish: phased.map((t) => t.finished - t.loaded),
      }).map(([name, xs]) => [name, [Math.round(pct(xs, 0.5)), Math.round(pct(xs, 0.95))]]),
    ),
    small_before_first_big: small.filter((t) => t.finished < firstBig).length,
    big_finished_s: big.map((t) => seconds(t.finished - started)).sort((a, b) => a - b),
    cpu_s: {
      functions: Math.round(functionsCpuS * 10) / 10,
      database: cpu.dbSeconds,
      gateway_tree: cpu.gatewaySeconds,
      function_processes: cpu.functionSeconds === null ? null : Math.round(cpu.functionSeconds * 10) / 10,
      stand_ins: cpu.gatewaySelfSeconds,
      machine_busy_cores: Math.round(cpu.machineBusyCores * 100) / 100,
    },
    // Minor page faults per part (cpu.ts): what the machine's price per fault (below) makes of them.
    page_faults: {
      database: cpu.faults.db,
      function_processes: cpu.faults.functions,
      stand_ins: cpu.faults.standIns,
    },
    // The least wall time the burst's CPU (database, function workers' processes, stand-ins) takes on this
    // machine's cores, however well it overlaps; without big files, the most small files a second it allows.
    cpu_bound: burstCpuBound(
      [cpu.dbSeconds, cpu.functionSeconds, cpu.gatewaySelfSeconds],
      navigator.hardwareConcurrency,
      bigCount === 0 ? smallCount : null,
    ),
    machine: await measureMachineCosts(),
    all_done_s: seconds(Math.max(lastSmall, ...big.map((t) => t.finished)) - started),
  }));
} finally {
  await scope.dispose();
  await sql.end();
}
