/**
 * Shared pieces of the fault suites (tests/faults_*_test.ts, tests/scale_test.ts): a clean multi-chunk file
 * with its `psql \copy` reference, and the one check every fault ends with — no row lost, none duplicated,
 * the job terminal, its counts adding up.
 *
 * Invariants:
 * - Targets have NO primary key, so a row written twice stays in the table (a unique index would turn it into
 *   a reject and hide it); the reference is the same file loaded by `psql \copy`, compared by count and an
 *   order-independent checksum.
 * - `assertExactJob` checks the job against the file and the chunks against the job, never against numbers
 *   the pipeline reported about itself alone.
 */
import assert from "node:assert/strict";
import { type Manifest, writeCsv } from "../../scripts/generate_csv.ts";
import { checksum, type JobRow, psqlCopy, type Scope, type Sql } from "./stack.ts";

export interface Prepared {
  file: string;
  manifest: Manifest;
  target: string;
  reference: string;
  want: { count: number; sum: string };
}

/** A clean generated file (no planted rows), an empty target without a primary key and its \copy reference. */
export async function prepareFile(
  sql: Sql,
  scope: Scope,
  opts: { rows: number; seed: number; label: string; crlf?: boolean },
): Promise<Prepared> {
  const dir = await scope.tempDir();
  const file = `${dir}/${opts.label}.csv`;
  const manifest = await writeCsv(file, { rows: opts.rows, seed: opts.seed, crlf: opts.crlf ?? false });
  const target = await scope.table(opts.label, { primaryKey: false });
  const reference = await scope.table(`${opts.label}_ref`, { primaryKey: false });
  await psqlCopy(reference, file);
  return { file, manifest, target, reference, want: await checksum(sql, reference) };
}

export interface ChunkSummary {
  kind: string;
  status: string;
  n: number;
  attempts: number;
  max_attempts: number;
  rows_loaded: number;
  rows_parsed: number;
}

export async function chunkSummary(sql: Sql, jobId: number): Promise<ChunkSummary[]> {
  return await sql<ChunkSummary[]>`
    select kind::text, status::text, count(*)::int as n, sum(attempts)::int as attempts,
           max(attempts)::int as max_attempts, sum(rows_loaded)::float8 as rows_loaded,
           sum(rows_parsed)::float8 as rows_parsed
    from csv_import.chunks where job_id = ${jobId} group by 1, 2 order by 1, 2`;
}

/**
 * The job loaded the whole file exactly once: succeeded, every row parsed and loaded once (no rejects or
 * skips), several load chunks, all chunks succeeded and their rows add up to the job's, and the target table
 * equals `psql \copy` of the same file. Returns the chunk summary (for attempt counts).
 */
export async function assertExactJob(
  sql: Sql,
  job: JobRow,
  p: Prepared,
  label = "",
): Promise<ChunkSummary[]> {
  const at = `${label}job ${job.id}`;
  assert.equal(job.status, "succeeded", `${at}: ${job.error}`);
  assert.ok(job.chunk_count > 1, `${at}: several load chunks (${job.chunk_count})`);
  assert.equal(job.rows_parsed, p.manifest.rows, `${at}: rows parsed`);
  assert.equal(job.rows_loaded, p.manifest.rows, `${at}: rows loaded`);
  assert.equal(job.rows_rejected, 0, `${at}: rows rejected`);
  assert.equal(job.rows_skipped, 0, `${at}: rows skipped`);
  const chunks = await chunkSummary(sql, job.id);
  assert.deepEqual(
    chunks.filter((c) => c.status !== "succeeded"),
    [],
    `${at}: every chunk succeeded`,
  );
  const loads = chunks.find((c) => c.kind === "load")!;
  assert.equal(loads.n, job.chunk_count, `${at}: load chunks`);
  assert.equal(loads.rows_loaded, p.manifest.rows, `${at}: the chunks' rows add up to the file's`);
  assert.equal(loads.rows_parsed, p.manifest.rows, `${at}: the chunks parsed every row once`);
  assert.deepEqual(await checksum(sql, p.target), p.want, `${at}: table = psql \\copy of the file`);
  return chunks;
}
