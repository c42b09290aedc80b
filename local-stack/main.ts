/**
 * The local stack's API gateway: one loopback base URL (like `supabase start`'s http://127.0.0.1:54321)
 * serving the Storage API stand-in at /storage/v1, the Edge Functions runtime at /functions/v1 and a minimal,
 * local-only Auth stand-in at /auth/v1 (password sign-in for test users: auth/api.ts), plus the
 * pg_net worker that performs requests queued in Postgres and, where the database's pg_cron is the catalog
 * stand-in (PostgreSQL 17), the job runner that runs its jobs (pg_cron/runner.ts; with the real pg_cron on 15 it
 * stops at once). Started by `scripts/stack.sh up`; never deployed.
 *
 * Invariants:
 * - Listens on 127.0.0.1 only.
 * - Functions get the variables Supabase injects (SUPABASE_URL, SUPABASE_DB_URL, the legacy and new API keys)
 *   plus supabase/functions/.env, exactly as `supabase functions serve` does; nothing else from this process.
 * - Once listening, it writes `<LOCAL_STATE_DIR>/stack.env` (SUPABASE_URL, SUPABASE_DB_URL, SUPABASE_PUBLISHABLE_KEY,
 *   SUPABASE_SECRET_KEY as KEY=VALUE lines), the local defaults of the operator CLI and any other client.
 * - An sb_ key in `Authorization: Bearer` is refused (401) on Storage and Functions routes unless it equals the
 *   `apikey` header, as hosted's gateway does (gateway_keys.ts).
 * - /_local/* routes are local-only tooling (health, invocation records, fault injection) and exist on no
 *   hosted project; the pipeline never calls them: GET /_local/health (`pgCronRunner`: whether the job runner
 *   runs pg_cron's jobs); with the service key,
 *   GET /_local/functions/invocations, GET /_local/functions/workers (one record per worker process: policy,
 *   CPU, retirement, beforeunload reasons, how it ended), POST /_local/functions/kill,
 *   POST /_local/functions/beforeunload?function=<name>&reason=<cpu|memory|wall_clock> (what the supervisor does
 *   when a limit nears: retire, then beforeunload, to every live worker of the function), and
 *   GET|POST|DELETE /_local/storage/faults
 *   (Storage read faults: 500/503, hangs, responses cut short; see storage/faults.ts), and
 *   POST /_local/auth/users `{email, password}` (creates a user who can then sign in at /auth/v1/token).
 * - /app/ serves the upload page (web/, built into web/dist/) with a config.json naming this stack (web_app.ts);
 *   local only: on a hosted project any static host serves it (docs/web-app.md).
 *
 * Environment: API_PORT (54321), SUPABASE_DB_URL, LOCAL_STATE_DIR (.local), FUNCTIONS_CPU_LIMIT_MS (2000),
 * FUNCTIONS_MEMORY_LIMIT_MB (256), FUNCTIONS_WALL_CLOCK_LIMIT_MS (150000), FUNCTIONS_ENFORCE_LIMITS (true),
 * FUNCTIONS_MAX_WORKERS (16), FUNCTIONS_POLICY (unset: `[edge_runtime] policy` of supabase/config.toml, per_worker;
 * `per_request` or `oneshot` give every request a worker of its own: the isolated mode), PG_NET_BATCH_SIZE (200),
 * PG_NET_BATCH_PAUSE_MS (1000), CRON_MAX_RUNNING_JOBS (5: the runner's cron.max_running_jobs).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createFunctionsRuntime } from "./functions/runtime.ts";
import { POLICIES, type Policy } from "./functions/types.ts";
import { startPgNetWorker } from "./pg_net/worker.ts";
import { DEFAULT_MAX_RUNNING_JOBS, startCronRunner } from "./pg_cron/runner.ts";
import { createStorageApi, readStorageConfig } from "./storage/api.ts";
import { createAuthApi } from "./auth/api.ts";
import { parseFaultPlan } from "./storage/faults.ts";
import { refuseOpaqueBearer } from "./gateway_keys.ts";
import { ANON_KEY, PUBLISHABLE_KEY, SECRET_KEY, SERVICE_ROLE_KEY, verifyJwt } from "./keys.ts";
import { createWebApp } from "./web_app.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const env = (name: string, fallback: string) => Deno.env.get(name) ?? fallback;
const intEnv = (name: string, fallback: number) => {
  const raw = Deno.env.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, got "${raw}"`);
  }
  return value;
};

const port = intEnv("API_PORT", 54321);
const apiUrl = `http://127.0.0.1:${port}`;
const dbUrl = env(
  "SUPABASE_DB_URL",
  "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
);
/** The same database as another role (the platform's services do not connect as postgres). */
const dbUrlAs = (user: string) => {
  const url = new URL(dbUrl);
  url.username = user;
  return url.toString();
};
// Storage connects as supabase_storage_admin, the owner of storage.objects, as the real Storage API does
// (supabase/postgres init-scripts/00000000000002-storage-schema.sql), so triggers on its tables fire as on hosted.
const storageDbUrl = env("STORAGE_DB_URL", dbUrlAs("supabase_storage_admin"));
// pg_net's worker connects as pg_net.username, by default (NULL) the bootstrap superuser
// (supabase/pg_net src/worker.c: BackgroundWorkerInitializeConnection), supabase_admin in the Supabase image.
const pgNetDbUrl = env("PG_NET_DB_URL", dbUrlAs("supabase_admin"));
const stateDir = env("LOCAL_STATE_DIR", join(repoRoot, ".local"));
const configToml = join(repoRoot, "supabase", "config.toml");
const policyOverride = Deno.env.get("FUNCTIONS_POLICY") || undefined;
if (
  policyOverride !== undefined && !POLICIES.includes(policyOverride as Policy)
) {
  throw new Error(
    `FUNCTIONS_POLICY must be one of ${POLICIES.join(", ")}, got "${policyOverride}"`,
  );
}

function log(event: Record<string, unknown>) {
  console.log(JSON.stringify({ at: new Date().toISOString(), ...event }));
}

const storageConfig = await readStorageConfig(configToml);
const storage = createStorageApi({
  dbUrl: storageDbUrl,
  rootDir: join(stateDir, "storage"),
  fileSizeLimitBytes: storageConfig.fileSizeLimitBytes,
  log,
});
await storage.ensureBuckets(storageConfig.buckets);

const functions = createFunctionsRuntime({
  functionsDir: join(repoRoot, "supabase", "functions"),
  configToml,
  envFile: join(repoRoot, "supabase", "functions", ".env"),
  env: {
    SUPABASE_URL: apiUrl,
    SUPABASE_DB_URL: dbUrl,
    SUPABASE_ANON_KEY: ANON_KEY,
    SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: PUBLISHABLE_KEY }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
  },
  limits: {
    cpuMs: intEnv("FUNCTIONS_CPU_LIMIT_MS", 2000),
    memoryMb: intEnv("FUNCTIONS_MEMORY_LIMIT_MB", 256),
    wallClockMs: intEnv("FUNCTIONS_WALL_CLOCK_LIMIT_MS", 150_000),
    enforce: env("FUNCTIONS_ENFORCE_LIMITS", "true") !== "false",
  },
  maxWorkersPerFunction: intEnv("FUNCTIONS_MAX_WORKERS", 16),
  policy: policyOverride as Policy | undefined,
  invocationsLog: join(stateDir, "logs", "invocations.jsonl"),
  log,
});

// Auth connects as supabase_auth_admin, the owner of auth.users, as GoTrue does.
const auth = createAuthApi({ dbUrl: env("AUTH_DB_URL", dbUrlAs("supabase_auth_admin")), apiUrl });

const pgNet = await startPgNetWorker({
  dbUrl: pgNetDbUrl,
  batchSize: intEnv("PG_NET_BATCH_SIZE", 200),
  batchPauseMs: intEnv("PG_NET_BATCH_PAUSE_MS", 1000),
  log,
});

// pg_cron's jobs where the database has only the catalog stand-in (17). The scheduler writes cron.job_run_details
// as the extension's owner, the bootstrap superuser supabase_admin; each run connects as its job's role.
const cronRunner = startCronRunner({
  adminDbUrl: env("CRON_DB_URL", dbUrlAs("supabase_admin")),
  maxRunningJobs: intEnv("CRON_MAX_RUNNING_JOBS", DEFAULT_MAX_RUNNING_JOBS),
  log,
});

// The upload page (local only), uploading under web/<user id>/ of the pipeline's bucket.
const webApp = createWebApp({
  distDir: join(repoRoot, "web", "dist"),
  config: {
    publishableKey: PUBLISHABLE_KEY,
    bucket: "csv-uploads",
    uploadFolder: "web",
    realtime: false,
  },
});

async function isServiceRole(req: Request): Promise<boolean> {
  const token = (req.headers.get("authorization") ?? "").replace(
    /^Bearer\s+/i,
    "",
  );
  if (token === SECRET_KEY) return true;
  const claims = await verifyJwt(token);
  return claims?.role === "service_role";
}

async function handleLocal(req: Request, path: string): Promise<Response> {
  if (path === "/_local/health") {
    return Response.json({
      status: "ok",
      api: apiUrl,
      dbPort: new URL(dbUrl).port,
      pgCronRunner: cronRunner.active(),
    });
  }
  if (!(await isServiceRole(req))) {
    return Response.json({
      message: "local admin routes need the service role key",
    }, { status: 401 });
  }
  if (path === "/_local/functions/invocations" && req.method === "GET") {
    return Response.json(functions.invocations());
  }
  if (path === "/_local/functions/workers" && req.method === "GET") {
    return Response.json(functions.workers());
  }
  if (path === "/_local/functions/beforeunload" && req.method === "POST") {
    const params = new URL(req.url).searchParams;
    const reason = params.get("reason") ?? "cpu";
    if (!["cpu", "memory", "wall_clock"].includes(reason)) {
      return Response.json({
        message: `reason must be cpu, memory or wall_clock, got "${reason}"`,
      }, {
        status: 400,
      });
    }
    const workers = await functions.beforeunload(
      params.get("function") ?? "",
      reason as "cpu",
    );
    return Response.json({ workers });
  }
  if (path === "/_local/functions/kill" && req.method === "POST") {
    await functions.killAll("killed through /_local/functions/kill");
    return Response.json({ killed: true });
  }
  if (path === "/_local/auth/users" && req.method === "POST") return auth.createUser(req);
  if (path === "/_local/storage/faults") {
    // Storage read faults (storage/faults.ts documents the plan): POST sets one, GET reads the counters,
    // DELETE stops injecting and returns the final counters.
    if (req.method === "GET") return Response.json(storage.faults.counters());
    if (req.method === "DELETE") return Response.json(storage.faults.clear());
    if (req.method === "POST") {
      try {
        const plan = parseFaultPlan(await req.json());
        log({ event: "storage.faults", plan });
        return Response.json(storage.faults.set(plan));
      } catch (error) {
        return Response.json({
          message: `invalid fault plan: ${(error as Error).message}`,
        }, { status: 400 });
      }
    }
  }
  return Response.json({ message: `no local route ${req.method} ${path}` }, {
    status: 404,
  });
}

const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: () =>
    log({
      event: "listening",
      url: apiUrl,
      functionsPolicy: policyOverride ?? "config.toml",
    }),
}, (req) => {
  const path = new URL(req.url).pathname;
  if (path.startsWith("/storage/v1/") || path.startsWith("/functions/v1/")) {
    // Hosted's gateway refuses an sb_ key as Bearer unless it equals apikey (gateway_keys.ts).
    const refused = refuseOpaqueBearer(req);
    if (refused) {
      req.body?.cancel().catch(() => {});
      return refused;
    }
    return path.startsWith("/storage/v1/") ? storage.handle(req) : functions.handle(req);
  }
  if (path.startsWith("/auth/v1/")) return auth.handle(req);
  if (path.startsWith("/_local/")) return handleLocal(req, path);
  if (path === "/app" || path.startsWith("/app/")) return webApp(req, path);
  return Response.json({ message: "no route matched" }, { status: 404 });
});

// Publishes what a client of this stack needs, as `supabase status -o env` does for the CLI's stack: the operator
// CLI (cli/common.ts) reads it for its local defaults instead of importing keys.ts. Written after the port is
// bound, whole (temporary file, then rename), on every start.
const stackEnv = join(stateDir, "stack.env");
await Deno.writeTextFile(
  `${stackEnv}.tmp`,
  [
    `SUPABASE_URL=${apiUrl}`,
    `SUPABASE_DB_URL=${dbUrl}`,
    `SUPABASE_PUBLISHABLE_KEY=${PUBLISHABLE_KEY}`,
    `SUPABASE_SECRET_KEY=${SECRET_KEY}`,
    "",
  ].join("\n"),
);
await Deno.rename(`${stackEnv}.tmp`, stackEnv);

// postgres.js 3.4.9 can throw from a timer after its socket closed (connection.js nextWrite: "Cannot read
// properties of null (reading 'write')") when a statement is queued on a connection the server just dropped,
// as a Postgres restart does to every pooled connection. Uncaught, it ended this whole process, i.e. Storage,
// the functions runtime and pg_net at once (found by tests/faults_recovery_test.ts). The stand-ins stand for
// services that outlive a database restart, so such an error is logged and the process goes on; the pools
// reconnect on their next query. Any other uncaught error still ends the process. (The pipeline's functions
// guard themselves the same way: supabase/functions/_shared/platform/db.ts.)
globalThis.addEventListener("error", (event) => {
  const stack = event.error instanceof Error ? event.error.stack ?? "" : "";
  if (
    /postgres\/[\d.]+\/src\/connection\.js/.test(stack) &&
    /reading 'write'/.test(stack)
  ) {
    event.preventDefault();
    log({ event: "postgres_client_error_ignored", error: String(event.error) });
  }
});
// The same restart can surface as an unhandled rejection of a socket read the server reset (ECONNRESET, raised by
// node:net under the pools' sockets with no caller left to take it): it ended the whole gateway mid-way through
// tests/faults_recovery_test.ts's Postgres restart in one full run (2026-12-04). Loopback sockets here are only the
// stand-ins' database pools, so a reset one is logged and the process goes on; the pools reconnect.
globalThis.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason as { code?: unknown } | undefined;
  if (reason instanceof Error && reason.code === "ECONNRESET") {
    event.preventDefault();
    log({ event: "postgres_client_error_ignored", error: String(reason) });
  }
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, async () => {
    log({ event: "shutdown", signal });
    await server.shutdown();
    await Promise.allSettled([
      functions.close(),
      pgNet.close(),
      cronRunner.close(),
      storage.close(),
      auth.close(),
    ]);
    Deno.exit(0);
  });
}
