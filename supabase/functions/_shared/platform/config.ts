/**
 * The pipeline's configuration: every environment variable is read and validated here, once, and nowhere else.
 *
 * Invariants:
 * - `loadConfig` either returns a frozen, fully validated Config or throws a ConfigError naming every missing or
 *   malformed key (never a silent fallback to an empty string).
 * - Names of the old Node worker are kept where they still mean something: SUPABASE_SERVICE_KEY is an alias of
 *   the service role key, STORAGE_BUCKET, WORKER_BATCH_SIZE, WORKER_CONCURRENT_BATCHES (now the fan-out width:
 *   how many chunk invocations run at once across all jobs) and CHUNK_SIZE.
 */

/** Defaults, each with why. */
export const DEFAULTS = {
  /** The bucket users drop files into. */
  STORAGE_BUCKET: "csv-uploads",
  /**
   * Rows in a chunk invocation's first database batch (one transaction each); each further batch of the same
   * invocation may hold twice as many rows as the one before, up to WORKER_BATCH_BYTES. The small first batch
   * makes the first rows visible early (measured: first row 0.3–0.7 s after the upload of the 1M-row file)
   * and the progress marker fine-grained where a retry is most likely.
   */
  WORKER_BATCH_SIZE: 5000,
  /**
   * Most COPY data per database batch. Why bigger than 5,000 rows (~0.6 MB, the old fixed size): every batch
   * costs begin_batch, commit_batch and a WAL flush, and before COPY was streamed the worker also waited for
   * each batch in turn; measured on one 8 MiB chunk alone, 40,000-row batches cut its wall time by 20% and the
   * database's CPU by 15% against 5,000-row ones (1M rows: ~64 commits instead of 200). Why not more: a
   * batch's rejects stay in memory until its commit, and a batch of refused rows (a file re-imported in
   * insert mode: ~32,000 duplicate keys at 4 MiB) must still finish well inside the 120 s lease (~0.4 ms a
   * row through csv_import.insert_isolating).
   */
  WORKER_BATCH_BYTES: 4 * 1024 * 1024,
  /**
   * Chunk invocations running at once, across all jobs. Measured end to end on 2 cores (bench/main.ts,
   * 5M rows, widths 1/2/4/8: 46.7/24.5/21.5/28.0 s; 1M rows: 7.5/5.1/4.9/5.2 s): four keeps both cores busy
   * with parsing and COPY overlapping; more only adds contention in the database.
   */
  WORKER_CONCURRENT_BATCHES: 4,
  /**
   * 0: the fan-out width is WORKER_CONCURRENT_BATCHES. Above 0: the width is steered by the rows per second the
   * database commits, from WORKER_CONCURRENT_BATCHES up to this many (csv_import.fan_out_width: a step up that
   * does not raise the rate by 5 % is taken back; lock waits or crowded connections halve it). A job without a
   * profile's max_parallel_chunks may then use up to this many (not only JOB_CONCURRENCY).
   */
  FAN_OUT_AUTO_MAX: 0,
  /** Chunk invocations running at once for one job (a profile may lower or raise it). */
  JOB_CONCURRENCY: 4,
  /**
   * Bytes per chunk. Measured end to end on the 1M-row reference file (width 4, bench/main.ts, 3 runs each,
   * COPY BINARY, pooled pieces): 8 MiB 0.72–0.75× of `\copy`, 12 MiB 0.75–0.78×, 16 MiB 0.80–0.83× (5M rows:
   * 0.94×). Bigger chunks amortise the per-invocation and per-batch costs, but a load holds its range in memory
   * while it scans it: 16 MiB reaches 53–57 MB added memory per invocation and 0.62–0.64 s CPU (p95), close to
   * the 64 MB / 1 s budgets, and 1M→5M is no longer comfortably linear (3.3 → 2.8 s per million rows); 8 MiB
   * stays at 45–47 MB and ~0.5 s. Those figures predate the shared-worker runtime: under per_worker, 16 MiB
   * chunks (two at once per isolate) were faster at 1M rows but slower at 5M (33.6–35.2 s against 30.6–32.6)
   * and over 64 MB added (66–67 MB p95), since an isolate retires at ~1 s of CPU whatever the chunk size
   * (docs/performance.md, "Big files in larger chunks"). A profile may still choose them (`chunk_size_bytes`).
   */
  CHUNK_SIZE: 8 * 1024 * 1024,
  /**
   * Milliseconds of synchronous work (parsing, checking, encoding) a load chunk is planned to take, from what
   * loads measured per row (into the same table, else per field into others) and the file's rows per MiB
   * (pipeline/chunk_size.ts): a file whose
   * CHUNK_SIZE chunks would take more gets smaller chunks; 0 plans every job with CHUNK_SIZE. Why 300: an
   * invocation hands its chunk on past WORKER_INVOCATION_WORK_MS (500) of its own work, and an isolate's
   * WORKER_CHUNKS_PER_ISOLATE (3) chunks share its WORKER_ISOLATE_WORK_MS (1,000) before it is retired, ~330 each.
   * The 1M-row reference file measures ~20 ms per MiB on the slower of the two machines (~160 per 8 MiB chunk),
   * and ~30 ms (~240 per chunk) from other tables' work per field when its table is new: its chunks keep
   * CHUNK_SIZE.
   */
  CHUNK_WORK_MS: 300,
  /** Smallest chunk CHUNK_WORK_MS may plan: below a MiB an invocation's fixed costs (~30 ms of CPU) dominate. */
  CHUNK_SIZE_MIN: 1024 * 1024,
  /**
   * Most load chunks one job may be planned with; a file that would need more gets bigger chunks (its size
   * over this, rounded up), and the job records the chunk size it got. Why: every chunk is a row (two, with its
   * scan chunk) that claiming, progress and reconciling scan, for every job at once. Measured: a 5 MB file with
   * `chunk_size_bytes = 1` made 10.5M chunk rows (3.9 GB), claims took 7–18 s and an unrelated 2-row job 21 s.
   * 10,000 bounds that to 20,000 rows per job, yet never raises the default 8 MiB chunk (10,000 × 8 MiB = 78 GiB,
   * above MAX_FILE_BYTES), and keeps tiny chunk sizes usable on small files (tests, boundary experiments).
   */
  MAX_CHUNKS_PER_JOB: 10_000,
  /**
   * Work one isolate's chunk invocations take on before they leave the rest to new invocations: after each
   * chunk an invocation claims the next ready one itself (through csv_import.claim_chunks, so priorities and
   * limits hold) while its isolate has taken on less than this many load bytes in all (a scanned byte counts
   * 1/8: scanning only counts quotes and newlines). One account per isolate, not per invocation: concurrent
   * requests share an isolate and its CPU limit (edge-runtime per_worker), and an isolate past its soft limit
   * must be left only with the chunks it has open (pipeline/chunk_worker.ts isolateWork). Why: every invocation costs ~30 ms of CPU beyond its chunk (HTTP, worker hand-off, context
   * query) and a cold worker ~80 ms more; measured on the 1M-row file (16 chunks of 8 MiB), 31
   * invocations became 10–14. Why not more: CPU per invocation stays under the 1 s budget (a load costs
   * ~17 ms CPU per MiB: 24 MiB of loads ≈ 0.45 s, plus at most one chunk started just under the budget;
   * measured p95 0.45–0.52 s, max 0.52 s).
   */
  WORKER_INVOCATION_BUDGET_BYTES: 24 * 1024 * 1024,
  /**
   * A file of one chunk and at most this many bytes is loaded by the register invocation itself, right after it
   * answered, instead of by a chunk invocation it would hand the chunk to (one HTTP hop and often a worker start
   * fewer: a 100-row file's job took p50 86-88 ms / p95 119-130 ms from upload to done instead of 183 / 264 ms,
   * 20 uploads 1.2 s apart; docs/performance.md). 0 turns it off. Bounded so that register's isolate, which a
   * burst of registrations shares, spends at most a few tens of milliseconds of CPU per such file; the isolate's
   * work account applies as for chunks.
   */
  REGISTER_INLINE_LOAD_BYTES: 1024 * 1024,
  /**
   * Registrations one register isolate runs at once; the others wait in it, in order, and are handed to a fresh
   * isolate when the runtime stops this one (pipeline/register_queue.ts). Registration waits mostly on the
   * database and Storage (~10 round trips, ~11 ms CPU): a few at once keep the isolate's one thread busy, and
   * bound what is still open when it reaches its CPU limit. 200 small files at once: run all at once, the
   * isolate was killed with 183 open (546); bounded, none (tests/scale_test.ts).
   */
  REGISTER_CONCURRENT_REGISTRATIONS: 4,
  /**
   * Chunks one chunk isolate processes at once; the other chunk requests that reach it wait in it, in order, and go
   * back for a fresh worker when the runtime stops the isolate (pipeline/isolate_budget.ts). The fan-out width bounds
   * chunks in flight across isolates; this bounds what shares one isolate's memory and CPU (edge-runtime per_worker).
   * Measured, 5M rows, width 4, five runs each (three rounds alternated; docs/performance.md): 2 at once: pipeline
   * median 33.4 s, memory added per chunk worker p95 66–68 MB; 3: 28.7 s, 79–82 MB; 4 (as good as unbounded at width
   * 4): 35.2 s, 93 MB. Three keep the isolate's one thread busy while the others wait on the database; a fourth only
   * adds memory and, once the isolate is retired, CPU it spends past its soft limit. 2 is the setting that keeps an
   * isolate near 64 MB.
   */
  WORKER_CHUNKS_PER_ISOLATE: 3,
  /**
   * Milliseconds of synchronous work (parse, convert, encode) one isolate's chunks do in all before it takes on
   * nothing more: its open loads hand the rest of their chunk on at their next batch, and a chunk that reaches it
   * after that goes straight back (pipeline/isolate_budget.ts). The runtime's soft CPU limit (1 s in the CLI's
   * runner; hosted: UNCONFIRMED), so an isolate that reached it is retired and what it hands back reaches a fresh
   * one. Not below the soft limit: an isolate not yet retired would be sent its handed-back chunks again. Measured
   * (1M and 5M rows, width 4, three alternated rounds): chunk worker CPU p95 1.31–1.46 s against 1.41–1.65 s with it
   * off, end-to-end time the same within the noise; with 16 MiB chunks, where the open work of a retired isolate
   * reached the beforeunload mark and 2–8 chunks per 5M job were interrupted, none were.
   */
  WORKER_ISOLATE_WORK_MS: 1000,
  /**
   * Milliseconds of the worker's own synchronous work (parsing, converting, encoding rejects) one invocation does
   * before it hands the rest of its chunk to a fresh invocation (csv_import.yield_chunk; the chunk resumes after
   * its last committed batch, with no attempt spent). A chunk's byte size does not bound its work: a 3 MB file of
   * 1M one-field rows, all rejected, took 2.0 s CPU (the hosted limit: the worker was killed, twice) and 210 MB;
   * now 2–5 invocations of at most 0.6–0.8 s CPU (tests/reject_heavy_test.ts). In the whole test suite only
   * reject-heavy chunks reached it (`chunk_yielded` in the log): no 8 MiB load of the 1M-row end-to-end file did.
   */
  WORKER_INVOCATION_WORK_MS: 500,
  /**
   * Most rejects one invocation handles before it hands the rest of its chunk on (as WORKER_INVOCATION_WORK_MS).
   * The work a reject costs is only partly the parse the work budget times (the garbage it leaves is collected
   * between awaits): 1M rejects in one chunk ran 2 invocations of 0.6-1.3 s CPU and 77-80 MB added; 100,000 per
   * invocation keeps both well inside the budgets (tests/reject_heavy_test.ts).
   */
  WORKER_INVOCATION_MAX_REJECTS: 100_000,
  /**
   * Most rejects one batch carries: a batch ends when it has this many, whatever its rows. With the batch's COPY
   * bytes and its rejects' text counted together against WORKER_BATCH_BYTES, memory stays flat however many rows
   * a file has rejected (before, a batch of 1M rejects held ~200 MB).
   */
  WORKER_BATCH_MAX_REJECTS: 5_000,
  /**
   * How the fast path's pieces go to the database: "binary" (COPY BINARY while every value of a piece has a
   * binary form, else text) or "text". Measured on the 1M-row reference file, 2 cores shared by the database
   * and the functions (bench/main.ts, 2 × 2 runs per format, COPY pieces pooled): binary takes the database
   * from 3.1–3.2 to 2.5–2.6 CPU-s (`\copy`: 2.6) and the functions from 3.7–3.8 to 4.2–4.8 CPU-s; end to end
   * medians 0.70–0.74× of `\copy` in binary, 0.70–0.73× in text. On a hosted project the database is what every
   * import and the application share, and the functions run elsewhere: binary is the default.
   */
  WORKER_COPY_FORMAT: "binary" as "binary" | "text",
  /** Largest single record accepted; a longer one fails the job (the file is not line-structured CSV). */
  MAX_RECORD_BYTES: 1024 * 1024,
  /** Largest file accepted for import; a compressed upload's decompressed data counts against it too. */
  MAX_FILE_BYTES: 50 * 1024 * 1024 * 1024,
  /**
   * A compressed upload (issue 16) whose data inflates to more than this many times its compressed size fails as a
   * likely decompression bomb, judged once INFLATE_RATIO_AFTER_BYTES are out (a small file of repeated rows may
   * compress far better). CSV exports compress 3–12× with gzip -6 (the reference files: 2.6×; vega-datasets'
   * CSVs 2–9×); deflate cannot exceed ~1032×, which a bomb of zeros reaches.
   */
  COMPRESSION_MAX_RATIO: 200,
  /** Decompressed bytes before COMPRESSION_MAX_RATIO is judged. */
  INFLATE_RATIO_AFTER_BYTES: 64 * 1024 * 1024,
  /**
   * Decompressed bytes one invocation of a compressed job's inflate chain produces before it hands the chain on
   * (at the next chunk boundary): pako inflates ~80–120 MB/s here, so 32 MiB is ~0.3–0.4 s of CPU with the scan,
   * inside the 1 s a worker should use; fewer, larger steps cost fewer hand-offs.
   */
  INFLATE_STEP_BYTES: 32 * 1024 * 1024,
  /** Most columns a file may have. */
  MAX_COLUMNS: 1600,
  /**
   * Lease on a claimed chunk: renewed at every batch commit and by a heartbeat every LEASE_SECONDS / 4 while the
   * worker lives (csv_import.renew_lease). Expired leases are reclaimed every 10 s (pg_cron, csv-import-leases),
   * so a killed worker's chunk is taken over within ~30 s (measured: tests/worker_liveness_test.ts). It was 120 s
   * without a heartbeat: a 2M-row job with 12 worker kills took 211 s against ~10 s undisturbed.
   */
  LEASE_SECONDS: 15,
  /**
   * Longest single statement of a batch (a COPY piece, an isolating INSERT). A worker frozen in the middle of a
   * COPY (SIGSTOP, a partition) holds its chunk's row lock until the database ends the statement; pieces are
   * ~1 MiB and take well under a second on an ordinary table. A table whose triggers make a piece slower needs
   * more (the batch is retried, then dead-lettered with PostgreSQL's "canceling statement due to statement
   * timeout").
   */
  BATCH_STATEMENT_TIMEOUT_SECONDS: 60,
  /**
   * Longest a batch transaction may sit idle between statements (idle_in_transaction_session_timeout) before
   * the database ends the session and releases the chunk: a frozen worker's chunk is then taken over within
   * about a minute. Above Storage's stall timeout (30 s), so a slow range read inside a batch is not cut.
   */
  BATCH_IDLE_TIMEOUT_SECONDS: 45,
  /** Attempts per chunk before it is dead-lettered (a profile may override it). */
  MAX_ATTEMPTS: 5,
  /** Rejects stored per job with their raw record (all are counted). */
  MAX_STORED_REJECTS: 100_000,
} as const;

/**
 * The highest MAX_CHUNKS_PER_JOB may be set: the same ceiling csv_import.jobs enforces on chunk_count (migration
 * 20261204000200_create_registration.sql), so a plan within the configuration is never refused there.
 */
export const MAX_CHUNKS_CEILING = 100_000;

export interface Config {
  supabaseUrl: string;
  dbUrl: string;
  /**
   * The key the functions call Storage and each other with: the first of SUPABASE_SECRET_KEYS (sb_secret_), else
   * the legacy SUPABASE_SERVICE_ROLE_KEY JWT. Sent as auth.ts `keyHeaders` says (an sb_ key as apikey only).
   */
  serviceKey: string;
  /** Keys accepted from callers: every secret key, then the legacy service role key. */
  acceptedServiceKeys: readonly string[];
  internalSecret: string | null;
  bucket: string;
  batchSize: number;
  batchBytes: number;
  fanOutWidth: number;
  fanOutAutoMax: number;
  jobConcurrency: number;
  chunkSize: number;
  chunkWorkMs: number;
  chunkSizeMin: number;
  maxChunksPerJob: number;
  invocationBudgetBytes: number;
  registerInlineLoadBytes: number;
  registerConcurrency: number;
  chunksPerIsolate: number;
  isolateWorkMs: number;
  invocationWorkMs: number;
  invocationMaxRejects: number;
  batchMaxRejects: number;
  maxRecordBytes: number;
  maxFileBytes: number;
  compressionMaxRatio: number;
  inflateRatioAfterBytes: number;
  inflateStepBytes: number;
  maxColumns: number;
  leaseSeconds: number;
  batchStatementTimeoutSeconds: number;
  batchIdleTimeoutSeconds: number;
  maxAttempts: number;
  maxStoredRejects: number;
  copyFormat: "binary" | "text";
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join("; ")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const text = (key: string, required: boolean): string | null => {
    const value = env[key]?.trim();
    if (value) return value;
    if (required) problems.push(`${key} is not set`);
    return null;
  };
  const int = (key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[key]?.trim();
    if (!raw) return fallback;
    const value = parseSize(raw);
    if (value === null || value < min || value > max) {
      problems.push(`${key} must be an integer between ${min} and ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  };

  const supabaseUrl = text("SUPABASE_URL", true);
  if (supabaseUrl && !/^https?:\/\/[^/]+/.test(supabaseUrl)) {
    problems.push(`SUPABASE_URL must be an http(s) URL, got "${supabaseUrl}"`);
  }
  const dbUrl = text("SUPABASE_DB_URL", true);
  if (dbUrl && !/^postgres(ql)?:\/\//.test(dbUrl)) {
    problems.push("SUPABASE_DB_URL must be a postgresql:// connection string");
  }
  const { acceptedServiceKeys: accepted, internalSecret } = callerKeys(env, problems);
  if (accepted.length === 0) {
    problems.push(
      "no service key: set SUPABASE_SERVICE_ROLE_KEY (or its alias SUPABASE_SERVICE_KEY) or SUPABASE_SECRET_KEYS",
    );
  }
  const bucket = text("STORAGE_BUCKET", false) ?? DEFAULTS.STORAGE_BUCKET;
  if (!/^[a-z0-9][a-z0-9._-]{1,62}$/.test(bucket)) {
    problems.push(`STORAGE_BUCKET "${bucket}" is not a valid bucket id`);
  }

  const copyFormat = text("WORKER_COPY_FORMAT", false) ?? DEFAULTS.WORKER_COPY_FORMAT;
  if (copyFormat !== "binary" && copyFormat !== "text") {
    problems.push(`WORKER_COPY_FORMAT must be "binary" or "text", got "${copyFormat}"`);
  }

  const config: Config = {
    supabaseUrl: (supabaseUrl ?? "").replace(/\/+$/, ""),
    dbUrl: dbUrl ?? "",
    serviceKey: accepted[0] ?? "",
    acceptedServiceKeys: Object.freeze(accepted),
    internalSecret,
    bucket,
    batchSize: int("WORKER_BATCH_SIZE", DEFAULTS.WORKER_BATCH_SIZE, 1, 1_000_000),
    batchBytes: int("WORKER_BATCH_BYTES", DEFAULTS.WORKER_BATCH_BYTES, 1024, 256 * 1024 * 1024),
    fanOutWidth: int("WORKER_CONCURRENT_BATCHES", DEFAULTS.WORKER_CONCURRENT_BATCHES, 1, 256),
    fanOutAutoMax: int("FAN_OUT_AUTO_MAX", DEFAULTS.FAN_OUT_AUTO_MAX, 0, 256),
    jobConcurrency: int("JOB_CONCURRENCY", DEFAULTS.JOB_CONCURRENCY, 1, 256),
    chunkSize: int("CHUNK_SIZE", DEFAULTS.CHUNK_SIZE, 1, 1024 * 1024 * 1024),
    chunkWorkMs: int("CHUNK_WORK_MS", DEFAULTS.CHUNK_WORK_MS, 0, 600_000),
    chunkSizeMin: int("CHUNK_SIZE_MIN", DEFAULTS.CHUNK_SIZE_MIN, 1, 1024 * 1024 * 1024),
    maxChunksPerJob: int("MAX_CHUNKS_PER_JOB", DEFAULTS.MAX_CHUNKS_PER_JOB, 1, MAX_CHUNKS_CEILING),
    invocationBudgetBytes: int(
      "WORKER_INVOCATION_BUDGET_BYTES",
      DEFAULTS.WORKER_INVOCATION_BUDGET_BYTES,
      0,
      1024 * 1024 * 1024,
    ),
    registerInlineLoadBytes: int(
      "REGISTER_INLINE_LOAD_BYTES",
      DEFAULTS.REGISTER_INLINE_LOAD_BYTES,
      0,
      64 * 1024 * 1024,
    ),
    registerConcurrency: int(
      "REGISTER_CONCURRENT_REGISTRATIONS",
      DEFAULTS.REGISTER_CONCURRENT_REGISTRATIONS,
      1,
      64,
    ),
    chunksPerIsolate: int("WORKER_CHUNKS_PER_ISOLATE", DEFAULTS.WORKER_CHUNKS_PER_ISOLATE, 1, 64),
    isolateWorkMs: int("WORKER_ISOLATE_WORK_MS", DEFAULTS.WORKER_ISOLATE_WORK_MS, 50, 600_000),
    invocationWorkMs: int("WORKER_INVOCATION_WORK_MS", DEFAULTS.WORKER_INVOCATION_WORK_MS, 50, 600_000),
    invocationMaxRejects: int(
      "WORKER_INVOCATION_MAX_REJECTS",
      DEFAULTS.WORKER_INVOCATION_MAX_REJECTS,
      1,
      100_000_000,
    ),
    batchMaxRejects: int("WORKER_BATCH_MAX_REJECTS", DEFAULTS.WORKER_BATCH_MAX_REJECTS, 1, 1_000_000),
    maxRecordBytes: int("MAX_RECORD_BYTES", DEFAULTS.MAX_RECORD_BYTES, 64, 64 * 1024 * 1024),
    maxFileBytes: int("MAX_FILE_BYTES", DEFAULTS.MAX_FILE_BYTES, 1),
    compressionMaxRatio: int("COMPRESSION_MAX_RATIO", DEFAULTS.COMPRESSION_MAX_RATIO, 2, 100_000),
    inflateRatioAfterBytes: int("INFLATE_RATIO_AFTER_BYTES", DEFAULTS.INFLATE_RATIO_AFTER_BYTES, 0),
    inflateStepBytes: int("INFLATE_STEP_BYTES", DEFAULTS.INFLATE_STEP_BYTES, 1024, 1024 * 1024 * 1024),
    maxColumns: int("MAX_COLUMNS", DEFAULTS.MAX_COLUMNS, 1, 1600),
    leaseSeconds: int("LEASE_SECONDS", DEFAULTS.LEASE_SECONDS, 5, 3600),
    batchStatementTimeoutSeconds: int(
      "BATCH_STATEMENT_TIMEOUT_SECONDS",
      DEFAULTS.BATCH_STATEMENT_TIMEOUT_SECONDS,
      1,
      3600,
    ),
    batchIdleTimeoutSeconds: int("BATCH_IDLE_TIMEOUT_SECONDS", DEFAULTS.BATCH_IDLE_TIMEOUT_SECONDS, 1, 3600),
    maxAttempts: int("MAX_ATTEMPTS", DEFAULTS.MAX_ATTEMPTS, 1, 100),
    maxStoredRejects: int("MAX_STORED_REJECTS", DEFAULTS.MAX_STORED_REJECTS, 0),
    copyFormat: copyFormat === "text" ? "text" : "binary",
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** The credentials a caller may present; see {@link callerKeys}. */
export interface CallerKeys {
  acceptedServiceKeys: readonly string[];
  internalSecret: string | null;
}

/**
 * The keys callers are checked against, read on their own so that a function whose configuration is invalid
 * in some other respect can still tell its service callers (500, see the log) from everyone else (401). A
 * malformed SUPABASE_SECRET_KEYS is reported in `problems` when given, and contributes no key.
 */
export function callerKeys(env: Env, problems: string[] = []): CallerKeys {
  const text = (key: string) => env[key]?.trim() || null;
  const secretKeys = parseKeyDictionary(env.SUPABASE_SECRET_KEYS, "SUPABASE_SECRET_KEYS", problems);
  const legacyServiceKey = text("SUPABASE_SERVICE_ROLE_KEY") ?? text("SUPABASE_SERVICE_KEY");
  return {
    // Secret keys first: the first accepted key is the one the functions call with (Config.serviceKey), and
    // legacy JWT keys are being retired (https://supabase.com/docs/guides/getting-started/migrating-to-new-api-keys).
    acceptedServiceKeys: Object.freeze([...secretKeys, legacyServiceKey].filter((k): k is string => !!k)),
    internalSecret: text("PIPELINE_INTERNAL_SECRET"),
  };
}

/** Parses "8388608", "8MiB", "8MB", "512KiB", "1GiB" (binary units either way) into bytes or a plain integer. */
export function parseSize(raw: string): number | null {
  const match = /^(\d+)\s*([kmg]i?b?)?$/i.exec(raw.trim());
  if (!match) return null;
  const unit = (match[2] ?? "").toLowerCase()[0];
  const factor = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  const value = Number(match[1]) * factor;
  return Number.isSafeInteger(value) ? value : null;
}

function parseKeyDictionary(raw: string | undefined, key: string, problems: string[]): string[] {
  if (!raw?.trim()) return [];
  try {
    const parsed = JSON.parse(raw);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      return Object.values(parsed).filter((v): v is string => typeof v === "string" && v.length > 0);
    }
  } catch {
    // reported below
  }
  problems.push(`${key} must be a JSON object of keys, like {"default":"sb_secret_…"}`);
  return [];
}

let cached: Config | null = null;

/** The process-wide configuration, from Deno.env, validated on first use. */
export function config(): Config {
  cached ??= loadConfig(Deno.env.toObject());
  return cached;
}
