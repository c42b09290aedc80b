/**
 * The bad-input corpus (issue #5) against the real local stack: each file of tests/support/bad_inputs.ts is
 * uploaded under its own profile and target table, and its job must reach exactly the outcome the corpus
 * states — never a crash, a hang or a vague error:
 * - a failed job carries the exact error; refused at registration means no chunk was planned; failed by a
 *   chunk means the table holds exactly the rows the job reports loaded (nothing reported is missing);
 * - a succeeded job has exactly the listed rejects (line, column, reason) and exactly the good rows: the table
 *   equals a twin table that `psql \copy` loaded from the corpus's clean CSV (same count and row checksum), so
 *   every value is what PostgreSQL itself reads from it (dates under the DateStyle the profile stands for);
 * - header names that are SQL or path injection attempts are ignored columns, and the table they name in a
 *   `drop table` still exists with its row;
 * - a 256 MB file without a line break fails at registration, quickly, and no function invocation's memory
 *   grows by more than 64 MB (the runtime's per-invocation records); the file is streamed to disk and back,
 *   never held in memory, and deleted afterwards.
 * The corpus's jobs run concurrently (uploaded up front, then checked one by one); the 256 MB case runs last,
 * alone, so the invocation records it reads are its own.
 *
 * The second test uploads every case gzipped (issue 16: compressed versions of the corpus give the same outcomes
 * as the plain files), named `<file>.gz` under its own profile and table, and checks it with the same `verify`:
 * the plain case's outcome exactly — refusals with chunk_count 0 (a compressed job counts load chunks only),
 * line numbers, columns and offsets of the decompressed data — except where GZIPPED_EXPECT states the compressed
 * outcome and why (an empty or binary stream, and the cases that are themselves compressed).
 */
import assert from "node:assert/strict";
import {
  type BadInput,
  buildCorpus,
  CANARY,
  type Expected,
  gzip,
  MAX_RECORD_BYTES,
  TYPED_TABLE_SQL,
  writeNoNewline,
} from "./support/bad_inputs.ts";
import { zipArchive } from "./support/zip_writer.ts";
import {
  checksum,
  connect,
  download,
  E2E,
  type Invocation,
  invocations,
  type JobRow,
  psqlCopy,
  Scope,
  type Sql,
  unique,
  upload,
  waitForJob,
} from "./support/stack.ts";

/** Generous: every job of the corpus runs at once on a 2-core machine shared with other stacks. */
const JOB_TIMEOUT_MS = 180_000;
const NO_NEWLINE_BYTES = 256 * 1024 * 1024;
/** Most memory one invocation may add over its worker's baseline while the 256 MB file is refused. */
const MEMORY_BOUND_MB = 64;

/** The runtime's record carries measurements the shared Invocation type leaves out. */
interface MeasuredInvocation extends Invocation {
  cpuMs: number;
  peakMemoryMb: number;
}

/** A corpus case as uploaded: `plain` holds the uncompressed bytes when `bytes` are a compressed variant's. */
type Upload = BadInput & { plain?: Uint8Array };

interface Run {
  object: string;
  table: string;
  expected: Expected;
}

async function createTable(scope: Scope, shape: BadInput["table"], label: string): Promise<string> {
  if (shape === "orders") return await scope.table(label);
  const name = `public.${unique(`e2e_${label}`)}`;
  scope.tables.push(name);
  await scope.sql.unsafe(TYPED_TABLE_SQL(name));
  return name;
}

/** `\copy` of a headed CSV file into `table` (the header names the columns), under `dateStyle` if given. */
async function copyInto(table: string, file: string, dateStyle?: string): Promise<void> {
  const header = (await Deno.readTextFile(file)).split("\n", 1)[0];
  await psqlCopy(table, file, { columns: header.split(","), dateStyle: dateStyle ?? "ISO, MDY" });
}

async function start(scope: Scope, dir: string, c: Upload): Promise<Run> {
  const table = await createTable(scope, c.table, c.name.replaceAll("-", "_").slice(0, 20));
  let object: string;
  if (c.unmatched) {
    object = `${scope.prefix}-unmatched/${c.file}`;
    scope.objects.push(object);
  } else {
    await scope.profile({
      pathPattern: `${scope.prefix}/${c.name}/%`,
      targetTable: table,
      toleratedRejectRate: 0.9,
      hasHeader: c.profile?.hasHeader ?? null,
      dateStyle: c.profile?.dateStyle,
      chunkSizeBytes: c.profile?.chunkSizeBytes ?? null,
    });
    object = scope.object(`${c.name}/${c.file}`);
  }
  const path = `${dir}/${c.name}-${c.file}`;
  await Deno.writeFile(path, c.bytes);
  await upload(object, { path });
  return { object, table, expected: c.expect({ table }) };
}

async function verify(sql: Sql, scope: Scope, dir: string, c: Upload, run: Run): Promise<JobRow> {
  const job = await waitForJob(sql, run.object, JOB_TIMEOUT_MS);
  const exp = run.expected;
  const where = `${c.name} (${c.what}), job ${job.id}`;
  assert.equal(job.status, exp.status, `${where}: status ${job.status} (error: ${job.error})`);
  const { count } = await checksum(sql, run.table);

  if (exp.status === "failed") {
    const got = `${where}: error ${JSON.stringify(job.error)}`;
    if (typeof exp.error === "string") assert.equal(job.error, exp.error, got);
    else assert.match(job.error ?? "", exp.error, got);
    if (exp.stage === "register") assert.equal(job.chunk_count, 0, `${where}: refused before planning`);
    else assert.ok(job.chunk_count >= 1, `${where}: planned; a chunk found the problem`);
    assert.equal(count, job.rows_loaded, `${where}: the table holds exactly the rows the job reports loaded`);
    return job;
  }

  const rejects = await sql<{ line: number; column: string | null; reason: string }[]>`
    select line_number::int as line, column_name as column, reason from csv_import.rejects
    where job_id = ${job.id} order by line_number, id`;
  assert.deepEqual([...rejects], exp.rejects, `${where}: rejects ${JSON.stringify(rejects)}`);
  assert.equal(job.rows_rejected, exp.rejects.length, `${where}: rows_rejected`);
  assert.equal(
    job.rows_parsed,
    job.rows_loaded + job.rows_rejected + job.rows_skipped,
    `${where}: accounting`,
  );

  const twin = await createTable(scope, c.table, "twin");
  const cleanPath = `${dir}/${c.name}-clean.csv`;
  if (exp.clean === "same") await Deno.writeFile(cleanPath, c.plain ?? c.bytes);
  else await Deno.writeTextFile(cleanPath, exp.clean);
  await copyInto(twin, cleanPath, exp.cleanDateStyle);
  const expected = await checksum(sql, twin);
  assert.equal(count, expected.count, `${where}: rows loaded`);
  assert.equal(job.rows_loaded, expected.count, `${where}: rows_loaded`);
  assert.equal((await checksum(sql, run.table)).sum, expected.sum, `${where}: loaded values = psql \\copy's`);

  if (exp.ignored) {
    const [{ ignored }] = await sql<{ ignored: string[] }[]>`
      select columns -> 'ignored' as ignored from csv_import.jobs where id = ${job.id}`;
    assert.deepEqual(ignored, exp.ignored, `${where}: ignored header names`);
  }
  for (const { column, value, reason } of exp.pgRefuses ?? []) {
    // An untyped literal goes through the column's input function and typmod, as in COPY.
    const columns = column === "id" ? "id" : `id, ${column}`;
    const literal = `'${value.replaceAll("'", "''")}'`;
    const values = column === "id" ? literal : `-1, ${literal}`;
    const refused = await sql.unsafe(`insert into ${twin} (${columns}) values (${values})`).then(
      () => null,
      (e: Error) => e.message,
    );
    assert.ok(refused !== null, `${where}: PostgreSQL accepted ${literal} for ${column}`);
    assert.ok(
      reason.startsWith(refused),
      `${where}: reason "${reason}" does not start with PostgreSQL's "${refused}"`,
    );
  }
  if (exp.rejectsCsv !== undefined) {
    assert.ok(job.rejects_object, `${where}: the rejects file was written`);
    const got = await download(job.rejects_object!);
    assert.equal(
      got,
      exp.rejectsCsv,
      `${where}: rejects CSV ${JSON.stringify(got)}, want ${JSON.stringify(exp.rejectsCsv)}`,
    );
  }
  return job;
}

/** Runs `tasks` with at most `width` at a time; resolves each task's promise as it finishes. */
function pooled<T>(width: number, tasks: (() => Promise<T>)[]): Promise<T>[] {
  let next = 0;
  const results = tasks.map(() => Promise.withResolvers<T>());
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      await tasks[i]().then(results[i].resolve, results[i].reject);
    }
  };
  for (let i = 0; i < width; i++) void worker();
  return results.map((r) => r.promise);
}

/** Uploads `cases` (6 at a time) and checks each one's outcome in its own step, in corpus order. */
async function runCorpus(t: Deno.TestContext, sql: Sql, scope: Scope, dir: string, cases: Upload[]) {
  const started = performance.now();
  const runs = pooled(6, cases.map((c) => () => start(scope, dir, c)));
  for (const promise of runs) promise.catch(() => {}); // awaited in its step

  for (const [i, c] of cases.entries()) {
    await t.step(`${c.name}: ${c.what}`, async () => {
      const job = await verify(sql, scope, dir, c, await runs[i]);
      console.log(
        `  ${c.name}: ${job.status}${job.error ? ` "${job.error.slice(0, 100)}"` : ""}, ` +
          `${job.rows_loaded} loaded, ${job.rows_rejected} rejected, ${job.chunk_count} chunks`,
      );
    });
  }
  console.log(`  ${cases.length} files done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * One corpus run in its own scope: a temp dir, the demo enum the typed tables use, and the table the injection
 * headers name, which must still exist untouched when `body` is done.
 */
async function corpusRun(
  t: Deno.TestContext,
  label: string,
  body: (run: { sql: Sql; scope: Scope; dir: string; corpus: Upload[] }) => Promise<void>,
): Promise<void> {
  const sql = connect(8);
  const scope = new Scope(sql, label);
  try {
    const dir = await scope.tempDir();
    await sql.unsafe(
      `drop table if exists ${CANARY}; create table ${CANARY} (id int); insert into ${CANARY} values (1)`,
    );
    scope.defer(() => sql.unsafe(`drop table if exists ${CANARY}`));
    await scope.table("first"); // creates the demo enum the typed tables use
    await body({ sql, scope, dir, corpus: await buildCorpus() });
    await t.step("injection headers: the table they name still exists, untouched", async () => {
      const [{ n }] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${CANARY}`);
      assert.equal(n, 1);
    });
  } finally {
    await scope.dispose();
    await sql.end();
  }
}

Deno.test({ name: "bad input corpus: every file gets its exact outcome", ...E2E }, async (t) => {
  await corpusRun(t, "badin", async ({ sql, scope, dir, corpus }) => {
    assert.ok(corpus.length + 1 >= 30, `at least 30 files (${corpus.length + 1})`);
    assert.equal(new Set(corpus.map((c) => c.name)).size, corpus.length, "case names are unique");
    await runCorpus(t, sql, scope, dir, corpus);

    await t.step("256 MB with no line break: refused at registration, bounded memory", async () => {
      const path = `${dir}/no_newline.csv`;
      const object = scope.object("no-newline/no_newline.csv");
      const table = await scope.table("nonl");
      await scope.profile({ pathPattern: `${scope.prefix}/no-newline/%`, targetTable: table });
      try {
        await writeNoNewline(path, NO_NEWLINE_BYTES);
        assert.equal((await Deno.stat(path)).size, NO_NEWLINE_BYTES);
        const since = new Date();
        const t0 = performance.now();
        await upload(object, { path });
        const uploaded = performance.now();
        await Deno.remove(path);
        const job = await waitForJob(sql, object, JOB_TIMEOUT_MS);
        const sniffed = MAX_RECORD_BYTES + 64 * 1024;
        assert.equal(job.status, "failed");
        assert.equal(
          job.error,
          `No line break in the first ${sniffed} bytes: the first row is longer than the limit of ` +
            `${MAX_RECORD_BYTES} bytes (MAX_RECORD_BYTES), or this is not a CSV file`,
        );
        assert.equal(job.chunk_count, 0);
        const [{ size }] = await sql<{ size: number }[]>`
          select object_size::float8 as size from csv_import.jobs where id = ${job.id}`;
        assert.equal(size, NO_NEWLINE_BYTES);
        const records = (await invocations() as MeasuredInvocation[]).filter((r) =>
          new Date(r.startedAt) >= since && r.function !== "csv-import-health"
        );
        assert.ok(
          records.some((r) => r.function === "csv-import-register"),
          "the register invocation is recorded",
        );
        // A file over REGISTER_INLINE_LOAD_BYTES may warm the chunk function up as its registration starts (an
        // empty request answered 204, at most every 10 s: csv-import-register/index.ts); nothing else may reach it.
        const chunks = records.filter((r) => r.function === "csv-import-chunk" && r.status !== 204);
        assert.deepEqual(
          chunks.map((r) => `${r.status} at ${r.startedAt}`),
          [],
          "no chunk ran",
        );
        const peak = Math.max(...records.map((r) => r.peakMemoryMb));
        assert.ok(peak <= MEMORY_BOUND_MB, `peak invocation memory ${peak} MB > ${MEMORY_BOUND_MB} MB`);
        console.log(
          `  256 MB: upload ${((uploaded - t0) / 1000).toFixed(1)} s; job failed ` +
            `${((job.finished_at!.getTime() - job.created_at.getTime()) / 1000).toFixed(1)} s after it was ` +
            `created; invocations ${
              records.map((r) => `${r.function} ${r.peakMemoryMb} MB/${r.cpuMs} ms`).join(", ")
            }`,
        );
      } finally {
        await Deno.remove(path).catch(() => {});
      }
    });
  });
});

/** Registration's refusal of a compressed file whose data is itself compressed or binary (register.ts). */
const notCsvInGzip = (message: string): Expected => ({
  status: "failed",
  stage: "register",
  error: `The gzip file holds data that is not CSV text: ${message}`,
});
const ZIP_MAGIC =
  "File is a ZIP archive (an Excel .xlsx workbook is one); export the sheet as CSV and upload that";

/**
 * Where the gzipped file's outcome legitimately differs from the plain one's: the exact outcome (given the plain
 * one), and why. Every other case must reach exactly its plain outcome. No case is left out: the ones whose meaning
 * is the compression itself (gzip, xlsx, zip-truncated) are gzipped too, and refused as what their data is.
 */
const GZIPPED_EXPECT: Record<string, (plain: Expected) => Expected> = {
  // The object is not empty (a 20-byte gzip member); the data in it is: file_bytes.ts says so, naming the stream.
  empty: () => ({ status: "failed", stage: "register", error: "The gzip file holds no data" }),
  // Binary data inside a compressed file: the same check on the inflated bytes (the same count of control bytes),
  // said of the stream's data.
  binary: (plain) => {
    assert.ok(plain.status === "failed" && typeof plain.error === "string");
    return notCsvInGzip(plain.error);
  },
  // A gzip of a gzip file: the pipeline inflates one level, as gunzip does; the data is a gzip file, not CSV text.
  gzip: () => notCsvInGzip("File is gzip-compressed"),
  // A ZIP archive inside a gzip file is data, not an archive the pipeline opens: refused by its magic bytes.
  xlsx: () => notCsvInGzip(ZIP_MAGIC),
  "zip-truncated": () => notCsvInGzip(ZIP_MAGIC),
};

Deno.test({
  name: "bad input corpus gzipped: every file gets the outcome its plain twin gets",
  ...E2E,
}, async (t) => {
  await corpusRun(t, "badgz", async ({ sql, scope, dir, corpus }) => {
    for (const name of Object.keys(GZIPPED_EXPECT)) {
      assert.ok(corpus.some((c) => c.name === name), `${name} is a corpus case`);
    }
    const cases: Upload[] = [];
    for (const c of corpus) {
      cases.push({
        ...c,
        file: `${c.file}.gz`,
        what: `${c.what}, gzipped`,
        bytes: await gzip(c.bytes),
        plain: c.bytes,
        expect: (ctx) => GZIPPED_EXPECT[c.name]?.(c.expect(ctx)) ?? c.expect(ctx),
      });
    }
    await runCorpus(t, sql, scope, dir, cases);
  });
});

/** A few representative cases zipped: quoted line breaks with multibyte text, a reject-heavy file, a short row. */
const ZIPPED = ["quoted-newlines-multibyte", "out-of-range", "too-few-fields", "invalid-utf8-row"];

Deno.test({
  name: "bad input corpus zipped (stored and deflate): representative files get their plain outcomes",
  ...E2E,
}, async (t) => {
  await corpusRun(t, "badzip", async ({ sql, scope, dir, corpus }) => {
    const cases: Upload[] = [];
    for (const method of ["stored", "deflate"] as const) {
      for (const c of corpus.filter((c) => ZIPPED.includes(c.name))) {
        cases.push({
          ...c,
          name: `${c.name}-${method}`,
          file: c.file.replace(/\.csv$/, ".zip"),
          what: `${c.what}, in a ${method} ZIP`,
          bytes: await zipArchive([{ name: c.file, bytes: c.bytes, method }]),
          plain: c.bytes,
        });
      }
    }
    assert.equal(cases.length, ZIPPED.length * 2, "every zipped case is in the corpus");
    await runCorpus(t, sql, scope, dir, cases);
  });
});
