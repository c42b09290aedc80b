/**
 * One measurement and its result: the cached seeded dataset, a fresh target table per run, the checks every run
 * passes (row count against the generator's good rows, checksum against the \copy table's), the two client
 * baselines (`psql \copy`, pgloader) and what the bench created, so it can remove it.
 *
 * Invariants: every run loads into a table of its own (bench_<runId>_<n>_<label>), dropped when the run ends;
 * a run that fails a check is kept with valid = false and its problems, never dropped.
 */
import postgres from "postgres";
import { DUPLICATE_ID, HEADER, type Manifest, writeCsv } from "../tests/support/generate_csv.ts";
import { checksum, createTarget, insertSentinel, psqlCopy, removeObjects } from "../tests/support/stack.ts";
import { medianBy, type RunFaults, type Stats, type TableRow } from "./bench_lib.ts";
import { DB_URL, note, OBJECT_PREFIX, REPO, runClient, runId, sql, withDeadline } from "./context.ts";
import { badEvery, type Codec, seed } from "./options.ts";
import { type CpuDelta, endSample, sampleCpu } from "./cpu.ts";
import type { CompressedDetails } from "./pipeline.ts";
import { checkStackUnchanged, lastBackground, stackIdentity, waitQuiet } from "./local_stack.ts";

export interface Dataset {
  rows: number;
  path: string;
  /** The file without planted rows (the same file when there are none): what \copy and pgloader load. */
  cleanPath: string;
  manifest: Manifest;
  generateSeconds: number | null;
  /** How `path` and `cleanPath` are compressed ("none": the plain files; the manifest is the plain file's). */
  codec: Codec;
  /** Bytes of the compressed `path` and `cleanPath` (null for "none"). */
  compressedBytes: number | null;
  compressedCleanBytes: number | null;
}

export async function ensureDataset(rows: number): Promise<Dataset> {
  const dir = `${REPO}/.data/bench`;
  await Deno.mkdir(dir, { recursive: true });
  const base = `${dir}/orders-r${rows}-s${seed}-b${badEvery}`;
  const path = `${base}.csv`;
  const cleanPath = badEvery > 0 ? `${base}.clean.csv` : path;
  const manifestPath = `${base}.manifest.json`;
  try {
    const manifest = JSON.parse(await Deno.readTextFile(manifestPath)) as Manifest;
    if (badEvery === 0) manifest.cleanBytes = manifest.bytes;
    const sizeOk = (await Deno.stat(path)).size === manifest.bytes &&
      (badEvery === 0 || (await Deno.stat(cleanPath)).size === manifest.cleanBytes);
    if (sizeOk) {
      note(`using cached ${path} (${(manifest.bytes / 1e6).toFixed(1)} MB)`);
      return { rows, path, cleanPath, manifest, generateSeconds: null, ...PLAIN };
    }
  } catch {
    // not cached yet
  }
  note(`generating ${rows.toLocaleString("en-US")} rows (seed ${seed}, bad every ${badEvery}) into ${path}`);
  const started = performance.now();
  const manifest = await writeCsv(path, { rows, seed, badEvery }, badEvery > 0 ? cleanPath : undefined);
  if (badEvery === 0) manifest.cleanBytes = manifest.bytes;
  const generateSeconds = (performance.now() - started) / 1000;
  await Deno.writeTextFile(manifestPath, JSON.stringify(manifest));
  note(`generated ${(manifest.bytes / 1e6).toFixed(1)} MB in ${generateSeconds.toFixed(1)} s`);
  return { rows, path, cleanPath, manifest, generateSeconds, ...PLAIN };
}

const PLAIN = { codec: "none", compressedBytes: null, compressedCleanBytes: null } as const;

/** The shell pipeline that writes `source` compressed as `codec` to `target` (gzip -6 throughout). */
function compressCommand(codec: Exclude<Codec, "none">, source: string, target: string): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  if (codec === "gzip") return `gzip -6 -c ${q(source)} > ${q(target)}`;
  // Multi-member, as pigz --independent or bgzip-like tools make: 8 MiB pieces, each its own gzip member.
  const pieces = `${target}.pieces`;
  return `rm -rf ${q(pieces)} && mkdir ${q(pieces)} && split -b 8M -a 4 ${q(source)} ${
    q(pieces + "/p")
  } && ` +
    `: > ${q(target)} && for f in ${q(pieces)}/p*; do gzip -6 -c "$f" >> ${q(target)}; done && rm -rf ${
      q(pieces)
    }`;
}

async function compressOnce(codec: Exclude<Codec, "none">, source: string, sourceBytes: number) {
  const target = `${source.replace(/\.csv$/, "")}.${codec}.csv.gz`;
  const sidecar = `${target}.json`;
  try {
    const cached = JSON.parse(await Deno.readTextFile(sidecar)) as { sourceBytes: number; bytes: number };
    if (cached.sourceBytes === sourceBytes && (await Deno.stat(target)).size === cached.bytes) {
      return { path: target, bytes: cached.bytes };
    }
  } catch {
    // not cached yet
  }
  note(`compressing ${source} as ${codec}`);
  const started = performance.now();
  const partial = `${target}.partial`;
  const out = await runClient("bash", ["-c", compressCommand(codec, source, partial)], 30 * 60_000);
  if (!out.success) throw new Error(`compressing ${source} as ${codec} failed: ${out.stderr.trim()}`);
  await Deno.rename(partial, target);
  const bytes = (await Deno.stat(target)).size;
  await Deno.writeTextFile(sidecar, JSON.stringify({ sourceBytes, bytes, codec }));
  note(`${target}: ${(bytes / 1e6).toFixed(1)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { path: target, bytes };
}

/** The dataset compressed as `codec` (cached next to it in .data/bench, keyed like it plus the codec). */
export async function ensureCompressed(data: Dataset, codec: Codec): Promise<Dataset> {
  if (codec === "none") return data;
  const file = await compressOnce(codec, data.path, data.manifest.bytes);
  const clean = data.cleanPath === data.path
    ? file
    : await compressOnce(codec, data.cleanPath, data.manifest.cleanBytes);
  return {
    ...data,
    path: file.path,
    cleanPath: clean.path,
    codec,
    compressedBytes: file.bytes,
    compressedCleanBytes: clean.bytes,
  };
}

export interface RunResult {
  method: "psql \\copy" | "pgloader" | "pipeline";
  rows: number;
  width: number | null;
  /** What was loaded: the plain file ("none") or it compressed (\copy then reads `gzip -dc`'s output). */
  compression: Codec;
  /** The plain (decompressed) file's bytes: MB/s are decompressed bytes per second for every codec. */
  fileBytes: number;
  /** The compressed file's bytes (null for the plain file). */
  compressedBytes: number | null;
  seconds: number;
  rowsPerSecond: number;
  mbPerSecond: number;
  ratioToCopy: number | null;
  /** A compressed run's rate over the plain `\copy`'s median (of the same size), when that was measured. */
  ratioToPlainCopy: number | null;
  valid: boolean;
  problems: string[];
  rowCount: number;
  checksumMatchesCopy: boolean | null;
  cpu: CpuDelta;
  otherActiveJobs: number;
  /** Other jobs and busy cores seen just before the measurement started (see waitQuiet). */
  background: { otherJobs: number; busyCores: number };
  pipeline?: PipelineDetails;
  measuredAt: string;
  /** Which repetition (1..--repeat) this is. */
  repeat: number;
  /** The median run (by wall time) of its method, size and width: the one the table shows. */
  median: boolean;
}

export interface PipelineDetails {
  jobId: number;
  status: string;
  error: string | null;
  chunkSize: number | null;
  maxParallelChunks: number;
  /**
   * The running gateway's global fan-out limit as the bench assumes it (WORKER_CONCURRENT_BATCHES when the
   * gateway started: the original .env or the default, or what the bench restarted it with; a restart by someone
   * else while the bench's .env is in place changes it). The width reached is at most min(width, this).
   */
  assumedGlobalLimit: number;
  /** Whether peakConcurrency reached min(width, chunks of the job's larger kind). */
  widthReached: boolean;
  uploadSeconds: number;
  registerSeconds: number | null;
  scanSeconds: number | null;
  firstRowSeconds: number | null;
  loadSeconds: number | null;
  rowsLoaded: number;
  rowsRejected: number;
  chunks: { kind: string; n: number; attempts: number; retries: number }[];
  retries: number;
  invocations: number;
  invocationsMatchedBy: "log" | "time";
  /** Most chunks running at once (claimed and not finished, from csv_import.chunks): the width reached. */
  peakConcurrency: number;
  /** Most chunk invocations open at once (includes each invocation's closing dispatch of the next chunks). */
  peakOpenInvocations: number;
  coldStarts: number;
  cpuMs: Stats;
  cpuMsByKind: Record<string, Stats>;
  wallMsByKind: Record<string, Stats>;
  peakMemoryMb: number | null;
  peakRssMb: number | null;
  chunkCpuSeconds: number;
  /** CPU of every function invocation (register, dispatch, chunk, health) that started while the job ran. */
  functionsCpuSeconds: number;
  /** Of that, the loads' row path (parse, check, encode), as they timed it (their `work_ms`). */
  rowPathSeconds: number;
  /** Chunks interrupted by a limit (beforeunload) and handed back to be retried; chunk workers a limit retired or
   * killed. Goal at the default settings: no interruption, no kill (retirements are normal under per_worker). */
  limits: { interrupted: number; retired: number; killed: number };
  /** The steered fan-out width's decisions while the job ran (csv_import.fan_out_log; empty when fixed). */
  widthOverTime: { atSeconds: number; width: number; reason: string }[];
  /** The job's chunk workers (runtime worker records): how many, their policy, CPU each, most requests at once,
   * how many got a beforeunload other than early_drop. */
  workers: {
    n: number;
    policy: string | null;
    cpuMs: Stats;
    /** Each worker's peak RSS above its RSS right after boot, across every request it served. */
    peakMemoryMb: Stats;
    peakConcurrency: number;
    beforeunload: number;
  };
  /** A compressed upload's chain and loads (bench/pipeline.ts); absent for a plain file. */
  compressed?: CompressedDetails;
}

interface Target {
  table: string;
  cleanup: () => Promise<void>;
}

const createdTables = new Set<string>();
export const createdProfiles = new Set<string>();
export const uploadedObjects: string[] = [];
/** Makes every table, profile and object name of a run unique, also when a measurement is repeated. */
let sequence = 0;
export const nextSequence = () => ++sequence;

export async function freshTable(label: string): Promise<Target> {
  const name = `bench_${runId}_${nextSequence()}_${label}`;
  const table = await createTarget(sql, name);
  createdTables.add(table);
  if (badEvery > 0) await insertSentinel(sql, table, DUPLICATE_ID);
  return {
    table,
    cleanup: async () => {
      await sql.unsafe(`drop table if exists ${table}`);
      createdTables.delete(table);
    },
  };
}

export async function otherJobsDuring(prefix: string, fromMs: number, toMs: number): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from csv_import.jobs j
    where j.object_name not like ${prefix + "%"}
      and exists (select 1 from csv_import.chunks c
                  where c.job_id = j.id and c.started_at < to_timestamp(${toMs / 1000})
                    and coalesce(c.finished_at, c.updated_at) > to_timestamp(${fromMs / 1000}))`;
  return n;
}

function expectedCount(data: Dataset) {
  return data.manifest.goodRows + (badEvery > 0 ? 1 : 0);
}

export async function verifyTable(
  table: string,
  data: Dataset,
  reference: { count: number; sum: string } | null,
  problems: string[],
): Promise<{ count: number; matches: boolean | null; sum: string }> {
  const sum = await checksum(sql, table);
  if (sum.count !== expectedCount(data)) {
    problems.push(`${table} holds ${sum.count} rows, expected ${expectedCount(data)}`);
  }
  const matches = reference ? reference.count === sum.count && reference.sum === sum.sum : null;
  if (matches === false) problems.push(`${table}'s checksum differs from the \\copy table's`);
  return { ...sum, matches };
}

export function finishResult(
  base: Omit<
    RunResult,
    | "rowsPerSecond"
    | "mbPerSecond"
    | "ratioToCopy"
    | "ratioToPlainCopy"
    | "compression"
    | "compressedBytes"
    | "valid"
    | "measuredAt"
    | "background"
    | "repeat"
    | "median"
  >,
  copy: RunResult | null,
  goodRows: number,
  codec: Pick<Dataset, "codec" | "compressedBytes" | "compressedCleanBytes">,
): RunResult {
  const rowsPerSecond = goodRows / base.seconds;
  return {
    ...base,
    compression: codec.codec,
    compressedBytes: base.method === "pipeline" ? codec.compressedBytes : codec.compressedCleanBytes,
    ratioToPlainCopy: null,
    rowsPerSecond,
    mbPerSecond: base.fileBytes / 1e6 / base.seconds,
    ratioToCopy: copy ? rowsPerSecond / copy.rowsPerSecond : base.method === "psql \\copy" ? 1 : null,
    valid: base.problems.length === 0,
    background: lastBackground(),
    repeat: 1,
    median: false,
    measuredAt: new Date().toISOString(),
  };
}

/**
 * CHECKPOINT before each measurement, as the local stack's bootstrap superuser: `postgres` is not a superuser (as on
 * hosted) and is not granted pg_checkpoint, so it may not (PostgreSQL 15+: superuser or pg_checkpoint). The bench
 * only ever runs against the local stack (context.ts refuses other hosts), whose pg_hba trusts 127.0.0.1.
 */
export async function checkpoint() {
  const url = new URL(DB_URL);
  url.username = "supabase_admin";
  url.password = "";
  const admin = postgres(url.toString(), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await admin`checkpoint`;
  } finally {
    await admin.end();
  }
}

function clientTimeout(rows: number) {
  return 120_000 + rows * 0.5;
}

export async function runCopy(
  data: Dataset,
): Promise<{ result: RunResult; reference: { count: number; sum: string } }> {
  const target = await freshTable("copy");
  try {
    const otherActiveJobs = await waitQuiet(OBJECT_PREFIX);
    await checkpoint();
    const identity = await stackIdentity();
    const cpu0 = await sampleCpu();
    const problems: string[] = [];
    const started = performance.now();
    try {
      await psqlCopy(target.table, data.cleanPath, {
        columns: HEADER,
        timeoutMs: clientTimeout(data.rows),
        // A compressed dataset: the client decompresses (gzip -dc reads multi-member files too) into \copy.
        program: data.codec === "none" ? undefined : "gzip -dc",
      });
    } catch (error) {
      problems.push(String(error instanceof Error ? error.message : error).trim().slice(0, 500));
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = await endSample(cpu0);
    await checkStackUnchanged(identity, problems);
    const check = await verifyTable(target.table, data, null, problems);
    const result = finishResult(
      {
        method: "psql \\copy",
        rows: data.rows,
        width: null,
        fileBytes: data.manifest.cleanBytes,
        seconds,
        problems,
        rowCount: check.count,
        checksumMatchesCopy: null,
        cpu,
        otherActiveJobs: Math.max(
          otherActiveJobs,
          await otherJobsDuring(OBJECT_PREFIX, Date.now() - seconds * 1000, Date.now()),
        ),
      },
      null,
      data.manifest.goodRows,
      data,
    );
    return { result, reference: { count: check.count, sum: check.sum } };
  } finally {
    await target.cleanup();
  }
}

export async function pgloaderVersion(): Promise<string | null> {
  try {
    const out = await runClient("pgloader", ["--version"], 30_000);
    return out.success ? out.stdout.split("\n")[0].trim() : null;
  } catch {
    return null;
  }
}

export async function runPgloader(
  data: Dataset,
  copy: RunResult,
  reference: { count: number; sum: string },
): Promise<RunResult> {
  const target = await freshTable("pgloader");
  const dir = `${REPO}/.data/bench/pgloader`;
  await Deno.mkdir(`${dir}/root`, { recursive: true });
  const loadFile = `${dir}/${runId}-r${data.rows}.load`;
  const url = new URL(DB_URL);
  const columns = HEADER.join(", ");
  await Deno.writeTextFile(
    loadFile,
    `LOAD CSV
  FROM '${data.cleanPath}' (${columns})
  INTO postgresql://${url.username}:${url.password}@${url.hostname}:${
      url.port || "5432"
    }${url.pathname}?sslmode=disable
  TARGET TABLE ${target.table}
  (${columns})
  WITH skip header = 1,
       fields optionally enclosed by '"',
       fields escaped by double-quote,
       fields terminated by ','
;
`,
  );
  try {
    const otherActiveJobs = await waitQuiet(OBJECT_PREFIX);
    await checkpoint();
    const identity = await stackIdentity();
    const cpu0 = await sampleCpu();
    const started = performance.now();
    const out = await runClient(
      "pgloader",
      ["--root-dir", `${dir}/root`, "--no-ssl-cert-verification", loadFile],
      clientTimeout(data.rows) * 4,
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = await endSample(cpu0);
    const problems: string[] = [];
    if (!out.success) problems.push(`pgloader failed: ${(out.stderr + out.stdout).trim().slice(-500)}`);
    await checkStackUnchanged(identity, problems);
    const check = await verifyTable(target.table, data, reference, problems);
    return finishResult(
      {
        method: "pgloader",
        rows: data.rows,
        width: null,
        fileBytes: data.manifest.cleanBytes,
        seconds,
        problems,
        rowCount: check.count,
        checksumMatchesCopy: check.matches,
        cpu,
        otherActiveJobs: Math.max(
          otherActiveJobs,
          await otherJobsDuring(OBJECT_PREFIX, Date.now() - seconds * 1000, Date.now()),
        ),
      },
      copy,
      data.manifest.goodRows,
      data,
    );
  } finally {
    await target.cleanup();
    await Deno.remove(loadFile).catch(() => {});
  }
}

/** The median run (by wall time) of each method, size, width and compression, in the order the groups were first measured. */
export function medianRuns(all: RunResult[]): RunResult[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of all) {
    const key = `${r.method}|${r.rows}|${r.width}|${r.compression}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((runs) => medianBy(runs, (r) => r.seconds));
}

/** Removes what the bench created and still holds (tables, profiles, uploaded objects). */
export async function cleanup() {
  for (const table of [...createdTables]) {
    await sql.unsafe(`drop table if exists ${table}`).catch(() => {});
    createdTables.delete(table);
  }
  for (const profile of [...createdProfiles]) {
    await sql`delete from csv_import.profiles where name = ${profile}`.catch(() => {});
    createdProfiles.delete(profile);
  }
  await withDeadline(removeObjects(uploadedObjects), 60_000, "removing the objects").catch(() => {});
}

/** A run's page faults by part: the pipeline's database, function workers and stand-ins; a client's database and client. */
export function runFaults(r: RunResult): RunFaults {
  const f = r.cpu.faults;
  return r.pipeline !== undefined ? { ...f, client: null } : { ...f, functions: null, standIns: null };
}

export function toTableRow(r: RunResult): TableRow {
  const p = r.pipeline;
  return {
    method: r.compression === "none" ? r.method : `${r.method} [${r.compression}]`,
    rows: r.rows,
    width: r.width,
    concurrency: p ? p.peakConcurrency : null,
    seconds: r.seconds,
    rowsPerSecond: r.rowsPerSecond,
    mbPerSecond: r.mbPerSecond,
    ratioToCopy: r.ratioToCopy,
    scanSeconds: p ? p.scanSeconds : null,
    firstRowSeconds: p ? p.firstRowSeconds : null,
    cpuMs: p ? p.cpuMs : null,
    peakMemoryMb: p ? p.peakMemoryMb : null,
    peakRssMb: p ? p.peakRssMb : null,
    invocations: p ? p.invocations : null,
    retries: p ? p.retries : null,
    limits: p ? p.limits : null,
    dbCpuSeconds: r.cpu.dbSeconds,
    appCpuSeconds: p ? p.functionsCpuSeconds : r.cpu.clientSeconds,
    fnProcessCpuSeconds: p ? r.cpu.functionSeconds : null,
    standInCpuSeconds: p ? r.cpu.gatewaySelfSeconds : null,
    valid: r.valid,
  };
}
