/**
 * The benchmark's run context: the paths and URLs it works with, its database pool, the run id that names
 * everything it creates, and the small helpers every part uses (note, sleep, withDeadline, runClient). Every other
 * bench module imports from here and nothing here imports from them, so splitting the benchmark closed no import
 * loop. bench/main.ts's command-line options are in bench/options.ts, so the other bench commands (burst.ts,
 * small_files.ts) can use these helpers with options of their own.
 *
 * Invariant: loopback only (SUPABASE_URL and SUPABASE_DB_URL are refused unless local).
 */
import postgres from "postgres";

export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const SUPABASE_URL = Deno.env.get("SUPABASE_URL") ?? "http://127.0.0.1:54321";
export const DB_URL = Deno.env.get("SUPABASE_DB_URL") ??
  "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
export const STATE_DIR = Deno.env.get("LOCAL_STATE_DIR") ?? `${REPO}/.local`;
export const ENV_FILE = `${REPO}/supabase/functions/.env`;
export const GATEWAY_LOG = `${STATE_DIR}/logs/gateway.log`;
export const ENV_KEY = "WORKER_CONCURRENT_BATCHES";

export const note = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
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

/** Busy cores (of the whole machine) below which it counts as idle before a measurement. */
export const IDLE_CORES = 0.35;

assertLoopback(SUPABASE_URL, "SUPABASE_URL");
assertLoopback(DB_URL, "SUPABASE_DB_URL");

export const sql = postgres(DB_URL, {
  max: 2,
  onnotice: () => {},
  idle_timeout: 30,
  connect_timeout: 10,
  connection: { TimeZone: "UTC", statement_timeout: 15 * 60_000 },
});

/** Names every table, profile and object of this run (bench_<runId>_…, bench/<runId>…). */
export const runId = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
export const OBJECT_PREFIX = `bench/${runId}`;

export async function runClient(
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
