/**
 * Usage: deno task bench [--rows 100000,1000000] [--widths 1,2,4,8] [--chunk-size 8MiB] [--bad-every K]
 *                        [--seed 42] [--out .data/bench/report.json] [--skip-pgloader] [--restart-stack]
 *                        [--wait-idle 300] [--repeat 1] [--compress none,gzip,multi]
 *
 * The performance benchmark (a command, not a test): for each size, one seeded file from tests/support/generate_csv.ts
 * (cached in .data/bench by rows, seed and bad-every), loaded into a fresh copy of the demo table (10 columns,
 * primary key) by (1) `psql \copy`, (2) pgloader when installed, (3) the pipeline end to end on the local stack,
 * once per fan-out width. Prints a table and writes a JSON report with every measurement.
 *
 * What is measured:
 * - \copy and pgloader: wall time around the client process; the client's CPU (reaped children of this
 *   process) and the database's CPU (the postmaster's process tree, from /proc).
 * - The pipeline: from the upload finishing (the job's created_at: the storage trigger runs when the object row
 *   is written, after the bytes) to the job's finished_at; time to first committed row (first_row_at − created_at);
 *   the scan phase (last scan chunk finished − created_at); per chunk invocation CPU time and peak memory from
 *   the local functions runtime's records (under the default per_worker policy invocations share a worker: its
 *   CPU is split among the invocations open in each sample), matched to the job through the workers' log lines
 *   in .local/logs/gateway.log (tagged with their invocation); retries (Σ attempts − 1 over chunks); the limits
 *   (`intr/ret/kill`: chunks interrupted by a limit and retried, chunk workers retired and killed by one; goal
 *   at the defaults: 0 interrupted, 0 killed); the peak number of chunk invocations running at once; database
 *   and gateway-tree (Storage, pg_net, workers) CPU.
 * - The row path's share of the functions' CPU: the job's loads time their parsing, checking and encoding
 *   (`work_ms` in their log lines), printed against every function invocation's metered CPU.
 * - Page faults of every run, per part (the database; the client, or the function workers and the stand-ins),
 *   printed with what they cost at this machine's measured price per fault (machine_costs.ts): fresh database
 *   backends and function workers fault on every page they touch first, which on some machines is a visible
 *   share of their CPU.
 * - Correctness: every run checks the target's row count against the generator's good rows and its checksum
 *   against the \copy table's; the pipeline also checks the job's status and loaded/rejected counts. A run that
 *   fails a check is reported with ok = NO and its problems.
 *
 * Fan-out width: per width, the bench's profile gets max_parallel_chunks = width (the per-job limit) and
 * supabase/functions/.env gets WORKER_CONCURRENT_BATCHES = width (the global limit), then the function workers
 * are killed. The gateway reads .env when it starts, so a width above the running gateway's global limit only
 * takes effect with --restart-stack (restarts the local stack once before such a width and once after the
 * restore, each time after waiting for other jobs to finish); the table's `conc` column shows the width that was
 * reached. The .env is restored at the end (deleted when the bench created it), also on SIGINT/SIGTERM.
 *
 * With FAN_OUT_AUTO_MAX=N in supabase/functions/.env the width is steered (csv_import.fan_out_width): a width
 * is then where it starts, the job's max_parallel_chunks is N, and the width's steps are printed after the table.
 * --repeat N measures everything N times, in rounds (\copy, pgloader, each width: the baseline alternates with
 * the pipeline); the table shows the median run of each method, size and width, ratios refer to the median \copy
 * run, and the report keeps every run.
 *
 * --compress (default none: the plain file) lists what each size is uploaded as: `none`, `gzip` (one member,
 * `gzip -6`), `multi` (the file cut into 8 MiB pieces, each `gzip -6`, concatenated: what pigz --independent or
 * bgzip-like tools make). Compressed files are cached next to the plain ones (.data/bench, same key plus the codec).
 * A compressed run's baseline is `\copy … from program 'gzip -dc <file>'` (the client decompresses into \copy);
 * its pipeline run uploads the compressed file as orders.csv.gz. Each codec's baseline alternates with its
 * pipeline runs in every round; a compressed run's `× \copy` refers to its own baseline, and a second table
 * shows it beside the ratio to the plain \copy (when `none` is listed too), the per invocation CPU and memory
 * added (p95) of the inflate chain's steps and of the loads, the chain's span against the job's, and its steps.
 *
 * Before every measurement the bench waits (at most --wait-idle seconds) until no other import job is active
 * and the machine is nearly idle; what it saw is recorded per run (`background`), and runs that overlapped
 * other jobs are listed under the table.
 *
 * Invariants: loopback only (refuses non-local URLs); every wait has a deadline; the bench removes its tables,
 * profiles and uploaded objects (jobs stay, as the pipeline's history); it never edits pipeline code.
 */
import { DEFAULTS } from "../supabase/functions/_shared/platform/config.ts";
import {
  type CompressedRow,
  formatCompressedTable,
  formatCpuCeiling,
  formatFaults,
  formatPlannedChunkSizes,
  formatRowPath,
  formatTable,
  medianBy,
} from "./bench_lib.ts";
import { note, OBJECT_PREFIX, REPO, runClient, sql, withDeadline } from "./context.ts";
import {
  args,
  badEvery,
  chunkSize,
  type Codec,
  compressions,
  repeat,
  seed,
  sizes,
  widths,
} from "./options.ts";
import { setClockTicks } from "./cpu.ts";
import { admin, EnvGuard, killWorkers, restartStack, twice, waitQuiet } from "./local_stack.ts";
import { measureMachineCosts } from "./machine_costs.ts";
import { runPipeline } from "./pipeline.ts";
import {
  cleanup,
  ensureCompressed,
  ensureDataset,
  medianRuns,
  pgloaderVersion,
  runCopy,
  runFaults,
  runPgloader,
  type RunResult,
  toTableRow,
} from "./runs.ts";

async function machine() {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const [{ version }] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
  return {
    cores: navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? null,
    memoryGb: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024 / 1024),
    kernel: Deno.osRelease(),
    postgres: version,
    deno: Deno.version.deno,
    pgloader: await pgloaderVersion(),
    git: await gitState(),
    // Page faults and system calls cost many times more on some machines of the same kind (machine_costs.ts).
    costs: await measureMachineCosts(),
  };
}

/** The commit and the uncommitted pipeline files the numbers were measured with. */
async function gitState() {
  const run = (...a: string[]) =>
    runClient("git", ["-C", REPO, ...a], 10_000).then((o) => (o.success ? o.stdout.trim() : null)).catch(() =>
      null
    );
  const dirty = await run("status", "--porcelain", "--", "supabase");
  return { commit: await run("rev-parse", "HEAD"), uncommittedPipelineFiles: dirty ? dirty.split("\n") : [] };
}

async function main() {
  await admin("/_local/health", "GET", 10_000).catch((error) => {
    throw new Error(`the local stack is not up (bash scripts/stack.sh up): ${error}`);
  });
  const ticks = await runClient("getconf", ["CLK_TCK"], 10_000).catch(() => null);
  if (ticks?.success) setClockTicks(Number(ticks.stdout.trim()) || 100);

  const env = new EnvGuard();
  const onSignal = async () => {
    env.restoreSync();
    note("interrupted: supabase/functions/.env restored; removing the bench's tables, profiles and objects");
    await withDeadline(cleanup(), 15_000, "the cleanup").catch((error) => note(String(error)));
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const startedAt = new Date().toISOString();
  const info = await machine();
  const usePgloader = !args["skip-pgloader"] && info.pgloader !== null;
  if (!args["skip-pgloader"] && !usePgloader) note("pgloader is not installed: skipping it");
  const results: RunResult[] = [];
  const datasets: Record<string, unknown>[] = [];
  const skipped: { method: string; rows: number; width: number | null; error: string }[] = [];
  let failure: unknown = null;
  try {
    for (const rows of sizes) {
      const data = await ensureDataset(rows);
      datasets.push({
        rows,
        file: data.path,
        bytes: data.manifest.bytes,
        goodRows: data.manifest.goodRows,
        planted: data.manifest.planted.length,
        generateSeconds: data.generateSeconds,
      });
      const label = `${rows.toLocaleString("en-US")} rows`;
      const tell = (r: RunResult) =>
        note(
          `  ${r.seconds.toFixed(1)} s, ${Math.round(r.rowsPerSecond).toLocaleString("en-US")} rows/s` +
            (r.pipeline ? `, peak concurrency ${r.pipeline.peakConcurrency}` : "") +
            (r.valid ? "" : `, INVALID: ${r.problems.join("; ")}`),
        );
      const variants = [];
      for (const codec of compressions) {
        const v = await ensureCompressed(data, codec);
        variants.push(v);
        if (codec !== "none") {
          datasets.push({
            rows,
            codec,
            file: v.path,
            compressedBytes: v.compressedBytes,
            bytes: data.manifest.bytes,
          });
        }
      }
      // Rounds: per codec \copy, pgloader (plain only), then every width, repeated, so each baseline and its
      // pipeline runs alternate and drift on a shared machine falls on both alike. Every ratio of this size and
      // codec refers to its median \copy run (below).
      const baselines = new Map<Codec, Awaited<ReturnType<typeof runCopy>>[]>();
      const sizeResults = new Map<Codec, RunResult[]>();
      for (let i = 1; i <= repeat; i++) {
        const round = repeat > 1 ? ` (${i}/${repeat})` : "";
        for (const variant of variants) {
          const codec = variant.codec;
          const tag = codec === "none" ? "" : ` [${codec}]`;
          const copyName = codec === "none" ? "psql \\copy" : "psql \\copy from program 'gzip -dc'";
          const mine = baselines.get(codec) ?? [];
          baselines.set(codec, mine);
          const runs = sizeResults.get(codec) ?? [];
          sizeResults.set(codec, runs);
          note(`${label}: ${copyName}${tag}${round}`);
          try {
            const b = await twice(
              `${label}: ${copyName}${tag}`,
              () => runCopy(variant),
              (b) => b.result.problems,
            );
            b.result.repeat = i;
            mine.push(b);
            results.push(b.result);
            tell(b.result);
          } catch (error) {
            skipped.push({ method: `psql \\copy${tag}`, rows, width: null, error: String(error) });
          }
          if (mine.length === 0) continue;
          // The checksum every run is checked against (any \copy run's: the same data gives the same table).
          const { result: copy, reference } = mine[0];
          /** One measured run of this round: kept with its round number, or listed as not measured. */
          const measure = async (
            what: string,
            method: RunResult["method"],
            width: number | null,
            run: () => Promise<RunResult>,
          ) => {
            note(`${label}: ${what}${tag}${round}`);
            try {
              const r = await twice(`${label}: ${what}${tag}`, run, (r) => r.problems);
              r.repeat = i;
              results.push(r);
              runs.push(r);
              tell(r);
            } catch (error) {
              skipped.push({ method: `${method}${tag}`, rows, width, error: String(error) });
            }
          };
          if (usePgloader && codec === "none") {
            await measure("pgloader", "pgloader", null, () => runPgloader(variant, copy, reference));
          }
          for (const width of widths) {
            await measure(
              `pipeline, width ${width}`,
              "pipeline",
              width,
              () => runPipeline(variant, width, env, copy, reference),
            );
          }
        }
      }
      const medianCopy = (codec: Codec) => {
        const mine = baselines.get(codec) ?? [];
        return mine.length === 0 ? null : medianBy(mine, (b) => b.result.seconds).result;
      };
      const plain = medianCopy("none");
      for (const codec of compressions) {
        const median = medianCopy(codec);
        if (median === null) {
          note(`${label}${codec === "none" ? "" : ` [${codec}]`}: no \\copy baseline, no ratios`);
          continue;
        }
        for (
          const r of [...(baselines.get(codec) ?? []).map((b) => b.result), ...(sizeResults.get(codec) ?? [])]
        ) {
          r.ratioToCopy = r.rowsPerSecond / median.rowsPerSecond;
          if (codec !== "none" && plain !== null) r.ratioToPlainCopy = r.rowsPerSecond / plain.rowsPerSecond;
        }
      }
    }
  } catch (error) {
    failure = error;
    note(`stopped: ${error instanceof Error ? error.message : error}`);
  } finally {
    env.restoreSync();
    if (args["restart-stack"] && env.appliedGlobal !== env.initialGlobal) {
      await waitQuiet(OBJECT_PREFIX).catch(() => {});
      await restartStack().catch((error) => note(`restart after restoring .env failed: ${error}`));
    } else await killWorkers().catch(() => {});
    await cleanup();
  }

  const medians = medianRuns(results);
  for (const r of medians) r.median = true;
  const report = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command: `deno task bench ${Deno.args.join(" ")}`.trim(),
    machine: info,
    options: {
      rows: sizes,
      widths,
      chunkSize: chunkSize ?? DEFAULTS.CHUNK_SIZE,
      chunkSizeSource: chunkSize
        ? "--chunk-size"
        : "pipeline default (DEFAULTS.CHUNK_SIZE; measured costs may lower it: each run's pipeline.chunkSize)",
      badEvery,
      seed,
      restartStack: args["restart-stack"],
      repeat,
      compress: compressions,
      pgloader: usePgloader,
    },
    datasets,
    results,
    skipped,
    error: failure ? String(failure instanceof Error ? failure.message : failure) : null,
  };
  const out = args.out.startsWith("/") ? args.out : `${Deno.cwd()}/${args.out}`;
  await Deno.mkdir(out.replace(/\/[^/]*$/, ""), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  await sql.end({ timeout: 5 });

  console.log(formatTable(medians.map(toTableRow)));
  const compressedMedians = medians.filter((r) => r.compression !== "none");
  if (compressedMedians.length > 0) {
    console.log(
      `\nCompressed uploads (medians; × own \\copy: over \\copy from program 'gzip -dc' of the same file; ` +
        `CPU/memory added: per invocation, p95 of the inflate chain's steps / of the loads; chain s: its inflate ` +
        `chunk's first claim → finished, against the job's wall time):`,
    );
    console.log(formatCompressedTable(compressedMedians.map(toCompressedRow)));
  }
  console.log(
    `\n${info.cores} cores (${
      info.cpuModel ?? "unknown CPU"
    }), ${info.memoryGb} GB, PostgreSQL ${info.postgres}; ` +
      `chunk size ${
        formatPlannedChunkSizes(
          results.map((r) => r.pipeline?.chunkSize ?? null),
          chunkSize ?? DEFAULTS.CHUNK_SIZE,
        )
      }. conc: most chunks running ` +
      `at once; CPU/peak MB: per chunk invocation (its share of a shared worker's CPU; Δ = added while it ran, ` +
      `RSS = worker process); intr/ret/kill: chunks interrupted by a limit and retried / chunk workers retired / ` +
      `killed by a limit; ` +
      `fn/client CPU: every function invocation while the job ran, its isolate thread as the runtime meters it ` +
      `(what hosted runs too), or the client process (\\copy, pgloader); fn procs CPU: the function workers' ` +
      `processes in full (isolate threads plus V8's helper threads and boots); stand-in CPU: the gateway's own ` +
      `process (local Storage, pg_net, routing: runs only here).`,
  );
  const { costs } = info;
  const machineLine = [
    `a page fault ${costs.pageFaultUs ?? "?"} µs`,
    `a system call ${costs.syscallUs ?? "?"} µs`,
    `the CPU loop ${costs.cpuLoopMs} ms (${costs.meltdown ?? "Meltdown mitigation unknown"})`,
  ].join(", ");
  console.log(
    `This machine: ${machineLine}; compare runs across machines only when these agree (machine_costs.ts).`,
  );
  const notReached = (r: RunResult) => r.pipeline !== undefined && !r.pipeline.widthReached;
  for (const r of results.filter((r) => !r.valid || r.otherActiveJobs > 0 || notReached(r))) {
    console.log(
      `${runLabel(r)}: ${r.problems.join("; ") || "ok"}` +
        (r.otherActiveJobs > 0 ? ` (${r.otherActiveJobs} other job(s) ran at the same time)` : "") +
        (r.pipeline && notReached(r)
          ? ` (width ${r.width} not reached: at most ${r.pipeline.peakConcurrency} chunks ran at once; the gateway ` +
            `reads WORKER_CONCURRENT_BATCHES from supabase/functions/.env only when it starts` +
            (r.width! > r.pipeline.assumedGlobalLimit
              ? `, and it was presumably started with ${r.pipeline.assumedGlobalLimit}; --restart-stack applies it)`
              : ")")
          : ""),
    );
  }
  // Per chunk worker (an isolate and every request it served: the unit the platform's limits apply to).
  for (const r of medians.filter((r) => r.pipeline !== undefined && r.pipeline.workers.n > 0)) {
    const w = r.pipeline!.workers;
    const stats = (s: { p50: number | null; p95: number | null; max: number | null }) =>
      [s.p50, s.p95, s.max].map((v) => v === null ? "–" : Math.round(v)).join("/");
    console.log(
      `${runLabel(r)}: ${w.n} chunk workers, CPU ms p50/p95/max ${stats(w.cpuMs)}, ` +
        `memory added MB p50/p95/max ${stats(w.peakMemoryMb)}, at most ${w.peakConcurrency} requests at once`,
    );
  }
  // The function side split: the rows themselves against everything else the functions did for the job.
  for (const r of medians.filter((r) => r.pipeline !== undefined)) {
    console.log(
      `${runLabel(r)}: ${formatRowPath(r.pipeline!.rowPathSeconds, r.pipeline!.functionsCpuSeconds)}`,
    );
  }
  // Where the machine's price per page fault shows: fresh processes fault on every page they touch first.
  for (const r of medians) {
    console.log(`${runLabel(r)}: ${formatFaults(runFaults(r), costs.pageFaultUs ?? null)}`);
  }
  // The best ratio the CPU each pipeline run used allows on this machine's cores (bench_lib.ts formatCpuCeiling).
  for (const r of medians.filter((r) => r.pipeline !== undefined)) {
    // Its baseline's wall time, from the ratio the run got against it (same rows: the ratio of the times).
    const copySeconds = r.ratioToCopy === null ? null : r.seconds * r.ratioToCopy;
    const line = formatCpuCeiling(
      {
        db: r.cpu.dbSeconds,
        functions: r.cpu.functionSeconds,
        standIns: r.cpu.gatewaySelfSeconds,
        client: r.cpu.clientSeconds,
      },
      info.cores,
      copySeconds,
    );
    if (line !== null) console.log(`${runLabel(r)}: ${line}`);
  }
  for (const r of results.filter((r) => (r.pipeline?.widthOverTime.length ?? 0) > 0)) {
    // Only the windows that changed the width (every closed window is logged).
    const steps = r.pipeline!.widthOverTime.filter((w, i, all) => i === 0 || w.width !== all[i - 1].width)
      .map((w) => `${w.width} at ${w.atSeconds} s`).join(", ");
    console.log(`${runLabel(r)} run ${r.repeat}: fan-out width (FAN_OUT_AUTO_MAX) ${steps}`);
  }
  for (const r of skipped) console.log(`${r.method} ${r.rows} w${r.width ?? "-"}: NOT MEASURED: ${r.error}`);
  console.log(`Report: ${out}`);
  if (failure || skipped.length > 0 || results.some((r) => !r.valid)) Deno.exit(1);
}

if (import.meta.main) await main();

function toCompressedRow(r: RunResult): CompressedRow {
  const c = r.pipeline?.compressed;
  return {
    method: r.method,
    rows: r.rows,
    codec: r.compression,
    compressedBytes: r.compressedBytes,
    seconds: r.seconds,
    ratioToCopy: r.ratioToCopy,
    ratioToPlainCopy: r.ratioToPlainCopy,
    inflateCpuP95: c?.inflate.cpuMs.p95 ?? null,
    loadCpuP95: c?.load.cpuMs.p95 ?? null,
    inflateMemoryP95: c?.inflate.peakMemoryMb.p95 ?? null,
    loadMemoryP95: c?.load.peakMemoryMb.p95 ?? null,
    chainSeconds: c?.chainSeconds ?? null,
    steps: c ? c.steps : null,
    valid: r.valid,
  };
}

/** A run's name in the notes under the tables: method, size, width and (when compressed) codec. */
function runLabel(r: RunResult): string {
  return `${r.method} ${r.rows} w${r.width ?? "-"}${r.compression === "none" ? "" : ` [${r.compression}]`}`;
}
