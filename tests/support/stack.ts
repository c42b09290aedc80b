/**
 * Helpers for the end-to-end acceptance tests: they drive the real local stack (Postgres on 54322, the API
 * gateway on 54321 with the Storage stand-in, the Edge Functions runtime and the pg_net worker) exactly as an
 * application would — upload with supabase-js, then watch csv_import's tables — and compare the outcome with
 * what `psql \copy` loads from the same data.
 *
 * Invariants:
 * - Every test works on its own uniquely named target table(s), profile(s) and object prefix, and removes them
 *   (and its temporary files) when it ends, so tests never see each other's rows.
 * - Every wait is bounded: `waitFor` polls with a deadline and fails with a message that includes the job's
 *   state (status, error, counts, chunks by status), never with a bare timeout.
 * - Nothing here touches the pipeline's code paths: the tests only use what a user or an operator has
 *   (Storage uploads, SQL reads, the documented functions, the local-only /_local admin routes).
 */
import { createClient } from "@supabase/supabase-js";
import postgres from "postgres";
import type { FileEncoding } from "../../supabase/functions/_shared/csv/encoding.ts";
import { SECRET_KEY, SERVICE_ROLE_KEY } from "../../local-stack/keys.ts";
import { DEMO_TABLE_SQL } from "./generate_csv.ts";

export const SUPABASE_URL = Deno.env.get("SUPABASE_URL") ?? "http://127.0.0.1:54321";
export const DB_URL = Deno.env.get("SUPABASE_DB_URL") ??
  "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
export const BUCKET = "csv-uploads";
export const TERMINAL = ["succeeded", "succeeded_with_rejects", "validated", "failed", "cancelled"];
/** The customer_id of the DUPLICATE_ID sentinel row (fixed, so both compared tables hold the same row). */
export const SENTINEL_CUSTOMER = "00000000-0000-4000-8000-000000000001";

export type Sql = postgres.Sql;

/** Options for Deno.test: the suite keeps one pool and HTTP client open across awaits. */
export const E2E = { sanitizeOps: false, sanitizeResources: false } as const;

export function connect(max = 4): Sql {
  return postgres(DB_URL, { max, onnotice: () => {}, idle_timeout: 5, connection: { TimeZone: "UTC" } });
}

export const supabase = createClient(SUPABASE_URL, SECRET_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
});

/** A short unique suffix for table, profile and object names. */
export function unique(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Creates public.<name> with the generator's columns (demo_orders' shape); `primaryKey: false` drops the PK. */
export async function createTarget(
  sql: Sql,
  name: string,
  opts: { primaryKey?: boolean } = {},
): Promise<string> {
  let ddl = DEMO_TABLE_SQL.replace("public.demo_orders", `public.${name}`);
  if (opts.primaryKey === false) ddl = ddl.replace("id bigint primary key", "id bigint not null");
  await sql.unsafe(ddl);
  return `public.${name}`;
}

/** Inserts the row whose id the generator's "duplicate_key" rows repeat (identical in every table). */
export async function insertSentinel(sql: Sql, table: string, id: number): Promise<void> {
  await sql.unsafe(
    `insert into ${table} (id, customer_id, email) values ($1, $2, 'existing@example.com')`,
    [id, SENTINEL_CUSTOMER],
  );
}

export interface ProfileOptions {
  name: string;
  pathPattern: string;
  targetTable: string;
  chunkSizeBytes?: number | null;
  maxParallelChunks?: number | null;
  toleratedRejectRate?: number;
  /** Early-stop limits (null, the default: none). */
  maxRejects?: number | null;
  rejectRateAfterRows?: number | null;
  priority?: number;
  onConflict?: "insert" | "upsert" | "skip_duplicates";
  conflictColumns?: string[] | null;
  maxAttempts?: number;
  /** null (default): sniffed from the file. */
  hasHeader?: boolean | null;
  dateStyle?: "iso" | "dmy" | "mdy";
  /** The files' text encoding (default utf-8). */
  encoding?: FileEncoding;
  /** Validate without writing a row (default false). */
  dryRun?: boolean;
  /** The profile's file size limit (null, the default: MAX_FILE_BYTES). */
  maxFileBytes?: number | null;
}

export async function createProfile(sql: Sql, p: ProfileOptions): Promise<number> {
  const [{ id }] = await sql<{ id: number }[]>`
    insert into csv_import.profiles (name, path_pattern, target_table, chunk_size_bytes, max_parallel_chunks,
      tolerated_reject_rate, priority, on_conflict, conflict_columns, max_attempts, has_header, date_style,
      max_rejects, reject_rate_after_rows, encoding, dry_run, max_file_bytes)
    values (${p.name}, ${p.pathPattern}, ${p.targetTable}, ${p.chunkSizeBytes ?? null},
      ${p.maxParallelChunks ?? null}, ${p.toleratedRejectRate ?? 0}, ${p.priority ?? 0},
      ${p.onConflict ?? "insert"}, ${p.conflictColumns ?? null}, ${p.maxAttempts ?? 5}, ${
    p.hasHeader ?? null
  },
      ${p.dateStyle ?? "iso"}, ${p.maxRejects ?? null}, ${p.rejectRateAfterRows ?? null}, ${
    p.encoding ?? "utf-8"
  }, ${p.dryRun ?? false}, ${p.maxFileBytes ?? null})
    returning id`;
  return id;
}

/**
 * Uploads to csv-uploads with supabase-js. A path is streamed from disk (ReadableStream, duplex half: the
 * stand-in writes it to disk as it arrives, nothing is buffered); bytes or text are sent as they are.
 */
export async function upload(
  name: string,
  body: { path: string } | Uint8Array | string,
  opts: { upsert?: boolean } = {},
): Promise<void> {
  let payload: unknown;
  let file: Deno.FsFile | null = null;
  if (typeof body === "string") payload = new TextEncoder().encode(body);
  else if (body instanceof Uint8Array) payload = body;
  else {
    file = await Deno.open(body.path);
    payload = file.readable;
  }
  try {
    const { error } = await supabase.storage.from(BUCKET).upload(name, payload as Uint8Array, {
      contentType: "text/csv",
      upsert: opts.upsert ?? false,
      duplex: "half",
    } as Record<string, unknown>);
    if (error) throw new Error(`upload of ${name} failed: ${error.message}`);
  } finally {
    try {
      file?.close();
    } catch {
      // already closed by the stream
    }
  }
}

export async function download(name: string): Promise<string | null> {
  const { data, error } = await supabase.storage.from(BUCKET).download(name);
  if (error || !data) return null;
  return await data.text();
}

export async function removeObjects(names: string[]): Promise<void> {
  if (names.length > 0) await supabase.storage.from(BUCKET).remove(names);
}

export interface JobRow {
  id: number;
  status: string;
  object_name: string;
  error: string | null;
  chunk_count: number;
  rows_parsed: number;
  rows_loaded: number;
  rows_rejected: number;
  rows_skipped: number;
  rejects_status: string;
  rejects_object: string | null;
  max_parallel_chunks: number;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export async function jobByObject(sql: Sql, objectName: string): Promise<JobRow | undefined> {
  const [job] = await sql<JobRow[]>`
    select id, status, object_name, error, chunk_count, rows_parsed::float8 as rows_parsed,
           rows_loaded::float8 as rows_loaded, rows_rejected::float8 as rows_rejected,
           rows_skipped::float8 as rows_skipped, rejects_status, rejects_object, max_parallel_chunks,
           created_at, started_at, finished_at
    from csv_import.jobs where bucket_id = ${BUCKET} and object_name = ${objectName}
    order by id desc limit 1`;
  return job;
}

/** A one-paragraph description of a job's state, for failure messages. */
export async function describeJob(sql: Sql, objectName: string): Promise<string> {
  const job = await jobByObject(sql, objectName);
  if (!job) return `no job for ${objectName}`;
  const chunks = await sql<{ kind: string; status: string; n: number; errors: string | null }[]>`
    select kind::text, status::text, count(*)::int as n, string_agg(distinct last_error, ' | ') as errors
    from csv_import.chunks where job_id = ${job.id} group by 1, 2 order by 1, 2`;
  return `job ${job.id} (${objectName}): status ${job.status}, error ${JSON.stringify(job.error)}, ` +
    `parsed ${job.rows_parsed}, loaded ${job.rows_loaded}, rejected ${job.rows_rejected}, ` +
    `skipped ${job.rows_skipped}, rejects file ${job.rejects_status}; chunks: ` +
    (chunks.map((c) => `${c.kind}/${c.status}=${c.n}${c.errors ? ` (${c.errors})` : ""}`).join(", ") ||
      "none");
}

/** Polls `check` every `intervalMs` until it returns a value (not undefined) or the deadline passes. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  describe?: () => Promise<string>,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const state = describe ? `; state: ${await describe()}` : "";
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${state}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Waits until the object's job is terminal (and, when it has rejects, its rejects file is written); returns it.
 * Fails with the job's state when the deadline passes.
 */
export function waitForJob(sql: Sql, objectName: string, timeoutMs = 60_000): Promise<JobRow> {
  return waitFor(
    `the job of ${objectName} to finish`,
    async () => {
      const job = await jobByObject(sql, objectName);
      if (!job || !TERMINAL.includes(job.status)) return undefined;
      if (job.rejects_status === "pending") return undefined;
      return job;
    },
    timeoutMs,
    () => describeJob(sql, objectName),
  );
}

/** Order-independent checksum of a table's rows (count and a sum of 64-bit row hashes). */
export async function checksum(sql: Sql, table: string): Promise<{ count: number; sum: string }> {
  const [row] = await sql.unsafe<{ count: string; sum: string | null }[]>(
    `select count(*)::text as count,
            coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint), 0)::text as sum
     from ${table} t`,
  );
  return { count: Number(row.count), sum: row.sum ?? "0" };
}

/**
 * Runs `psql -X -q <args>` against the local database as DB_URL's user (psql's own errors, not ON_ERROR_STOP, are
 * the caller's to set), with `env` added to its environment; returns its output. The one place that spells the
 * connection (the \copy helpers, the all-types test's script of single-row copies).
 */
export async function psql(
  args: string[],
  options: { env?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Deno.CommandOutput> {
  const url = new URL(DB_URL);
  return await new Deno.Command("psql", {
    args: [
      "-X",
      "-q",
      "-h",
      url.hostname,
      "-p",
      url.port || "5432",
      "-U",
      decodeURIComponent(url.username),
      "-d",
      url.pathname.slice(1),
      ...args,
    ],
    env: { PGPASSWORD: decodeURIComponent(url.password), ...options.env },
    stdout: "piped",
    stderr: "piped",
    signal: options.signal,
  }).output();
}

/**
 * `psql \copy <table> from <file>` (CSV with a header) into `columns` (default: all, in table order), under
 * `dateStyle` when given (e.g. "ISO, DMY"), reading the file in `encoding` (PostgreSQL's name) and with
 * `delimiter` when given, killed after `timeoutMs` when given; returns the elapsed wall time in ms and throws with
 * psql's message when it fails. The one place that spells the \copy invocation (the benchmark uses it too).
 */
export async function psqlCopy(
  table: string,
  file: string,
  options: {
    columns?: string[];
    dateStyle?: string;
    timeoutMs?: number;
    encoding?: string;
    delimiter?: string;
    /** A command psql runs on `file` (e.g. "gzip -dc"), copying its output instead of the file's bytes:
     * `\copy … from program '<program> <file>'`. */
    program?: string;
  } = {},
): Promise<number> {
  const { columns, dateStyle, timeoutMs, encoding, delimiter, program } = options;
  if (program !== undefined && /['\s]/.test(file)) {
    throw new Error(`psqlCopy: a file for a program must not contain quotes or spaces: ${file}`);
  }
  const source = program === undefined ? `'${file}'` : `program '${program} ${file}'`;
  const target = columns ? `${table} (${columns.join(", ")})` : table;
  const settings = dateStyle ? ["-c", `set datestyle = '${dateStyle}'`] : [];
  const extra = (encoding ? `, encoding '${encoding}'` : "") +
    (delimiter ? `, delimiter E'${delimiter === "\t" ? "\\t" : delimiter}'` : "");
  const started = performance.now();
  const out = await psql(
    [
      "-v",
      "ON_ERROR_STOP=1",
      ...settings,
      "-c",
      `\\copy ${target} from ${source} with (format csv, header true${extra})`,
    ],
    { signal: timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs) },
  );
  const elapsed = performance.now() - started;
  if (!out.success) {
    throw new Error(`psql \\copy into ${table} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return elapsed;
}

export interface Invocation {
  function: string;
  status: number;
  startedAt: string;
  outcome: string;
  wallMs: number;
  /** CPU of this invocation, boot excluded (its share of the worker when it shared one). */
  cpuMs: number;
}

/** The local functions runtime's finished invocations (local-only admin route). */
export async function invocations(): Promise<Invocation[]> {
  const res = await fetch(`${SUPABASE_URL}/_local/functions/invocations`, {
    headers: { Authorization: `Bearer ${SERVICE_ROLE_KEY}` },
  });
  if (!res.ok) throw new Error(`GET /_local/functions/invocations answered ${res.status}`);
  return await res.json();
}

/** Kills every worker of the local functions runtime (local-only admin route). */
export async function killFunctionWorkers(): Promise<void> {
  const res = await fetch(`${SUPABASE_URL}/_local/functions/kill`, {
    method: "POST",
    headers: { Authorization: `Bearer ${SERVICE_ROLE_KEY}` },
  });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`POST /_local/functions/kill answered ${res.status}`);
}

/** POSTs to a pipeline Edge Function with the service key; returns status and body. */
export async function invokeFunction(
  name: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${SUPABASE_URL}/functions/v1/${name}`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${SECRET_KEY}`,
      apikey: SECRET_KEY,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}

/**
 * What one test creates, removed at its end: tables, profiles, objects (with their rejects files), temp dirs.
 * Jobs stay (they are the pipeline's history; their profile reference is set null by the FK).
 */
export class Scope {
  readonly tables: string[] = [];
  readonly profiles: string[] = [];
  readonly objects: string[] = [];
  readonly dirs: string[] = [];
  readonly cleanups: (() => Promise<unknown>)[] = [];
  readonly prefix: string;

  constructor(readonly sql: Sql, label: string) {
    this.prefix = unique(`e2e_${label}`);
  }

  /** A unique object name under this scope's prefix. */
  object(file: string): string {
    const name = `${this.prefix}/${file}`;
    this.objects.push(name, `${name}.rejects.csv`);
    return name;
  }

  async table(label: string, opts: { primaryKey?: boolean } = {}): Promise<string> {
    const name = unique(`e2e_${label}`);
    this.tables.push(`public.${name}`);
    return await createTarget(this.sql, name, opts);
  }

  async profile(p: Omit<ProfileOptions, "name"> & { name?: string }): Promise<number> {
    const name = p.name ?? unique(`${this.prefix}_profile`);
    this.profiles.push(name);
    return await createProfile(this.sql, { ...p, name });
  }

  /**
   * `public.<prefix>_t`, the pipeline's target, and `public.<prefix>_ref`, `psql \copy`'s, both with `columns`
   * (dropped at dispose): the differential tests load one file into each and compare.
   */
  async tableAndReference(columns: string): Promise<{ table: string; reference: string }> {
    const [table, reference] = [`public.${this.prefix}_t`, `public.${this.prefix}_ref`];
    for (const t of [table, reference]) {
      await this.sql.unsafe(`create table ${t} (${columns})`);
      this.defer(() => this.sql.unsafe(`drop table if exists ${t}`));
    }
    return { table, reference };
  }

  /**
   * The application's upload rule as a project writes it: a Storage policy letting each signed-in user upload
   * into `<folder>/<their id>/` (default: this scope's prefix), dropped at dispose.
   */
  async userFolderUploads(folder = this.prefix): Promise<void> {
    const policy = unique("e2e_upload");
    await this.sql.unsafe(
      `create policy "${policy}" on storage.objects for insert to authenticated
       with check (bucket_id = '${BUCKET}' and starts_with(name, '${folder}/' || auth.uid()::text || '/'))`,
    );
    this.defer(() => this.sql.unsafe(`drop policy if exists "${policy}" on storage.objects`));
  }

  async tempDir(): Promise<string> {
    const dir = await Deno.makeTempDir({ prefix: `${this.prefix}-` });
    this.dirs.push(dir);
    return dir;
  }

  /** Runs `fn` first thing in dispose(). */
  defer(fn: () => Promise<unknown>): void {
    this.cleanups.push(fn);
  }

  async dispose(): Promise<void> {
    for (const fn of this.cleanups.reverse()) await fn().catch(() => {});
    await removeObjects(this.objects).catch(() => {});
    for (const dir of this.dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
    if (this.profiles.length > 0) {
      await this.sql`delete from csv_import.profiles where name in ${this.sql(this.profiles)}`;
    }
    for (const table of this.tables) await this.sql.unsafe(`drop table if exists ${table} cascade`);
  }
}

// ---- Fault injection and stack control (the fault suites: tests/faults_*_test.ts) ----

/** A Storage read fault plan for POST /_local/storage/faults (local-stack/storage/faults.ts documents it). */
export interface StorageFaultPlan {
  kind: "status" | "truncate" | "hang" | "stale";
  every?: number;
  limit?: number;
  bucket?: string;
  prefix?: string;
  /** For "status": hosted's error by name (faults.ts lists them with their HTTP status and body code). */
  error?:
    | "InternalError"
    | "LockTimeout"
    | "DatabaseReadOnly"
    | "SlowDown"
    | "DatabaseTimeout"
    | "TooManyConnections";
  status?: 500 | 503;
  bytes?: number;
  hang_ms?: number;
  /** For "stale": how long a cached copy is served (default 60000). */
  ttl_ms?: number;
}

export interface StorageFaultCounters {
  plan: unknown;
  reads: number;
  faults: { status: number; truncate: number; hang: number; stale: number };
  hangs_abandoned: number;
}

async function storageFaultsRequest(method: string, plan?: StorageFaultPlan): Promise<StorageFaultCounters> {
  const res = await fetch(`${SUPABASE_URL}/_local/storage/faults`, {
    method,
    headers: { Authorization: `Bearer ${SERVICE_ROLE_KEY}`, "Content-Type": "application/json" },
    body: plan ? JSON.stringify(plan) : undefined,
  });
  const body = await res.json();
  if (!res.ok) {
    throw new Error(`${method} /_local/storage/faults answered ${res.status}: ${JSON.stringify(body)}`);
  }
  return body;
}

/** Starts injecting Storage read faults (replaces any plan, resets the counters). */
export const setStorageFaults = (plan: StorageFaultPlan) => storageFaultsRequest("POST", plan);
/** The current plan's counters. */
export const storageFaultCounters = () => storageFaultsRequest("GET");
/** Stops injecting; returns the final counters. */
export const clearStorageFaults = () => storageFaultsRequest("DELETE");

const STACK_SCRIPT = new URL("../../scripts/stack.sh", import.meta.url).pathname;
const STATE_DIR = Deno.env.get("STATE_DIR") ?? new URL("../../.local", import.meta.url).pathname;

/** Runs `bash scripts/stack.sh <command>` with this process's environment (API_PORT, DB_PORT, …). */
export async function stack(command: "restart-api" | "restart-db" | "status"): Promise<void> {
  const out = await new Deno.Command("bash", {
    args: [STACK_SCRIPT, command],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`stack.sh ${command} failed: ${text}`);
  }
}

/** The process ids of `pid` and all its descendants (from /proc), parents first. */
async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry.name)]);
    } catch {
      // the process ended meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i]) ?? []));
  return tree;
}

/**
 * Kills the local API gateway (Storage, the functions runtime with every function worker, pg_net) with
 * SIGKILL, as a crash would: the gateway's process and its descendants, by process id (from the stack's pid
 * file). Returns the killed process ids.
 */
export async function killGateway(): Promise<number[]> {
  const pid = Number((await Deno.readTextFile(`${STATE_DIR}/gateway.pid`)).trim());
  const tree = await processTree(pid);
  for (const p of tree) {
    try {
      Deno.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return tree;
}
