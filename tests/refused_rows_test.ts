/**
 * A chunk whose every row the database refuses finishes, with a reject per row (issue 10, D3).
 *
 * The same 30,000-row file is imported into a table with a primary key, then uploaded again under other names
 * (insert mode, every row tolerated): each re-import must end succeeded_with_rejects with 30,000 duplicate-key
 * rejects whose raw text is the file's own line, in seconds, with every chunk done on its first attempt (no
 * invocation killed by the 2 s CPU limit; before, each refused row cost a Storage request inside the batch and
 * the chunk was retried until dead-lettered). Two layouts: one chunk (its rows are read from Storage, so refused
 * rows' text is read back in windows) and 1 MiB chunks (most loads hold their range in memory after scanning it),
 * and the file gzipped, in one range and in 1 MiB ranges (rows' text inflated again from each range's checkpoint).
 * Each refused piece builds its deferred COPY TEXT for the bisection (pipeline/piece_text.ts) from the same
 * sources, so the exact rejects also check that text.
 */
import assert from "node:assert/strict";
import { gzip } from "./support/bad_inputs.ts";
import { functionEvents } from "./support/faults.ts";
import { writeCsv } from "./support/generate_csv.ts";
import { checksum, connect, E2E, psqlCopy, Scope, upload, waitForJob } from "./support/stack.ts";

const ROWS = 30_000;

/**
 * The file's records with the line each starts on (LF files, `"` quotes): a record ends at a newline outside
 * quotes. Some generated notes span lines, so lines and records differ.
 */
function recordsOf(text: string): { line: number; text: string }[] {
  const records: { line: number; text: string }[] = [];
  let start = 0;
  let line = 1;
  let startLine = 1;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === "\n") {
      line++;
      if (!quoted) {
        records.push({ line: startLine, text: text.slice(start, i) });
        start = i + 1;
        startLine = line;
      }
    }
  }
  return records;
}

Deno.test({
  name: "refused rows: re-importing a file gives a duplicate-key reject per row, in seconds",
  ...E2E,
}, async () => {
  const sql = connect();
  const scope = new Scope(sql, "refused");
  try {
    const dir = await scope.tempDir();
    const file = `${dir}/orders.csv`;
    await writeCsv(file, { rows: ROWS, seed: 61 });
    const records = recordsOf(await Deno.readTextFile(file)).slice(1); // without the header
    assert.equal(records.length, ROWS);
    const target = await scope.table("refused");
    const reference = await scope.table("refused_ref");
    await psqlCopy(reference, file);
    await scope.profile({ pathPattern: `${scope.prefix}/first/%`, targetTable: target });
    await scope.profile({
      pathPattern: `${scope.prefix}/again/%`,
      targetTable: target,
      toleratedRejectRate: 1,
    });
    for (const folder of ["again-chunked", "again-gzip-chunked"]) {
      await scope.profile({
        pathPattern: `${scope.prefix}/${folder}/%`,
        targetTable: target,
        toleratedRejectRate: 1,
        chunkSizeBytes: 1024 * 1024,
      });
    }
    await scope.profile({
      pathPattern: `${scope.prefix}/again-gzip/%`,
      targetTable: target,
      toleratedRejectRate: 1,
    });
    const gzipped = await gzip(await Deno.readFile(file));

    const first = scope.object("first/orders.csv");
    await upload(first, { path: file });
    const loaded = await waitForJob(sql, first, 60_000);
    assert.equal(loaded.status, "succeeded", loaded.error ?? "");
    assert.deepEqual(
      await checksum(sql, target),
      await checksum(sql, reference),
      "first import = psql \\copy",
    );

    for (const folder of ["again", "again-chunked", "again-gzip", "again-gzip-chunked"]) {
      const compressed = folder.startsWith("again-gzip");
      const name = scope.object(`${folder}/orders.csv${compressed ? ".gz" : ""}`);
      const started = performance.now();
      await upload(name, compressed ? gzipped : { path: file });
      const job = await waitForJob(sql, name, 90_000);
      const seconds = (performance.now() - started) / 1000;
      console.log(`${folder}: ${ROWS} refused rows in ${seconds.toFixed(1)} s, ${job.chunk_count} chunk(s)`);
      assert.equal(job.status, "succeeded_with_rejects", `${folder}: ${job.error}`);
      assert.deepEqual(
        { parsed: job.rows_parsed, loaded: job.rows_loaded, rejected: job.rows_rejected },
        { parsed: ROWS, loaded: 0, rejected: ROWS },
        `${folder}: every row a reject`,
      );
      assert.ok(seconds < 30, `${folder}: finished in ${seconds.toFixed(1)} s`);
      const [attempts] = await sql<{ max: number; retried: number }[]>`
        select max(attempts)::int as max, count(*) filter (where attempts > 1)::int as retried
        from csv_import.chunks where job_id = ${job.id}`;
      assert.deepEqual(attempts, { max: 1, retried: 0 }, `${folder}: every chunk done on its first attempt`);
      // The loads deferred their pieces' COPY TEXT (pipeline/piece_text.ts) and built it for the refused pieces
      // they bisected: from Storage (one chunk), from the range a load holds (1 MiB chunks), inflated again from
      // the range's checkpoint (gzip).
      const loads = (await functionEvents(job)).filter((e) => e.event === "chunk_loaded");
      const built = loads.reduce((sum, e) => sum + Number(e.text_built ?? 0), 0);
      assert.ok(built > 0, `${folder}: refused pieces built their text (${built} in ${loads.length} loads)`);
      if (folder.endsWith("-chunked")) assert.ok(loads.length > 1, `${folder}: ${loads.length} loads`);
      const rejects = await sql<{ line: number; reason: string; raw: string }[]>`
        select line_number::int as line, reason, raw_record as raw from csv_import.rejects
        where job_id = ${job.id} order by line_number`;
      assert.equal(rejects.length, ROWS, `${folder}: every reject stored`);
      for (const [i, r] of rejects.entries()) {
        assert.equal(r.line, records[i].line, `${folder}: reject ${i} is at the line its record starts on`);
        assert.match(r.reason, /duplicate key value violates unique constraint/, `${folder}: line ${r.line}`);
        assert.equal(r.raw, records[i].text, `${folder}: line ${r.line}'s raw text is the file's`);
      }
    }
    assert.deepEqual(await checksum(sql, target), await checksum(sql, reference), "the table is unchanged");
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
