/**
 * Usage: deno task csv-import <command> [options]        (or: deno run -A scripts/cli.ts <command> …)
 *
 *   import <file> [--profile NAME] [--path OBJECT] [--upsert] [--wait] [--json] [--timeout S] [--[no-]resumable]
 *   status [JOB] [--json]          one job in detail, or (without JOB) the pipeline's health
 *   list [--limit N] [--status S] [--json]
 *   rejects JOB --out FILE [--from-db]
 *   cancel JOB [--reason TEXT] [--json]
 *   retry JOB [--wait] [--json] [--timeout S]
 *   profiles list | show NAME | add --name N --pattern P --table T [...] | remove NAME
 *
 * The operator's command line for the pipeline. `import` uploads a file to the bucket with supabase-js, streaming
 * it from disk (against a hosted project, files over 6 MB go through Storage's resumable TUS endpoint in 6 MB
 * pieces), finds the job the upload registered and, with --wait, follows it with a live progress bar (bytes, rows,
 * rows/s, ETA, rejects) read from csv_import.job_progress. Everything else is one SQL call: csv_import.cancel_job,
 * retry_job, health, the job_progress view, profiles.
 *
 * Configuration (environment): SUPABASE_URL (default http://127.0.0.1:54321), SUPABASE_DB_URL (Postgres
 * connection string; against a hosted project, the project's connection string), and the service key from
 * SUPABASE_SECRET_KEY, SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SERVICE_KEY. Against the local stack (a loopback
 * SUPABASE_URL) the database URL and key default to the local stack's well-known ones; against anything else they
 * must be set.
 *
 * Exit status: 0 on success (a job that succeeded, with or without rejects), 1 when the job failed, was
 * cancelled, timed out or an operation was refused (the reason is printed), 2 for a usage or configuration error.
 */
import { createClient } from "@supabase/supabase-js";
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import { Command, InvalidArgumentError, Option } from "commander";
import { createReadStream } from "node:fs";
import process from "node:process";
import postgres from "postgres";
import * as tus from "tus-js-client";
import { SECRET_KEY } from "../local-stack/keys.ts";
import { rejectsCsv } from "../supabase/functions/_shared/pipeline/rejects_file.ts";
import { objectPath } from "../supabase/functions/_shared/platform/storage.ts";

// Configuration -------------------------------------------------------------------------------------------------------

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "CliError";
  }
}

export interface CliConfig {
  supabaseUrl: string;
  dbUrl: string;
  key: string;
  bucket: string;
  /** SUPABASE_URL is on loopback: the local stack. */
  local: boolean;
}

const LOCAL_URL = "http://127.0.0.1:54321";
const LOCAL_DB_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const SERVICE_KEY_VARS = ["SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SERVICE_KEY"];

/** Reads the CLI's configuration; local-stack defaults apply only when SUPABASE_URL is on loopback. */
export function loadCliConfig(env: Record<string, string | undefined>): CliConfig {
  const get = (key: string) => env[key]?.trim() || undefined;
  const supabaseUrl = (get("SUPABASE_URL") ?? LOCAL_URL).replace(/\/+$/, "");
  let host: string;
  try {
    host = new URL(supabaseUrl).hostname;
  } catch {
    throw new CliError(`SUPABASE_URL must be an http(s) URL, got "${supabaseUrl}"`, 2);
  }
  const local = ["127.0.0.1", "localhost", "[::1]", "::1"].includes(host);
  const key = SERVICE_KEY_VARS.map(get).find((v) => v) ?? (local ? SECRET_KEY : undefined);
  if (!key) {
    throw new CliError(
      `No service key: set ${SERVICE_KEY_VARS.join(", ")} (Dashboard → Project Settings → API keys)`,
      2,
    );
  }
  const dbUrl = get("SUPABASE_DB_URL") ?? (local ? LOCAL_DB_URL : undefined);
  if (!dbUrl) {
    throw new CliError(
      "SUPABASE_DB_URL is not set: use the project's connection string (Dashboard → Connect), e.g. the session " +
        "pooler postgresql://postgres.<ref>:<password>@aws-0-<region>.pooler.supabase.com:5432/postgres",
      2,
    );
  }
  if (!/^postgres(ql)?:\/\//.test(dbUrl)) {
    throw new CliError("SUPABASE_DB_URL must be a postgresql:// connection string", 2);
  }
  return { supabaseUrl, dbUrl, key, bucket: get("STORAGE_BUCKET") ?? "csv-uploads", local };
}

type Sql = postgres.Sql;

function connectDb(cfg: CliConfig): Sql {
  // prepare: false also works behind Supavisor's transaction pooler.
  return postgres(cfg.dbUrl, {
    max: 2,
    prepare: false,
    idle_timeout: 5,
    onnotice: () => {},
    connection: { application_name: "csv-import cli" },
  });
}

// Formatting ------------------------------------------------------------------------------------------------------------

const TERMINAL = new Set(["succeeded", "succeeded_with_rejects", "failed", "cancelled"]);
const SUCCESS = new Set(["succeeded", "succeeded_with_rejects"]);

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** 1234567 → "1,234,567". */
export const formatCount = (n: number | string | null | undefined): string =>
  Number(n ?? 0).toLocaleString("en-US");

/**
 * Text from the data (object names, reject reasons and raw records, job and chunk errors, table cells) made safe
 * to print on a terminal: C0 controls (ESC, CR, BS, …, and tab and newline), DEL, C1 controls (U+0080–U+009F:
 * CSI U+009B starts an escape sequence on some terminals) and the Unicode bidi and line-separator controls
 * (U+061C, U+200E/F, U+2028/9, U+202A–U+202E, U+2066–U+2069) become visible escapes: `\x1b`, `\r`, `\n`, `\t`,
 * `\x7f`, `\u009b`, `\u202e`. So a value cannot clear the screen, move the cursor, rewrite an earlier line,
 * set the window title, fake a line of output or reorder what the operator reads. Backslashes are left as they
 * are: the escapes are for reading, not for parsing back.
 */
export function printable(value: unknown): string {
  return String(value ?? "").replace(UNPRINTABLE, escapeChar);
}

// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves raw inside strings (it escapes C0; a raw newline in its output is indentation). */
const UNPRINTABLE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED_ESCAPES[c] ??
    (code <= 0x7f ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
}

/**
 * Template tag for a line of output: every interpolated value goes through {@link printable}, the literal text
 * stays as written. `console.log(safe\`Job ${id}: ${job.error}\`)`.
 */
export function safe(strings: TemplateStringsArray, ...values: unknown[]): string {
  let text = strings[0];
  for (let i = 0; i < values.length; i++) text += printable(values[i]) + strings[i + 1];
  return text;
}

/**
 * JSON for stdout: JSON.stringify already escapes C0 controls inside strings; this also writes DEL, C1 and the
 * bidi and line-separator controls as \uXXXX escapes (the same JSON value, parsed back).
 */
export function printableJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(
    UNPRINTABLE_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => c === null ? "" : printable(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/**
 * An object name for `file` that the profile's LIKE pattern matches: the pattern with its first `%` replaced by the
 * file's base name (and any suffix after it kept unless the name already ends with it), other `%` dropped, `_`
 * kept (it matches itself) and escapes resolved: "orders/%" → "orders/2024-05.csv", "%.csv" → "2024-05.csv".
 * A pattern without `%` names one object: null unless it is the file's name (the caller then asks for --path).
 */
export function objectNameFor(pathPattern: string, baseName: string): string | null {
  const unescape = (text: string) => text.replace(/(?<!\\)%/g, "").replace(/\\([%_\\])/g, "$1");
  const wildcard = pathPattern.search(/(?<!\\)%/);
  if (wildcard < 0) return unescape(pathPattern) === baseName ? baseName : null;
  const prefix = unescape(pathPattern.slice(0, wildcard));
  const suffix = unescape(pathPattern.slice(wildcard + 1));
  return `${prefix}${baseName}${baseName.endsWith(suffix) ? "" : suffix}`;
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

function pgMessage(error: unknown): string {
  const e = error as { message?: string; hint?: string; detail?: string };
  return [e.message ?? String(error), e.detail, e.hint].filter(Boolean).join(" ");
}

// Upload ----------------------------------------------------------------------------------------------------------------

/** Above this size, uploads to a hosted project use resumable (TUS) uploads, as Supabase recommends. */
export const RESUMABLE_THRESHOLD = 6 * 1024 * 1024;

export interface UploadOptions {
  supabaseUrl: string;
  key: string;
  bucket: string;
  objectName: string;
  path: string;
  size: number;
  upsert: boolean;
  onProgress?: (bytesSent: number) => void;
}

/**
 * Standard upload with supabase-js, the file streamed from disk (nothing buffered). With `withLength` (hosted, at
 * most RESUMABLE_THRESHOLD bytes) the file is read into memory first and sent with its Content-Length, which
 * hosted Storage's standard upload expects.
 */
export async function uploadStandard(o: UploadOptions & { withLength?: boolean }): Promise<void> {
  const supabase = createClient(o.supabaseUrl, o.key, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
  if (o.withLength) {
    const bytes = await Deno.readFile(o.path);
    const { error } = await supabase.storage.from(o.bucket).upload(o.objectName, bytes, {
      contentType: "text/csv",
      upsert: o.upsert,
    });
    if (error) throw new CliError(`Upload of ${o.bucket}/${o.objectName} failed: ${error.message}`);
    o.onProgress?.(bytes.byteLength);
    return;
  }
  const file = await Deno.open(o.path);
  let sent = 0;
  const counted = file.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(piece, controller) {
        sent += piece.byteLength;
        o.onProgress?.(sent);
        controller.enqueue(piece);
      },
    }),
  );
  const { error } = await supabase.storage.from(o.bucket).upload(o.objectName, counted as unknown as Blob, {
    contentType: "text/csv",
    upsert: o.upsert,
    duplex: "half",
  } as Record<string, unknown>);
  if (error) throw new CliError(`Upload of ${o.bucket}/${o.objectName} failed: ${error.message}`);
}

/**
 * Resumable upload (TUS, Storage's /storage/v1/upload/resumable) with tus-js-client, reading the file as a stream
 * in `chunkSize` pieces (Supabase requires 6 MB) and retrying a failed piece with backoff.
 */
export function uploadResumable(
  o: UploadOptions & { chunkSize?: number; endpoint?: string },
): Promise<void> {
  const endpoint = o.endpoint ?? `${o.supabaseUrl}/storage/v1/upload/resumable`;
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(o.path), {
      endpoint,
      retryDelays: [0, 3000, 5000, 10000, 20000],
      headers: { authorization: `Bearer ${o.key}`, apikey: o.key, "x-upsert": o.upsert ? "true" : "false" },
      uploadDataDuringCreation: true,
      removeFingerprintOnSuccess: true,
      metadata: {
        bucketName: o.bucket,
        objectName: o.objectName,
        contentType: "text/csv",
        cacheControl: "3600",
      },
      chunkSize: o.chunkSize ?? RESUMABLE_THRESHOLD,
      uploadSize: o.size,
      onProgress: (sent) => o.onProgress?.(sent),
      onError: (error) =>
        reject(new CliError(`Resumable upload of ${o.bucket}/${o.objectName} failed: ${error.message}`)),
      onSuccess: () => resolve(),
    });
    upload.start();
  });
}

/** Whether to upload resumably: forced by --resumable/--no-resumable, else only above 6 MB against a hosted project. */
export function useResumable(size: number, local: boolean, forced: boolean | undefined): boolean {
  return forced ?? (!local && size > RESUMABLE_THRESHOLD);
}

// Jobs --------------------------------------------------------------------------------------------------------------------

export interface Progress {
  job_id: number;
  status: string;
  bucket_id: string;
  object_name: string;
  object_size: number | null;
  target_table: string | null;
  chunk_count: number;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  rejects_object: string | null;
  rejects_status: string;
  chunks_done: number;
  chunks_running: number;
  chunks_dead: number;
  rows_parsed: number;
  rows_loaded: number;
  rows_rejected: number;
  rows_skipped: number;
  bytes_done: number;
  bytes_total: number;
  percent: number;
  rows_per_second: number;
}

async function progress(sql: Sql, jobId: number): Promise<Progress | undefined> {
  const [row] = await sql`
    select p.job_id::int, p.status::text, p.bucket_id, p.object_name, p.object_size::float8, p.target_table,
           p.chunk_count, p.error, p.created_at, p.started_at, p.finished_at, p.rejects_object, p.rejects_status,
           p.chunks_done::int, p.chunks_running::int, p.chunks_dead::int, p.rows_parsed::float8,
           p.rows_loaded::float8, p.rows_rejected::float8, p.rows_skipped::float8, p.bytes_done::float8,
           greatest(coalesce(p.object_size - j.data_start, p.object_size, 0), 0)::float8 as bytes_total,
           p.percent::float8, p.rows_per_second::float8
    from csv_import.job_progress p join csv_import.jobs j on j.id = p.job_id
    where p.job_id = ${jobId}`;
  return row as Progress | undefined;
}

function parseJobId(value: string): number {
  const id = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(id) || id <= 0) {
    throw new InvalidArgumentError("a job id is a positive integer");
  }
  return id;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a positive number");
  return n;
}

async function requireJob(sql: Sql, jobId: number): Promise<Progress> {
  const job = await progress(sql, jobId);
  if (!job) throw new CliError(`Job ${jobId} does not exist`);
  return job;
}

/** The summary printed by --json and used for the exit status. */
export function summary(job: Progress, seconds: number) {
  return {
    job_id: job.job_id,
    status: job.status,
    ok: SUCCESS.has(job.status),
    error: job.error,
    bucket: job.bucket_id,
    object: job.object_name,
    target_table: job.target_table,
    bytes: job.object_size,
    chunks: job.chunk_count,
    rows_parsed: job.rows_parsed,
    rows_loaded: job.rows_loaded,
    rows_rejected: job.rows_rejected,
    rows_skipped: job.rows_skipped,
    rejects_object: job.rejects_object,
    seconds: Math.round(seconds * 10) / 10,
    rows_per_second: job.rows_per_second,
  };
}

interface FollowOptions {
  quiet: boolean;
  timeoutSeconds?: number;
}

/**
 * Polls the job's progress until it ends (and its rejects file, if any, is written or 30 s passed), drawing a
 * progress bar on a terminal, or one line per status change otherwise. Returns the final progress.
 */
async function follow(sql: Sql, jobId: number, o: FollowOptions): Promise<Progress> {
  const deadline = o.timeoutSeconds ? Date.now() + o.timeoutSeconds * 1000 : Infinity;
  const tty = Deno.stderr.isTerminal();
  const bar = !o.quiet && tty
    ? new cliProgress.SingleBar({
      format:
        "job {job} {bar} {percentage}% | {done} of {size} | {rows} rows | {rate} rows/s | ETA {eta_formatted}" +
        " | {rejects} rejects | {status}",
      hideCursor: true,
      etaBuffer: 20,
      stream: process.stderr,
    }, cliProgress.Presets.shades_classic)
    : null;
  let started = false;
  let lastLine = "";
  let endedAt = 0;
  try {
    for (;;) {
      const job = await requireJob(sql, jobId);
      const payload = {
        job: job.job_id,
        done: formatBytes(job.bytes_done),
        size: formatBytes(job.bytes_total),
        rows: formatCount(job.rows_loaded),
        rate: formatCount(job.rows_per_second),
        rejects: formatCount(job.rows_rejected),
        status: job.status,
      };
      if (bar) {
        if (!started) bar.start(Math.max(job.bytes_total, 1), 0, payload);
        started = true;
        bar.setTotal(Math.max(job.bytes_total, 1));
        bar.update(
          TERMINAL.has(job.status) && SUCCESS.has(job.status) ? job.bytes_total : job.bytes_done,
          payload,
        );
      } else if (!o.quiet) {
        const line = safe`job ${job.job_id}: ${job.status}, ${job.percent}%, ${payload.rows} rows loaded, ` +
          safe`${payload.rejects} rejected`;
        if (line !== lastLine) console.error(lastLine = line);
      }
      if (TERMINAL.has(job.status)) {
        endedAt ||= Date.now();
        if (job.rejects_status !== "pending" || Date.now() - endedAt > 30_000) return job;
      }
      if (Date.now() > deadline) {
        throw new CliError(
          `Job ${jobId} is still ${job.status} after ${o.timeoutSeconds} s (${job.percent}% done)`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    bar?.stop();
  }
}

/** Prints the outcome of a followed job and throws (exit 1) unless it succeeded. */
function report(job: Progress, seconds: number, json: boolean): void {
  const s = summary(job, seconds);
  if (json) console.log(printableJson(s));
  else {
    console.log(
      safe`Job ${job.job_id} ${job.status} in ${s.seconds} s: ${
        formatCount(job.rows_loaded)
      } rows loaded into ` +
        safe`${job.target_table ?? "?"}, ${formatCount(job.rows_rejected)} rejected, ${
          formatCount(job.rows_skipped)
        } ` +
        safe`skipped (${formatCount(job.rows_per_second)} rows/s)`,
    );
    if (job.rejects_object) console.log(safe`Rejects: ${job.bucket_id}/${job.rejects_object}`);
  }
  if (!s.ok) throw new CliError(`Job ${job.job_id} ${job.status}: ${job.error ?? "no reason recorded"}`);
}

// Commands ----------------------------------------------------------------------------------------------------------------

interface ImportOptions {
  profile?: string;
  path?: string;
  upsert?: boolean;
  wait?: boolean;
  json?: boolean;
  timeout?: number;
  resumable?: boolean;
}

async function importFile(cfg: CliConfig, sql: Sql, file: string, o: ImportOptions): Promise<void> {
  let size: number;
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) throw new CliError(`${file} is not a file`);
    size = info.size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new CliError(`${file} does not exist`);
    throw error;
  }

  let bucket = cfg.bucket;
  let objectName = o.path ?? baseName(file);
  if (o.profile) {
    const [profile] = await sql<{ name: string; bucket_id: string; path_pattern: string }[]>`
      select name, bucket_id, path_pattern from csv_import.profiles where name = ${o.profile}`;
    if (!profile) throw new CliError(`Profile "${o.profile}" does not exist (see: profiles list)`);
    bucket = profile.bucket_id;
    const derived = o.path ?? objectNameFor(profile.path_pattern, baseName(file));
    if (!derived) {
      throw new CliError(
        `Cannot derive an object name from the pattern "${profile.path_pattern}"; pass --path`,
      );
    }
    objectName = derived;
  }
  const [match] = await sql<{ name: string | null }[]>`
    select (csv_import.resolve_profile(${bucket}, ${objectName})).name`;
  if (!match?.name) {
    throw new CliError(
      `No import profile matches "${objectName}" in bucket "${bucket}": add one (profiles add) or choose --path`,
    );
  }
  if (o.profile && match.name !== o.profile) {
    throw new CliError(`"${objectName}" would be imported with profile "${match.name}", not "${o.profile}"`);
  }

  const resumable = useResumable(size, cfg.local, o.resumable);
  const quiet = !!o.json;
  const bar = !quiet && Deno.stderr.isTerminal()
    ? new cliProgress.SingleBar({
      format: "upload {bar} {percentage}% | {value_text} of {total_text} | ETA {eta_formatted}",
      hideCursor: true,
      stream: process.stderr,
    }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(Math.max(size, 1), 0, { value_text: formatBytes(0), total_text: formatBytes(size) });
  const started = performance.now();
  const upload = {
    supabaseUrl: cfg.supabaseUrl,
    key: cfg.key,
    bucket,
    objectName,
    path: file,
    size,
    upsert: !!o.upsert,
    onProgress: (sent: number) => bar?.update(sent, { value_text: formatBytes(sent) }),
  };
  try {
    if (resumable) await uploadResumable(upload);
    else await uploadStandard({ ...upload, withLength: !cfg.local && size <= RESUMABLE_THRESHOLD });
  } finally {
    bar?.stop();
  }
  if (!quiet) {
    console.error(
      safe`Uploaded ${formatBytes(size)} to ${bucket}/${objectName}${resumable ? " (resumable)" : ""} in ` +
        safe`${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }

  // The upload's trigger registered the job in the same transaction as the object row.
  const [job] = await sql<{ id: number; status: string }[]>`
    select j.id::int, j.status::text from storage.objects o
    join csv_import.jobs j on j.bucket_id = o.bucket_id and j.object_name = o.name
      and j.object_version = coalesce(o.version, o.id::text)
    where o.bucket_id = ${bucket} and o.name = ${objectName}
    order by j.id desc limit 1`;
  if (!job) {
    throw new CliError(
      `The upload of ${bucket}/${objectName} registered no job (is the pipeline installed?)`,
    );
  }
  if (!o.wait) {
    if (o.json) {
      console.log(printableJson({ job_id: job.id, bucket, object: objectName, status: job.status }));
    } else {console.log(
        safe`Job ${job.id} registered for ${bucket}/${objectName}; follow it with: status ${job.id}`,
      );}
    return;
  }
  const final = await follow(sql, job.id, { quiet, timeoutSeconds: o.timeout });
  report(final, (performance.now() - started) / 1000, !!o.json);
}

async function showStatus(sql: Sql, jobId: number | undefined, json: boolean): Promise<void> {
  if (jobId === undefined) {
    const [{ health }] = await sql`select csv_import.health() as health`;
    if (json) return console.log(printableJson(health));
    const h = health as Record<string, Record<string, unknown>> & { status: string; problems: string[] };
    console.log(safe`Pipeline: ${h.status}`);
    for (const p of h.problems) console.log(safe`  - ${p}`);
    const q = h.queue;
    console.log(
      safe`Queue: ${q.depth} ready, ${q.pending} pending, ${q.in_flight} in flight, ${q.expired_leases} expired leases`,
    );
    const byState = (h.jobs as { by_state: Record<string, number> }).by_state;
    console.log(safe`Jobs: ${Object.entries(byState).map(([s, n]) => `${s} ${n}`).join(", ")}`);
    const w = h.window;
    console.log(
      safe`Last ${w.seconds} s: ${
        formatCount(w.rows_loaded as number)
      } rows loaded (${w.rows_per_second} rows/s), ` +
        safe`${formatCount(w.rows_rejected as number)} rejected`,
    );
    const r = h.reconcile;
    console.log(safe`Reconciler: last run ${r.last_start ?? "never"} (${r.last_status ?? "-"})`);
    return;
  }
  const job = await requireJob(sql, jobId);
  const chunks = await sql<{ kind: string; status: string; n: number; last_error: string | null }[]>`
    select kind::text, status::text, count(*)::int as n, max(last_error) as last_error
    from csv_import.chunks where job_id = ${jobId} group by 1, 2 order by 1, 2`;
  const rejects = await sql<{ line_number: string; column_name: string | null; reason: string }[]>`
    select line_number, column_name, reason from csv_import.rejects where job_id = ${jobId}
    order by line_number limit 5`;
  if (json) return console.log(printableJson({ ...job, chunks, first_rejects: rejects }));
  console.log(safe`Job ${job.job_id}: ${job.status}${job.error ? ` — ${job.error}` : ""}`);
  console.log(safe`  object   ${job.bucket_id}/${job.object_name} (${formatBytes(job.object_size ?? 0)})`);
  console.log(safe`  target   ${job.target_table ?? "-"}`);
  console.log(
    safe`  progress ${job.percent}% (${formatBytes(job.bytes_done)} of ${formatBytes(job.bytes_total)}), ` +
      safe`${job.chunks_done}/${job.chunk_count} load chunks done, ${job.chunks_running} running, ${job.chunks_dead} dead`,
  );
  console.log(
    safe`  rows     ${formatCount(job.rows_loaded)} loaded, ${formatCount(job.rows_rejected)} rejected, ` +
      safe`${formatCount(job.rows_skipped)} skipped of ${formatCount(job.rows_parsed)} parsed ` +
      safe`(${formatCount(job.rows_per_second)} rows/s)`,
  );
  console.log(
    safe`  times    created ${job.created_at.toISOString()}, started ${
      job.started_at?.toISOString() ?? "-"
    }, ` +
      safe`finished ${job.finished_at?.toISOString() ?? "-"}`,
  );
  if (chunks.length > 0) {
    console.log(
      safe`  chunks   ${
        chunks.map((c) => `${c.kind}/${c.status} ${c.n}${c.last_error ? ` (${c.last_error})` : ""}`).join(
          ", ",
        )
      }`,
    );
  }
  for (const r of rejects) {
    console.log(
      safe`  reject   line ${r.line_number}${r.column_name ? ` (${r.column_name})` : ""}: ${r.reason}`,
    );
  }
  if (job.rejects_object) console.log(safe`  rejects  ${job.bucket_id}/${job.rejects_object}`);
}

async function listJobs(sql: Sql, o: { limit: number; status?: string; json?: boolean }): Promise<void> {
  const rows = await sql<
    {
      job_id: number;
      status: string;
      object_name: string;
      percent: string;
      rows_loaded: string;
      rows_rejected: string;
      created_at: Date;
    }[]
  >`
    select job_id::int, status::text, object_name, percent, rows_loaded, rows_rejected, created_at
    from csv_import.job_progress
    where ${o.status ?? null}::text is null or status::text = ${o.status ?? null}
    order by job_id desc limit ${o.limit}`;
  if (o.json) return console.log(printableJson(rows));
  if (rows.length === 0) return console.log("No jobs.");
  console.log(table(
    ["JOB", "STATUS", "%", "LOADED", "REJECTED", "CREATED", "OBJECT"],
    rows.map((r) => [
      r.job_id,
      r.status,
      r.percent,
      formatCount(r.rows_loaded),
      formatCount(r.rows_rejected),
      r.created_at.toISOString().slice(0, 19).replace("T", " "),
      r.object_name,
    ]),
  ));
}

async function writeRejects(
  cfg: CliConfig,
  sql: Sql,
  jobId: number,
  o: { out: string; fromDb?: boolean },
): Promise<void> {
  const job = await requireJob(sql, jobId);
  let body: ReadableStream<Uint8Array>;
  let source: string;
  if (!o.fromDb && job.rejects_status === "written" && job.rejects_object) {
    const res = await fetch(
      `${cfg.supabaseUrl}/storage/v1/object/authenticated/${objectPath(job.bucket_id, job.rejects_object)}`,
      { headers: { Authorization: `Bearer ${cfg.key}`, apikey: cfg.key } },
    );
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new CliError(
        `Storage answered ${res.status} for ${job.bucket_id}/${job.rejects_object}; try --from-db`,
      );
    }
    body = res.body;
    source = `${job.bucket_id}/${job.rejects_object}`;
  } else {
    body = rejectsCsv(sql, jobId);
    source = "csv_import.rejects";
  }
  const file = await Deno.open(o.out, { write: true, create: true, truncate: true });
  await body.pipeTo(file.writable);
  const { size } = await Deno.stat(o.out);
  console.log(
    safe`Wrote the rejects of job ${jobId} (${formatCount(job.rows_rejected)} rejected rows) to ${o.out} ` +
      safe`(${formatBytes(size)}, from ${source})`,
  );
}

async function cancel(sql: Sql, jobId: number, o: { reason?: string; json?: boolean }): Promise<void> {
  let result: { status: string; cancelled: boolean; chunks_cancelled: number };
  try {
    [{ result }] = await sql`select csv_import.cancel_job(${jobId}, ${
      o.reason ?? "Cancelled by request"
    }) as result`;
  } catch (error) {
    throw new CliError(pgMessage(error));
  }
  if (o.json) console.log(printableJson(result));
  if (result.cancelled) {
    if (!o.json) console.log(`Job ${jobId} cancelled (${result.chunks_cancelled} chunks stopped)`);
  } else if (result.status === "cancelled") {
    if (!o.json) console.log(`Job ${jobId} was already cancelled`);
  } else {
    throw new CliError(`Job ${jobId} has already finished (${result.status}); nothing to cancel`);
  }
}

async function retry(sql: Sql, jobId: number, o: { wait?: boolean; json?: boolean; timeout?: number }) {
  let result: { status: string; chunks_requeued: number; registration_requested: boolean };
  try {
    [{ result }] = await sql`select csv_import.retry_job(${jobId}) as result`;
  } catch (error) {
    throw new CliError(pgMessage(error));
  }
  if (!o.wait) {
    if (o.json) console.log(printableJson(result));
    else {
      console.log(
        result.registration_requested
          ? `Job ${jobId} is registering again`
          : `Job ${jobId} ${result.status} again: ${result.chunks_requeued} chunks requeued`,
      );
    }
    return;
  }
  if (!o.json) console.error(`Job ${jobId} reopened; ${result.chunks_requeued} chunks requeued`);
  const started = performance.now();
  const final = await follow(sql, jobId, { quiet: !!o.json, timeoutSeconds: o.timeout });
  report(final, (performance.now() - started) / 1000, !!o.json);
}

// Profiles ------------------------------------------------------------------------------------------------------------------

interface ProfileAddOptions {
  name: string;
  pattern: string;
  table: string;
  bucket: string;
  onConflict: string;
  conflictColumns?: string;
  toleratedRejectRate: number;
  priority: number;
  delimiter?: string;
  quote?: string;
  header?: boolean;
  dateStyle: string;
  writeAs?: string;
  chunkSize?: number;
  maxParallelChunks?: number;
  maxAttempts: number;
  alias: string[];
}

/** "email=E-mail|Mail address" → ["email", ["E-mail", "Mail address"]]. */
export function parseAlias(value: string): [string, string[]] {
  const at = value.indexOf("=");
  const column = value.slice(0, at).trim();
  const names = value.slice(at + 1).split("|").map((s) => s.trim()).filter(Boolean);
  if (at <= 0 || !column || names.length === 0) {
    throw new InvalidArgumentError(
      'expected COLUMN=Header name[|Other name], e.g. "email=E-mail|Mail address"',
    );
  }
  return [column, names];
}

async function profiles(
  sql: Sql,
  action: string,
  name: string | undefined,
  o: ProfileAddOptions & { json?: boolean },
) {
  if (action === "list") {
    const rows = await sql`
      select name, bucket_id, path_pattern, target_table, on_conflict::text, tolerated_reject_rate::float8, priority
      from csv_import.profiles order by name`;
    if (o.json) return console.log(printableJson(rows));
    if (rows.length === 0) return console.log("No profiles.");
    return console.log(table(
      ["NAME", "BUCKET", "PATTERN", "TARGET", "ON CONFLICT", "TOLERATED", "PRIORITY"],
      rows.map((r) => [
        r.name,
        r.bucket_id,
        r.path_pattern,
        r.target_table,
        r.on_conflict,
        r.tolerated_reject_rate,
        r.priority,
      ]),
    ));
  }
  if (action === "show" || action === "remove") {
    if (!name) throw new CliError(`profiles ${action} needs a profile NAME`, 2);
    const rows = action === "show"
      ? await sql`select * from csv_import.profiles where name = ${name}`
      : await sql`delete from csv_import.profiles where name = ${name} returning name`;
    if (rows.length === 0) throw new CliError(`Profile "${name}" does not exist`);
    return console.log(action === "show" ? printableJson(rows[0], 2) : safe`Removed profile ${name}`);
  }
  if (action !== "add") {
    throw new CliError(`Unknown profiles action "${action}": list, show, add or remove`, 2);
  }
  for (const key of ["name", "pattern", "table"] as const) {
    if (!o[key]) throw new CliError(`profiles add needs --${key}`, 2);
  }
  try {
    await sql`select csv_import.describe_target(${o.table})`;
    const aliases = Object.fromEntries(o.alias.map(parseAlias));
    const conflictColumns = o.conflictColumns?.split(",").map((s) => s.trim()).filter(Boolean) ?? null;
    await sql`
      insert into csv_import.profiles (name, bucket_id, path_pattern, target_table, column_aliases, on_conflict,
        conflict_columns, tolerated_reject_rate, priority, delimiter, quote, has_header, date_style,
        chunk_size_bytes, max_parallel_chunks, max_attempts, write_as)
      values (${o.name}, ${o.bucket}, ${o.pattern}, ${o.table}, ${sql.json(aliases)}, ${o.onConflict},
        ${conflictColumns}, ${o.toleratedRejectRate}, ${o.priority}, ${o.delimiter ?? null}, ${
      o.quote ?? null
    },
        ${o.header ?? null}, ${o.dateStyle}, ${o.chunkSize ?? null}, ${
      o.maxParallelChunks ?? null
    }, ${o.maxAttempts}, ${o.writeAs ?? null})`;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "23505") throw new CliError(`Profile "${o.name}" already exists`);
    throw new CliError(pgMessage(error));
  }
  console.log(safe`Added profile ${o.name}: ${o.bucket}/${o.pattern} → ${o.table}`);
}

// Command line ----------------------------------------------------------------------------------------------------------------

/** Builds the commander program; `run` receives the chosen action with a database connection. */
export function buildProgram(env: Record<string, string | undefined>): Command {
  let sql: Sql | null = null;
  let cfg: CliConfig | null = null;
  const ctx = () => {
    cfg ??= loadCliConfig(env);
    sql ??= connectDb(cfg);
    return { cfg, sql };
  };
  const program = new Command("csv-import")
    .description(
      "Operate the CSV import pipeline: import files, follow, cancel and retry jobs, manage profiles",
    )
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .hook("postAction", async () => {
      await (sql as Sql | null)?.end({ timeout: 5 });
    });

  program.command("import")
    .description(
      "Upload a CSV file to the bucket (the upload starts the import) and optionally follow the job",
    )
    .argument("<file>", "the CSV file to import")
    .option("--profile <name>", "import profile to use (the object name is derived from its pattern)")
    .option(
      "--path <object>",
      "object name in the bucket (default: the file's name, under the profile's prefix)",
    )
    .option("--upsert", "overwrite an existing object of that name (a new version: a new job)")
    .option("--wait", "follow the job until it ends; exit 0 only when it succeeded")
    .option("--json", "print one JSON summary instead of progress and text")
    .option("--timeout <seconds>", "with --wait: give up after this many seconds", parsePositive)
    .addOption(new Option("--resumable", "force a resumable (TUS) upload"))
    .addOption(new Option("--no-resumable", "force a standard upload"))
    .action(async (file: string, o: ImportOptions) => {
      const { cfg, sql } = ctx();
      await importFile(cfg, sql, file, o);
    });

  program.command("status")
    .description("Show one job in detail, or the pipeline's health without a JOB")
    .argument("[job]", "job id", parseJobId)
    .option("--json", "print JSON")
    .action(async (job: number | undefined, o: { json?: boolean }) =>
      await showStatus(ctx().sql, job, !!o.json)
    );

  program.command("list")
    .description("List recent jobs")
    .option("--limit <n>", "how many", (v) => Math.floor(parsePositive(v)), 20)
    .option("--status <status>", "only jobs in this state")
    .option("--json", "print JSON")
    .action(async (o: { limit: number; status?: string; json?: boolean }) => await listJobs(ctx().sql, o));

  program.command("rejects")
    .description(
      "Write a job's rejects CSV (from Storage, or built from csv_import.rejects if not written yet)",
    )
    .argument("<job>", "job id", parseJobId)
    .requiredOption("--out <file>", "where to write the CSV")
    .option("--from-db", "build it from csv_import.rejects even when the file exists in Storage")
    .action(async (job: number, o: { out: string; fromDb?: boolean }) => {
      const { cfg, sql } = ctx();
      await writeRejects(cfg, sql, job, o);
    });

  program.command("cancel")
    .description("Cancel a job: nothing more is dispatched, running chunks stop at their next batch")
    .argument("<job>", "job id", parseJobId)
    .option("--reason <text>", "recorded as the job's error", "Cancelled by request")
    .option("--json", "print JSON")
    .action(async (job: number, o: { reason?: string; json?: boolean }) => await cancel(ctx().sql, job, o));

  program.command("retry")
    .description(
      "Re-run the dead and cancelled chunks of a failed or cancelled job (committed batches are kept)",
    )
    .argument("<job>", "job id", parseJobId)
    .option("--wait", "follow the job until it ends")
    .option("--json", "print JSON")
    .option("--timeout <seconds>", "with --wait: give up after this many seconds", parsePositive)
    .action(async (job: number, o: { wait?: boolean; json?: boolean; timeout?: number }) =>
      await retry(ctx().sql, job, o)
    );

  program.command("profiles")
    .description("Import profiles: list | show NAME | add --name --pattern --table [...] | remove NAME")
    .argument("<action>", "list, show, add or remove")
    .argument("[name]", "profile name (show, remove)")
    .option("--name <name>", "add: profile name")
    .option("--pattern <like>", "add: LIKE pattern on the object name, e.g. 'orders/%'")
    .option("--table <table>", "add: schema-qualified target table, e.g. public.orders")
    .option("--bucket <bucket>", "add: bucket watched", "csv-uploads")
    .addOption(
      new Option("--on-conflict <mode>", "add: duplicate keys").choices([
        "insert",
        "upsert",
        "skip_duplicates",
      ])
        .default("insert"),
    )
    .option("--conflict-columns <cols>", "add: comma-separated key columns (upsert)")
    .option("--tolerated-reject-rate <rate>", "add: share of rows that may be rejected (0–1)", Number, 0)
    .option("--priority <n>", "add: higher is dispatched first", Number, 0)
    .option("--delimiter <char>", "add: field delimiter (default: sniffed)")
    .option("--quote <char>", "add: quote character (default: sniffed)")
    .option("--header", "add: the file has a header line (default: sniffed)")
    .option("--no-header", "add: the file has no header line")
    .addOption(
      new Option("--date-style <style>", "add: date order").choices(["iso", "dmy", "mdy"]).default("iso"),
    )
    .addOption(
      new Option(
        "--write-as <who>",
        "add: whose rights rows are written with (default: the uploader's for tables with RLS; docs/security.md)",
      ).choices(["uploader", "service_role"]),
    )
    .option("--chunk-size <bytes>", "add: bytes per chunk", (v) => Math.floor(parsePositive(v)))
    .option(
      "--max-parallel-chunks <n>",
      "add: chunks at once for one job",
      (v) => Math.floor(parsePositive(v)),
    )
    .option("--max-attempts <n>", "add: attempts per chunk", (v) => Math.floor(parsePositive(v)), 5)
    .option(
      "--alias <column=names>",
      "add: accepted header names of a column, e.g. 'email=E-mail|Mail address' (repeatable)",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option("--json", "list: print JSON")
    .action(async (action: string, name: string | undefined, o: ProfileAddOptions & { json?: boolean }) =>
      await profiles(ctx().sql, action, name, o)
    );
  return program;
}

/** Runs the CLI; returns the exit status. */
export async function main(args: string[], env: Record<string, string | undefined>): Promise<number> {
  const program = buildProgram(env);
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "commander.helpDisplayed" || code === "commander.version") return 0;
    if (code?.startsWith("commander.")) return 2; // commander printed the usage error
    if (error instanceof CliError) {
      console.error(safe`csv-import: ${error.message}`);
      return error.exitCode;
    }
    console.error(safe`csv-import: ${pgMessage(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, Deno.env.toObject()));
}
