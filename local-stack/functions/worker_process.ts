/**
 * Supervisor-side handle of one worker process: spawns `deno run worker_bootstrap.ts`, waits for its
 * announcement, pipes its output to the log, measures invocations through /proc, sends control requests
 * (beforeunload, settled) and kills it.
 *
 * Invariants:
 * - The process gets `--allow-all`: the hosted runtime prompts for nothing (functions may use the network,
 *   env, files and subprocess-free Deno APIs freely); the isolation the edge runtime gets from V8 is given
 *   here by the separate OS process, its own cleared environment and the supervisor's limits.
 * - The worker's stdin is a pipe the supervisor never writes to: when the supervisor process dies, the pipe
 *   closes and the worker exits, so workers never outlive the runtime.
 * - When limits are enforced, V8's whole heap is sized from the memory limit (`--max-heap-size`), as edge-runtime
 *   sizes a user worker's isolate (`v8::CreateParams::default().heap_limits(0, memory_limit_bytes)`,
 *   `crates/base/src/runtime/mod.rs`): V8 then derives both generations from that one size
 *   (`ResourceConstraints::ConfigureDefaultsFromHeapSize`, the same `Heap::GenerationSizesFromHeapSize` the flag
 *   uses), so the young generation is small and counted inside the limit. Capping only the old space
 *   (`--max-old-space-size`) left Deno's default young generation on top of it (a 448 MB heap limit for 256),
 *   which scavenges less often than hosted would (the row-path bench: 561 scavenges against 813).
 * - `death` resolves exactly once, with the first cause: the cause passed to `kill`, else "boot_error" when
 *   the module failed to load, else "memory" when V8 reported running out of heap, else "error".
 * - `state` is owned by the pool, except that this class sets "dead"; a dead worker is never reused.
 * - CPU is accounted per worker (`cpuUsedNs`: its main thread's CPU since boot), as edge-runtime's per_worker
 *   supervisor accumulates it per isolate across requests (`crates/base/src/worker/supervisor/
 *   strategy_per_worker.rs`, CPUUsageMetrics::Leave); memory is the peak RSS above the RSS right after boot.
 * - Per invocation (several may be open at once under per_worker): each reading's CPU since the previous one is
 *   split equally among the invocations open then, so the invocations' `cpuMs` add up to the worker's CPU while
 *   any was open; the peak RSS window (VmHWM) is reset only when an invocation begins on a worker with none open.
 */
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { FunctionSpec } from "./config.ts";
import { readCpuNs, readMemory, resetPeakMemory } from "./proc_stats.ts";
import {
  type Announcement,
  BEFOREUNLOAD_ROUTE,
  type BeforeUnloadReason,
  NONCE_HEADER,
  SETTLED_ROUTE,
} from "./protocol.ts";
import { within } from "./timer.ts";
import type { LogFn, Policy, RetireReason, WorkerRecord } from "./types.ts";
import { LOG_TAG } from "./protocol.ts";

/** Why a worker process ended. */
export type DeathCause =
  | "cpu"
  | "memory"
  | "wall_clock"
  | "killed"
  | "error"
  | "boot_error"
  | "early_drop"
  | "termination";

/** Shutdown reason names and log messages as the hosted platform prints them. */
const SHUTDOWN: Record<DeathCause, { reason: string; message: string }> = {
  cpu: { reason: "CPUTime", message: "CPU time limit reached" },
  memory: { reason: "Memory", message: "Memory limit exceeded" },
  wall_clock: { reason: "WallClockTime", message: "wall clock time limit reached" },
  early_drop: { reason: "EarlyDrop", message: "early drop" },
  termination: { reason: "TerminationRequested", message: "termination requested" },
  killed: { reason: "TerminationRequested", message: "runtime killed" },
  boot_error: { reason: "BootError", message: "worker failed to boot" },
  error: { reason: "Crashed", message: "worker exited unexpectedly" },
};

const OOM_MARKERS = ["out of memory", "Reached heap limit"];
/** ANSI colour sequences, which Deno prints in stack traces even when stderr is a pipe. */
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
const BOOTSTRAP = fileURLToPath(new URL("./worker_bootstrap.ts", import.meta.url));
/** How long to wait for output pipes to close after the process exited. */
const PIPE_DRAIN_MS = 500;

/** The `ready` rejection when the function cannot boot. */
class BootError extends Error {}

/** CPU and memory used by one invocation. */
export interface Usage {
  cpuMs: number;
  workerCpuMs: number;
  sharedWith: number;
  peakMemoryMb: number;
  peakRssMb: number;
}

/** What one open invocation has been given so far. */
interface Probe {
  cpuNs: number;
  rssStartKb: number;
  hwmStartKb: number;
  peakKb: number;
  sharedWith: number;
}

export interface WorkerOptions {
  spec: FunctionSpec;
  policy: Policy;
  env: Record<string, string>;
  /** V8 heap cap in MB, or null for none. */
  memoryMb: number | null;
  log: LogFn;
}

async function pumpLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      onLine(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
  }
  if (buffer !== "") onLine(buffer);
}

export class WorkerProcess {
  readonly executionId = crypto.randomUUID();
  readonly spawnedAt = performance.now();
  readonly spec: FunctionSpec;
  readonly policy: Policy;
  readonly spawnedAtIso = new Date().toISOString();
  /** Resolves once the worker serves requests; rejects with BootError. */
  readonly ready: Promise<void>;
  /** Resolves when the process is gone (or has been sent SIGKILL). */
  readonly death: Promise<DeathCause>;
  state: "idle" | "busy" | "dead" = "busy";
  /** A retired worker takes no new invocation and is dropped once idle. */
  retired = false;
  /** Why it was retired. */
  retiredBy: RetireReason | null = null;
  /** Set once the current invocation's response was sent (only waitUntil tasks may remain). */
  finishing = false;
  bootMs: number | null = null;
  bootRssKb = 0;
  /** ISO time the process ended (killed or exited), or null while it lives. */
  endedAt: string | null = null;
  /** Why it ended, once it did. */
  deathCause: DeathCause | null = null;
  /** Invocations served so far, and the most open at once. */
  served = 0;
  peakOpen = 0;
  /** `beforeunload` reasons dispatched so far, in order. */
  readonly beforeunloads: BeforeUnloadReason[] = [];

  readonly #child: Deno.ChildProcess;
  readonly #exited: Promise<void>;
  readonly #nonce = crypto.randomUUID();
  readonly #log: LogFn;
  readonly #sentBeforeunload = new Set<BeforeUnloadReason>();
  readonly #ready = Promise.withResolvers<void>();
  readonly #death = Promise.withResolvers<DeathCause>();
  #port: number | null = null;
  readonly #open = new Map<string, Probe>();
  /** Main-thread CPU (ns) at boot, and at the last reading; RSS at the last reading; VmHWM (KiB). */
  #cpuBootNs: number | null = null;
  #cpuLastNs = 0;
  #hwmLastKb = 0;
  #deathCause: DeathCause | null = null;
  #outOfMemory = false;

  constructor(options: WorkerOptions) {
    this.spec = options.spec;
    this.policy = options.policy;
    this.#log = options.log;
    this.ready = this.#ready.promise;
    this.ready.catch(() => {});
    this.death = this.#death.promise;
    const { spec } = options;
    const args = ["run", "--allow-all", "--no-prompt", "--no-lock"];
    args.push(spec.importMap === null ? "--no-config" : `--config=${spec.importMap}`);
    if (options.memoryMb !== null) args.push(`--v8-flags=--max-heap-size=${options.memoryMb}`);
    args.push(BOOTSTRAP, pathToFileURL(spec.entrypoint).href, this.#nonce);
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      env: { ...options.env, SB_EXECUTION_ID: this.executionId },
      clearEnv: true,
      cwd: dirname(spec.entrypoint),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pipes = Promise.all([
      pumpLines(this.#child.stdout, (line) => this.#onStdout(line)),
      pumpLines(this.#child.stderr, (line) => this.#onStderr(line)),
    ]).catch(() => {});
    this.#exited = this.#child.status.then(async (status) => {
      await within(pipes, PIPE_DRAIN_MS, undefined);
      await this.#child.stdin.close().catch(() => {});
      this.#ready.reject(new BootError(`worker exited before it was ready (exit code ${status.code})`));
      this.#die(this.#outOfMemory ? "memory" : "error");
    });
  }

  /** True once the process was killed or exited (a getter, so checks after an await see the truth). */
  get dead(): boolean {
    return this.state === "dead";
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Whether the process has announced its port and can take requests. */
  get isReady(): boolean {
    return this.#port !== null && !this.dead;
  }

  /** The worker-side URL of `pathAndQuery`. */
  url(pathAndQuery: string): string {
    return `http://127.0.0.1:${this.#port}${pathAndQuery}`;
  }

  #emit(event: string, fields: Record<string, unknown>): void {
    this.#log({ event, function: this.spec.name, executionId: this.executionId, ...fields });
  }

  #output(level: "info" | "error", line: string): void {
    let message = line.replace(ANSI_COLOUR, "");
    let invocation: string | undefined;
    if (message.startsWith(LOG_TAG)) {
      const end = message.indexOf(LOG_TAG, 1);
      if (end > 0) {
        invocation = message.slice(1, end);
        message = message.slice(end + 1).replace(/^ /, "");
      }
    }
    this.#emit("log", { level, message, ...(invocation ? { invocation } : {}) });
  }

  #onStdout(line: string): void {
    const at = line.indexOf(this.#nonce);
    if (at < 0) return this.#output("info", line);
    if (at > 0) this.#output("info", line.slice(0, at));
    let announcement: Announcement;
    try {
      announcement = JSON.parse(line.slice(at + this.#nonce.length + 1));
    } catch {
      return this.#output("info", line);
    }
    if ("bootError" in announcement) {
      this.#ready.reject(new BootError(announcement.bootError));
      return this.#die("boot_error");
    }
    this.#port = announcement.port;
    this.bootMs = Math.round(performance.now() - this.spawnedAt);
    Promise.all([readMemory(this.pid), readCpuNs(this.pid)]).then(
      ([{ rssKb, hwmKb }, cpuNs]) => {
        this.bootRssKb = rssKb;
        this.#cpuBootNs = cpuNs;
        this.#cpuLastNs = cpuNs;
        this.#hwmLastKb = hwmKb;
        this.#emit("boot", { pid: this.pid, bootMs: this.bootMs, rssMb: Math.round(rssKb / 1024) });
        this.#ready.resolve();
      },
      () => this.#ready.reject(new BootError("worker exited while booting")),
    );
  }

  #onStderr(line: string): void {
    if (OOM_MARKERS.some((marker) => line.includes(marker))) this.#outOfMemory = true;
    this.#output("error", line);
  }

  #die(cause: DeathCause): void {
    if (this.#deathCause !== null) return;
    this.#deathCause = cause;
    this.deathCause = cause;
    this.state = "dead";
    this.#emit("shutdown", { ...SHUTDOWN[cause], cpuUsedMs: Math.round(this.cpuUsedNs / 1e6) });
    this.endedAt = new Date().toISOString();
    this.#death.resolve(cause);
  }

  /** SIGKILLs the process now; `death` resolves with `cause` unless it already resolved. */
  kill(cause: DeathCause): void {
    this.#die(cause);
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }

  /** Dispatches beforeunload (at most once per reason); resolves when the worker handled it or is gone. */
  async beforeunload(reason: BeforeUnloadReason): Promise<void> {
    if (this.#sentBeforeunload.has(reason) || !this.isReady) return;
    this.#sentBeforeunload.add(reason);
    this.beforeunloads.push(reason);
    this.#emit("beforeunload", { reason, cpuUsedMs: Math.round(this.cpuUsedNs / 1e6) });
    await this.#control(`${BEFOREUNLOAD_ROUTE}?reason=${reason}`);
  }

  /**
   * Resolves true once no handler runs and every waitUntil task settled (with `invocation`: that invocation's
   * handler and tasks); false if the worker died.
   */
  settled(invocation?: string): Promise<boolean> {
    return this.#control(invocation ? `${SETTLED_ROUTE}?invocation=${invocation}` : SETTLED_ROUTE);
  }

  async #control(pathAndQuery: string): Promise<boolean> {
    try {
      const res = await fetch(this.url(pathAndQuery), {
        method: "POST",
        headers: { [NONCE_HEADER]: this.#nonce },
      });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** CPU of the main thread since boot, in ns, as of the last reading. */
  get cpuUsedNs(): number {
    return this.#cpuBootNs === null ? 0 : this.#cpuLastNs - this.#cpuBootNs;
  }

  /** Peak RSS above the post-boot RSS, in KiB, as of the last reading (since the last peak window reset). */
  get memoryUsedKb(): number {
    return Math.max(0, this.#hwmLastKb - this.bootRssKb);
  }

  /** How many invocations are open on this worker. */
  get openInvocations(): number {
    return this.#open.size;
  }

  /** Applies one /proc reading: the CPU since the last one is split among the open invocations. */
  #advance(cpuNs: number, rssKb: number, hwmKb: number): void {
    if (cpuNs > this.#cpuLastNs) {
      if (this.#open.size > 0) {
        const share = (cpuNs - this.#cpuLastNs) / this.#open.size;
        for (const probe of this.#open.values()) probe.cpuNs += share;
      }
      this.#cpuLastNs = cpuNs;
    }
    this.#hwmLastKb = hwmKb;
    for (const probe of this.#open.values()) {
      probe.peakKb = Math.max(probe.peakKb, rssKb, hwmKb > probe.hwmStartKb ? hwmKb : 0);
    }
  }

  async #read(): Promise<void> {
    const cpuNs = await readCpuNs(this.pid);
    const { rssKb, hwmKb } = await readMemory(this.pid);
    this.#advance(cpuNs, rssKb, hwmKb);
  }

  /**
   * Opens invocation `id`'s measurement window: the CPU so far goes to the invocations already open; the peak
   * RSS window is reset when it is the only one.
   */
  async beginInvocation(id: string): Promise<void> {
    if (this.#open.size === 0) await resetPeakMemory(this.pid);
    const cpuNs = await readCpuNs(this.pid);
    const { rssKb, hwmKb } = await readMemory(this.pid);
    this.#advance(cpuNs, rssKb, hwmKb);
    const others = this.#open.size;
    for (const probe of this.#open.values()) probe.sharedWith = Math.max(probe.sharedWith, others);
    this.#open.set(id, { cpuNs: 0, rssStartKb: rssKb, hwmStartKb: hwmKb, peakKb: rssKb, sharedWith: others });
    this.served++;
    this.peakOpen = Math.max(this.peakOpen, this.#open.size);
  }

  /** Samples the worker: its CPU since boot (ns) and peak memory above boot (KiB), or null when gone. */
  async sample(): Promise<{ cpuNs: number; memoryKb: number } | null> {
    if (this.dead || this.#cpuBootNs === null) return null;
    try {
      await this.#read();
      return { cpuNs: this.cpuUsedNs, memoryKb: this.memoryUsedKb };
    } catch {
      return null;
    }
  }

  /** Closes invocation `id`'s window (a final /proc reading, or the last one if the process is gone). */
  async endInvocation(id: string): Promise<Usage> {
    if (!this.dead && this.#open.has(id)) {
      try {
        await this.#read();
      } catch {
        // Gone between the check and the read: keep the last reading.
      }
    }
    const probe = this.#open.get(id);
    this.#open.delete(id);
    const workerCpuMs = Math.round(this.cpuUsedNs / 1e5) / 10;
    if (probe === undefined) return { cpuMs: 0, workerCpuMs, sharedWith: 0, peakMemoryMb: 0, peakRssMb: 0 };
    const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;
    return {
      cpuMs: Math.round(probe.cpuNs / 1e5) / 10,
      workerCpuMs,
      sharedWith: probe.sharedWith,
      peakMemoryMb: mb(Math.max(0, probe.peakKb - probe.rssStartKb)),
      peakRssMb: mb(probe.peakKb),
    };
  }

  /** What this worker did so far (GET /_local/functions/workers). */
  record(): WorkerRecord {
    return {
      executionId: this.executionId,
      function: this.spec.name,
      policy: this.policy,
      spawnedAt: this.spawnedAtIso,
      bootMs: this.bootMs,
      invocations: this.served,
      peakConcurrency: this.peakOpen,
      cpuMs: Math.round(this.cpuUsedNs / 1e6),
      peakMemoryMb: Math.round((this.memoryUsedKb / 1024) * 10) / 10,
      retired: this.retiredBy,
      beforeunload: [...this.beforeunloads],
      ended: this.deathCause,
      endedAt: this.endedAt,
    };
  }

  /**
   * Drops a worker with nothing open: once every waitUntil task of the worker has settled (also tasks no
   * invocation owns; edge-runtime's can_early_drop waits for every pending promise), beforeunload("early_drop")
   * with up to `graceMs` to handle it, then SIGKILL.
   */
  async earlyDrop(graceMs: number): Promise<void> {
    if (this.dead) return;
    await Promise.race([this.settled(), this.death]);
    if (this.dead) return;
    await within(Promise.race([this.beforeunload("early_drop"), this.death]), graceMs, undefined);
    this.kill("early_drop");
  }

  /** Resolves once the process has exited and its output has been read (or PIPE_DRAIN_MS passed). */
  exited(): Promise<void> {
    return this.#exited;
  }
}
