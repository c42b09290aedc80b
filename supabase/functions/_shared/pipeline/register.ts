/**
 * Registration: turns a `registering` job (created by the storage trigger) into a planned job with chunks.
 *
 * Steps: read the object's head with a Range request; sniff the dialect (unless the profile fixes it), which
 * also rejects empty, compressed, binary, UTF-16 and non-UTF-8 files (unless the profile names the file's
 * encoding: csv/encoding.ts) with a specific message; resolve the
 * import profile; describe the target table; decide whether the first row is the header; map the header to
 * its columns (missing required columns fail the job, naming them); decide whose rights the job writes with
 * (csv_import.plan_write_as); choose the chunk size (chunk_size.ts: the profile's, or CHUNK_SIZE lowered by what
 * loads into the same table measured); then csv_import.register_job stores the plan and creates the chunks in one
 * transaction.
 *
 * The header decision, first rule that applies (the job's dialect records it: has_header, header_source,
 * header_reason; a mapping failure quotes the reason):
 * 1. the profile's has_header, when set;
 * 2. the first row names columns of the target (a column's name or alias) and more of its names match than
 *    not: a header, whatever else it holds (an empty name from a trailing delimiter, names like 2023);
 * 3. the sniffer's verdict from the row's looks (csv/dialect.ts): names above typed data, or data.
 * When the mapping then fails, the message says which names match nothing and which required columns lack.
 *
 * Invariants:
 * - Idempotent: a job that is no longer registering is left alone (a duplicate request changes nothing).
 * - A problem with the file or its profile fails the job at once with one clear message
 *   (csv_import.fail_registration); a transient problem (Storage or database unavailable) leaves it registering,
 *   and csv_import.reconcile asks again with backoff.
 * - Storage's answers are classified by the code in their body, not the HTTP status (hosted sends 400 for most
 *   errors; platform/storage.ts): 404 in the body = the object is gone (the job fails saying so); 408, 429, 5xx
 *   (544, 503 LockTimeout/SlowDown) = transient; any other code = permanent. A response of another version
 *   (ObjectChangedError: an overwrite, or a stale CDN copy that outlasted the client's wait) is transient: a
 *   superseded job is stopped by the trigger, a stale copy goes away.
 */
import { type ColumnMapping, type HeaderFit, headerFit, mapColumns, MappingError } from "./column_mapping.ts";
import type { Config } from "../platform/config.ts";
import { CsvError } from "../csv/errors.ts";
import { type FileEncoding, textCodec } from "../csv/encoding.ts";
import { type Dialect, SNIFF_BYTES, sniffDialect, withHeaderDecision } from "../csv/dialect.ts";
import { createRecordParser } from "../csv/parser.ts";
import type postgres from "postgres";
import type { Sql } from "../platform/db.ts";
import { log, redact } from "../platform/log.ts";
import { fetchTargetColumns, type TargetColumn } from "../pg_types/columns.ts";
import { UnsupportedColumnError } from "../pg_types/convert.ts";
import { compileRowConverter, type JobColumns } from "../load/row_converter.ts";
import { isTransient } from "../platform/retry.ts";
import { isTransientStatus, type StorageClient, StorageError } from "../platform/storage.ts";
import { CompressionError } from "../compression/inflate.ts";
import { type FileBytes, openFileBytes } from "./file_bytes.ts";
import { type ChunkCost, plannedChunkSize, sampleRowsPerMiB } from "./chunk_size.ts";
import {
  headerAliases,
  intendedTable,
  type MadeTable,
  makeTableFromFile,
  TableFromFileError,
} from "./table_from_file.ts";

export interface RegisterDeps {
  sql: Sql;
  config: Config;
  storage: StorageClient;
  /** Called once a job is found waiting for its plan, before planning starts (its size as the upload recorded it). */
  planning?: (job: { id: number; object_size: number | null }) => void;
}

interface JobRow {
  id: number;
  status: string;
  bucket_id: string;
  object_name: string;
  object_size: number | null;
  /** ETag of the job's object version; every read below must carry it (see storage.ts). */
  object_etag: string | null;
  /** The uploader's auth uid (storage.objects.owner_id); null for uploads with the service or anon key. */
  owner_id: string | null;
  /** The upload asked for a dry run: its user metadata holds {"csv_import": {"dry_run": true}}. */
  dry_run_requested: boolean;
}

interface ProfileRow {
  id: number | null;
  name: string;
  /** null: a create_table profile naming each file's table from its path, in target_schema. */
  target_table: string | null;
  target_schema: string | null;
  /** Make the target from the file when it does not exist (pipeline/table_from_file.ts). */
  create_table: boolean;
  column_aliases: Record<string, string[]>;
  tolerated_reject_rate: string;
  /** Early-stop limits (bigint: strings from postgres.js), kept on the job by csv_import.register_job. */
  max_rejects: string | null;
  reject_rate_after_rows: string | null;
  priority: number;
  delimiter: string | null;
  quote: string | null;
  has_header: boolean | null;
  chunk_size_bytes: number | null;
  max_parallel_chunks: number | null;
  max_attempts: number;
  date_style: "iso" | "dmy" | "mdy";
  /** The files' text encoding (csv/encoding.ts); the job keeps it in its dialect. */
  encoding: FileEncoding;
  max_file_bytes: number | null;
  write_as: "uploader" | "service_role" | null;
  /** Validate files without writing a row (the job ends 'validated'). */
  dry_run: boolean;
}

export type RegisterOutcome =
  | {
    outcome: "planned";
    jobId: number;
    chunks: number;
    bytes: number;
    /** A compressed upload (one inflate chunk, no load chunks yet), and its data's size when known whole. */
    compressed?: { dataBytes: number | null };
  }
  | { outcome: "unchanged"; jobId: number; status: string }
  | { outcome: "failed"; jobId: number; error: string }
  | { outcome: "retry_later"; jobId: number; error: string };

/** A problem that is the file's or the configuration's fault: the job fails with this message. */
class RegistrationProblem extends Error {}

export async function registerJob(deps: RegisterDeps, jobId: number): Promise<RegisterOutcome> {
  const { sql } = deps;
  const [job] = await sql<JobRow[]>`
    select j.id, j.status, j.bucket_id, j.object_name, j.object_size, j.object_etag, j.owner_id,
      coalesce((select o.user_metadata -> 'csv_import' -> 'dry_run' = 'true'::jsonb from storage.objects o
                where o.bucket_id = j.bucket_id and o.name = j.object_name
                  and coalesce(o.version, o.id::text) = j.object_version), false) as dry_run_requested
    from csv_import.jobs j where j.id = ${jobId}`;
  if (!job) return { outcome: "failed", jobId, error: `Job ${jobId} does not exist` };
  if (job.status !== "registering") return { outcome: "unchanged", jobId, status: job.status };
  deps.planning?.(job);

  try {
    if (job.object_etag === null) job.object_etag = await recordObjectEtag(deps, job);
    const { plan, data } = await planJob(deps, job);
    const [result] = await sql<{ chunk_count: number; planned: boolean; status: string }[]>`
      select * from csv_import.register_job(p_job_id => ${jobId},
        p_plan => ${sql.json(plan as unknown as postgres.JSONValue)})`;
    if (!result.planned) return { outcome: "unchanged", jobId, status: result.status };
    log("info", "job_registered", {
      job: jobId,
      object: job.object_name,
      chunks: result.chunk_count,
      target: plan.target_table,
    });
    return {
      outcome: "planned",
      jobId,
      chunks: result.chunk_count,
      bytes: job.object_size ?? 0,
      ...(data.compression === null ? {} : { compressed: { dataBytes: data.complete ? data.size : null } }),
    };
  } catch (error) {
    // StorageError is a permanent refusal by its body's code (storage.ts throws TransientError for the rest).
    const transient = !(error instanceof RegistrationProblem || error instanceof CsvError ||
      error instanceof TableFromFileError || error instanceof CompressionError ||
      error instanceof MappingError || (error instanceof StorageError && !isTransientStatus(error.status))) ||
      isTransient(error);
    const message = redact(
      error instanceof StorageError && error.status === 404
        ? `The object ${job.bucket_id}/${job.object_name} no longer exists`
        : error instanceof Error
        ? error.message
        : String(error),
    );
    await sql`select csv_import.fail_registration(${jobId}, ${message}, ${transient})`;
    log(transient ? "warn" : "info", "job_registration_failed", {
      job: jobId,
      object: job.object_name,
      transient,
      error: message,
    });
    return transient
      ? { outcome: "retry_later", jobId, error: message }
      : { outcome: "failed", jobId, error: message };
  }
}

/**
 * The object's current ETag, recorded on a job whose trigger found none in the object's metadata (Storage writes
 * `metadata.eTag` with every upload; this covers rows written otherwise). Only fills a missing ETag.
 */
async function recordObjectEtag(deps: RegisterDeps, job: JobRow): Promise<string | null> {
  const etag = await deps.storage.objectEtag(job.bucket_id, job.object_name);
  if (etag === null) return null;
  const [row] = await deps.sql<{ etag: string | null }[]>`
    select csv_import.record_object_etag(${job.id}, ${etag}) as etag`;
  return row?.etag ?? null;
}

async function planJob(deps: RegisterDeps, job: JobRow) {
  const { sql, config, storage } = deps;
  const size = job.object_size;
  if (size === null) throw new RegistrationProblem("The object's size is unknown (no metadata.size)");
  if (size === 0) throw new RegistrationProblem("File is empty");
  if (size > config.maxFileBytes) {
    throw new RegistrationProblem(
      `File is ${size} bytes; the limit is ${config.maxFileBytes} bytes (MAX_FILE_BYTES)`,
    );
  }

  // The file's head is read while the database answers (registration waits mostly on round trips: ~50 ms for the
  // read, ~10 ms for each query, during a burst of 300 files); problems are still reported in the order below.
  // A compressed file's data prefix is inflated there too (file_bytes.ts).
  const file = early(openFileBytes(storage, {
    bucket: job.bucket_id,
    name: job.object_name,
    etag: job.object_etag,
    size,
  }, {
    headBytes: Math.min(size, SNIFF_BYTES),
    prefixBytes: Math.max(COMPRESSED_PREFIX_BYTES, 2 * config.maxRecordBytes + SNIFF_BYTES),
  }));
  const [profile] = await sql<ProfileRow[]>`
    select * from csv_import.resolve_profile(${job.bucket_id}, ${job.object_name}) where id is not null`;
  if (!profile) {
    throw new RegistrationProblem(
      `No import profile matches "${job.object_name}" in bucket "${job.bucket_id}": add one to csv_import.profiles ` +
        `(name, path_pattern, target_table), e.g. path_pattern 'orders/%' → target_table 'public.orders', or ` +
        `upload it under auto/ to have a table made from it (profile tables-from-files)`,
    );
  }
  if (profile.max_file_bytes !== null && size > profile.max_file_bytes) {
    throw new RegistrationProblem(
      `File is ${size} bytes; the limit of profile "${profile.name}" is ${profile.max_file_bytes} bytes (max_file_bytes)`,
    );
  }

  const dryRun = profile.dry_run || job.dry_run_requested;
  const request = {
    bucket: job.bucket_id,
    objectName: job.object_name,
    jobId: job.id,
    targetTable: profile.target_table,
    targetSchema: profile.target_schema,
  };
  const intended = profile.create_table ? intendedTable(request) : profile.target_table!;
  // null: a create_table profile's target that does not exist yet (made from the file below).
  const target = early(
    checkTarget(sql, intended, profile.create_table).then(async (table) =>
      table === null ? null : { targetTable: table, columns: await describeTarget(sql, table) }
    ),
  );
  const data = await file;
  const sniffed = await sniff(data, profile, config.maxRecordBytes);
  let made: MadeTable | null = null;
  let existing = await target;
  if (profile.create_table) {
    // The file's header names map to the columns a table made from it has (`Order Date` → order_date), and the
    // pipeline writes: such a table has row-level security and no policy for the uploader.
    profile.column_aliases = {
      ...headerAliases(sniffed.hasHeader ? sniffed.header : null),
      ...(profile.column_aliases ?? {}),
    };
    profile.write_as ??= "service_role";
  }
  if (existing === null) {
    made = await makeTableFromFile({ sql, file: data }, request, sniffed, intended, dryRun);
    const madeTable = (await checkTarget(sql, made.table, false))!;
    existing = { targetTable: madeTable, columns: await describeTarget(sql, madeTable) };
  }
  const { targetTable, columns } = existing;
  const { dialect, source } = decideHeader(sniffed, profile, columns, targetTable);
  checkHeaderLength(dialect, config.maxRecordBytes);
  const fieldCount = dialect.header?.length ??
    await firstRecordFieldCount(data, dialect, config.maxRecordBytes);
  if (fieldCount === 0) throw new RegistrationProblem("File has no rows: it is blank");
  if (fieldCount > config.maxColumns) {
    throw new RegistrationProblem(
      `File has ${fieldCount} columns; the limit is ${config.maxColumns} (MAX_COLUMNS)`,
    );
  }
  const mapping: ColumnMapping = mapHeader(dialect, columns, profile, targetTable, fieldCount);
  const jobColumns: JobColumns = {
    expected_fields: mapping.expectedFields,
    ignored: mapping.ignored,
    mapped: mapping.mapped.map((m) => ({ field: m.field, header: m.header, column: m.column })),
    write_as: await planWriteAs(sql, targetTable, profile.write_as, job.owner_id),
  };
  if (jobColumns.write_as === "uploader") {
    await checkUploaderPrivileges(sql, targetTable, jobColumns.mapped.map((m) => m.column.name));
  }
  try {
    compileRowConverter(jobColumns, { dateStyle: profile.date_style });
  } catch (error) {
    if (error instanceof UnsupportedColumnError) throw new RegistrationProblem(error.message);
    throw error;
  }

  const maxDataBytes = Math.min(config.maxFileBytes, profile.max_file_bytes ?? Number.MAX_SAFE_INTEGER);
  const loadBytes = estimatedDataBytes(data, size, maxDataBytes) - dialect.dataStart;
  // Only a file that measured costs could cut into chunks needs them (a smaller one is one chunk either way):
  // the small files of a burst pay no lookup.
  const cost = profile.chunk_size_bytes === null && config.chunkWorkMs > 0 && loadBytes > config.chunkSizeMin
    ? await measuredCost(sql, targetTable, mapping.expectedFields, data, dialect)
    : null;
  const chunkSize = plannedChunkSize(
    loadBytes,
    profile.chunk_size_bytes,
    cost,
    config,
    textCodec(dialect.encoding).unitBytes,
  );
  const requested = profile.chunk_size_bytes ?? config.chunkSize;
  if (chunkSize !== requested) {
    log("info", chunkSize > requested ? "chunk_size_raised" : "chunk_size_from_cost", {
      job: job.id,
      bytes: loadBytes,
      requested,
      chunk_size: chunkSize,
      max_chunks: config.maxChunksPerJob,
      ...(cost === null ? {} : {
        ms_per_row: Number(cost.msPerRow.toPrecision(3)),
        rows_per_mib: Math.round(cost.rowsPerMiB),
        work_ms: config.chunkWorkMs,
      }),
    });
  }

  const plan = {
    object_size: size,
    data_start: dialect.dataStart,
    header_lines: dialect.linesBeforeData,
    chunk_size: chunkSize,
    profile_id: profile.id,
    profile_name: profile.name,
    target_table: targetTable,
    priority: profile.priority,
    // A steered width (FAN_OUT_AUTO_MAX) may give one job up to its maximum unless the profile says otherwise.
    max_parallel_chunks: profile.max_parallel_chunks ?? Math.max(config.jobConcurrency, config.fanOutAutoMax),
    max_attempts: profile.max_attempts ?? config.maxAttempts,
    tolerated_reject_rate: Number(profile.tolerated_reject_rate),
    max_rejects: profile.max_rejects,
    reject_rate_after_rows: profile.reject_rate_after_rows,
    // A dry run (20261209000200_dry_run.sql): the profile's, or asked for by the upload itself.
    dry_run: dryRun,
    // A table made from the file: its CREATE TABLE, and a dry run's stand-in for it (table_from_file.ts).
    table_sql: made?.tableSql ?? null,
    scratch_table: made?.scratchTable ?? null,
    dialect: {
      delimiter: dialect.delimiter,
      quote: dialect.quote,
      newline: dialect.newline,
      encoding: dialect.encoding,
      bom: dialect.bomLength > 0,
      has_header: dialect.hasHeader,
      header_source: source,
      header_reason: dialect.headerReason,
      header: dialect.header,
    },
    columns: jobColumns,
    // A compressed file (20261211000100_compressed_uploads.sql): its stream and limits; offsets above are then
    // offsets of the decompressed data.
    compression: data.compression === null ? null : {
      codec: data.compression.codec,
      data_offset: data.compression.data_offset,
      data_end: data.compression.data_end,
      member: data.compression.member,
      expected: data.compression.expected,
      max_data_bytes: maxDataBytes,
      max_ratio: config.compressionMaxRatio,
      ratio_after_bytes: config.inflateRatioAfterBytes,
    },
  };
  return { plan, data };
}

/** How much of a compressed file's data registration inflates (sniffing, header, a table made from it). */
const COMPRESSED_PREFIX_BYTES = 4 * 1024 * 1024;

/**
 * The data's size for planning: a plain file's size; a compressed one's, when its prefix reached the end, or else
 * estimated from the prefix's compression ratio (within the limit the chain enforces).
 */
function estimatedDataBytes(data: FileBytes, objectSize: number, maxDataBytes: number): number {
  if (data.complete || data.compression === null) return data.size;
  const ratio = data.size / Math.max(data.compression.prefixIn, 1);
  return Math.min(Math.round(objectSize * ratio), maxDataBytes);
}

/**
 * The work per row loads measured (csv_import.measured_row_cost: into `targetTable`, else into any table per field,
 * times `fields`), and this file's rows per MiB from the head registration read (chunk_size.ts); null when either
 * is unknown.
 */
async function measuredCost(
  sql: Sql,
  targetTable: string,
  fields: number,
  data: FileBytes,
  dialect: Dialect,
): Promise<ChunkCost | null> {
  // The head first: it is in memory (a plain file's, or a compressed file's inflated prefix), and a head with too
  // few records to count spares the query.
  const headEnd = Math.min(data.size, data.compression === null ? SNIFF_BYTES : COMPRESSED_PREFIX_BYTES);
  if (headEnd <= dialect.dataStart) return null;
  const rowsPerMiB = sampleRowsPerMiB(await data.read(dialect.dataStart, headEnd), dialect);
  if (rowsPerMiB === null) return null;
  const [{ ms_per_row: msPerRow }] = await sql<{ ms_per_row: number | null }[]>`
    select csv_import.measured_row_cost(${targetTable}, ${fields}::int) as ms_per_row`;
  return msPerRow === null ? null : { msPerRow, rowsPerMiB };
}

/**
 * Whether the first row is the header (see the module doc for the rules), and who decided: "profile" or
 * "sniffed". The reason is a sentence fragment that follows "because".
 */
function decideHeader(
  sniffed: Dialect,
  profile: ProfileRow,
  columns: TargetColumn[],
  targetTable: string,
): { dialect: Dialect; source: "profile" | "sniffed" } {
  if (profile.has_header !== null) {
    return {
      dialect: withHeaderDecision(
        sniffed,
        profile.has_header,
        `the profile sets has_header to ${profile.has_header}`,
      ),
      source: "profile",
    };
  }
  const first = sniffed.firstRecord;
  if (first === null) return { dialect: sniffed, source: "sniffed" };
  const fit = headerFit(first.fields, columns, profile.column_aliases ?? {});
  if (fit.matched.length > 0 && fit.matched.length > fit.unknown.length) {
    const reason =
      `its first row names ${fit.matched.length === 1 ? "a column" : "columns"} of ${targetTable} ` +
      `(${quoteList(fit.matched)})`;
    return { dialect: withHeaderDecision(sniffed, true, reason), source: "sniffed" };
  }
  return { dialect: sniffed, source: "sniffed" };
}

/**
 * The header is a record like any other: it may not be longer than MAX_RECORD_BYTES (without its line break).
 * The head is read up to the limit plus SNIFF_BYTES to find the header's end, so without this check a header
 * up to 64 KiB over the limit passed.
 */
function checkHeaderLength(dialect: Dialect, maxRecordBytes: number): void {
  const first = dialect.firstRecord;
  if (!dialect.hasHeader || first === null || first.byteLength <= maxRecordBytes) return;
  throw new RegistrationProblem(
    `The header row (line ${first.line}) is ${first.byteLength} bytes long; the limit is ${maxRecordBytes} ` +
      "bytes (MAX_RECORD_BYTES). Shorten the column names, or raise MAX_RECORD_BYTES",
  );
}

/** `"a", "b", "c"`, at most `max` of them (each cut at 80 characters), then "and N more". */
function quoteList(names: readonly string[], max = 10): string {
  const cut = (n: string) => n.length > 80 ? `${n.slice(0, 79)}…` : n;
  const shown = names.slice(0, max).map((n) => `"${cut(n)}"`).join(", ");
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/**
 * mapColumns, and when it fails because the header does not fit (or the file, read without one, does not),
 * the whole story: how line 1 was read and why, which of its names match nothing, which required columns lack.
 */
function mapHeader(
  dialect: Dialect,
  columns: TargetColumn[],
  profile: ProfileRow,
  targetTable: string,
  fieldCount: number,
): ColumnMapping {
  const aliases = profile.column_aliases ?? {};
  try {
    return mapColumns(dialect.header, columns, aliases, targetTable, fieldCount);
  } catch (error) {
    if (!(error instanceof MappingError) || error.problem === "duplicate") throw error;
    const first = dialect.firstRecord;
    if (first === null) throw error;
    const fit = headerFit(first.fields, columns, aliases);
    const line = `Line ${first.line}`;
    if (dialect.hasHeader) {
      // All names known and only required columns lacking: the header fits as far as it goes; no story to tell.
      if (error.problem === "missing" && fit.unknown.length === 0 && fit.empty === 0) throw error;
      throw new MappingError(
        `${error.message}. ${line} was read as a header because ${dialect.headerReason}. ` +
          `${
            describeFit(fit, targetTable)
          } If ${line.toLowerCase()} is data, set the profile's has_header to false.`,
        error.problem,
      );
    }
    const fits = fit.matched.length > 0 && fit.unknown.length === 0 && fit.missing.length === 0;
    throw new MappingError(
      `${error.message}. ${line} was read as data, not a header, because ${dialect.headerReason}. ` +
        (fits
          ? `Its names match columns of ${targetTable}: if it is a header, set the profile's has_header to true.`
          : `Read as a header, it would not fit either: ${describeFit(fit, targetTable, true)}`),
      error.problem,
    );
  }
}

/** What did not match, in sentences: unknown names, empty names, required columns lacking. */
function describeFit(fit: HeaderFit, targetTable: string, lowerFirst = false): string {
  const parts: string[] = [];
  if (fit.unknown.length > 0) {
    parts.push(
      `${fit.unknown.length === 1 ? "the name" : "the names"} ${quoteList(fit.unknown)} match${
        fit.unknown.length === 1 ? "es" : ""
      } no column of ${targetTable}`,
    );
  }
  if (fit.empty > 0) parts.push(`${fit.empty === 1 ? "one name is" : `${fit.empty} names are`} empty`);
  if (fit.missing.length > 0) {
    parts.push(
      `required column${fit.missing.length === 1 ? "" : "s"} ${quoteList(fit.missing)} ${
        fit.missing.length === 1 ? "is" : "are"
      } missing`,
    );
  }
  if (parts.length === 0) parts.push(`its names match columns of ${targetTable}`);
  const text = parts.join("; ") + ".";
  return lowerFirst ? text : text.charAt(0).toUpperCase() + text.slice(1);
}

/** Sniffs from the head; a header longer than the usual head is read in full, up to the record size limit. */
async function sniff(file: FileBytes, profile: ProfileRow, maxRecordBytes: number): Promise<Dialect> {
  const options = {
    // A compressed file's prefix is not the data's end unless it says so.
    fileSize: file.complete ? file.size : Number.MAX_SAFE_INTEGER,
    ...(profile.has_header !== null ? { hasHeader: profile.has_header } : {}),
    ...(profile.delimiter !== null ? { delimiter: profile.delimiter } : {}),
    ...(profile.quote !== null ? { quote: profile.quote } : {}),
    encoding: profile.encoding,
  };
  let length = Math.min(file.size, SNIFF_BYTES);
  for (;;) {
    const head = await file.read(0, length);
    try {
      return sniffDialect(head, options);
    } catch (error) {
      if (!(error instanceof CsvError)) throw error;
      if (file.compression !== null && (error.code === "compressed" || error.code === "binary")) {
        // A compressed file inside the compressed file (or a workbook in a ZIP archive).
        throw new RegistrationProblem(
          `${describeStream(file)} holds data that is not CSV text: ${error.message}`,
        );
      }
      if (error.code !== "header_too_long") throw error;
      if (length >= maxRecordBytes + SNIFF_BYTES) {
        // Never more than this is read, however large the file: the first row is over the record size limit.
        throw new RegistrationProblem(
          `${
            error.message.split(":")[0]
          }: the first row is longer than the limit of ${maxRecordBytes} bytes ` +
            "(MAX_RECORD_BYTES), or this is not a CSV file",
        );
      }
      if (length >= file.size) throw error;
      length = Math.min(file.size, maxRecordBytes + SNIFF_BYTES, length * 4);
    }
  }
}

function describeStream(file: FileBytes): string {
  const c = file.compression!;
  return c.codec === "gzip" ? "The gzip file" : `The ZIP archive's member ${c.member}`;
}

/** `work`, already running; a failure nobody awaits (an earlier step failed first) is not an unhandled rejection. */
function early<T>(work: Promise<T>): Promise<T> {
  work.catch(() => {});
  return work;
}

async function firstRecordFieldCount(
  file: FileBytes,
  dialect: Dialect,
  maxRecordBytes: number,
): Promise<number> {
  const end = Math.min(file.size, dialect.dataStart + maxRecordBytes + 2);
  const parser = createRecordParser({
    format: dialect,
    maxRecordBytes,
    startOffset: dialect.dataStart,
    stopAt: dialect.dataStart + 1,
  });
  const bytes = await file.read(dialect.dataStart, end);
  const records = parser.push(bytes);
  if (records.length === 0 && !parser.done) records.push(...parser.finish());
  return records[0]?.fields.length ?? 0;
}

/**
 * The profile's target as csv_import.check_target resolves it: canonical and quoted, or a clear refusal (no such
 * table, a protected schema such as auth or pg_catalog, not a table). The plan stores the canonical name, so the
 * loader writes exactly the table described here.
 */
async function checkTarget(sql: Sql, targetTable: string, missingOk: boolean): Promise<string | null> {
  try {
    const [{ target }] = await sql<
      { target: string }[]
    >`select csv_import.check_target(${targetTable}) as target`;
    return target;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "42P01" && missingOk) return null;
    if (code && ["42602", "42P01", "42501", "42809"].includes(code)) {
      throw new RegistrationProblem(`The profile's target: ${(error as Error).message}`);
    }
    throw error;
  }
}

/**
 * Whose rights the job writes with (csv_import.plan_write_as; docs/security.md): the uploader's, or the service
 * role's. A profile that requires the uploader's rights refuses a file without a signed-in uploader.
 */
async function planWriteAs(
  sql: Sql,
  targetTable: string,
  writeAs: ProfileRow["write_as"],
  ownerId: string | null,
): Promise<"uploader" | "service_role"> {
  try {
    const [{ plan }] = await sql<{ plan: "uploader" | "service_role" }[]>`
      select csv_import.plan_write_as(${targetTable}, ${writeAs ?? null}, ${ownerId}) as plan`;
    return plan;
  } catch (error) {
    if ((error as { code?: string }).code === "42501") {
      throw new RegistrationProblem((error as Error).message);
    }
    throw error;
  }
}

/** Fails the job, naming them, when the uploader may not write some of the file's columns (as the API would). */
async function checkUploaderPrivileges(sql: Sql, targetTable: string, columns: string[]): Promise<void> {
  try {
    await sql`select csv_import.check_uploader_privileges(${targetTable}, ${columns}::text[])`;
  } catch (error) {
    if ((error as { code?: string }).code === "42501") {
      throw new RegistrationProblem((error as Error).message);
    }
    throw error;
  }
}

async function describeTarget(sql: Sql, targetTable: string): Promise<TargetColumn[]> {
  const columns = await fetchTargetColumns(sql, targetTable);
  if (columns.length === 0) {
    throw new RegistrationProblem(`The profile's target table ${targetTable} does not exist`);
  }
  return columns;
}
