/**
 * Pure helpers of the benchmark (bench/main.ts): statistics, list parsing, the functions' .env rewrite,
 * matching invocation records to a job through the gateway log, /proc readings and the result table.
 * Nothing here touches the network, the database or the disk, so bench/bench_test.ts can exercise it.
 *
 * Invariants:
 * - `summarize` uses the nearest-rank percentile on a sorted copy (never interpolates, never mutates input).
 * - `withEnvValue` changes exactly one KEY=VALUE line (or appends it) and keeps every other line as it was.
 * - `attributeInvocations` assigns each of a job's chunk-end log events to exactly one invocation: the one the
 *   event names (`invocation`, the runtime's tag of the request whose async context printed it), else the latest
 *   invocation of the same worker process (executionId) whose [start, start + wall] window holds it. Workers may
 *   serve several invocations at once (per_worker), so the window alone is ambiguous: an event is never counted
 *   for two invocations, and an invocation belongs to the job when at least one event was assigned to it.
 */
import type { InvocationRecord } from "../local-stack/functions/types.ts";

export interface Stats {
  n: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
  sum: number;
}

/** Nearest-rank percentile (p in 0..100) of `values`; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export function summarize(values: readonly number[]): Stats {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    max: values.length === 0 ? null : Math.max(...values),
    sum: values.reduce((a, b) => a + b, 0),
  };
}

/** The median element by `key` (the lower middle one for an even count); throws on an empty list. */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  if (items.length === 0) throw new Error("medianBy of an empty list");
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** "100000,1m,5M" → [100000, 1000000, 5000000]; k/m suffixes are decimal (rows, widths). */
export function parseCountList(raw: string): number[] {
  const out = raw.split(",").map((part) => part.trim()).filter((part) => part !== "").map((part) => {
    const match = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(part);
    if (!match) throw new Error(`not a count: "${part}"`);
    const factor = match[2].toLowerCase() === "k" ? 1e3 : match[2].toLowerCase() === "m" ? 1e6 : 1;
    const value = Math.round(Number(match[1]) * factor);
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`not a positive count: "${part}"`);
    return value;
  });
  if (out.length === 0) throw new Error(`empty list: "${raw}"`);
  return out;
}

/** Reads KEY's value from KEY=VALUE text (last assignment wins); null when absent. */
export function envValue(text: string | null, key: string): string | null {
  if (text === null) return null;
  let value: string | null = null;
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (match && match[1] === key) value = match[2].trim().replace(/^(["'])(.*)\1$/, "$2");
  }
  return value;
}

/** `text` with KEY=value set: every assignment of KEY replaced by one line (in place of the first), or appended. */
export function withEnvValue(text: string | null, key: string, value: string): string {
  const lines = text === null || text === "" ? [] : text.replace(/\r?\n$/, "").split(/\r?\n/);
  const isKey = (line: string) => {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line);
    return match !== null && match[1] === key;
  };
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    if (!isKey(line)) out.push(line);
    else if (!placed) {
      out.push(`${key}=${value}`);
      placed = true;
    }
  }
  if (!placed) out.push(`${key}=${value}`);
  return out.join("\n") + "\n";
}

export interface Interval {
  start: number;
  end: number;
}

/** Largest number of intervals open at one instant (an interval ending exactly when another starts: no overlap). */
export function maxConcurrency(intervals: readonly Interval[]): number {
  const events: [number, number][] = [];
  for (const { start, end } of intervals) {
    events.push([start, 1], [end, -1]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let best = 0;
  for (const [, delta] of events) {
    open += delta;
    best = Math.max(best, open);
  }
  return best;
}

/** A pipeline log line a worker printed (the gateway wraps it in an {"event":"log"} line). */
export interface WorkerLogEvent {
  at: number;
  executionId: string;
  function: string;
  event: string;
  job: number | null;
  kind: string | null;
  /** The invocation whose async context printed it (the runtime's tag), when known. */
  invocation: string | null;
  /** A finished or yielded load's row-path time (`work_ms`: parsing, checking and encoding its rows, timed around
   * each push in the isolate's thread), else null. */
  workMs: number | null;
}

/** Parses the gateway log's {"event":"log"} lines whose message is a pipeline JSON log line. */
export function parseWorkerLog(text: string): WorkerLogEvent[] {
  const out: WorkerLogEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes('"event":"log"')) continue;
    try {
      const outer = JSON.parse(line);
      if (outer.event !== "log" || typeof outer.executionId !== "string") continue;
      const inner = typeof outer.message === "string" && outer.message.startsWith("{")
        ? JSON.parse(outer.message)
        : null;
      if (!inner || typeof inner.event !== "string") continue;
      out.push({
        at: Date.parse(inner.at ?? outer.at),
        executionId: outer.executionId,
        function: String(outer.function),
        event: inner.event,
        job: typeof inner.job === "number" ? inner.job : null,
        kind: typeof inner.kind === "string" ? inner.kind : null,
        invocation: typeof outer.invocation === "string" ? outer.invocation : null,
        workMs: typeof inner.work_ms === "number" ? inner.work_ms : null,
      });
    } catch {
      // a partial or foreign line
    }
  }
  return out;
}

export interface AttributedInvocation extends InvocationRecord {
  /** The kinds of the job's chunks it processed: "scan", "load", "load+scan", "inflate" (a compressed job's chain
   * step)… */
  kind: string;
  /** How many of the job's chunks it processed (an invocation takes the next chunk itself within its budget). */
  chunks: number;
}

/** The worker log events that end a chunk's processing (chunk_worker.ts logs exactly one per chunk; an inflate
 * chain step ends `chunk_yielded` when it hands the chain on, `chunk_inflated` when the chain is done). */
const CHUNK_END = /^chunk_(scanned|loaded|stopped|failed|interrupted|yielded|inflated)$/;

/**
 * The chunk invocations that processed chunks of `jobId`: each chunk-end event of the job goes to the invocation
 * it names, else to the latest invocation of its worker whose window (±slack) holds it (see the module doc).
 */
/** The functions that process chunks: loads and scans, and compressed jobs' inflate chains. */
export const CHUNK_FUNCTIONS: readonly string[] = ["csv-import-chunk", "csv-import-inflate"];

export function attributeInvocations(
  records: readonly InvocationRecord[],
  events: readonly WorkerLogEvent[],
  jobId: number,
  fns: readonly string[] = CHUNK_FUNCTIONS,
  slackMs = 50,
): AttributedInvocation[] {
  const mine = records.filter((r) => fns.includes(r.function) && r.executionId !== null);
  const byId = new Map(mine.map((r) => [r.id, r]));
  const assigned = new Map<string, WorkerLogEvent[]>();
  for (const e of events) {
    if (e.job !== jobId || !CHUNK_END.test(e.event)) continue;
    let owner = e.invocation !== null ? byId.get(e.invocation) : undefined;
    if (owner === undefined) {
      for (const r of mine) {
        if (r.executionId !== e.executionId) continue;
        const start = Date.parse(r.startedAt);
        if (e.at < start - slackMs || e.at > start + r.wallMs + slackMs) continue;
        if (owner === undefined || start > Date.parse(owner.startedAt)) owner = r;
      }
    }
    if (owner === undefined) continue;
    assigned.set(owner.id, [...(assigned.get(owner.id) ?? []), e]);
  }
  const out: AttributedInvocation[] = [];
  for (const r of mine) {
    const got = assigned.get(r.id);
    if (!got) continue;
    const kind = [...new Set(got.map((e) => e.kind ?? "?"))].sort().join("+");
    out.push({ ...r, kind, chunks: got.length });
  }
  return out;
}

/** The steps of a compressed job's inflate chain: its inflate chunk's invocations that ended yielded or inflated. */
export function inflateSteps(events: readonly WorkerLogEvent[], jobId: number): number {
  return events.filter((e) =>
    e.job === jobId && e.kind === "inflate" && (e.event === "chunk_yielded" || e.event === "chunk_inflated")
  ).length;
}

/**
 * Splits a compressed job's chunk invocations into inflate chain steps (any invocation that worked on the inflate
 * chunk) and the rest (loads, with their inline scans or scan chunks).
 */
export function splitByInflate<T extends { kind: string }>(
  invocations: readonly T[],
): { inflate: T[]; load: T[] } {
  const isInflate = (r: T) => r.kind.split("+").includes("inflate");
  return { inflate: invocations.filter(isInflate), load: invocations.filter((r) => !isInflate(r)) };
}

/** How many of the job's chunks were interrupted (the runtime announced it was stopping their worker). */
export function interruptedChunks(events: readonly WorkerLogEvent[], jobId: number): number {
  return events.filter((e) => e.job === jobId && e.event === "chunk_interrupted").length;
}

/** Milliseconds the job's loads spent in the row path (parse, check, encode): the sum of their `work_ms`. */
export function rowPathMs(events: readonly WorkerLogEvent[], jobId: number): number {
  return events.reduce((sum, e) => e.job === jobId && e.workMs !== null ? sum + e.workMs : sum, 0);
}

/**
 * The chunk sizes the pipeline runs' jobs were planned with (`jobs.chunk_size`: `--chunk-size`, else CHUNK_SIZE as
 * measured costs left it, pipeline/chunk_size.ts), for the report's footer: "8.00 MiB", or each size with its
 * number of jobs when they differ; `configured` when no pipeline run recorded one.
 */
export function formatPlannedChunkSizes(planned: (number | null)[], configured: number): string {
  const counts = new Map<number, number>();
  for (const size of planned) if (size !== null) counts.set(size, (counts.get(size) ?? 0) + 1);
  const mib = (bytes: number) => `${(bytes / 1048576).toFixed(2)} MiB`;
  if (counts.size === 0) return mib(configured);
  if (counts.size === 1) return mib([...counts.keys()][0]);
  return [...counts].sort((a, b) => b[0] - a[0]).map(([size, n]) =>
    `${mib(size)} (${n} job${n === 1 ? "" : "s"})`
  ).join(", ");
}

/**
 * "the row path (parsing, checking, encoding) 1.62 s of the functions' 3.40 CPU-s (48 %)": how much of the
 * functions' metered CPU the rows themselves took; the rest is reads, the COPY protocol, SQL round trips and
 * start-up.
 */
export function formatRowPath(rowPathSeconds: number, functionsCpuSeconds: number): string {
  const share = functionsCpuSeconds > 0
    ? ` (${Math.round((rowPathSeconds / functionsCpuSeconds) * 100)} %)`
    : "";
  return `the row path (parsing, checking, encoding) ${rowPathSeconds.toFixed(2)} s of the functions' ` +
    `${functionsCpuSeconds.toFixed(2)} CPU-s${share}`;
}

/** The workers (execution ids) that logged anything about the job. */
export function workersOfJob(events: readonly WorkerLogEvent[], jobId: number): Set<string> {
  return new Set(events.filter((e) => e.job === jobId).map((e) => e.executionId));
}

/** CPU fields of /proc/<pid>/stat, in clock ticks, and its minor page faults. */
export interface ProcStat {
  pid: number;
  ppid: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  /** Minor page faults of the process itself, and those its reaped children left (cminflt). */
  minflt: number;
  cminflt: number;
}

/** Parses /proc/<pid>/stat (the command name may contain spaces and parentheses: split after the last ")"). */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(")");
  const pid = Number(text.slice(0, text.indexOf("(")).trim());
  // After ")": state(3) ppid(4) … minflt(10) cminflt(11) … utime(14) stime(15) cutime(16) cstime(17); index 0
  // here is field 3 (proc(5)).
  const f = text.slice(close + 2).trim().split(/\s+/);
  return {
    pid,
    ppid: Number(f[1]),
    minflt: Number(f[7]),
    cminflt: Number(f[8]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    cutime: Number(f[13]),
    cstime: Number(f[14]),
  };
}

/**
 * A sum over a process tree: every live member's own part, plus what the root's and every member's reaped
 * children left behind, so a child that exits between two readings is still counted once its parent has
 * waited for it.
 */
function treeSum(
  stats: readonly ProcStat[],
  rootPid: number,
  own: (s: ProcStat) => number,
  reaped: (s: ProcStat) => number,
): number {
  const children = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const list = children.get(s.ppid) ?? [];
    list.push(s);
    children.set(s.ppid, list);
  }
  const root = stats.find((s) => s.pid === rootPid);
  if (!root) return 0;
  let sum = 0;
  const stack = [root];
  while (stack.length > 0) {
    const s = stack.pop()!;
    sum += own(s) + reaped(s);
    stack.push(...(children.get(s.pid) ?? []));
  }
  return sum;
}

/** CPU ticks of a process tree (treeSum). */
export function treeTicks(stats: readonly ProcStat[], rootPid: number): number {
  return treeSum(stats, rootPid, (s) => s.utime + s.stime, (s) => s.cutime + s.cstime);
}

/**
 * Minor page faults of a process tree (treeSum). On some machines a fault costs many microseconds
 * (machine_costs.ts), and every fresh process pays one per page it touches first, shared memory included.
 */
export function treeFaults(stats: readonly ProcStat[], rootPid: number): number {
  return treeSum(stats, rootPid, (s) => s.minflt, (s) => s.cminflt);
}

/**
 * One figure per part of a run (page faults, CPU-s); null where a part was not measured or is not the run's
 * (runs.ts runFaults).
 */
export interface RunParts {
  db: number | null;
  /** Function workers (the gateway's tree less its own process). */
  functions: number | null;
  /** The gateway's own process: the local stand-ins. */
  standIns: number | null;
  /** The client's reaped processes (psql, pgloader). */
  client: number | null;
}

/** Page faults of one run's parts. */
export type RunFaults = RunParts;

/** A run's parts as the notes under the table name them, in order, with their figures (null: not measured). */
function namedParts(parts: RunParts): [string, number | null][] {
  return [
    ["database", parts.db],
    ["function workers", parts.functions],
    ["stand-ins", parts.standIns],
    ["client", parts.client],
  ];
}

/**
 * "page faults: database 92k, function workers 95k, …; at 10.9 µs each ≈ 1.0, 1.0, … CPU-s": each part's minor
 * page faults and what they cost at the machine's measured price per fault (machine_costs.ts; omitted when
 * unknown). Parts that were not measured are left out.
 */
export function formatFaults(faults: RunFaults, faultUs: number | null): string {
  const shown = namedParts(faults).filter((p): p is [string, number] => p[1] !== null);
  const count = (n: number) => n >= 10_000 ? `${Math.round(n / 1000)}k` : n.toLocaleString("en-US");
  const line = `page faults: ${shown.map(([name, n]) => `${name} ${count(n)}`).join(", ")}`;
  if (faultUs === null || shown.length === 0) return line;
  return `${line}; at ${faultUs} µs each ≈ ${
    shown.map(([, n]) => (n * faultUs / 1e6).toFixed(2)).join(", ")
  } CPU-s`;
}

/** The least wall time `cpuSeconds` of work takes on `cores` cores, however well it overlaps. */
export function leastWallSeconds(cpuSeconds: number, cores: number): number {
  return cpuSeconds / cores;
}

/**
 * bench/burst.ts's `cpu_bound`: the CPU-s of a burst's parts (null: not measured), the least wall time they take
 * on the cores, and with `files` (a burst of small files only) the most of them a second that allows.
 */
export function burstCpuBound(parts: (number | null)[], cores: number, files: number | null) {
  const cpu = parts.reduce<number>((sum, s) => sum + (s ?? 0), 0);
  const seconds = leastWallSeconds(cpu, cores);
  return {
    cores,
    cpu_s: Math.round(cpu * 10) / 10,
    wall_s_at_least: Math.round(seconds * 100) / 100,
    ...(files === null || !(seconds > 0)
      ? {}
      : { small_files_per_s_at_most: Math.round((files / seconds) * 10) / 10 }),
  };
}

/**
 * "at best 0.62× \copy on 2 cores: the run used 10.4 CPU-s (database 4.7, function workers 4.5, stand-ins 1.2),
 * at least 5.2 s of wall on 2 cores against \copy's 3.2 s; 0.70× without the stand-ins' 1.2": the highest ratio
 * a run could have reached on this machine with the CPU it used, however well its parts overlapped (CPU-s over
 * cores is the least wall time that work can take). A goal above it cannot be met here by scheduling, only by
 * using less CPU. The stand-ins (the gateway's own process: local Storage, pg_net, routing) run only on this
 * machine, so the bound without them is given too. Null when the database's CPU or the baseline is unknown.
 */
export function formatCpuCeiling(
  parts: RunParts,
  cores: number,
  baselineSeconds: number | null,
): string | null {
  if (parts.db === null || baselineSeconds === null || !(baselineSeconds > 0) || cores < 1) return null;
  const shown = namedParts(parts).filter((p): p is [string, number] => p[1] !== null && p[1] > 0);
  const total = shown.reduce((sum, [, s]) => sum + s, 0);
  if (!(total > 0)) return null;
  const ratio = (cpu: number) => (baselineSeconds / leastWallSeconds(cpu, cores)).toFixed(2);
  const standIns = parts.standIns ?? 0;
  const without = standIns > 0
    ? `; ${ratio(total - standIns)}× without the stand-ins' ${standIns.toFixed(1)}`
    : "";
  return `at best ${ratio(total)}× \\copy on ${cores} cores: the run used ${total.toFixed(1)} CPU-s (${
    shown.map(([name, s]) => `${name} ${s.toFixed(1)}`).join(", ")
  }), at least ${leastWallSeconds(total, cores).toFixed(1)} s of wall on ${cores} cores against \\copy's ${
    baselineSeconds.toFixed(1)
  } s${without}`;
}

/** One line of the printed table. */
export interface TableRow {
  method: string;
  rows: number;
  width: number | null;
  concurrency: number | null;
  seconds: number;
  rowsPerSecond: number;
  mbPerSecond: number;
  ratioToCopy: number | null;
  scanSeconds: number | null;
  firstRowSeconds: number | null;
  cpuMs: Stats | null;
  peakMemoryMb: number | null;
  peakRssMb: number | null;
  invocations: number | null;
  retries: number | null;
  /** Chunks interrupted by a limit (beforeunload) and retried; workers retired and killed by a limit. */
  limits: { interrupted: number; retired: number; killed: number } | null;
  dbCpuSeconds: number | null;
  /** The pipeline's functions (every invocation of the run, all four functions); for \copy and pgloader their
   * client process. What would run on hosted as well. */
  appCpuSeconds: number | null;
  /** The pipeline only: the function workers' processes in full (their isolate threads, which appCpuSeconds
   * counts as the runtime meters them, plus V8's helper threads and boots): hosted runs these too, but meters only
   * the isolate threads. */
  fnProcessCpuSeconds: number | null;
  /** The pipeline only: the gateway's own process (Storage serving, pg_net, routing, the runtime's supervisor):
   * what runs only on the local stack, not on hosted. */
  standInCpuSeconds: number | null;
  valid: boolean;
}

const dash = "–";
const fixed = (
  n: number | null | undefined,
  digits: number,
) => (n === null || n === undefined ? dash : n.toFixed(digits));
const grouped = (n: number) => Math.round(n).toLocaleString("en-US");
const compactRows = (n: number) =>
  n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : String(n);

export const TABLE_HEADER = [
  "method",
  "rows",
  "width",
  "conc",
  "wall s",
  "rows/s",
  "MB/s",
  "× \\copy",
  "scan s",
  "1st row s",
  "CPU ms p50/p95/max",
  "peak MB Δ/RSS",
  "inv",
  "retries",
  "intr/ret/kill",
  "DB CPU s",
  "fn/client CPU s",
  "fn procs CPU s",
  "stand-in CPU s",
  "ok",
];

export function tableCells(r: TableRow): string[] {
  return [
    r.method,
    compactRows(r.rows),
    r.width === null ? dash : String(r.width),
    r.concurrency === null ? dash : String(r.concurrency),
    fixed(r.seconds, 1),
    // A run that failed its checks loaded something else than the file: no rate (a crashed loader would show
    // the file's rows over its time to crash).
    r.valid ? grouped(r.rowsPerSecond) : dash,
    r.valid ? fixed(r.mbPerSecond, 1) : dash,
    r.valid && r.ratioToCopy !== null ? `${r.ratioToCopy.toFixed(2)}×` : dash,
    fixed(r.scanSeconds, 1),
    fixed(r.firstRowSeconds, 2),
    r.cpuMs === null || r.cpuMs.n === 0
      ? dash
      : `${fixed(r.cpuMs.p50, 0)}/${fixed(r.cpuMs.p95, 0)}/${fixed(r.cpuMs.max, 0)}`,
    r.peakMemoryMb === null ? dash : `${fixed(r.peakMemoryMb, 0)}/${fixed(r.peakRssMb, 0)}`,
    r.invocations === null ? dash : String(r.invocations),
    r.retries === null ? dash : String(r.retries),
    r.limits === null ? dash : `${r.limits.interrupted}/${r.limits.retired}/${r.limits.killed}`,
    fixed(r.dbCpuSeconds, 1),
    fixed(r.appCpuSeconds, 1),
    fixed(r.fnProcessCpuSeconds, 1),
    fixed(r.standInCpuSeconds, 1),
    r.valid ? "yes" : "NO",
  ];
}

/** A Markdown-compatible table: header, separator, one line per row; text left-aligned, numbers right-aligned. */
export function formatTable(rows: readonly TableRow[]): string {
  return markdown(TABLE_HEADER, rows.map(tableCells), new Set([0]));
}

/** One line of the compressed runs' table (bench/main.ts prints it under the main one). */
export interface CompressedRow {
  method: string;
  rows: number;
  codec: string;
  /** Compressed file bytes (the \copy's input before gzip -dc; the pipeline's upload). */
  compressedBytes: number | null;
  seconds: number;
  /** Over the median `\copy from program 'gzip -dc'` of the same size and codec. */
  ratioToCopy: number | null;
  /** Over the median plain `\copy` of the same size, when it was measured. */
  ratioToPlainCopy: number | null;
  /** Pipeline only: per invocation CPU ms and memory added (MB), p95, of the inflate steps and of the loads. */
  inflateCpuP95: number | null;
  loadCpuP95: number | null;
  inflateMemoryP95: number | null;
  loadMemoryP95: number | null;
  /** Pipeline only: first inflate claim → inflate chunk finished, and the chain's steps. */
  chainSeconds: number | null;
  steps: number | null;
  valid: boolean;
}

export const COMPRESSED_HEADER = [
  "method",
  "rows",
  "codec",
  "gz MB",
  "wall s",
  "× own \\copy",
  "× plain \\copy",
  "CPU p95 ms infl/load",
  "mem Δ p95 MB infl/load",
  "chain s / job s",
  "steps",
  "ok",
];

export function compressedCells(r: CompressedRow): string[] {
  const ratio = (x: number | null) => (r.valid && x !== null ? `${x.toFixed(2)}×` : dash);
  const pair = (a: number | null, b: number | null) =>
    a === null && b === null ? dash : `${fixed(a, 0)}/${fixed(b, 0)}`;
  return [
    r.method,
    compactRows(r.rows),
    r.codec,
    r.compressedBytes === null ? dash : fixed(r.compressedBytes / 1e6, 1),
    fixed(r.seconds, 1),
    ratio(r.ratioToCopy),
    ratio(r.ratioToPlainCopy),
    pair(r.inflateCpuP95, r.loadCpuP95),
    pair(r.inflateMemoryP95, r.loadMemoryP95),
    r.chainSeconds === null ? dash : `${fixed(r.chainSeconds, 1)} / ${fixed(r.seconds, 1)}`,
    r.steps === null ? dash : String(r.steps),
    r.valid ? "yes" : "NO",
  ];
}

/** The compressed runs' table, Markdown-compatible like formatTable's. */
export function formatCompressedTable(rows: readonly CompressedRow[]): string {
  return markdown(COMPRESSED_HEADER, rows.map(compressedCells), new Set([0, 2]));
}

function markdown(
  header: readonly string[],
  body: readonly string[][],
  leftAligned: ReadonlySet<number>,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i].length)));
  const line = (cells: readonly string[]) =>
    `| ${
      cells.map((c, i) => (leftAligned.has(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")
    } |`;
  const separator = `|${
    widths.map((w, i) => (leftAligned.has(i) ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")
  }|`;
  return [line(header), separator, ...body.map(line)].join("\n");
}
