/**
 * The bench's hold on the local stack: its local-only admin routes (health, invocation records, killing function
 * workers), restarts, waiting until the machine is quiet before a measurement, noticing a restart under one, and
 * the fan-out width written to supabase/functions/.env (EnvGuard restores that file exactly).
 *
 * Invariants: every wait has a deadline; the .env is restored on every exit path (also SIGINT/SIGTERM, wired in
 * bench/main.ts); what waitQuiet saw last is what lastBackground() returns, recorded with the next measurement.
 */
import { DEFAULTS } from "../supabase/functions/_shared/platform/config.ts";
import { SERVICE_ROLE_KEY } from "../local-stack/keys.ts";
import type { InvocationRecord, WorkerRecord } from "../local-stack/functions/types.ts";
import { envValue, withEnvValue } from "./bench_lib.ts";
import { ENV_FILE, ENV_KEY, IDLE_CORES, note, REPO, sleep, sql, SUPABASE_URL } from "./context.ts";
import { waitIdleSeconds } from "./options.ts";
import { gatewayPid } from "./cpu.ts";

export async function admin(path: string, method = "GET", timeoutMs = 30_000): Promise<unknown> {
  const res = await fetch(`${SUPABASE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${SERVICE_ROLE_KEY}` },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

export const killWorkers = () => admin("/_local/functions/kill", "POST");
export const invocationRecords = async () =>
  (await admin("/_local/functions/invocations")) as InvocationRecord[];
export const workerRecords = async () => (await admin("/_local/functions/workers")) as WorkerRecord[];

export async function restartStack(): Promise<void> {
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
export async function waitHealthy(timeoutMs: number): Promise<void> {
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
export async function stackIdentity(): Promise<string> {
  const [{ started }] = await sql<{ started: string }[]>`select pg_postmaster_start_time()::text as started`;
  return `postgres started ${started}, gateway pid ${await gatewayPid()}`;
}

export async function checkStackUnchanged(before: string, problems: string[]) {
  const after = await stackIdentity().catch((error) => `unknown (${error})`);
  if (after !== before) {
    problems.push(`the local stack restarted during the measurement (${before} → ${after})`);
  }
}

/**
 * Runs a measurement; when it throws or the stack restarted under it (someone else restarted the shared stack),
 * waits for the stack and measures once more.
 */
export async function twice<T>(
  what: string,
  fn: () => Promise<T>,
  problemsOf: (r: T) => string[],
): Promise<T> {
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
export const lastBackground = () => background;

/**
 * Waits (bounded by --wait-idle) until no other job is active and the machine is nearly idle (< IDLE_CORES busy),
 * so runs do not share the 2 cores with other work; records what it saw last in `background`.
 */
export async function waitQuiet(prefix: string): Promise<number> {
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
export class EnvGuard {
  readonly original: string | null;
  readonly initialGlobal: number;
  /** FAN_OUT_AUTO_MAX as supabase/functions/.env sets it (0: the width is fixed). */
  readonly autoMax: number;
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
    const autoMax = Number(envValue(original, "FAN_OUT_AUTO_MAX"));
    this.autoMax = Number.isInteger(autoMax) && autoMax > 0 ? autoMax : 0;
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
