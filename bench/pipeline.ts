/**
 * The pipeline's run: upload the dataset to the bench's own profile and folder, follow the job the storage
 * trigger registered until it ends, and gather what it cost — chunks and retries from csv_import.chunks, per
 * invocation CPU and memory from the local functions runtime's records (matched to the job through the workers'
 * log lines in the gateway log, each line tagged with its invocation), the chunks interrupted by a limit
 * (chunk_interrupted) and the chunk workers retired or killed by one (the runtime's worker records), the width
 * reached, the database's and the gateway's CPU.
 *
 * Invariants: the run's profile, table and objects are removed when it ends, whatever happened; the job is
 * followed with a deadline (120 s + 1 ms per row); a run whose checks fail is returned with its problems.
 */
import { BUCKET, createProfile, removeObjects, supabase, TERMINAL } from "../tests/support/stack.ts";
import {
  attributeInvocations,
  CHUNK_FUNCTIONS,
  inflateSteps,
  interruptedChunks,
  maxConcurrency,
  parseWorkerLog,
  rowPathMs,
  splitByInflate,
  type Stats,
  summarize,
  type WorkerLogEvent,
  workersOfJob,
} from "./bench_lib.ts";
import { GATEWAY_LOG, note, OBJECT_PREFIX, runId, sleep, sql, withDeadline } from "./context.ts";
import { args, chunkSize } from "./options.ts";
import { endSample, sampleCpu } from "./cpu.ts";
import {
  checkStackUnchanged,
  EnvGuard,
  invocationRecords,
  killWorkers,
  restartStack,
  stackIdentity,
  waitQuiet,
  workerRecords,
} from "./local_stack.ts";
import {
  checkpoint,
  createdProfiles,
  type Dataset,
  ensureDataset,
  finishResult,
  freshTable,
  nextSequence,
  otherJobsDuring,
  type PipelineDetails,
  type RunResult,
  uploadedObjects,
  verifyTable,
} from "./runs.ts";

interface JobRow {
  id: number;
  status: string;
  error: string | null;
  rows_loaded: number;
  rows_rejected: number;
  rejects_status: string;
  created_at: Date;
  started_at: Date | null;
  first_row_at: Date | null;
  finished_at: Date | null;
  compression: { codec?: string } | null;
  data_size: number | null;
  inflated_in: number;
  inflated_out: number;
  chunk_size: number | null;
}

async function jobOf(objectName: string): Promise<JobRow | undefined> {
  const [job] = await sql<JobRow[]>`
    select id::float8 as id, status, error, rows_loaded::float8 as rows_loaded, rows_rejected::float8 as rows_rejected,
           rejects_status, created_at, started_at, first_row_at, finished_at, compression,
           data_size::float8 as data_size, inflated_in::float8 as inflated_in, inflated_out::float8 as inflated_out,
           chunk_size::float8 as chunk_size
    from csv_import.jobs where bucket_id = ${BUCKET} and object_name = ${objectName}
    order by id desc limit 1`;
  return job;
}

async function uploadFile(objectName: string, path: string, bytes: number): Promise<void> {
  const file = await Deno.open(path);
  try {
    const upload = supabase.storage.from(BUCKET).upload(objectName, file.readable, {
      contentType: "text/csv",
      duplex: "half",
    } as Record<string, unknown>);
    const { error } = await withDeadline(upload, 60_000 + bytes / 5e3, `the upload of ${objectName}`);
    if (error) throw new Error(`upload of ${objectName} failed: ${error.message}`);
  } finally {
    try {
      file.close();
    } catch {
      // closed by the stream
    }
  }
}

/** Reads what the gateway log gained since `offset` (null when there is no log). */
async function gatewayLogSince(offset: number): Promise<string | null> {
  try {
    const file = await Deno.open(GATEWAY_LOG);
    try {
      await file.seek(offset, Deno.SeekMode.Start);
      const decoder = new TextDecoder();
      const buffer = new Uint8Array(1 << 20);
      let text = "";
      for (;;) {
        const n = await file.read(buffer);
        if (n === null) break;
        text += decoder.decode(buffer.subarray(0, n), { stream: true });
      }
      return text + decoder.decode();
    } finally {
      file.close();
    }
  } catch {
    return null;
  }
}

async function gatewayLogSize(): Promise<number> {
  try {
    return (await Deno.stat(GATEWAY_LOG)).size;
  } catch {
    return 0;
  }
}

/** Returns true when it restarted the stack (the caller then warms it up before measuring). */
async function applyWidth(env: EnvGuard, width: number): Promise<boolean> {
  env.write(width);
  if (args["restart-stack"] && width > env.appliedGlobal) {
    await waitQuiet(OBJECT_PREFIX);
    await restartStack();
    env.appliedGlobal = width;
    return true;
  }
  await killWorkers();
  return false;
}

/** An unmeasured small import after a stack restart: a cold database and gateway would bias the next run. */
async function warmUp(env: EnvGuard, width: number) {
  note("warming up the restarted stack with an unmeasured 5,000-row import");
  const data = await ensureDataset(5000);
  const r = await runPipeline(data, width, env, null, null);
  if (!r.valid) note(`warm-up import had problems: ${r.problems.join("; ")}`);
}

export async function runPipeline(
  data: Dataset,
  width: number,
  env: EnvGuard,
  copy: RunResult | null,
  reference: { count: number; sum: string } | null,
): Promise<RunResult> {
  const target = await freshTable(`w${width}`);
  const attempt = nextSequence();
  const profile = `bench_${runId}_${attempt}_r${data.rows}_w${width}`;
  const codecTag = data.codec === "none" ? "" : `-${data.codec}`;
  const folder = `${OBJECT_PREFIX}-${attempt}-r${data.rows}-w${width}${codecTag}`;
  // The pipeline recognises a compressed upload by its bytes; the name says what it is, as a user's would.
  const objectName = `${folder}/orders.csv${data.codec === "none" ? "" : ".gz"}`;
  uploadedObjects.push(objectName, `${objectName}.rejects.csv`);
  try {
    await createProfile(sql, {
      name: profile,
      pathPattern: `${folder}/%`,
      targetTable: target.table,
      chunkSizeBytes: chunkSize,
      // A steered width (FAN_OUT_AUTO_MAX) starts at `width` and may climb to the maximum: the job may follow it.
      maxParallelChunks: Math.max(width, env.autoMax),
      toleratedRejectRate: 1,
    });
    createdProfiles.add(profile);
    if (await applyWidth(env, width)) await warmUp(env, width);
    const otherBefore = await waitQuiet(OBJECT_PREFIX);
    await checkpoint();
    const logOffset = await gatewayLogSize();
    const identity = await stackIdentity();

    const uploadStarted = performance.now();
    await uploadFile(objectName, data.path, data.compressedBytes ?? data.manifest.bytes);
    const uploadSeconds = (performance.now() - uploadStarted) / 1000;
    const cpu0 = await sampleCpu();
    const uploadedAt = Date.now();
    note(
      `uploaded ${((data.compressedBytes ?? data.manifest.bytes) / 1e6).toFixed(0)} MB in ${
        uploadSeconds.toFixed(1)
      } s; following the job`,
    );

    const timeoutMs = 120_000 + data.rows;
    const deadline = Date.now() + timeoutMs;
    let job: JobRow | undefined;
    for (;;) {
      job = await jobOf(objectName);
      if (job && TERMINAL.includes(job.status) && job.rejects_status !== "pending") break;
      if (Date.now() > deadline) {
        throw new Error(
          `the job of ${objectName} did not finish within ${timeoutMs / 1000} s (status ${
            job?.status ?? "none"
          })`,
        );
      }
      await sleep(200);
    }
    const cpu = await endSample(cpu0);
    const problems: string[] = [];

    const chunks = await sql<
      { kind: string; n: number; attempts: number; retries: number; last_scan: Date | null }[]
    >`
      select kind::text as kind, count(*)::int as n, sum(attempts)::int as attempts,
             sum(greatest(attempts - 1, 0))::int as retries, max(finished_at) as last_scan
      from csv_import.chunks where job_id = ${job.id} group by kind order by kind`;
    const claims = chunks.reduce((a, c) => a + c.attempts, 0);
    const spans = await sql<{ started_at: Date | null; finished_at: Date | null }[]>`
      select started_at, finished_at from csv_import.chunks where job_id = ${job.id}`;
    const peakRunningChunks = maxConcurrency(
      spans.filter((c) => c.started_at && c.finished_at).map((c) => ({
        start: c.started_at!.getTime(),
        end: c.finished_at!.getTime(),
      })),
    );

    // Invocation records arrive when an invocation is over (after the job may already be finished).
    let matched: ReturnType<typeof attributeInvocations> = [];
    let matchedBy: "log" | "time" = "log";
    let events: WorkerLogEvent[] = [];
    const recordsDeadline = Date.now() + 20_000;
    for (;;) {
      const records = await invocationRecords();
      const log = await gatewayLogSince(logOffset);
      events = log === null ? [] : parseWorkerLog(log);
      matched = attributeInvocations(records, events, job.id);
      matchedBy = "log";
      const last = Date.now() > recordsDeadline;
      const processed = () => matched.reduce((a, r) => a + r.chunks, 0);
      if (processed() >= claims) break;
      if (log === null || (last && matched.length === 0)) {
        // No worker log to match by: the chunk invocations that started while the job ran.
        const from = job.created_at.getTime();
        const to = (job.finished_at ?? new Date()).getTime();
        matched = records.filter((r) =>
          CHUNK_FUNCTIONS.includes(r.function) && Date.parse(r.startedAt) >= from &&
          Date.parse(r.startedAt) <= to
        ).map((r) => ({ ...r, kind: "?", chunks: 1 }));
        matchedBy = "time";
        if (last) break;
      }
      if (last) break;
      await sleep(500);
    }
    const processedChunks = matched.reduce((a, r) => a + r.chunks, 0);
    if (matchedBy === "log" && processedChunks < claims) {
      problems.push(
        `found ${processedChunks} processed chunks in invocation records for ${claims} chunk claims`,
      );
    }

    await checkStackUnchanged(identity, problems);
    const expectedStatus = data.manifest.planted.length > 0 ? "succeeded_with_rejects" : "succeeded";
    if (job.status !== expectedStatus) {
      problems.push(`job ${job.id} ended ${job.status}${job.error ? `: ${job.error}` : ""}`);
    }
    if (job.rows_loaded !== data.manifest.goodRows) {
      problems.push(`job loaded ${job.rows_loaded} rows, expected ${data.manifest.goodRows}`);
    }
    if (job.rows_rejected !== data.manifest.planted.length) {
      problems.push(`job rejected ${job.rows_rejected} rows, expected ${data.manifest.planted.length}`);
    }
    const check = await verifyTable(target.table, data, reference, problems);

    const created = job.created_at.getTime();
    const since = (d: Date | null) => (d ? (d.getTime() - created) / 1000 : null);
    const seconds = job.finished_at
      ? (job.finished_at.getTime() - created) / 1000
      : (Date.now() - uploadedAt) / 1000;
    const scan = chunks.find((c) => c.kind === "scan");
    const byKind = (pick: (r: (typeof matched)[number]) => number) => {
      const out: Record<string, Stats> = {};
      for (const kind of new Set(matched.map((r) => r.kind))) {
        out[kind] = summarize(matched.filter((r) => r.kind === kind).map(pick));
      }
      return out;
    };
    const cpuMs = summarize(matched.map((r) => r.cpuMs));
    // Every function's invocations while the job ran (registration included: it starts after created_at).
    const functionsCpuMs = (await invocationRecords())
      .filter((r) => {
        const start = Date.parse(r.startedAt);
        return start >= created && start <= created + seconds * 1000;
      })
      .reduce((a, r) => a + r.cpuMs, 0);
    // The chunk workers that worked for this job (shared by its invocations under per_worker): limits are theirs.
    const jobWorkers = workersOfJob(events, job.id);
    const workers = (await workerRecords()).filter((w) =>
      CHUNK_FUNCTIONS.includes(w.function) && jobWorkers.has(w.executionId)
    );
    const limits = {
      interrupted: interruptedChunks(events, job.id),
      retired: workers.filter((w) => w.retired === "cpu" || w.retired === "wall_clock").length,
      killed: workers.filter((w) =>
        w.ended === "cpu" || w.ended === "memory" || w.ended === "wall_clock"
      ).length,
    };
    // The fan-out width over the job's lifetime, when it is steered (FAN_OUT_AUTO_MAX; csv_import.fan_out_log).
    const widthLog = env.autoMax === 0 ? [] : await sql<{ at_s: number; width: number; reason: string }[]>`
      select round(extract(epoch from at - ${job.created_at}::timestamptz)::numeric, 1)::float8 as at_s, width, reason
      from csv_import.fan_out_log
      where at between ${job.created_at}::timestamptz and coalesce(${job.finished_at}::timestamptz, now())
      order by at`;
    const compressed = data.codec === "none" ? undefined : await compressedDetails(job, matched, events);
    if (compressed) {
      if (compressed.jobCodec === null) {
        problems.push(`job ${job.id} did not recognise the upload as compressed`);
      }
      if (compressed.dataSize !== null && compressed.dataSize !== data.manifest.bytes) {
        problems.push(
          `job ${job.id} inflated ${compressed.dataSize} bytes, the file has ${data.manifest.bytes}`,
        );
      }
    }
    const details: PipelineDetails = {
      jobId: job.id,
      status: job.status,
      error: job.error,
      // What the job was planned with (--chunk-size, else CHUNK_SIZE as measured costs leave it: chunk_size.ts).
      chunkSize: job.chunk_size,
      maxParallelChunks: width,
      assumedGlobalLimit: env.appliedGlobal,
      widthReached: peakRunningChunks >= Math.min(width, Math.max(0, ...chunks.map((c) => c.n))),
      uploadSeconds,
      registerSeconds: since(job.started_at),
      scanSeconds: since(scan?.last_scan ?? null),
      firstRowSeconds: since(job.first_row_at),
      loadSeconds: job.first_row_at && job.finished_at
        ? (job.finished_at.getTime() - job.first_row_at.getTime()) / 1000
        : null,
      rowsLoaded: job.rows_loaded,
      rowsRejected: job.rows_rejected,
      chunks: chunks.map(({ kind, n, attempts, retries }) => ({ kind, n, attempts, retries })),
      retries: chunks.reduce((a, c) => a + c.retries, 0),
      invocations: matched.length,
      invocationsMatchedBy: matchedBy,
      peakConcurrency: peakRunningChunks,
      peakOpenInvocations: maxConcurrency(
        matched.map((r) => ({ start: Date.parse(r.startedAt), end: Date.parse(r.startedAt) + r.wallMs })),
      ),
      coldStarts: matched.filter((r) => r.coldStart).length,
      cpuMs,
      cpuMsByKind: byKind((r) => r.cpuMs),
      wallMsByKind: byKind((r) => r.wallMs),
      peakMemoryMb: matched.length ? Math.max(...matched.map((r) => r.peakMemoryMb)) : null,
      peakRssMb: matched.length ? Math.max(...matched.map((r) => r.peakRssMb)) : null,
      chunkCpuSeconds: cpuMs.sum / 1000,
      functionsCpuSeconds: functionsCpuMs / 1000,
      rowPathSeconds: rowPathMs(events, job.id) / 1000,
      limits,
      widthOverTime: widthLog.map((w) => ({ atSeconds: w.at_s, width: w.width, reason: w.reason })),
      workers: {
        n: workers.length,
        policy: workers[0]?.policy ?? null,
        cpuMs: summarize(workers.map((w) => w.cpuMs)),
        peakMemoryMb: summarize(workers.map((w) => w.peakMemoryMb)),
        peakConcurrency: Math.max(0, ...workers.map((w) => w.peakConcurrency)),
        beforeunload: workers.filter((w) => w.beforeunload.some((r) => r !== "early_drop")).length,
      },
      compressed,
    };
    const otherDuring = await otherJobsDuring(OBJECT_PREFIX, created, created + seconds * 1000);
    return finishResult(
      {
        method: "pipeline",
        rows: data.rows,
        width,
        fileBytes: data.manifest.bytes,
        seconds,
        problems,
        rowCount: check.count,
        checksumMatchesCopy: check.matches,
        cpu,
        otherActiveJobs: Math.max(otherBefore, otherDuring),
        pipeline: details,
      },
      copy,
      data.manifest.goodRows,
      data,
    );
  } finally {
    await target.cleanup();
    await sql`delete from csv_import.profiles where name = ${profile}`;
    createdProfiles.delete(profile);
    await withDeadline(
      removeObjects([objectName, `${objectName}.rejects.csv`]),
      60_000,
      "removing the objects",
    )
      .catch((error) => note(`could not remove ${objectName}: ${error}`));
  }
}

/**
 * A compressed job's inflate chain and its loads: per invocation CPU and memory added split by kind (chain steps vs
 * loads), the chain's span (its inflate chunk's first claim → finished; started_at keeps the first claim) against
 * the job's, its steps, and what the job recorded (codec, decompressed size, bytes in/out).
 */
async function compressedDetails(
  job: JobRow,
  matched: ReturnType<typeof attributeInvocations>,
  events: WorkerLogEvent[],
): Promise<CompressedDetails> {
  const [chain] = await sql<{ started_at: Date | null; finished_at: Date | null }[]>`
    select started_at, finished_at from csv_import.chunks where job_id = ${job.id} and kind = 'inflate'
    order by chunk_index limit 1`;
  const [loads] = await sql<{ first: Date | null; last: Date | null }[]>`
    select min(started_at) as first, max(finished_at) as last from csv_import.chunks
    where job_id = ${job.id} and kind = 'load'`;
  const created = job.created_at.getTime();
  const at = (d: Date | null | undefined) => (d ? (d.getTime() - created) / 1000 : null);
  const { inflate, load } = splitByInflate(matched);
  return {
    jobCodec: job.compression?.codec ?? null,
    dataSize: job.data_size,
    inflatedIn: job.inflated_in,
    inflatedOut: job.inflated_out,
    steps: inflateSteps(events, job.id),
    chainStartSeconds: at(chain?.started_at),
    chainEndSeconds: at(chain?.finished_at),
    chainSeconds: chain?.started_at && chain.finished_at
      ? (chain.finished_at.getTime() - chain.started_at.getTime()) / 1000
      : null,
    firstLoadStartSeconds: at(loads?.first),
    lastLoadEndSeconds: at(loads?.last),
    inflate: {
      cpuMs: summarize(inflate.map((r) => r.cpuMs)),
      peakMemoryMb: summarize(inflate.map((r) => r.peakMemoryMb)),
      wallMs: summarize(inflate.map((r) => r.wallMs)),
    },
    load: {
      cpuMs: summarize(load.map((r) => r.cpuMs)),
      peakMemoryMb: summarize(load.map((r) => r.peakMemoryMb)),
      wallMs: summarize(load.map((r) => r.wallMs)),
    },
  };
}

/** What a compressed run adds to PipelineDetails (seconds are since the job's created_at unless a span). */
export interface CompressedDetails {
  /** csv_import.jobs.compression's codec (null: the upload was not recognised as compressed). */
  jobCodec: string | null;
  dataSize: number | null;
  inflatedIn: number;
  inflatedOut: number;
  /** Invocations of the chain (each inflates ~INFLATE_STEP_BYTES, then hands the chain on). */
  steps: number;
  chainStartSeconds: number | null;
  chainEndSeconds: number | null;
  /** The inflate chunk's first claim → its finish. */
  chainSeconds: number | null;
  firstLoadStartSeconds: number | null;
  lastLoadEndSeconds: number | null;
  /** Per invocation, the chain's steps and the rest (loads, scans). peakMemoryMb: memory added while it ran. */
  inflate: { cpuMs: Stats; peakMemoryMb: Stats; wallMs: Stats };
  load: { cpuMs: Stats; peakMemoryMb: Stats; wallMs: Stats };
}
