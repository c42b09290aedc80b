/**
 * Usage: deno task bench [--rows 100000,1000000] [--widths 1,2,4,8] [--chunk-size 8MiB] [--bad-every K]
 *                        [--seed 42] [--out .data/bench/report.json] [--skip-pgloader] [--restart-stack]
 *                        [--wait-idle 300] [--repeat 1]
 *
 * The performance benchmark (a command, not a test): for each size, one seeded file from scripts/generate_csv.ts
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
 *   the local functions runtime's records (each invocation runs alone in its worker process), matched to the job
 *   through the workers' log lines in .local/logs/gateway.log; retries (Σ attempts − 1 over chunks); the peak
 *   number of chunk invocations running at once; database and gateway-tree (Storage, pg_net, workers) CPU.
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
 * --repeat N measures everything N times (pipeline widths in rounds); the table shows the median run of each
 * method, size and width, ratios refer to the median \copy run, and the report keeps every run.
 *
 * Before every measurement the bench waits (at most --wait-idle seconds) until no other import job is active
 * and the machine is nearly idle; what it saw is recorded per run (`background`), and runs that overlapped
 * other jobs are listed under the table.
 *
 * Invariants: loopback only (refuses non-local URLs); every wait has a deadline; the bench removes its tables,
 * profiles and uploaded objects (jobs stay, as the pipeline's history); it never edits pipeline code.
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { DEFAULTS, parseSize } from "../supabase/functions/_shared/platform/config.ts";
import { SERVICE_ROLE_KEY } from "../local-stack/keys.ts";
import { DUPLICATE_ID, HEADER, type Manifest, writeCsv } from "./generate_csv.ts";
import {
  BUCKET,
  checksum,
  createProfile,
  createTarget,
  insertSentinel,
  removeObjects,
  supabase,
  TERMINAL,
} from "../tests/support/stack.ts";
import {
  attributeInvocations,
  envValue,
  formatTable,
  type InvocationRecord,
  maxConcurrency,
  medianBy,
  parseCountList,
  parseProcStat,
  parseWorkerLog,
  type ProcStat,
  type Stats,
  summarize,
  type TableRow,
  treeTicks,
  withEnvValue,
} from "./bench_lib.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SUPABASE_URL = Deno.env.get("SUPABASE_URL") ?? "http://127.0.0.1:54321";
const DB_URL = Deno.env.get("SUPABASE_DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const STATE_DIR = Deno.env.get("LOCAL_STATE_DIR") ?? `${REPO}/.local`;
const ENV_FILE = `${REPO}/supabase/functions/.env`;
const GATEWAY_LOG = `${STATE_DIR}/logs/gateway.log`;
const ENV_KEY = "WORKER_CONCURRENT_BATCHES";

const note = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with a clear message when `promise` takes longer than `ms`. */
async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: number | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function assertLoopback(url: string, what: string) {
  const host = new URL(url).hostname;
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) {
    throw new Error(`${what} must be on loopback (the bench only runs against the local stack), got ${host}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rows: { type: "string", default: "1000000" },
    widths: { type: "string", default: "4" },
    "chunk-size": { type: "string" },
    "bad-every": { type: "string", default: "0" },
    seed: { type: "string", default: "42" },
    out: { type: "string", default: ".data/bench/report.json" },
    "skip-pgloader": { type: "boolean", default: false },
    "restart-stack": { type: "boolean", default: false },
    "wait-idle": { type: "string", default: "300" },
    repeat: { type: "string", default: "1" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(
    (await Deno.readTextFile(new URL(import.meta.url))).split("\n").slice(1, 5).map((l) =>
      l.replace(/^ \* ?/, "")
    )
      .join("\n"),
  );
  Deno.exit(0);
}
const sizes = parseCountList(args.rows);
const widths = parseCountList(args.widths);
const badEvery = Number(args["bad-every"]);
const seed = Number(args.seed);
const waitIdleSeconds = Number(args["wait-idle"]);
const repeat = Number(args.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error("--repeat must be an integer ≥ 1");
/** Busy cores (of the whole machine) below which it counts as idle before a measurement. */
const IDLE_CORES = 0.35;
const chunkSize = args["chunk-size"] ? parseSize(args["chunk-size"]) : null;
if (args["chunk-size"] && !chunkSize) throw new Error(`--chunk-size: not a size: ${args["chunk-size"]}`);
if (!Number.isInteger(badEvery) || badEvery < 0) throw new Error("--bad-every must be an integer ≥ 0");
assertLoopback(SUPABASE_URL, "SUPABASE_URL");
assertLoopback(DB_URL, "SUPABASE_DB_URL");

const sql = postgres(DB_URL, {
  max: 2,
  onnotice: () => {},
  idle_timeout: 30,
  connect_timeout: 10,
  connection: { TimeZone: "UTC", statement_timeout: 15 * 60_000 },
});

// ---------------------------------------------------------------------------------------------------------
// Local stack helpers (admin routes, restart)

async function admin(path: string, method = "GET", timeoutMs = 30_000): Promise<unknown> {
  const res = await fetch(`${SUPABASE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${SERVICE_ROLE_KEY}` },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

const killWorkers = () => admin("/_local/functions/kill", "POST");
const invocationRecords = async () => (await admin("/_local/functions/invocations")) as InvocationRecord[];

async function restartStack(): Promise<void> {
  for (let attempt = 1;; attempt++) {
    note(
      "restarting the local stack (bash scripts/stack.sh restart) so the gateway reads supabase/functions/.env",
    );
    const out = await new Deno.Command("bash", {
      args: [`${REPO}/scripts/stack.sh`, "restart"],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(300_000),
    }).output();
    if (out.success) break;
    const message = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" / ");
    // Someone else may be restarting the shared stack at the same moment: wait for it, then try once more.
    if (attempt >= 2) throw new Error(`stack restart failed: ${message}`);
    note(`stack restart failed (${message}); waiting for the stack, then retrying`);
    await waitHealthy(120_000);
  }
  await waitHealthy(60_000);
}

/** Waits (bounded) until the gateway answers and the database takes queries. */
async function waitHealthy(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await admin("/_local/health", "GET", 5_000);
      await sql`select 1`;
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the local stack did not become healthy: ${error}`);
      await sleep(2000);
    }
  }
}

/** Changes when the database or the gateway restarts (a restart in the middle of a run spoils it). */
async function stackIdentity(): Promise<string> {
  const [{ started }] = await sql<{ started: string }[]>`select pg_postmaster_start_time()::text as started`;
  return `postgres started ${started}, gateway pid ${await gatewayPid()}`;
}

async function checkStackUnchanged(before: string, problems: string[]) {
  const after = await stackIdentity().catch((error) => `unknown (${error})`);
  if (after !== before) {
    problems.push(`the local stack restarted during the measurement (${before} → ${after})`);
  }
}

/**
 * Runs a measurement; when it throws or the stack restarted under it (someone else restarted the shared stack),
 * waits for the stack and measures once more.
 */
async function twice<T>(what: string, fn: () => Promise<T>, problemsOf: (r: T) => string[]): Promise<T> {
  const spoiled = (r: T) => problemsOf(r).some((p) => p.startsWith("the local stack restarted"));
  try {
    const first = await fn();
    if (!spoiled(first)) return first;
    note(`${what}: the local stack restarted during the measurement; measuring once more`);
  } catch (error) {
    note(
      `${what} failed (${
        error instanceof Error ? error.message : error
      }); waiting for the stack, then once more`,
    );
  }
  await waitHealthy(180_000);
  return await fn();
}

/** Other jobs that are working (changed in the last 30 s: a stuck job waiting for its lease to expire is not). */
async function foreignActiveJobs(prefix: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from csv_import.jobs j
    where j.status in ('registering', 'queued', 'running') and j.object_name not like ${prefix + "%"}
      and (j.updated_at > now() - interval '30 seconds'
           or exists (select 1 from csv_import.chunks c
                      where c.job_id = j.id and c.updated_at > now() - interval '30 seconds'))`;
  return n;
}

/** Average number of busy cores over `ms` (from /proc/stat). */
async function busyCores(ms = 1000): Promise<number> {
  const read = async () => {
    const cpu = (await Deno.readTextFile("/proc/stat")).split("\n")[0].trim().split(/\s+/).slice(1).map(
      Number,
    );
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - cpu[3] - (cpu[4] ?? 0), total };
  };
  const a = await read();
  await sleep(ms);
  const b = await read();
  return b.total > a.total
    ? ((b.busy - a.busy) / (b.total - a.total)) * (navigator.hardwareConcurrency || 1)
    : 0;
}

/** What the machine was doing just before a measurement (after waitQuiet). */
let background = { otherJobs: 0, busyCores: 0 };

/**
 * Waits (bounded by --wait-idle) until no other job is active and the machine is nearly idle (< IDLE_CORES busy),
 * so runs do not share the 2 cores with other work; records what it saw last in `background`.
 */
async function waitQuiet(prefix: string): Promise<number> {
  const deadline = Date.now() + waitIdleSeconds * 1000;
  let jobs = await foreignActiveJobs(prefix);
  let busy = await busyCores();
  let told = false;
  while ((jobs > 0 || busy > IDLE_CORES) && Date.now() < deadline) {
    if (!told) {
      note(
        `waiting for the machine to be quiet (${jobs} other active job(s), ${busy.toFixed(2)} cores busy; ` +
          `at most ${waitIdleSeconds} s)`,
      );
      told = true;
    }
    await sleep(2000);
    jobs = await foreignActiveJobs(prefix);
    busy = await busyCores();
  }
  if (jobs > 0 || busy > IDLE_CORES) {
    note(
      `still ${jobs} other job(s), ${busy.toFixed(2)} cores busy: measuring anyway (recorded in the report)`,
    );
  }
  background = { otherJobs: jobs, busyCores: busy };
  return jobs;
}

/** Rewrites supabase/functions/.env for a width and restores it exactly; restores on SIGINT/SIGTERM too. */
class EnvGuard {
  readonly original: string | null;
  readonly initialGlobal: number;
  appliedGlobal: number;
  #touched = false;

  constructor() {
    let original: string | null = null;
    try {
      original = Deno.readTextFileSync(ENV_FILE);
    } catch {
      original = null;
    }
    this.original = original;
    const configured = Number(envValue(original, ENV_KEY));
    this.initialGlobal = Number.isInteger(configured) && configured > 0
      ? configured
      : DEFAULTS.WORKER_CONCURRENT_BATCHES;
    this.appliedGlobal = this.initialGlobal;
  }

  write(width: number) {
    this.#touched = true;
    Deno.writeTextFileSync(ENV_FILE, withEnvValue(this.original, ENV_KEY, String(width)));
  }

  restoreSync() {
    if (!this.#touched) return;
    if (this.original === null) {
      try {
        Deno.removeSync(ENV_FILE);
      } catch {
        // already gone
      }
    } else Deno.writeTextFileSync(ENV_FILE, this.original);
    this.#touched = false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// CPU accounting from /proc

let clockTicks = 100;

async function readStat(pid: number | "self"): Promise<ProcStat | null> {
  try {
    return parseProcStat(await Deno.readTextFile(`/proc/${pid}/stat`));
  } catch {
    return null;
  }
}

async function allStats(): Promise<ProcStat[]> {
  const out: ProcStat[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await readStat(Number(entry.name));
    if (stat) out.push(stat);
  }
  return out;
}

async function postmasterPid(): Promise<number | null> {
  try {
    const [{ dir }] = await sql<{ dir: string }[]>`select current_setting('data_directory') as dir`;
    return Number((await Deno.readTextFile(`${dir}/postmaster.pid`)).split("\n")[0]);
  } catch {
    return null;
  }
}

async function gatewayPid(): Promise<number | null> {
  try {
    return Number((await Deno.readTextFile(`${STATE_DIR}/gateway.pid`)).trim());
  } catch {
    return null;
  }
}

interface CpuSample {
  at: number;
  db: number | null;
  gateway: number | null;
  children: number;
  machineBusy: number;
  machineTotal: number;
}

async function sampleCpu(): Promise<CpuSample> {
  const [stats, pg, gw, self, procStat] = await Promise.all([
    allStats(),
    postmasterPid(),
    gatewayPid(),
    readStat("self"),
    Deno.readTextFile("/proc/stat"),
  ]);
  const cpu = procStat.split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3] + (cpu[4] ?? 0);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return {
    at: performance.now(),
    db: pg ? treeTicks(stats, pg) : null,
    gateway: gw ? treeTicks(stats, gw) : null,
    children: self ? self.cutime + self.cstime : 0,
    machineBusy: total - idle,
    machineTotal: total,
  };
}

interface CpuDelta {
  dbSeconds: number | null;
  gatewaySeconds: number | null;
  clientSeconds: number;
  machineBusyCores: number;
}

/**
 * Samples at the end of a measurement: the machine at once, the process trees after a settle delay (a finished
 * client's database backend exits, and is reaped into the postmaster's cutime, a moment after the client does).
 */
async function endSample(start: CpuSample, settleMs = 1000): Promise<CpuDelta> {
  const now = await sampleCpu();
  await sleep(settleMs);
  const settled = await sampleCpu();
  return {
    ...cpuDelta(start, settled),
    machineBusyCores: cpuDelta(start, now).machineBusyCores,
  };
}

function cpuDelta(a: CpuSample, b: CpuSample): CpuDelta {
  const s = (x: number | null, y: number | null) => (x === null || y === null ? null : (y - x) / clockTicks);
  const cores = navigator.hardwareConcurrency || 1;
  return {
    dbSeconds: s(a.db, b.db),
    gatewaySeconds: s(a.gateway, b.gateway),
    clientSeconds: (b.children - a.children) / clockTicks,
    machineBusyCores: b.machineTotal > a.machineTotal
      ? ((b.machineBusy - a.machineBusy) / (b.machineTotal - a.machineTotal)) * cores
      : 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Data

interface Dataset {
  rows: number;
  path: string;
  /** The file without planted rows (the same file when there are none): what \copy and pgloader load. */
  cleanPath: string;
  manifest: Manifest;
  generateSeconds: number | null;
}

async function ensureDataset(rows: number): Promise<Dataset> {
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
      return { rows, path, cleanPath, manifest, generateSeconds: null };
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
  return { rows, path, cleanPath, manifest, generateSeconds };
}

// ---------------------------------------------------------------------------------------------------------
// Runs

interface RunResult {
  method: "psql \\copy" | "pgloader" | "pipeline";
  rows: number;
  width: number | null;
  fileBytes: number;
  seconds: number;
  rowsPerSecond: number;
  mbPerSecond: number;
  ratioToCopy: number | null;
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

interface PipelineDetails {
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
}

interface Target {
  table: string;
  cleanup: () => Promise<void>;
}

const runId = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
const OBJECT_PREFIX = `bench/${runId}`;
const createdTables = new Set<string>();
const createdProfiles = new Set<string>();
const uploadedObjects: string[] = [];
/** Makes every table, profile and object name of a run unique, also when a measurement is repeated. */
let sequence = 0;

async function freshTable(label: string): Promise<Target> {
  const name = `bench_${runId}_${++sequence}_${label}`;
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

async function otherJobsDuring(prefix: string, fromMs: number, toMs: number): Promise<number> {
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

async function verifyTable(
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

function finishResult(
  base: Omit<
    RunResult,
    | "rowsPerSecond"
    | "mbPerSecond"
    | "ratioToCopy"
    | "valid"
    | "measuredAt"
    | "background"
    | "repeat"
    | "median"
  >,
  copy: RunResult | null,
  goodRows: number,
): RunResult {
  const rowsPerSecond = goodRows / base.seconds;
  return {
    ...base,
    rowsPerSecond,
    mbPerSecond: base.fileBytes / 1e6 / base.seconds,
    ratioToCopy: copy ? rowsPerSecond / copy.rowsPerSecond : base.method === "psql \\copy" ? 1 : null,
    valid: base.problems.length === 0,
    background,
    repeat: 1,
    median: false,
    measuredAt: new Date().toISOString(),
  };
}

async function checkpoint() {
  await sql`checkpoint`;
}

function clientTimeout(rows: number) {
  return 120_000 + rows * 0.5;
}

async function runClient(
  cmd: string,
  cmdArgs: string[],
  timeoutMs: number,
  env: Record<string, string> = {},
) {
  const out = await new Deno.Command(cmd, {
    args: cmdArgs,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  return {
    success: out.success,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function runCopy(
  data: Dataset,
): Promise<{ result: RunResult; reference: { count: number; sum: string } }> {
  const target = await freshTable("copy");
  try {
    const otherActiveJobs = await waitQuiet(OBJECT_PREFIX);
    await checkpoint();
    const url = new URL(DB_URL);
    const identity = await stackIdentity();
    const cpu0 = await sampleCpu();
    const started = performance.now();
    const out = await runClient(
      "psql",
      [
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        url.hostname,
        "-p",
        url.port || "5432",
        "-U",
        decodeURIComponent(url.username),
        "-d",
        url.pathname.slice(1),
        "-c",
        `\\copy ${target.table} (${
          HEADER.join(", ")
        }) from '${data.cleanPath}' with (format csv, header true)`,
      ],
      clientTimeout(data.rows),
      { PGPASSWORD: decodeURIComponent(url.password) },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = await endSample(cpu0);
    const problems: string[] = [];
    if (!out.success) problems.push(`psql failed: ${out.stderr.trim().slice(0, 500)}`);
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
    );
    return { result, reference: { count: check.count, sum: check.sum } };
  } finally {
    await target.cleanup();
  }
}

async function pgloaderVersion(): Promise<string | null> {
  try {
    const out = await runClient("pgloader", ["--version"], 30_000);
    return out.success ? out.stdout.split("\n")[0].trim() : null;
  } catch {
    return null;
  }
}

async function runPgloader(
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
    );
  } finally {
    await target.cleanup();
    await Deno.remove(loadFile).catch(() => {});
  }
}

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
}

async function jobOf(objectName: string): Promise<JobRow | undefined> {
  const [job] = await sql<JobRow[]>`
    select id::float8 as id, status, error, rows_loaded::float8 as rows_loaded, rows_rejected::float8 as rows_rejected,
           rejects_status, created_at, started_at, first_row_at, finished_at
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

/** The median run (by wall time) of each method, size and width, in the order the groups were first measured. */
function medianRuns(all: RunResult[]): RunResult[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of all) {
    const key = `${r.method}|${r.rows}|${r.width}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((runs) => medianBy(runs, (r) => r.seconds));
}

/** Removes what the bench created and still holds (tables, profiles, uploaded objects). */
async function cleanup() {
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

async function runPipeline(
  data: Dataset,
  width: number,
  env: EnvGuard,
  copy: RunResult | null,
  reference: { count: number; sum: string } | null,
): Promise<RunResult> {
  const target = await freshTable(`w${width}`);
  const attempt = ++sequence;
  const profile = `bench_${runId}_${attempt}_r${data.rows}_w${width}`;
  const folder = `${OBJECT_PREFIX}-${attempt}-r${data.rows}-w${width}`;
  const objectName = `${folder}/orders.csv`;
  uploadedObjects.push(objectName, `${objectName}.rejects.csv`);
  try {
    await createProfile(sql, {
      name: profile,
      pathPattern: `${folder}/%`,
      targetTable: target.table,
      chunkSizeBytes: chunkSize,
      maxParallelChunks: width,
      toleratedRejectRate: 1,
    });
    createdProfiles.add(profile);
    if (await applyWidth(env, width)) await warmUp(env, width);
    const otherBefore = await waitQuiet(OBJECT_PREFIX);
    await checkpoint();
    const logOffset = await gatewayLogSize();
    const identity = await stackIdentity();

    const uploadStarted = performance.now();
    await uploadFile(objectName, data.path, data.manifest.bytes);
    const uploadSeconds = (performance.now() - uploadStarted) / 1000;
    const cpu0 = await sampleCpu();
    const uploadedAt = Date.now();
    note(
      `uploaded ${(data.manifest.bytes / 1e6).toFixed(0)} MB in ${
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
    const recordsDeadline = Date.now() + 20_000;
    for (;;) {
      const records = await invocationRecords();
      const log = await gatewayLogSince(logOffset);
      matched = log === null ? [] : attributeInvocations(records, parseWorkerLog(log), job.id);
      matchedBy = "log";
      const last = Date.now() > recordsDeadline;
      const processed = () => matched.reduce((a, r) => a + r.chunks, 0);
      if (processed() >= claims) break;
      if (log === null || (last && matched.length === 0)) {
        // No worker log to match by: the chunk invocations that started while the job ran.
        const from = job.created_at.getTime();
        const to = (job.finished_at ?? new Date()).getTime();
        matched = records.filter((r) =>
          r.function === "chunk" && Date.parse(r.startedAt) >= from && Date.parse(r.startedAt) <= to
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
    const details: PipelineDetails = {
      jobId: job.id,
      status: job.status,
      error: job.error,
      chunkSize,
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

function toTableRow(r: RunResult): TableRow {
  const p = r.pipeline;
  return {
    method: r.method,
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
    dbCpuSeconds: r.cpu.dbSeconds,
    appCpuSeconds: p ? r.cpu.gatewaySeconds : r.cpu.clientSeconds,
    valid: r.valid,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Main

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
  if (ticks?.success) clockTicks = Number(ticks.stdout.trim()) || 100;

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
      const baselines: Awaited<ReturnType<typeof runCopy>>[] = [];
      for (let i = 1; i <= repeat; i++) {
        note(`${label}: psql \\copy${repeat > 1 ? ` (${i}/${repeat})` : ""}`);
        try {
          const b = await twice(`${label}: psql \\copy`, () => runCopy(data), (b) => b.result.problems);
          b.result.repeat = i;
          baselines.push(b);
          results.push(b.result);
          tell(b.result);
        } catch (error) {
          skipped.push({ method: "psql \\copy", rows, width: null, error: String(error) });
        }
      }
      if (baselines.length === 0) {
        note(`${label}: skipping this size (no \\copy baseline)`);
        continue;
      }
      // The median \copy run is the baseline every ratio of this size refers to.
      const { result: copy, reference } = medianBy(baselines, (b) => b.result.seconds);
      for (let i = 1; usePgloader && i <= repeat; i++) {
        note(`${label}: pgloader${repeat > 1 ? ` (${i}/${repeat})` : ""}`);
        try {
          const r = await twice(
            `${label}: pgloader`,
            () => runPgloader(data, copy, reference),
            (r) => r.problems,
          );
          r.repeat = i;
          results.push(r);
          tell(r);
        } catch (error) {
          skipped.push({ method: "pgloader", rows, width: null, error: String(error) });
        }
      }
      // Rounds of all widths (not each width's repeats back to back), so drift on a shared machine spreads evenly.
      for (let i = 1; i <= repeat; i++) {
        for (const width of widths) {
          note(`${label}: pipeline, width ${width}${repeat > 1 ? ` (${i}/${repeat})` : ""}`);
          try {
            const r = await twice(
              `${label}: pipeline width ${width}`,
              () => runPipeline(data, width, env, copy, reference),
              (r) => r.problems,
            );
            r.repeat = i;
            results.push(r);
            tell(r);
          } catch (error) {
            skipped.push({ method: "pipeline", rows, width, error: String(error) });
          }
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
      chunkSizeSource: chunkSize ? "--chunk-size" : "pipeline default (DEFAULTS.CHUNK_SIZE)",
      badEvery,
      seed,
      restartStack: args["restart-stack"],
      repeat,
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
  console.log(
    `\n${info.cores} cores (${
      info.cpuModel ?? "unknown CPU"
    }), ${info.memoryGb} GB, PostgreSQL ${info.postgres}; ` +
      `chunk size ${
        ((chunkSize ?? DEFAULTS.CHUNK_SIZE) / 1048576).toFixed(2)
      } MiB. conc: most chunks running ` +
      `at once; CPU/peak MB: per chunk invocation (Δ = added by the invocation, RSS = worker process); ` +
      `app CPU: gateway + function workers (pipeline) or the client process (\\copy, pgloader).`,
  );
  const notReached = (r: RunResult) => r.pipeline !== undefined && !r.pipeline.widthReached;
  for (const r of results.filter((r) => !r.valid || r.otherActiveJobs > 0 || notReached(r))) {
    console.log(
      `${r.method} ${r.rows} w${r.width ?? "-"}: ${r.problems.join("; ") || "ok"}` +
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
  for (const r of skipped) console.log(`${r.method} ${r.rows} w${r.width ?? "-"}: NOT MEASURED: ${r.error}`);
  console.log(`Report: ${out}`);
  if (failure || skipped.length > 0 || results.some((r) => !r.valid)) Deno.exit(1);
}

if (import.meta.main) await main();
