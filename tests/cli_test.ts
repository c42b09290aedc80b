/**
 * The import CLI (cli/main.ts) as an operator runs it: a subprocess against the running local stack, checked by
 * its exit status, its output and what it did to the database. Plus its pure helpers and its resumable (TUS)
 * upload against a small in-process TUS server (the local Storage stand-in has no TUS endpoint).
 *
 * Invariants: every test works under its own Scope (table, profile, object prefix), removed at its end; every
 * subprocess has a deadline.
 */
import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { DUPLICATE_ID, writeCsv } from "./support/generate_csv.ts";
import {
  formatBytes,
  loadCliConfig,
  localStackEnvFile,
  parseAlias,
  printable,
  printableJson,
  readLocalStackEnv,
  safe,
  table,
} from "../cli/common.ts";
import { objectNameFor, uploadResumable, uploadStandard, useResumable } from "../cli/upload.ts";
import { SECRET_KEY } from "../local-stack/keys.ts";
import { connect, download, E2E, insertSentinel, Scope, SUPABASE_URL, waitFor } from "./support/stack.ts";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, CLI, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const show = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

Deno.test("cli: import --wait --json, status, list, rejects --out", E2E, async (t) => {
  const sql = connect();
  const scope = new Scope(sql, "cli");
  try {
    const table = await scope.table("cli_orders");
    await insertSentinel(sql, table, DUPLICATE_ID);
    const profile = `${scope.prefix}_profile`;
    await scope.profile({
      name: profile,
      pathPattern: `${scope.prefix}/%`,
      targetTable: table,
      toleratedRejectRate: 0.05,
    });
    const dir = await scope.tempDir();
    const file = `${dir}/orders.csv`;
    const manifest = await writeCsv(file, { rows: 400, seed: 11, badEvery: 100 });
    const object = scope.object("orders.csv");

    await t.step(
      "import --dry-run: validated with the counts, nothing written (standard and resumable)",
      async () => {
        for (const mode of ["--no-resumable", "--resumable"]) {
          const path = scope.object(`dry${mode}.csv`);
          const run = await cli(["import", file, "--path", path, "--dry-run", mode, "--wait", "--json"]);
          assert.equal(run.code, 0, show(run));
          const summary = JSON.parse(run.stdout.trim());
          assert.equal(summary.status, "validated", show(run));
          assert.deepEqual([summary.ok, summary.dry_run], [true, true]);
          assert.equal(summary.rows_loaded, manifest.goodRows);
          assert.equal(summary.rows_rejected, manifest.planted.length);
          const [{ count }] = await sql.unsafe(`select count(*)::int as count from ${table}`);
          assert.equal(count, 1, "only the sentinel row: nothing written");
          const status = await cli(["status", String(summary.job_id)]);
          assert.match(status.stdout, new RegExp(`^Job ${summary.job_id}: validated$`, "m"));
          assert.match(status.stdout, /^ {2}rows {5}\S+ valid \(dry run: none written\)/m);
        }
      },
    );

    let jobId = 0;
    await t.step("import --profile --wait --json: exit 0 and the exact counts", async () => {
      const run = await cli(["import", file, "--profile", profile, "--wait", "--json"]);
      assert.equal(run.code, 0, show(run));
      const summary = JSON.parse(run.stdout.trim());
      jobId = summary.job_id;
      assert.equal(summary.status, "succeeded_with_rejects", show(run));
      assert.equal(summary.ok, true);
      assert.equal(summary.object, object, "the object name is derived from the profile's pattern");
      assert.equal(summary.rows_loaded, manifest.goodRows);
      assert.equal(summary.rows_rejected, manifest.planted.length);
      assert.equal(summary.rows_parsed, manifest.goodRows + manifest.planted.length);
      assert.equal(summary.rejects_object, `${object}.rejects.csv`);
      assert.equal(run.stdout.trim().split("\n").length, 1, "one JSON line, nothing else on stdout");
      const [{ count }] = await sql.unsafe(`select count(*)::int as count from ${table} where id <> $1`, [
        DUPLICATE_ID,
      ]);
      assert.equal(count, manifest.goodRows);
    });

    await t.step("status JOB and list show the job", async () => {
      const status = await cli(["status", String(jobId)]);
      assert.equal(status.code, 0, show(status));
      assert.match(status.stdout, new RegExp(`^Job ${jobId}: succeeded_with_rejects`, "m"));
      assert.ok(status.stdout.includes(object), status.stdout);
      assert.match(status.stdout, /reject {3}line \d+/);
      const json = JSON.parse((await cli(["status", String(jobId), "--json"])).stdout);
      assert.equal(json.rows_loaded, manifest.goodRows);
      const list = await cli(["list", "--limit", "200"]);
      assert.equal(list.code, 0, show(list));
      assert.match(
        list.stdout,
        new RegExp(`^${jobId}\\s+succeeded_with_rejects\\s+100\\.0\\s.*${object}$`, "m"),
      );
      const listed = JSON.parse((await cli(["list", "--json", "--status", "succeeded_with_rejects"])).stdout);
      assert.ok(listed.some((j: { job_id: number }) => j.job_id === jobId));
      const overview = await cli(["status"]);
      assert.equal(overview.code, 0, show(overview));
      assert.match(overview.stdout, /^Pipeline: (healthy|degraded|unhealthy)$/m);
    });

    await t.step("rejects --out writes the CSV, from Storage or from the table", async () => {
      for (const extra of [[], ["--from-db"]]) {
        const out = `${dir}/rejects${extra.length}.csv`;
        const run = await cli(["rejects", String(jobId), "--out", out, ...extra]);
        assert.equal(run.code, 0, show(run));
        assert.match(run.stdout, extra.length ? /from csv_import\.rejects/ : /from csv-uploads\//);
        const records: string[][] = parse(await Deno.readTextFile(out));
        assert.deepEqual(records[0], ["line_number", "column", "reason", "raw_record"]);
        assert.deepEqual(
          records.slice(1).map((r) => Number(r[0])),
          manifest.planted.map((p) => p.line).sort((a, b) => a - b),
          "one record per reject, in line order",
        );
      }
    });
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test("cli: a bad file exits non-zero with the reason", E2E, async () => {
  const sql = connect();
  const scope = new Scope(sql, "cli_bad");
  try {
    const table = await scope.table("cli_bad");
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table });
    const dir = await scope.tempDir();
    const file = `${dir}/missing.csv`;
    await Deno.writeTextFile(file, "id,country\n1,DE\n");
    const object = scope.object("missing.csv");
    const run = await cli(["import", file, "--path", object, "--wait", "--json"]);
    assert.equal(run.code, 1, show(run));
    const summary = JSON.parse(run.stdout.trim());
    assert.equal(summary.status, "failed");
    assert.match(summary.error, /lacks required columns/);
    assert.match(
      run.stderr,
      new RegExp(`csv-import: Job ${summary.job_id} failed: .*lacks required columns`),
    );

    const noProfile = await cli(["import", file, "--path", `${scope.prefix}-elsewhere/x.csv`]);
    assert.equal(noProfile.code, 1, show(noProfile));
    assert.match(noProfile.stderr, /No import profile matches/);
    const gone = await cli(["import", `${dir}/nope.csv`]);
    assert.equal(gone.code, 1, show(gone));
    assert.match(gone.stderr, /nope\.csv does not exist/);

    // The hosted path for small files: read whole and sent with its length.
    const buffered = scope.object("buffered.csv");
    const sizes: number[] = [];
    await uploadStandard({
      supabaseUrl: SUPABASE_URL,
      key: SECRET_KEY,
      bucket: "csv-uploads",
      objectName: buffered,
      path: file,
      size: (await Deno.stat(file)).size,
      upsert: false,
      withLength: true,
      onProgress: (n) => sizes.push(n),
    });
    assert.equal(await download(buffered), await Deno.readTextFile(file));
    assert.deepEqual(sizes, [(await Deno.stat(file)).size]);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test("cli: cancel and retry round trip", E2E, async () => {
  const sql = connect();
  const scope = new Scope(sql, "cli_redrive");
  try {
    const table = await scope.table("cli_redrive");
    // Small chunks, one at a time: the job lasts long enough to be cancelled in the middle.
    await scope.profile({
      pathPattern: `${scope.prefix}/%`,
      targetTable: table,
      chunkSizeBytes: 4096,
      maxParallelChunks: 1,
    });
    const dir = await scope.tempDir();
    const file = `${dir}/orders.csv`;
    const manifest = await writeCsv(file, { rows: 3000, seed: 5, badEvery: 0 });
    const object = scope.object("orders.csv");

    const started = await cli(["import", file, "--path", object, "--json"]);
    assert.equal(started.code, 0, show(started));
    const jobId: number = JSON.parse(started.stdout).job_id;
    await waitFor("a load chunk to finish", async () => {
      const [row] = await sql`select 1 from csv_import.chunks where job_id = ${jobId} and kind = 'load'
                               and status = 'succeeded' limit 1`;
      return row ? true : undefined;
    }, 60_000);

    const cancelled = await cli(["cancel", String(jobId), "--reason", "Operator test"]);
    assert.equal(cancelled.code, 0, show(cancelled));
    assert.match(cancelled.stdout, new RegExp(`^Job ${jobId} cancelled \\(\\d+ chunks stopped\\)`));
    const again = await cli(["cancel", String(jobId)]);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /already cancelled/);
    const [job] = await sql`select status::text, error from csv_import.jobs where id = ${jobId}`;
    assert.deepEqual({ ...job }, { status: "cancelled", error: "Operator test" });
    const status = await cli(["status", String(jobId)]);
    assert.match(status.stdout, new RegExp(`^Job ${jobId}: cancelled — Operator test`, "m"));

    const retried = await cli(["retry", String(jobId), "--wait", "--json"]);
    assert.equal(retried.code, 0, show(retried));
    const summary = JSON.parse(retried.stdout.trim());
    assert.equal(summary.status, "succeeded", show(retried));
    assert.equal(summary.rows_loaded, manifest.goodRows);
    const [{ count, ids }] = await sql.unsafe(
      `select count(*)::int as count, count(distinct id)::int as ids from ${table}`,
    );
    assert.deepEqual([count, ids], [manifest.goodRows, manifest.goodRows], "every row exactly once");

    const refused = await cli(["retry", String(jobId)]);
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.stderr, /Job \d+ is succeeded: only a failed or cancelled job can be retried/);
    const done = await cli(["cancel", String(jobId)]);
    assert.equal(done.code, 1, show(done));
    assert.match(done.stderr, /has already finished \(succeeded\); nothing to cancel/);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test("cli: profiles add, list, show, remove", E2E, async () => {
  const sql = connect();
  const scope = new Scope(sql, "cli_profiles");
  try {
    const table = await scope.table("cli_profiles");
    const name = `${scope.prefix}_p`;
    scope.profiles.push(name);
    const added = await cli([
      "profiles",
      "add",
      "--name",
      name,
      "--pattern",
      `${scope.prefix}/%`,
      "--table",
      table,
      "--on-conflict",
      "upsert",
      "--conflict-columns",
      "id",
      "--tolerated-reject-rate",
      "0.02",
      "--no-header",
      "--alias",
      "email=E-mail|Mail address",
      "--write-as",
      "uploader",
      "--max-rejects",
      "7",
      "--reject-rate-after-rows",
      "5000",
      "--encoding",
      "windows-1252",
      "--dry-run",
    ]);
    assert.equal(added.code, 0, show(added));
    const shown = JSON.parse((await cli(["profiles", "show", name])).stdout);
    assert.equal(shown.target_table, table);
    assert.equal(shown.on_conflict, "upsert");
    assert.deepEqual(shown.conflict_columns, ["id"]);
    assert.equal(Number(shown.tolerated_reject_rate), 0.02);
    assert.equal(shown.has_header, false);
    assert.deepEqual(shown.column_aliases, { email: ["E-mail", "Mail address"] });
    assert.equal(shown.write_as, "uploader");
    assert.deepEqual([shown.max_rejects, shown.reject_rate_after_rows].map(String), ["7", "5000"]);
    assert.equal(shown.encoding, "windows-1252");
    assert.equal(shown.dry_run, true);
    const zeroRows = await cli([
      "profiles",
      "add",
      "--name",
      `${name}_3`,
      "--pattern",
      "y/%",
      "--table",
      table,
      "--reject-rate-after-rows",
      "0",
    ]);
    assert.equal(zeroRows.code, 2, show(zeroRows));
    assert.match(zeroRows.stderr, /must be a positive number/);
    const list = await cli(["profiles", "list"]);
    assert.match(list.stdout, new RegExp(`^${name}\\s+csv-uploads\\s+${scope.prefix}/%\\s+${table}`, "m"));
    const dup = await cli(["profiles", "add", "--name", name, "--pattern", "x/%", "--table", table]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists/);
    const noTable = await cli([
      "profiles",
      "add",
      "--name",
      `${name}_2`,
      "--pattern",
      "x/%",
      "--table",
      "public.nope",
    ]);
    assert.equal(noTable.code, 1);
    assert.match(noTable.stderr, /Target table public\.nope does not exist/);
    const perFile = await cli([
      "profiles",
      "add",
      "--name",
      `${name}_4`,
      "--pattern",
      `${scope.prefix}/new/%`,
      "--create-table",
      "--schema",
      "public",
    ]);
    assert.equal(perFile.code, 0, show(perFile));
    assert.match(perFile.stdout, /→ a table per file in public \(made from the file if missing\)/);
    const perFileShown = JSON.parse((await cli(["profiles", "show", `${name}_4`])).stdout);
    assert.deepEqual([perFileShown.target_table, perFileShown.target_schema, perFileShown.create_table], [
      null,
      "public",
      true,
    ]);
    assert.match(
      (await cli(["profiles", "list"])).stdout,
      new RegExp(
        `^${name}_4\\s+csv-uploads\\s+${scope.prefix}/new/%\\s+public\\.<file> \\(made if missing\\)`,
        "m",
      ),
    );
    assert.equal((await cli(["profiles", "remove", `${name}_4`])).code, 0);
    const neither = await cli(["profiles", "add", "--name", `${name}_5`, "--pattern", "w/%"]);
    assert.equal(neither.code, 2, show(neither));
    assert.match(neither.stderr, /needs --table \(or --create-table with --schema/);
    const removed = await cli(["profiles", "remove", name]);
    assert.equal(removed.code, 0, show(removed));
    assert.equal((await cli(["profiles", "show", name])).code, 1);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

/** Terminal controls a file (or an object name, or an error quoting one) could carry into the operator's terminal. */
const HOSTILE =
  "\x1b[2J\x1b[H\x1b]0;pwned\x07\rFAKE: succeeded\b\x7f\u009b31m\u202egnp.exe\u2066\nnext line\there";
/** Raw controls that must never reach stdout or stderr (a newline only as the CLI's own line end). */
const RAW_CONTROLS =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

Deno.test("cli: status, list and errors print control characters from the data escaped", E2E, async () => {
  const sql = connect();
  const scope = new Scope(sql, "cli_escape");
  try {
    // A failed job with hostile text everywhere the CLI prints data from: object name, target, error, a chunk's
    // last error, rejects (column, reason, raw record).
    const object = `${scope.prefix}/${HOSTILE}.csv`;
    const [{ id }] = await sql`
      insert into csv_import.jobs (bucket_id, object_name, object_version, target_table, status, error, finished_at,
                                   rows_parsed, rows_rejected, chunk_count)
      values ('csv-uploads', ${object}, ${scope.prefix}, ${"public." + HOSTILE}, 'failed', ${
      "Job error " + HOSTILE
    },
              now(), 2, 2, 1)
      returning id::int`;
    scope.defer(() => sql`delete from csv_import.jobs where id = ${id}`);
    // Superseded by itself: retry refuses it with a message naming the object, and changes nothing.
    await sql`update csv_import.jobs set superseded_by = id where id = ${id}`;
    const dir = await scope.tempDir();
    await Deno.writeTextFile(`${dir}/a.csv`, "id\n1\n");
    const [{ chunk }] = await sql`
      insert into csv_import.chunks (job_id, kind, chunk_index, start_offset, end_offset, status, last_error)
      values (${id}, 'load', 0, 0, 100, 'dead', ${"Chunk error " + HOSTILE}) returning id::int as chunk`;
    await sql`
      insert into csv_import.rejects (job_id, chunk_id, line_number, column_name, reason, raw_record)
      values (${id}, ${chunk}, 2, ${HOSTILE}, ${"invalid input: " + HOSTILE}, ${HOSTILE}),
             (${id}, ${chunk}, 3, null, ${"\r\x1b[1A\x1b[2K"}, 'x')`;

    const runs = {
      status: await cli(["status", String(id)]),
      statusJson: await cli(["status", String(id), "--json"]),
      list: await cli(["list", "--limit", "500", "--status", "failed"]),
      listJson: await cli(["list", "--limit", "500", "--status", "failed", "--json"]),
      retry: await cli(["retry", String(id)]),
      importUnmatched: await cli(["import", `${dir}/a.csv`, "--path", `${scope.prefix}/${HOSTILE}`]),
    };
    for (const [name, run] of Object.entries(runs)) {
      for (const [stream, text] of [["stdout", run.stdout], ["stderr", run.stderr]]) {
        const at = text.search(RAW_CONTROLS);
        assert.equal(
          at,
          -1,
          `${name} ${stream}: raw control U+${
            text.codePointAt(at)?.toString(16).padStart(4, "0")
          } at ${at}: ${JSON.stringify(text)}`,
        );
      }
    }
    const escaped =
      "\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\rFAKE: succeeded\\x08\\x7f\\u009b31m\\u202egnp.exe\\u2066" +
      "\\nnext line\\there";
    const { status, statusJson, list, listJson, retry, importUnmatched } = runs;
    assert.equal(status.code, 0, show(status));
    assert.ok(status.stdout.includes(`Job ${id}: failed — Job error ${escaped}`), status.stdout);
    assert.ok(status.stdout.includes(`object   csv-uploads/${scope.prefix}/${escaped}.csv`), status.stdout);
    assert.ok(status.stdout.includes(`target   public.${escaped}`), status.stdout);
    assert.ok(status.stdout.includes(`load/dead 1 (Chunk error ${escaped})`), status.stdout);
    assert.ok(
      status.stdout.includes(`reject   line 2 (${escaped}): invalid input: ${escaped}`),
      status.stdout,
    );
    assert.ok(status.stdout.includes("reject   line 3: \\r\\x1b[1A\\x1b[2K"), status.stdout);
    assert.equal(
      status.stdout.split("\n").filter((l) => l.includes("FAKE")).length,
      5,
      "no value adds a line",
    );
    // JSON keeps the exact values (escaped the JSON way).
    const json = JSON.parse(statusJson.stdout);
    assert.equal(json.object_name, object);
    assert.equal(json.error, "Job error " + HOSTILE);
    assert.equal(json.first_rejects[0].reason, "invalid input: " + HOSTILE);
    assert.equal(list.code, 0, show(list));
    const line = list.stdout.split("\n").find((l) => l.startsWith(`${id} `));
    assert.ok(line?.endsWith(`${scope.prefix}/${escaped}.csv`), list.stdout);
    assert.ok(JSON.parse(listJson.stdout).some((j: { object_name: string }) => j.object_name === object));
    // Errors naming the object: the database's and the CLI's own.
    assert.equal(retry.code, 1, show(retry));
    assert.ok(retry.stderr.includes(`a newer version of ${scope.prefix}/${escaped}.csv`), show(retry));
    assert.equal(importUnmatched.code, 1, show(importUnmatched));
    assert.ok(
      importUnmatched.stderr.includes(`No import profile matches "${scope.prefix}/${escaped}"`),
      show(importUnmatched),
    );
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test("cli: usage and configuration errors exit 2", async () => {
  const missing = await cli(["import"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing required argument 'file'/);
  const badId = await cli(["status", "abc"]);
  assert.equal(badId.code, 2);
  const hosted = await cli(["list"], {
    SUPABASE_URL: "https://example.supabase.co",
    SUPABASE_SECRET_KEY: "",
    SUPABASE_SERVICE_ROLE_KEY: "",
    SUPABASE_SERVICE_KEY: "",
  });
  assert.equal(hosted.code, 2);
  assert.match(hosted.stderr, /No service key: set SUPABASE_SECRET_KEY/);
});

Deno.test("cli: the local stack publishes the CLI's local defaults in stack.env", E2E, () => {
  const published = readLocalStackEnv(Deno.env.toObject());
  assert.equal(published.SUPABASE_SECRET_KEY, SECRET_KEY, localStackEnvFile(Deno.env.toObject()));
  assert.equal(published.SUPABASE_URL, SUPABASE_URL);
  const cfg = loadCliConfig({}, published);
  assert.equal(cfg.supabaseUrl, SUPABASE_URL);
  assert.equal(cfg.key, SECRET_KEY);
});

Deno.test("cli helpers: configuration, object names, aliases, upload method", async () => {
  // Local defaults come from what the local stack published (stack.env), never from local-stack/ code.
  const local = loadCliConfig({}, { SUPABASE_SECRET_KEY: SECRET_KEY });
  assert.equal(local.supabaseUrl, "http://127.0.0.1:54321");
  assert.equal(local.dbUrl, "postgresql://postgres:postgres@127.0.0.1:54322/postgres");
  assert.equal(local.key, SECRET_KEY);
  assert.equal(local.local, true);
  assert.throws(() => loadCliConfig({}, {}), {
    message: /No service key: set SUPABASE_SECRET_KEY.*start the local stack \(bash scripts\/stack\.sh up\)/,
  });
  const stackEnv = {
    SUPABASE_URL: "http://127.0.0.1:55001",
    SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:55002/postgres",
    SUPABASE_SECRET_KEY: "sb_secret_published",
  };
  assert.deepEqual(loadCliConfig({}, stackEnv), {
    supabaseUrl: "http://127.0.0.1:55001",
    dbUrl: "postgresql://postgres:postgres@127.0.0.1:55002/postgres",
    key: "sb_secret_published",
    bucket: "csv-uploads",
    local: true,
  });
  // Another local API than the one that published: its key (the same for every local stack), not its database.
  const other = loadCliConfig({ SUPABASE_URL: "http://localhost:54321" }, stackEnv);
  assert.equal(other.dbUrl, "postgresql://postgres:postgres@127.0.0.1:54322/postgres");
  assert.equal(other.key, "sb_secret_published");
  // A hosted project never gets the published local values.
  assert.throws(
    () =>
      loadCliConfig(
        { SUPABASE_URL: "https://ref.supabase.co", SUPABASE_DB_URL: "postgresql://h/p" },
        stackEnv,
      ),
    { message: /^No service key: set SUPABASE_SECRET_KEY.*API keys\)$/ },
  );
  const stateDir = await Deno.makeTempDir({ prefix: "cli_stack_env_" });
  try {
    assert.deepEqual(readLocalStackEnv({ LOCAL_STATE_DIR: stateDir }), {}, "no file: no defaults");
    await Deno.writeTextFile(
      `${stateDir}/stack.env`,
      "SUPABASE_URL=http://127.0.0.1:1\nSUPABASE_SECRET_KEY=k\n",
    );
    assert.deepEqual(readLocalStackEnv({ LOCAL_STATE_DIR: stateDir }), {
      SUPABASE_URL: "http://127.0.0.1:1",
      SUPABASE_SECRET_KEY: "k",
    });
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
  const hosted = loadCliConfig({
    SUPABASE_URL: "https://ref.supabase.co/",
    SUPABASE_SERVICE_ROLE_KEY: "k1",
    SUPABASE_DB_URL: "postgresql://u:p@h:5432/postgres",
  });
  assert.deepEqual(hosted, {
    supabaseUrl: "https://ref.supabase.co",
    dbUrl: "postgresql://u:p@h:5432/postgres",
    key: "k1",
    bucket: "csv-uploads",
    local: false,
  });
  assert.equal(loadCliConfig({ SUPABASE_SECRET_KEY: "s", SUPABASE_SERVICE_ROLE_KEY: "r" }).key, "s");
  assert.throws(() => loadCliConfig({ SUPABASE_URL: "https://ref.supabase.co", SUPABASE_SECRET_KEY: "s" }), {
    message: /SUPABASE_DB_URL is not set: use the project's connection string/,
  });

  const names: [string, string, string | null][] = [
    ["orders/%", "a.csv", "orders/a.csv"],
    ["%", "a.csv", "a.csv"],
    ["%.csv", "a.csv", "a.csv"],
    ["%.csv", "a.txt", "a.txt.csv"],
    ["in/%/x.csv", "a.csv", "in/a.csv/x.csv"],
    ["e2e_cli_1/%", "a.csv", "e2e_cli_1/a.csv"],
    ["in/100\\%/%", "a.csv", "in/100%/a.csv"],
    ["exact.csv", "exact.csv", "exact.csv"],
    ["exact.csv", "other.csv", null],
  ];
  for (const [pattern, file, expected] of names) {
    assert.equal(objectNameFor(pattern, file), expected, pattern);
  }

  assert.deepEqual(parseAlias("email=E-mail|Mail address"), ["email", ["E-mail", "Mail address"]]);
  assert.throws(() => parseAlias("email"));
  assert.throws(() => parseAlias("=x"));

  const MB = 1024 * 1024;
  assert.equal(useResumable(7 * MB, undefined), true, "over 6 MB (hosted and local: the stack serves TUS)");
  assert.equal(useResumable(6 * MB, undefined), false, "6 MB");
  assert.equal(useResumable(1, true), true, "forced");
  assert.equal(useResumable(7 * MB, false), false, "forced off");
  assert.equal(
    printable("a\x1b[2J\r\n\t\x00\x7f\u0085\u202e\u2069é✓"),
    "a\\x1b[2J\\r\\n\\t\\x00\\x7f\\u0085\\u202e\\u2069é✓",
  );
  assert.equal(safe`id ${"\x1b[31m"} ok\n`, "id \\x1b[31m ok\n", "literal text stays, values are escaped");
  assert.equal(table(["A"], [["x\ny"]]), "A\nx\\ny");
  const value = { s: "\x1b\u009b\u202e\n", n: [1] };
  assert.deepEqual(JSON.parse(printableJson(value, 2)), value);
  assert.doesNotMatch(printableJson(value), RAW_CONTROLS);
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
});

Deno.test("cli: resumable upload speaks TUS in pieces, with the Storage metadata and headers", async () => {
  const uploads = new Map<
    string,
    { length: number; data: Uint8Array[]; offset: number; meta: Record<string, string> }
  >();
  const seen: { method: string; auth: string | null; apikey: string | null; upsert: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    seen.push({
      method: req.method,
      auth: req.headers.get("authorization"),
      apikey: req.headers.get("apikey"),
      upsert: req.headers.get("x-upsert"),
    });
    const tusHeaders = { "Tus-Resumable": "1.0.0" };
    if (req.method === "POST" && url.pathname === "/storage/v1/upload/resumable") {
      const meta = Object.fromEntries(
        (req.headers.get("upload-metadata") ?? "").split(",").map((pair) => {
          const [k, v] = pair.split(" ");
          return [k, v ? atob(v) : ""];
        }),
      );
      const id = crypto.randomUUID();
      const body = new Uint8Array(await req.arrayBuffer());
      uploads.set(id, {
        length: Number(req.headers.get("upload-length")),
        data: [body],
        offset: body.length,
        meta,
      });
      return new Response(null, {
        status: 201,
        headers: {
          ...tusHeaders,
          Location: `/storage/v1/upload/resumable/${id}`,
          "Upload-Offset": String(body.length),
        },
      });
    }
    const upload = uploads.get(url.pathname.split("/").pop()!);
    if (!upload) return new Response("not found", { status: 404 });
    if (req.method === "HEAD") {
      return new Response(null, {
        headers: {
          ...tusHeaders,
          "Upload-Offset": String(upload.offset),
          "Upload-Length": String(upload.length),
        },
      });
    }
    if (req.method === "PATCH") {
      if (Number(req.headers.get("upload-offset")) !== upload.offset) {
        return new Response("conflict", { status: 409 });
      }
      const body = new Uint8Array(await req.arrayBuffer());
      upload.data.push(body);
      upload.offset += body.length;
      return new Response(null, {
        status: 204,
        headers: { ...tusHeaders, "Upload-Offset": String(upload.offset) },
      });
    }
    return new Response("method not allowed", { status: 405 });
  });
  const dir = await Deno.makeTempDir();
  try {
    const bytes = new Uint8Array(200_000).map((_, i) => (i * 7919) % 251);
    const path = `${dir}/big.csv`;
    await Deno.writeFile(path, bytes);
    const progress: number[] = [];
    const base = `http://127.0.0.1:${server.addr.port}`;
    await uploadResumable({
      supabaseUrl: base,
      key: "sb_secret_test",
      bucket: "csv-uploads",
      objectName: "big/file.csv",
      path,
      size: bytes.length,
      upsert: true,
      chunkSize: 64 * 1024,
      onProgress: (sent) => progress.push(sent),
    });
    assert.equal(uploads.size, 1);
    const [upload] = uploads.values();
    const received = new Uint8Array(await new Blob(upload.data as BlobPart[]).arrayBuffer());
    assert.equal(upload.length, bytes.length);
    assert.deepEqual(received, bytes, "the bytes arrive whole and in order");
    assert.ok(upload.data.length >= 4, `sent in pieces of at most 64 KiB (${upload.data.length})`);
    assert.ok(upload.data.every((piece) => piece.length <= 64 * 1024));
    assert.deepEqual(
      {
        bucketName: upload.meta.bucketName,
        objectName: upload.meta.objectName,
        contentType: upload.meta.contentType,
      },
      { bucketName: "csv-uploads", objectName: "big/file.csv", contentType: "text/csv" },
    );
    // An sb_ key travels as apikey only: hosted's gateway refuses it as Bearer (platform/auth.ts keyHeaders).
    assert.ok(seen.every((r) => r.auth === null && r.apikey === "sb_secret_test"), JSON.stringify(seen[0]));
    assert.equal(seen[0].upsert, "true");
    assert.equal(progress.at(-1), bytes.length);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
