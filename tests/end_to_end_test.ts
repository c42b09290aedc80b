/**
 * The headline acceptance test: one large CSV (1,000,000 rows by default; E2E_ROWS overrides it) with CRLF
 * line ends, quoted multi-line notes, multibyte text and planted bad rows of every kind, uploaded to Storage
 * with supabase-js and imported by the pipeline in several hundred chunks.
 *
 * What it proves, against the real local stack:
 * - invariant 1 and 2 (ownership, exactly-once): the target table equals, row for row, what `psql \copy`
 *   loads from the same file without its bad rows (same count, same order-independent checksum), so no record
 *   is lost, duplicated or altered at any of the hundreds of chunk boundaries;
 * - invariant 3 (nothing lost silently): the rejects are exactly the planted rows — the same set of physical
 *   line numbers as the generator's manifest, each with a reason that names its fault — rows parsed = loaded +
 *   rejected, and the rejects CSV beside the upload has one record per reject;
 * - invariant 5 (every job ends): the job reaches succeeded_with_rejects on its own, within the deadline.
 * It also reports the pipeline's wall time against `psql \copy` of the same clean file.
 */
import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { BAD_KINDS, type BadKind, DUPLICATE_ID, writeCsv } from "./support/generate_csv.ts";
import {
  checksum,
  connect,
  download,
  E2E,
  insertSentinel,
  psqlCopy,
  Scope,
  upload,
  waitForJob,
} from "./support/stack.ts";
import { functionEvents } from "./support/faults.ts";

const ROWS = Number(Deno.env.get("E2E_ROWS") ?? 1_000_000);
const BAD_EVERY = 997;
/** 256 KiB chunks: ~500 load chunks (and as many scans) for the ~130 MB of 1M rows; E2E_CHUNK_BYTES overrides. */
const CHUNK_SIZE = Number(Deno.env.get("E2E_CHUNK_BYTES") ?? 256 * 1024);

/** What each planted kind's reject must say: the column it names (if any) and a pattern of its reason. */
const EXPECTED_REJECT: Record<BadKind, { column: string | null; reason: RegExp }> = {
  bad_integer: { column: "quantity", reason: /integer/i },
  impossible_date: { column: "ordered_at", reason: /date|time|range/i },
  missing_field: { column: null, reason: /^Expected 10 fields, found [0-9]$/ },
  bad_uuid: { column: "customer_id", reason: /uuid/i },
  numeric_overflow: { column: "amount", reason: /numeric|precision|overflow|digits/i },
  null_not_null: { column: "email", reason: /null|empty|required/i },
  bad_boolean: { column: "paid", reason: /boolean/i },
  duplicate_key: { column: null, reason: /duplicate key/i },
  bad_enum: { column: "status", reason: /enum|demo_order_status|one of/i },
};

Deno.test(
  { name: `end to end: ${ROWS.toLocaleString("en-US")} rows through the pipeline`, ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "e2e");
    try {
      const dir = await scope.tempDir();
      const file = `${dir}/orders.csv`;
      const cleanFile = `${dir}/orders.clean.csv`;
      let t = performance.now();
      const manifest = await writeCsv(
        file,
        { rows: ROWS, seed: 20261129, crlf: true, badEvery: BAD_EVERY },
        cleanFile,
      );
      const generateMs = performance.now() - t;
      const kinds = new Set(manifest.planted.map((p) => p.kind));
      assert.deepEqual([...kinds].sort(), [...BAD_KINDS].sort(), "the file has planted rows of every kind");

      const target = await scope.table("orders");
      const reference = await scope.table("orders_ref");
      await insertSentinel(sql, target, DUPLICATE_ID);
      await insertSentinel(sql, reference, DUPLICATE_ID);
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: target,
        chunkSizeBytes: CHUNK_SIZE,
        toleratedRejectRate: 0.01,
      });

      const objectName = scope.object("orders.csv");
      t = performance.now();
      await upload(objectName, { path: file });
      const uploadMs = performance.now() - t;
      const job = await waitForJob(sql, objectName, 240_000);
      const pipelineMs = performance.now() - t;
      const expectedChunks = Math.ceil(manifest.bytes / CHUNK_SIZE);

      t = performance.now();
      const copyMs = await psqlCopy(reference, cleanFile);
      console.log(
        `  ${ROWS} rows, ${(manifest.bytes / 1e6).toFixed(1)} MB, ${job.chunk_count} chunks: generated in ` +
          `${(generateMs / 1000).toFixed(1)} s; upload ${
            (uploadMs / 1000).toFixed(1)
          } s; upload → job finished ` +
          `(rejects file written) ${(pipelineMs / 1000).toFixed(1)} s ` +
          `(${Math.round(manifest.goodRows / (pipelineMs / 1000)).toLocaleString("en-US")} rows/s); ` +
          `psql \\copy of the clean file ${(copyMs / 1000).toFixed(1)} s ` +
          `(${Math.round(manifest.goodRows / (copyMs / 1000)).toLocaleString("en-US")} rows/s)`,
      );

      // The job.
      assert.equal(job.status, "succeeded_with_rejects", `job error: ${job.error}`);
      assert.ok(
        job.chunk_count >= expectedChunks - 1 && job.chunk_count <= expectedChunks,
        `${job.chunk_count} chunks`,
      );
      if (ROWS >= 1_000_000 && !Deno.env.has("E2E_CHUNK_BYTES")) {
        assert.ok(job.chunk_count >= 300, "several hundred chunks");
      }
      assert.equal(job.rows_parsed, manifest.rows, "every record was parsed once");
      assert.equal(job.rows_loaded, manifest.goodRows);
      assert.equal(job.rows_rejected, manifest.planted.length);
      assert.equal(job.rows_skipped, 0);
      assert.equal(job.rows_parsed, job.rows_loaded + job.rows_rejected, "rows in = loaded + rejected");
      const [chunkTotals] = await sql<{ parsed: number; loaded: number; rejected: number; not_ok: number }[]>`
      select coalesce(sum(rows_parsed) filter (where kind = 'load'), 0)::float8 as parsed,
             coalesce(sum(rows_loaded) filter (where kind = 'load'), 0)::float8 as loaded,
             coalesce(sum(rows_rejected) filter (where kind = 'load'), 0)::float8 as rejected,
             count(*) filter (where status <> 'succeeded')::int as not_ok
      from csv_import.chunks where job_id = ${job.id}`;
      const retried = await sql<
        { kind: string; chunk_index: number; attempts: number; last_error: string }[]
      >`
      select kind::text, chunk_index, attempts, last_error from csv_import.chunks
      where job_id = ${job.id} and (attempts > 1 or (kind = 'load' and attempts <> 1) or last_error is not null)
      order by kind, chunk_index limit 5`;
      assert.equal(
        retried.length,
        0,
        `no chunk failed or needed a second attempt: ${JSON.stringify(retried)}`,
      );
      // Each byte read once: every range is scanned by the load that reads it, except the file's first scans,
      // which run beside load 0 (1 .. max_parallel_chunks - 2) so that the first loads start together.
      const [scans] = await sql<{ own: number[]; width: number }[]>`
      select coalesce(array_agg(c.chunk_index order by c.chunk_index) filter (where c.attempts > 0), '{}') as own,
             j.max_parallel_chunks as width
      from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
      where c.job_id = ${job.id} and c.kind = 'scan' group by j.max_parallel_chunks`;
      assert.deepEqual(
        scans.own,
        Array.from({ length: Math.max(0, scans.width - 2) }, (_, i) => i + 1),
        "only the ramp-up scans had invocations of their own; loads scanned every other range inline",
      );
      // The fast path's pieces went to the database in COPY BINARY (WORKER_COPY_FORMAT's default): only a
      // piece holding a row the string path converted goes as text, and this file's good rows are plain.
      const pieces = { binary: 0, text: 0 };
      for (const e of await functionEvents(job)) {
        if (e.event !== "chunk_loaded") continue;
        pieces.binary += Number(e.binary_pieces ?? 0);
        pieces.text += Number(e.text_pieces ?? 0);
      }
      console.log(`  COPY pieces: ${pieces.binary} binary, ${pieces.text} text`);
      assert.ok(pieces.binary >= job.chunk_count, `every load sent binary pieces: ${JSON.stringify(pieces)}`);
      assert.equal(pieces.text, 0, `no piece fell back to text: ${JSON.stringify(pieces)}`);
      const [progress] = await sql<{ percent: string; chunks_done: number; rows_loaded: number }[]>`
      select percent::text, chunks_done::int, rows_loaded::float8 as rows_loaded
      from csv_import.job_progress where job_id = ${job.id}`;
      assert.deepEqual(progress, {
        percent: "100.0",
        chunks_done: job.chunk_count,
        rows_loaded: manifest.goodRows,
      });
      assert.deepEqual(chunkTotals, {
        parsed: manifest.rows,
        loaded: manifest.goodRows,
        rejected: manifest.planted.length,
        not_ok: 0,
      });

      // The table equals what psql \copy loads from the clean file (plus the same sentinel row).
      const [got, want] = [await checksum(sql, target), await checksum(sql, reference)];
      assert.equal(want.count, manifest.goodRows + 1);
      assert.deepEqual(got, want, "target table = psql \\copy of the clean file");

      // The rejects are exactly the planted rows, each with a sensible reason.
      const rejects = await sql<
        { line_number: number; column_name: string | null; reason: string; raw: string }[]
      >`
      select r.line_number::float8 as line_number, r.column_name, r.reason, r.raw_record as raw
      from csv_import.rejects r where r.job_id = ${job.id} order by r.line_number`;
      const gotLines = rejects.map((r) => Number(r.line_number));
      const wantLines = manifest.planted.map((p) => p.line);
      const firstDiff = wantLines.findIndex((line, i) => gotLines[i] !== line);
      assert.ok(
        firstDiff === -1 && gotLines.length === wantLines.length,
        `reject line numbers differ from the manifest's planted lines: ${gotLines.length} rejects, ` +
          `${wantLines.length} planted; first difference at #${firstDiff}: got ${gotLines[firstDiff]} ` +
          `(${rejects[firstDiff]?.reason}), want ${wantLines[firstDiff]} (${
            manifest.planted[firstDiff]?.kind
          })`,
      );
      const kindOf = new Map(manifest.planted.map((p) => [p.line, p.kind]));
      for (const r of rejects) {
        const kind = kindOf.get(Number(r.line_number))!;
        const expected = EXPECTED_REJECT[kind];
        assert.match(r.reason, expected.reason, `line ${r.line_number} (${kind}): reason "${r.reason}"`);
        if (expected.column !== null) {
          assert.equal(r.column_name, expected.column, `line ${r.line_number} (${kind}): column`);
        }
        assert.ok(
          r.raw.endsWith(kind === "missing_field" ? "" : ",planted"),
          `raw text of line ${r.line_number}`,
        );
      }

      // The rejects CSV beside the upload: a header and one record per reject, in line order.
      assert.equal(job.rejects_object, `${objectName}.rejects.csv`);
      const rejectsCsv = await download(job.rejects_object!);
      assert.ok(rejectsCsv !== null, "the rejects CSV exists");
      const records: string[][] = parse(rejectsCsv!, { relax_column_count: false });
      assert.deepEqual(records[0], ["line_number", "column", "reason", "raw_record"]);
      assert.equal(records.length - 1, manifest.planted.length, "one record per reject");
      assert.equal(
        rejectsCsv!.trimEnd().split("\r\n").length - 1,
        manifest.planted.length,
        "one line per reject",
      );
      assert.deepEqual(records.slice(1).map((r) => Number(r[0])), manifest.planted.map((p) => p.line));
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
