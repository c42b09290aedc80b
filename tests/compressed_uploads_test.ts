/**
 * Compressed uploads (issue 16) against the real local stack: `.csv.gz` (one member and several) and a `.zip`
 * holding one CSV (deflate and stored) load exactly what `psql \copy` loads from the same data uncompressed: the
 * same rows (checksums), the same rejected lines with their raw text (refused by the converter, and by the database:
 * a duplicate key, whose raw text is inflated again from the chunk's checkpoint), with quoted line breaks and
 * multibyte characters across checkpoint and chunk edges (16 KiB chunks: every range edge is a deflate block
 * boundary inside the data, many at odd bit offsets). And what must fail does, with a message naming what and
 * where: a ZIP archive of two files or an Excel workbook, a truncated or corrupt stream, a decompression bomb, data
 * larger than the profile's max_file_bytes. A chain killed or cancelled mid-way resumes from its last checkpoint:
 * every row exactly once.
 */
import assert from "node:assert/strict";
import { concat } from "../supabase/functions/_shared/compression/test_support.ts";
import { functionEvents } from "./support/faults.ts";
import {
  checksum,
  clearStorageFaults,
  connect,
  E2E,
  killFunctionWorkers,
  psqlCopy,
  Scope,
  setStorageFaults,
  type Sql,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";

const COLUMNS = "id int primary key, name text, note text, amount numeric(12,2)";
const NAMES = ["Zoë", "漢字テスト", "naïve café", "😀 emoji", "plain", "Ærøskøbing", "ñandú"];

/** Ids the tables hold before the load (taken): a row of the file with one is refused by the database. */
const TAKEN_FROM = 10_000_000;

interface Data {
  text: string;
  /** Lines (1-based, the header is line 1) the load must reject, in order. */
  rejected: number[];
}

/**
 * `rows` rows; every 997th has a bad amount, every 1009th has an id the table already holds (TAKEN_FROM + i: the
 * database refuses it; which of two rows of the file with one id would win depends on which chunk commits first).
 */
function csv(rows: number, seed = 7): Data {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const lines = ["id,name,note,amount"];
  const rejected: number[] = [];
  let line = 2;
  for (let i = 1; i <= rows; i++) {
    const name = NAMES[Math.floor(next() * NAMES.length)] + " " + Math.floor(next() * 1e6);
    const note = next() < 0.2
      ? `"multi\nline, ""quoted"" ${NAMES[i % NAMES.length]}\n${"x".repeat(Math.floor(next() * 40))}"`
      : "n" + "é".repeat(Math.floor(next() * 20));
    const bad = i % 997 === 0;
    const duplicate = i % 1009 === 0;
    const id = duplicate ? TAKEN_FROM + i : i;
    const amount = bad ? "12x.5" : (next() * 1e5).toFixed(2);
    lines.push(`${id},${name},${note},${amount}`);
    if (bad || duplicate) rejected.push(line);
    line += note.split("\n").length;
  }
  return { text: lines.join("\n") + "\n", rejected };
}

async function run(command: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** The data written as data.csv in `dir`, and its \copy reference loaded. */
async function prepare(scope: Scope, data: Data, reference: string): Promise<string> {
  const dir = await scope.tempDir();
  await Deno.writeTextFile(`${dir}/data.csv`, data.text);
  // \copy stops at the first bad row: the reference gets the good rows only.
  await Deno.writeTextFile(`${dir}/good.csv`, goodRecords(data));
  await psqlCopy(reference, `${dir}/good.csv`);
  const table = reference.replace(/_ref$/, "_t");
  for (const t of [table, reference]) {
    await scope.sql.unsafe(
      `insert into ${t} select ${TAKEN_FROM} + i, 'taken', null, 0 from generate_series(1009, 1000000, 1009) i`,
    );
  }
  return dir;
}

/** The file without its rejected records (records may span lines: quoted line breaks). */
function goodRecords(data: Data): string {
  const lines = data.text.split("\n");
  const out: string[] = [];
  let line = 1;
  let record: string[] = [];
  let quotes = 0;
  for (const text of lines.slice(0, -1)) {
    record.push(text);
    quotes += (text.match(/"/g) ?? []).length;
    if (quotes % 2 === 0) {
      const first = line - record.length + 1;
      if (!data.rejected.includes(first)) out.push(record.join("\n"));
      record = [];
      quotes = 0;
    }
    line++;
  }
  return out.join("\n") + "\n";
}

async function expectLoaded(
  sql: Sql,
  scope: Scope,
  name: string,
  table: string,
  reference: string,
  data: Data,
) {
  const job = await waitForJob(sql, name, 180_000);
  assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
  assert.ok(Number(job.chunk_count) >= 8, `several load chunks: ${job.chunk_count}`);
  const [got, want] = [await checksum(sql, table), await checksum(sql, reference)];
  if (got.sum !== want.sum) {
    const diff = await sql.unsafe(
      `select 'missing' as side, r.* from ${reference} r left join ${table} t using (id, name, note, amount)
       where t.id is null union all select 'extra', t.* from ${table} t left join ${reference} r
       using (id, name, note, amount) where r.id is null order by 2 limit 6`,
    );
    assert.fail(
      `job ${job.id}: ${JSON.stringify(got)} vs \\copy ${JSON.stringify(want)}: ${JSON.stringify(diff)}`,
    );
  }
  const rejects = await sql<{ line_number: string; raw_record: string; reason: string }[]>`
    select line_number, raw_record, reason from csv_import.rejects where job_id = ${job.id} order by line_number`;
  assert.deepEqual(rejects.map((r) => Number(r.line_number)), data.rejected, "the rejected lines");
  const lines = data.text.split("\n");
  for (const r of rejects) {
    assert.ok(r.raw_record.startsWith(lines[Number(r.line_number) - 1]), `line ${r.line_number}: raw text`);
  }
  assert.ok(rejects.some((r) => /duplicate key/.test(r.reason)), "a row the database refused");
  const [progress] = await sql<
    { percent: string; data_bytes_total: string; data_size_known: boolean; compression: string }[]
  >`select percent, data_bytes_total, data_size_known, compression from csv_import.job_progress
    where job_id = ${job.id}`;
  assert.equal(Number(progress.percent), 100);
  assert.equal(progress.data_size_known, true);
  const [{ data_size, data_start }] = await sql<{ data_size: string; data_start: string }[]>`
    select data_size, data_start from csv_import.jobs where id = ${job.id}`;
  assert.equal(Number(data_size), new TextEncoder().encode(data.text).byteLength, "the decompressed size");
  assert.equal(Number(progress.data_bytes_total), Number(data_size) - Number(data_start));
  void scope;
  return { job, compression: progress.compression };
}

/** The pipeline's table and \copy's, and a profile loading this scope's uploads into the first in `chunkSize` ranges. */
async function targets(scope: Scope, chunkSize: number): Promise<{ table: string; reference: string }> {
  const { table, reference } = await scope.tableAndReference(COLUMNS);
  await scope.profile({
    pathPattern: `${scope.prefix}/%`,
    targetTable: table,
    chunkSizeBytes: chunkSize,
    toleratedRejectRate: 1,
  });
  return { table, reference };
}

async function withScope(label: string, fn: (sql: Sql, scope: Scope) => Promise<void>): Promise<void> {
  const sql = connect();
  const scope = new Scope(sql, label);
  try {
    await fn(sql, scope);
  } finally {
    await scope.dispose();
    await sql.end();
  }
}

Deno.test(
  { name: "a .csv.gz loads as \\copy loads its data, resuming at odd bit offsets", ...E2E },
  async () => {
    await withScope("gz", async (sql, scope) => {
      const { table, reference } = await targets(scope, 16 * 1024);
      const data = csv(40_000);
      const dir = await prepare(scope, data, reference);
      await run("gzip", ["-6", "-k", "data.csv"], dir);
      // A succeeded job's checkpoints are dropped (migration 20261211000200): a trigger of the test's own keeps a
      // copy of each as the chain stores it.
      const seen = `${scope.prefix}_checkpoints`;
      await sql.unsafe(`
        create table public.${seen} (job_id bigint, out_offset bigint, bits smallint);
        create function public.${seen}_copy() returns trigger language plpgsql as $f$
        begin insert into public.${seen} values (new.job_id, new.out_offset, new.bits); return null; end $f$;
        create trigger ${seen} after insert on csv_import.inflate_checkpoints
          for each row execute function public.${seen}_copy()`);
      scope.defer(() =>
        sql.unsafe(`drop trigger if exists ${seen} on csv_import.inflate_checkpoints;
          drop function if exists public.${seen}_copy(); drop table if exists public.${seen}`)
      );
      const name = scope.object("orders.csv.gz");
      await upload(name, await Deno.readFile(`${dir}/data.csv.gz`));
      const { job, compression } = await expectLoaded(sql, scope, name, table, reference, data);
      assert.equal(compression, "gzip");
      const [cps] = await sql.unsafe<{ n: string; odd: string }[]>(
        `select count(*) as n, count(*) filter (where bits <> 0) as odd from public.${seen} where job_id = $1`,
        [job.id],
      );
      assert.ok(Number(cps.n) >= 7, `checkpoints at the chunk edges: ${cps.n}`);
      assert.ok(Number(cps.odd) >= 1, "some resume inside a byte");
      const [kept] = await sql<{ n: number }[]>`
        select count(*)::int as n from csv_import.inflate_checkpoints where job_id = ${job.id}`;
      assert.equal(kept.n, 0, "the succeeded job's checkpoints are dropped");
      // The CLI shows how far the chain read the compressed object.
      const status = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", "deno.json", "cli/main.ts", "status", String(job.id)],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const printed = new TextDecoder().decode(status.stdout);
      assert.match(printed, /compressed gzip: ([\d.]+ KiB) of \1 inflated, [\d.]+ MiB of data\n/, printed);
      assert.ok(printed.includes("progress 100%"), printed);
    });
  },
);

for (
  const { label, memberBytes, engine } of [
    // Members every ten chunk sizes (as `split` + `gzip` + `cat` make them, cut inside records and characters): the
    // chain cuts inside members in pako, ranges end where members start, and those loads inflate their member's rest
    // natively to its trailer.
    {
      label: "every ten chunk sizes",
      memberBytes: 10 * 16 * 1024,
      engine: /^members\+pako: a member of \d+ more bytes$/,
    },
    // Small members (bgzip-like, several per range): the chain and the loads go member by member natively.
    { label: "of 5,000 bytes", memberBytes: 5000, engine: /^members$/ },
  ]
) {
  Deno.test(
    { name: `a multi-member .csv.gz (members ${label}) loads across its members`, ...E2E },
    async () => {
      await withScope("gz_multi", async (sql, scope) => {
        const { table, reference } = await targets(scope, 16 * 1024);
        const data = csv(30_000, 11);
        const dir = await prepare(scope, data, reference);
        await run("split", ["-a", "4", "-b", String(memberBytes), "data.csv", "part."], dir);
        const parts = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("part."))
          .sort();
        assert.ok(parts.length >= 4);
        await run("gzip", ["-1", ...parts], dir);
        const members = await Promise.all(parts.map((part) => Deno.readFile(`${dir}/${part}.gz`)));
        const name = scope.object("multi.csv.gz");
        await upload(name, concat(members));
        const { job } = await expectLoaded(sql, scope, name, table, reference, data);
        // How they inflated, from the functions' log: the chain's engine, and loads whose ranges end at a later
        // member took whole members natively (a fallback to pako would load the same rows, only slower).
        const events = await waitFor("the job's chunk lines", async () => {
          const lines = (await functionEvents(job)).filter((e) =>
            e.event === "chunk_loaded" || e.event === "chunk_inflated"
          );
          return lines.filter((e) => e.event === "chunk_loaded").length >= Number(job.chunk_count)
            ? lines
            : undefined;
        }, 10_000);
        const chain = events.filter((e) => e.event === "chunk_inflated" || e.event === "chunk_yielded");
        assert.ok(chain.length >= 1);
        for (const step of chain) {
          assert.match((step.inflate as { engine: string }).engine, engine, JSON.stringify(step));
        }
        const legs = events.filter((e) => e.event === "chunk_loaded").map((e) =>
          e.inflate as Record<string, number>
        );
        assert.equal(legs.reduce((n, l) => n + l.members_fallback, 0), 0, JSON.stringify(legs));
        const native = legs.reduce((n, l) => n + l.members, 0);
        // Every range but the last ends at a member (small members), or every tenth (big ones).
        const atMembers = memberBytes < 16 * 1024 ? Number(job.chunk_count) - 1 : 3;
        assert.ok(native >= atMembers, `native member legs: ${native} of ${job.chunk_count} loads`);
      });
    },
  );
}

for (const method of ["deflate", "stored"] as const) {
  Deno.test({ name: `a .zip holding one CSV (${method}) loads as \\copy loads it`, ...E2E }, async () => {
    await withScope(`zip_${method}`, async (sql, scope) => {
      const { table, reference } = await targets(scope, 16 * 1024);
      const data = csv(30_000, 13);
      const dir = await prepare(scope, data, reference);
      await Deno.mkdir(`${dir}/__MACOSX`);
      await Deno.writeTextFile(`${dir}/__MACOSX/._data.csv`, "resource fork");
      await run("zip", [
        "-q",
        method === "stored" ? "-0" : "-6",
        "export.zip",
        "data.csv",
        "__MACOSX/._data.csv",
      ], dir);
      const name = scope.object("export.zip");
      await upload(name, await Deno.readFile(`${dir}/export.zip`));
      const { compression } = await expectLoaded(sql, scope, name, table, reference, data);
      assert.equal(compression, method);
    });
  });
}

Deno.test({ name: "compressed files that cannot load fail naming what and where", ...E2E }, async () => {
  await withScope("gz_bad", async (sql, scope) => {
    const { table } = await scope.tableAndReference(COLUMNS);
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table, toleratedRejectRate: 1 });
    const zeros = `public.${scope.prefix}_zeros`;
    await sql.unsafe(`create table ${zeros} (n int)`);
    scope.defer(() => sql.unsafe(`drop table if exists ${zeros}`));
    const dir = await scope.tempDir();
    const data = csv(30_000, 17);
    await Deno.writeTextFile(`${dir}/a.csv`, data.text);
    await Deno.writeTextFile(`${dir}/b.csv`, "id,name\n1,x\n");
    await run("gzip", ["-6", "-k", "a.csv"], dir);
    const gz = await Deno.readFile(`${dir}/a.csv.gz`);
    await run("zip", ["-q", "two.zip", "a.csv", "b.csv"], dir);
    await Deno.mkdir(`${dir}/xl`);
    await Deno.writeTextFile(`${dir}/[Content_Types].xml`, "<Types/>");
    await Deno.writeTextFile(`${dir}/xl/workbook.xml`, "<workbook/>");
    await run("zip", ["-q", "book.zip", "[Content_Types].xml", "xl/workbook.xml"], dir);

    const corrupt = gz.slice();
    for (let i = 0; i < 64; i++) corrupt[Math.floor(gz.length / 2) + i * 7] ^= 0x5a;
    const cases: [string, Uint8Array, RegExp][] = [
      ["two.zip", await Deno.readFile(`${dir}/two.zip`), /^The ZIP archive holds 2 files \(a\.csv, b\.csv\)/],
      ["book.zip", await Deno.readFile(`${dir}/book.zip`), /Excel workbook/],
      ["cut.csv.gz", gz.slice(0, Math.floor(gz.length * 0.6)), /ends early at byte \d+/],
      ["corrupt.csv.gz", corrupt, /(Corrupt deflate data at compressed byte \d+|CRC-32 check failed)/],
    ];
    for (const [file, bytes, error] of cases) {
      const name = scope.object(file);
      await upload(name, bytes);
      const job = await waitForJob(sql, name, 120_000);
      assert.equal(job.status, "failed", `${file}: ${job.error}`);
      assert.match(job.error ?? "", error, file);
    }

    // A decompression bomb: 200 MB of "0\n" in ~200 KB; it fails once 64 MiB are out, with the numbers.
    await scope.profile({
      pathPattern: `${scope.prefix}/bomb/%`,
      targetTable: zeros,
      toleratedRejectRate: 1,
    });
    const bomb = scope.object("bomb/zeros.csv.gz");
    await Deno.writeTextFile(`${dir}/zeros.sh`, "printf 'n\\n'; yes 0 | head -c 200000000");
    const out = await new Deno.Command("bash", {
      args: ["-c", `bash ${dir}/zeros.sh | gzip -9`],
      stdout: "piped",
    })
      .output();
    await upload(bomb, out.stdout);
    const bombJob = await waitForJob(sql, bomb, 120_000);
    assert.equal(bombJob.status, "failed");
    assert.match(
      bombJob.error ?? "",
      /inflates more than 200 times its compressed size \(COMPRESSION_MAX_RATIO\)/,
    );
    const [{ inflated_out }] = await sql<{ inflated_out: string }[]>`
      select inflated_out from csv_import.jobs where id = ${bombJob.id}`;
    assert.ok(Number(inflated_out) < 100_000_000, `stopped early: ${inflated_out} bytes out`);

    // The decompressed data counts against the profile's max_file_bytes.
    await scope.profile({
      pathPattern: `${scope.prefix}/small/%`,
      targetTable: table,
      toleratedRejectRate: 1,
      maxFileBytes: 1_000_000,
    });
    const big = scope.object("small/a.csv.gz");
    await upload(big, gz);
    const bigJob = await waitForJob(sql, big, 120_000);
    assert.equal(bigJob.status, "failed");
    assert.match(bigJob.error ?? "", /decompressed data is larger than 1000000 bytes/);
  });
});

Deno.test({
  name: "a chain killed and a job cancelled mid-chain resume from their checkpoints: every row once",
  ...E2E,
}, async () => {
  await withScope("gz_kill", async (sql, scope) => {
    const { table, reference } = await targets(scope, 256 * 1024);
    const data = csv(250_000, 23);
    const dir = await prepare(scope, data, reference);
    await run("gzip", ["-6", "-k", "data.csv"], dir);
    const name = scope.object("big.csv.gz");
    await upload(name, await Deno.readFile(`${dir}/data.csv.gz`));
    const inflated = async () => {
      const [row] = await sql<
        { id: string; inflated_out: string; data_size: string | null; status: string; seen?: number }[]
      >`
        select id, inflated_out, data_size, status from csv_import.jobs where object_name = ${name}`;
      if (row) row.seen = seen;
      return row;
    };
    // The chain is slowed (every 3rd Storage read of this test's objects stalls 1.5 s, then ends short and is resumed),
    // so that the kills and the cancel below land while it is between its first checkpoint and its end.
    const midChain = async (what: string) => {
      const row = await waitFor(what, async () => {
        const row = await inflated();
        return row && Number(row.inflated_out) > Number(row.seen ?? 0) ? row : undefined;
      }, 60_000);
      assert.equal(row.data_size, null, `${what}: the chain had not finished`);
      return row;
    };
    let seen = 0;
    await setStorageFaults({ kind: "hang", every: 3, hang_ms: 1500, bytes: 1024, prefix: scope.prefix });
    scope.defer(() => clearStorageFaults());
    for (let kill = 0; kill < 2; kill++) {
      const row = await midChain(`checkpoint past ${seen} before kill ${kill + 1}`);
      seen = Number(row.inflated_out);
      await killFunctionWorkers();
    }
    // And cancel it mid-chain, then retry: the chain resumes from its last checkpoint.
    const running = await midChain(`checkpoint past ${seen} before the cancel`);
    await sql`select csv_import.cancel_job(${running.id})`;
    await waitFor("the cancelled chunks to stop", async () => {
      const [row] = await sql<{ n: string }[]>`
        select count(*) as n from csv_import.chunks where job_id = ${running.id} and status = 'running'`;
      return Number(row.n) === 0 ? true : undefined;
    }, 60_000);
    const [chain] = await sql<{ status: string; resume_offset: string }[]>`
      select status, resume_offset from csv_import.chunks where job_id = ${running.id} and kind = 'inflate'`;
    assert.equal(chain.status, "cancelled");
    assert.ok(Number(chain.resume_offset) > 0, "the cancelled chain keeps its progress");
    await clearStorageFaults();
    await sql`select csv_import.retry_job(${running.id})`;
    const job = await waitForJob(sql, name, 240_000);
    assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
    assert.deepEqual(await checksum(sql, table), await checksum(sql, reference), "every row exactly once");
    const [{ n }] = await sql<{ n: string }[]>`
      select count(*) as n from csv_import.rejects where job_id = ${job.id}`;
    assert.equal(Number(n), data.rejected.length, "no row loaded twice (a replay would be a duplicate key)");
  });
});
