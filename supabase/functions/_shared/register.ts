/**
 * Registration: turns a `registering` job (created by the storage trigger) into a planned job with chunks.
 *
 * Steps: read the object's head with a Range request; sniff the dialect (unless the profile fixes it), which
 * also rejects empty, compressed, binary, UTF-16 and non-UTF-8 files with a specific message; resolve the
 * import profile; describe the target table; map the header to its columns (missing required columns fail the
 * job, naming them); decide whose rights the job writes with (csv_import.plan_write_as); then
 * csv_import.register_job stores the plan and creates the chunks in one transaction.
 *
 * Invariants:
 * - Idempotent: a job that is no longer registering is left alone (a duplicate request changes nothing).
 * - A problem with the file or its profile fails the job at once with one clear message
 *   (csv_import.fail_registration); a transient problem (Storage or database unavailable) leaves it registering,
 *   and csv_import.reconcile asks again with backoff.
 */
import { type ColumnMapping, mapColumns, MappingError } from "./columns.ts";
import type { Config } from "./config.ts";
import { CsvError } from "./csv/errors.ts";
import { type Dialect, looksLikeData, SNIFF_BYTES, sniffDialect } from "./csv/dialect.ts";
import { createRecordParser } from "./csv/parser.ts";
import type postgres from "postgres";
import type { Sql } from "./db.ts";
import { log, redact } from "./log.ts";
import { fetchTargetColumns, type TargetColumn } from "./pg_types/columns.ts";
import { UnsupportedColumnError } from "./pg_types/convert.ts";
import { compileRowConverter, type JobColumns } from "./row_converter.ts";
import { isTransient } from "./retry.ts";
import { type StorageClient, StorageError } from "./storage.ts";

export interface RegisterDeps {
  sql: Sql;
  config: Config;
  storage: StorageClient;
}

interface JobRow {
  id: number;
  status: string;
  bucket_id: string;
  object_name: string;
  object_size: number | null;
  /** The uploader's auth uid (storage.objects.owner_id); null for uploads with the service or anon key. */
  owner_id: string | null;
}

interface ProfileRow {
  id: number | null;
  name: string;
  target_table: string;
  column_aliases: Record<string, string[]>;
  tolerated_reject_rate: string;
  priority: number;
  delimiter: string | null;
  quote: string | null;
  has_header: boolean | null;
  chunk_size_bytes: number | null;
  max_parallel_chunks: number | null;
  max_attempts: number;
  date_style: "iso" | "dmy" | "mdy";
  max_file_bytes: number | null;
  write_as: "uploader" | "service_role" | null;
}

export type RegisterOutcome =
  | { outcome: "planned"; jobId: number; chunks: number }
  | { outcome: "unchanged"; jobId: number; status: string }
  | { outcome: "failed"; jobId: number; error: string }
  | { outcome: "retry_later"; jobId: number; error: string };

/** A problem that is the file's or the configuration's fault: the job fails with this message. */
class RegistrationProblem extends Error {}

export async function registerJob(deps: RegisterDeps, jobId: number): Promise<RegisterOutcome> {
  const { sql } = deps;
  const [job] = await sql<JobRow[]>`
    select id, status, bucket_id, object_name, object_size, owner_id from csv_import.jobs where id = ${jobId}`;
  if (!job) return { outcome: "failed", jobId, error: `Job ${jobId} does not exist` };
  if (job.status !== "registering") return { outcome: "unchanged", jobId, status: job.status };

  try {
    const plan = await planJob(deps, job);
    const [result] = await sql<{ chunk_count: number; planned: boolean; status: string }[]>`
      select * from csv_import.register_job(${jobId}, ${sql.json(plan as unknown as postgres.JSONValue)})`;
    if (!result.planned) return { outcome: "unchanged", jobId, status: result.status };
    log("info", "job_registered", {
      job: jobId,
      object: job.object_name,
      chunks: result.chunk_count,
      target: plan.target_table,
    });
    return { outcome: "planned", jobId, chunks: result.chunk_count };
  } catch (error) {
    const transient = !(error instanceof RegistrationProblem || error instanceof CsvError ||
      error instanceof MappingError || (error instanceof StorageError && error.status < 500)) ||
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

  const [profile] = await sql<ProfileRow[]>`
    select * from csv_import.resolve_profile(${job.bucket_id}, ${job.object_name}) where id is not null`;
  if (!profile) {
    throw new RegistrationProblem(
      `No import profile matches "${job.object_name}" in bucket "${job.bucket_id}": add one to csv_import.profiles ` +
        `(name, path_pattern, target_table), e.g. path_pattern 'orders/%' → target_table 'public.orders'`,
    );
  }
  if (profile.max_file_bytes !== null && size > Number(profile.max_file_bytes)) {
    throw new RegistrationProblem(
      `File is ${size} bytes; the limit of profile "${profile.name}" is ${profile.max_file_bytes} bytes (max_file_bytes)`,
    );
  }

  const dialect = await sniff(storage, job, size, profile, config.maxRecordBytes);
  const targetTable = await checkTarget(sql, profile.target_table);
  const columns = await describeTarget(sql, targetTable);
  const fieldCount = dialect.header?.length ??
    await firstRecordFieldCount(storage, job, dialect, size, config.maxRecordBytes);
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

  return {
    object_size: size,
    data_start: dialect.dataStart,
    header_lines: dialect.linesBeforeData,
    chunk_size: profile.chunk_size_bytes ?? config.chunkSize,
    profile_id: profile.id,
    profile_name: profile.name,
    target_table: targetTable,
    priority: profile.priority,
    max_parallel_chunks: profile.max_parallel_chunks ?? config.jobConcurrency,
    max_attempts: profile.max_attempts ?? config.maxAttempts,
    tolerated_reject_rate: Number(profile.tolerated_reject_rate),
    dialect: {
      delimiter: dialect.delimiter,
      quote: dialect.quote,
      newline: dialect.newline,
      bom: dialect.bomLength > 0,
      has_header: dialect.hasHeader,
      header: dialect.header,
    },
    columns: jobColumns,
  };
}

/** mapColumns, with a hint when the profile forces a header and the file's first row looks like data. */
function mapHeader(
  dialect: Dialect,
  columns: TargetColumn[],
  profile: ProfileRow,
  targetTable: string,
  fieldCount: number,
): ColumnMapping {
  try {
    return mapColumns(
      dialect.header,
      columns,
      profile.column_aliases ?? {},
      targetTable,
      fieldCount,
    );
  } catch (error) {
    if (
      error instanceof MappingError && profile.has_header === true && dialect.header !== null &&
      looksLikeData(dialect.header)
    ) {
      throw new MappingError(
        `${error.message}; its first row looks like data: add a header row or set the profile's has_header to false`,
      );
    }
    throw error;
  }
}

/** Sniffs from the head; a header longer than the usual head is read in full, up to the record size limit. */
async function sniff(
  storage: StorageClient,
  job: JobRow,
  size: number,
  profile: ProfileRow,
  maxRecordBytes: number,
): Promise<Dialect> {
  const options = {
    fileSize: size,
    ...(profile.has_header !== null ? { hasHeader: profile.has_header } : {}),
    ...(profile.delimiter !== null ? { delimiter: profile.delimiter } : {}),
    ...(profile.quote !== null ? { quote: profile.quote } : {}),
  };
  let length = Math.min(size, SNIFF_BYTES);
  for (;;) {
    const head = await storage.readBytes(job.bucket_id, job.object_name, 0, length);
    try {
      return sniffDialect(head, options);
    } catch (error) {
      if (!(error instanceof CsvError) || error.code !== "header_too_long") throw error;
      if (length >= maxRecordBytes + SNIFF_BYTES) {
        // Never more than this is read, however large the file: the first row is over the record size limit.
        throw new RegistrationProblem(
          `${
            error.message.split(":")[0]
          }: the first row is longer than the limit of ${maxRecordBytes} bytes ` +
            "(MAX_RECORD_BYTES), or this is not a CSV file",
        );
      }
      if (length >= size) throw error;
      length = Math.min(size, maxRecordBytes + SNIFF_BYTES, length * 4);
    }
  }
}

async function firstRecordFieldCount(
  storage: StorageClient,
  job: JobRow,
  dialect: Dialect,
  size: number,
  maxRecordBytes: number,
): Promise<number> {
  const end = Math.min(size, dialect.dataStart + maxRecordBytes + 2);
  const parser = createRecordParser({
    format: dialect,
    maxRecordBytes,
    startOffset: dialect.dataStart,
    stopAt: dialect.dataStart + 1,
  });
  const bytes = await storage.readBytes(job.bucket_id, job.object_name, dialect.dataStart, end);
  const records = parser.push(bytes);
  if (records.length === 0 && !parser.done) records.push(...parser.finish());
  return records[0]?.fields.length ?? 0;
}

/**
 * The profile's target as csv_import.check_target resolves it: canonical and quoted, or a clear refusal (no such
 * table, a protected schema such as auth or pg_catalog, not a table). The plan stores the canonical name, so the
 * loader writes exactly the table described here.
 */
async function checkTarget(sql: Sql, targetTable: string): Promise<string> {
  try {
    const [{ target }] = await sql<
      { target: string }[]
    >`select csv_import.check_target(${targetTable}) as target`;
    return target;
  } catch (error) {
    const code = (error as { code?: string }).code;
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
