/**
 * Columns whose types PostgreSQL validates itself (pg_types/convert.ts checkedByServer: arrays, interval, inet,
 * money, ranges, bit, citext, hstore, ...), loaded through the pipeline at small chunk sizes against the real
 * local stack and compared with `psql \copy`:
 * - every valid row loads with exactly the values `\copy` stores (checksums of the whole rows, the exotic
 *   columns included), also with quoted fields holding commas, quotes and line breaks, and across chunk edges;
 * - every invalid row is rejected with its line, and the reason is PostgreSQL's own message (`\copy` of that
 *   row alone fails with the same message); the typmods hold as COPY's input holds them (a 4-bit value for
 *   bit(3), a 4-character element for varchar(3)[] are refused, not cut).
 */
import assert from "node:assert/strict";
import { checksum, connect, E2E, psqlCopy, Scope, upload, waitForJob } from "./support/stack.ts";

const COLUMNS = `id int primary key, tags int4[], names varchar(3)[], span interval, addr inet, price money,
  r int4range, flags bit(3), nick extensions.citext, attrs extensions.hstore, point_at point`;

/** [CSV line without the id, PostgreSQL's message for an invalid one (null: valid)] */
const CASES: [string, string | null][] = [
  [
    `"{1,2,3}","{ab,""c,d""}",1 day 02:00:00,10.0.0.1/8,$12.50,"[1,5)",101,Alice,"a=>1, b=>""x y""","(1,2)"`,
    null,
  ],
  [`{},{},P1Y2M,::1,0,empty,000,bob,,"(0,0)"`, null],
  [
    `"{4,
5}","{x}",-3 hours,192.168.0.1,"$1,000.00","(,10]",111,"multi
line",a=>NULL,"(-1.5,2e3)"`,
    null,
  ],
  [`,,,,,,,,,`, null],
  [`"{1,x}",{},1 day,10.0.0.1,1,empty,000,c,,"(0,0)"`, 'invalid input syntax for type integer: "x"'],
  [`{},"{abcd}",1 day,10.0.0.1,1,empty,000,c,,"(0,0)"`, "value too long for type character varying(3)"],
  [`{},{},1 parsec,10.0.0.1,1,empty,000,c,,"(0,0)"`, 'invalid input syntax for type interval: "1 parsec"'],
  [`{},{},1 day,999.1.1.1,1,empty,000,c,,"(0,0)"`, 'invalid input syntax for type inet: "999.1.1.1"'],
  [
    `{},{},1 day,10.0.0.1,1,"[5,1)",000,c,,"(0,0)"`,
    "range lower bound must be less than or equal to range upper bound",
  ],
  [`{},{},1 day,10.0.0.1,1,empty,1010,c,,"(0,0)"`, "bit string length 4 does not match type bit(3)"],
  [`{},{},1 day,10.0.0.1,1,empty,000,c,k=>v,"(0,0)"`, null],
  [`{},{},1 day,10.0.0.1,1,empty,000,c,"a=>""b","(0,0)"`, "syntax error in hstore"],
];

Deno.test({
  name: "server-checked types: loaded like \\copy, refused rows rejected with PostgreSQL's message",
  ...E2E,
}, async () => {
  const sql = connect();
  const scope = new Scope(sql, "servertypes");
  try {
    // Trusted contrib extensions, created where Supabase keeps extensions (left in place: other tests may use them).
    await sql.unsafe("create extension if not exists citext with schema extensions");
    await sql.unsafe("create extension if not exists hstore with schema extensions");
    const { table, reference } = await scope.tableAndReference(COLUMNS);
    await scope.profile({
      pathPattern: `${scope.prefix}/%`,
      targetTable: table,
      chunkSizeBytes: 4096,
      toleratedRejectRate: 1,
    });
    const header = "id,tags,names,span,addr,price,r,flags,nick,attrs,point_at\n";
    // 600 rows: the cases over and over, so that they land on every side of the 4 KiB chunk edges.
    const rows: { line: number; text: string; reason: string | null; id: number }[] = [];
    let line = 2;
    for (let id = 1; id <= 600; id++) {
      const [text, reason] = CASES[id % CASES.length];
      rows.push({ id, line, text: `${id},${text}`, reason });
      line += text.split("\n").length;
    }
    const dir = await scope.tempDir();
    await Deno.writeTextFile(
      `${dir}/good.csv`,
      header + rows.filter((r) => r.reason === null).map((r) => r.text).join("\n") + "\n",
    );
    await psqlCopy(reference, `${dir}/good.csv`);
    // \copy of each invalid case alone fails with the message the pipeline must report: this server's wording
    // (hstore's differs between versions: 15 says "Unexpected end of string").
    const copyReason = new Map<string, string>();
    for (const [text, reason] of CASES.filter(([, reason]) => reason !== null)) {
      await Deno.writeTextFile(`${dir}/one.csv`, header + `9999,${text}\n`);
      const refused = await psqlCopy(reference, `${dir}/one.csv`).then(() => null, (e: Error) => e.message);
      assert.ok(refused !== null, `\\copy refuses ${text}`);
      const message = refused.match(/ERROR:\s+(.*)/)![1].trim();
      if (!reason!.startsWith("syntax error in hstore")) {
        assert.ok(message.includes(reason!), `${message} / ${reason}`);
      }
      copyReason.set(reason!, message);
    }

    const name = scope.object("types.csv");
    await upload(name, header + rows.map((r) => r.text).join("\n") + "\n");
    const job = await waitForJob(sql, name, 120_000);
    assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
    assert.ok(Number(job.chunk_count) >= 8, `several chunks: ${job.chunk_count}`);
    assert.deepEqual(
      await checksum(sql, table),
      await checksum(sql, reference),
      "same rows, same values as \\copy",
    );
    const rejects = await sql<{ line_number: string; reason: string }[]>`
      select line_number, reason from csv_import.rejects where job_id = ${job.id} order by line_number`;
    const expected = rows.filter((r) => r.reason !== null).map((r) => ({
      ...r,
      reason: copyReason.get(r.reason!)!,
    }));
    assert.deepEqual(
      rejects.map((r) => Number(r.line_number)),
      expected.map((r) => r.line),
      "the refused lines",
    );
    for (const [i, r] of rejects.entries()) {
      assert.ok(
        r.reason.includes(expected[i].reason!),
        `line ${r.line_number}: ${r.reason} / ${expected[i].reason}`,
      );
    }
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

/** [CSV fields after the id] of values whose reading depends on the server (its version, its zone database). */
const SERVER_RULES: string[] = [
  "1_000,0x1F,1_000.50,2024-03-01 10:00 Europe/Berlin",
  "0o17,0b101,2.5,2024-07-01 10:00 Europe/Berlin",
  "7,8,9.75,2024-03-01 10:00:00 America/New_York",
  "1,2,3,2024-03-01 10:00 Nowhere/Land",
  "12abc,2,3,2024-03-01 10:00+01",
];

Deno.test(
  {
    name:
      "the connected server's input rules: what it reads loads, what it refuses is rejected with its message",
    ...E2E,
  },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "serverrules");
    try {
      const { table, reference } = await scope.tableAndReference(
        "id int primary key, n int, big bigint, amount numeric(12,2), at timestamptz",
      );
      await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table, toleratedRejectRate: 1 });
      const header = "id,n,big,amount,at\n";
      const dir = await scope.tempDir();
      // What this server does with each row: \copy of the row alone decides (17 reads 1_000 and 0x1F, 15 refuses).
      const expected: { line: number; reason: string }[] = [];
      const good: string[] = [];
      for (const [i, fields] of SERVER_RULES.entries()) {
        await Deno.writeTextFile(`${dir}/one.csv`, header + `${i + 1},${fields}\n`);
        const refused = await psqlCopy(reference, `${dir}/one.csv`).then(() => null, (e: Error) => e.message);
        if (refused === null) good.push(`${i + 1},${fields}`);
        else expected.push({ line: i + 2, reason: refused.match(/ERROR:\s+(.*)/)![1].trim() });
      }
      const [{ server_version_num }] = await sql<{ server_version_num: string }[]>`show server_version_num`;
      console.log(`  PostgreSQL ${server_version_num}: ${good.length} rows read, ${expected.length} refused`);
      assert.ok(expected.length >= 2, "the unknown zone and the bad integer are refused on every version");

      const name = scope.object("rules.csv");
      await upload(name, header + SERVER_RULES.map((f, i) => `${i + 1},${f}`).join("\n") + "\n");
      const job = await waitForJob(sql, name, 60_000);
      assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
      assert.deepEqual(
        await checksum(sql, table),
        await checksum(sql, reference),
        "the rows and values \\copy stores",
      );
      const rejects = await sql<{ line_number: string; reason: string }[]>`
        select line_number, reason from csv_import.rejects where job_id = ${job.id} order by line_number`;
      assert.deepEqual(rejects.map((r) => Number(r.line_number)), expected.map((e) => e.line));
      for (const [i, r] of rejects.entries()) {
        assert.ok(
          r.reason.startsWith(expected[i].reason),
          `line ${r.line_number}: ${r.reason} / ${expected[i].reason}`,
        );
      }
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
