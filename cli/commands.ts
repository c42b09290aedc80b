/**
 * The CLI's commands, one function each: import, status, list, rejects, cancel, retry and profiles. main.ts wires
 * them to the command line; each gets the configuration and a database connection and prints its result.
 *
 * Invariants:
 * - Everything but the upload is one SQL call to csv_import's documented surface (cancel_job, retry_job, health,
 *   resolve_profile, describe_target, the job_progress view, the profiles table).
 * - A refusal (unknown job or profile, nothing to cancel, a database error) is a CliError: exit 1, the reason
 *   printed; output from data goes through the printable helpers of common.ts.
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import process from "node:process";
import { rejectsCsv } from "../supabase/functions/_shared/pipeline/rejects_file.ts";
import { keyHeaders } from "../supabase/functions/_shared/platform/auth.ts";
import { objectPath } from "../supabase/functions/_shared/platform/storage.ts";
import {
  type CliConfig,
  CliError,
  formatBytes,
  formatCount,
  parseAlias,
  pgMessage,
  printableJson,
  safe,
  type Sql,
  table,
} from "./common.ts";
import { follow, report, requireJob } from "./follow.ts";
import {
  baseName,
  objectNameFor,
  RESUMABLE_THRESHOLD,
  uploadResumable,
  uploadStandard,
  useResumable,
} from "./upload.ts";

export interface ImportOptions {
  profile?: string;
  path?: string;
  upsert?: boolean;
  wait?: boolean;
  json?: boolean;
  timeout?: number;
  resumable?: boolean;
  /** Validate the file without writing a row (the upload asks for it in its user metadata). */
  dryRun?: boolean;
}

export async function importFile(cfg: CliConfig, sql: Sql, file: string, o: ImportOptions): Promise<void> {
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

  const resumable = useResumable(size, o.resumable);
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
    userMetadata: o.dryRun ? { csv_import: { dry_run: true } } : undefined,
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

export async function showStatus(sql: Sql, jobId: number | undefined, json: boolean): Promise<void> {
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
  if (job.compression !== null) {
    console.log(
      safe`  compressed ${job.compression === "gzip" ? "gzip" : `ZIP (${job.compression})`}: ` +
        safe`${formatBytes(job.compressed_bytes_done ?? 0)} of ${
          formatBytes(job.object_size ?? 0)
        } inflated, ` +
        safe`${formatBytes(job.bytes_total)} of data${job.data_size_known ? "" : " (estimated so far)"}`,
    );
  }
  console.log(
    safe`  progress ${job.percent}% (${formatBytes(job.bytes_done)} of ${formatBytes(job.bytes_total)}), ` +
      safe`${job.chunks_done}/${job.chunk_count} load chunks done, ${job.chunks_running} running, ${job.chunks_dead} dead`,
  );
  console.log(
    safe`  rows     ${formatCount(job.rows_loaded)} ${
      job.dry_run ? "valid (dry run: none written)" : "loaded"
    }, ` +
      safe`${formatCount(job.rows_rejected)} rejected, ` +
      safe`${formatCount(job.rows_skipped)} skipped of ${formatCount(job.rows_parsed)} parsed ` +
      safe`(${formatCount(job.rows_per_second)} rows/s)`,
  );
  console.log(
    safe`  times    created ${job.created_at.toISOString()}, started ${
      job.started_at?.toISOString() ?? "-"
    }, ` +
      safe`finished ${job.finished_at?.toISOString() ?? "-"}`,
  );
  if (job.table_sql) {
    console.log("  table    made from the file:");
    for (const line of job.table_sql.split("\n")) console.log(safe`    ${line}`);
  }
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

export async function listJobs(
  sql: Sql,
  o: { limit: number; status?: string; json?: boolean },
): Promise<void> {
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

export async function writeRejects(
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
      { headers: keyHeaders(cfg.key) },
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

export async function cancel(sql: Sql, jobId: number, o: { reason?: string; json?: boolean }): Promise<void> {
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

export async function retry(
  sql: Sql,
  jobId: number,
  o: { wait?: boolean; json?: boolean; timeout?: number },
) {
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

export interface ProfileAddOptions {
  name: string;
  pattern: string;
  table?: string;
  bucket: string;
  onConflict: string;
  conflictColumns?: string;
  toleratedRejectRate: number;
  maxRejects?: number;
  rejectRateAfterRows?: number;
  priority: number;
  delimiter?: string;
  quote?: string;
  encoding: string;
  dryRun?: boolean;
  createTable?: boolean;
  schema?: string;
  header?: boolean;
  dateStyle: string;
  writeAs?: string;
  chunkSize?: number;
  maxParallelChunks?: number;
  maxAttempts: number;
  alias: string[];
}

export async function profiles(
  sql: Sql,
  action: string,
  name: string | undefined,
  o: ProfileAddOptions & { json?: boolean },
) {
  if (action === "list") {
    const rows = await sql`
      select name, bucket_id, path_pattern,
        coalesce(target_table, format('%s.<file>', target_schema)) ||
          case when create_table then ' (made if missing)' else '' end as target,
        on_conflict::text, tolerated_reject_rate::float8, priority
      from csv_import.profiles order by name`;
    if (o.json) return console.log(printableJson(rows));
    if (rows.length === 0) return console.log("No profiles.");
    return console.log(table(
      ["NAME", "BUCKET", "PATTERN", "TARGET", "ON CONFLICT", "TOLERATED", "PRIORITY"],
      rows.map((r) => [
        r.name,
        r.bucket_id,
        r.path_pattern,
        r.target,
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
  for (const key of ["name", "pattern"] as const) {
    if (!o[key]) throw new CliError(`profiles add needs --${key}`, 2);
  }
  if (!o.table && !(o.createTable && o.schema)) {
    throw new CliError("profiles add needs --table (or --create-table with --schema: a table per file)", 2);
  }
  try {
    // A create_table profile's target may not exist yet: it is made from the first file.
    if (o.table && !o.createTable) await sql`select csv_import.describe_target(${o.table})`;
    const aliases = Object.fromEntries(o.alias.map(parseAlias));
    const conflictColumns = o.conflictColumns?.split(",").map((s) => s.trim()).filter(Boolean) ?? null;
    await sql`
      insert into csv_import.profiles (name, bucket_id, path_pattern, target_table, column_aliases, on_conflict,
        conflict_columns, tolerated_reject_rate, priority, delimiter, quote, has_header, date_style,
        chunk_size_bytes, max_parallel_chunks, max_attempts, write_as, max_rejects, reject_rate_after_rows,
        encoding, dry_run, create_table, target_schema)
      values (${o.name}, ${o.bucket}, ${o.pattern}, ${o.table ?? null}, ${sql.json(aliases)}, ${o.onConflict},
        ${conflictColumns}, ${o.toleratedRejectRate}, ${o.priority}, ${o.delimiter ?? null}, ${
      o.quote ?? null
    },
        ${o.header ?? null}, ${o.dateStyle}, ${o.chunkSize ?? null}, ${
      o.maxParallelChunks ?? null
    }, ${o.maxAttempts}, ${o.writeAs ?? null}, ${o.maxRejects ?? null}, ${o.rejectRateAfterRows ?? null},
        ${o.encoding}, ${!!o.dryRun}, ${!!o.createTable}, ${o.schema ?? null})`;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "23505") throw new CliError(`Profile "${o.name}" already exists`);
    throw new CliError(pgMessage(error));
  }
  const target = o.table ?? `a table per file in ${o.schema}`;
  console.log(
    safe`Added profile ${o.name}: ${o.bucket}/${o.pattern} → ${target}${
      o.createTable ? " (made from the file if missing)" : ""
    }`,
  );
}
