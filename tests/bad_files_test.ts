/**
 * Bad files fail their job at once with one specific message (pipeline.md, "Errors that are the file's
 * fault"), uploaded to the real stack: an empty file, gzip bytes named .csv, a header missing required columns
 * (the message names them), an object no profile matches, invalid UTF-8 in the head, an unterminated quote at
 * the end of the file (the message gives its line), and a record over MAX_RECORD_BYTES (1 MiB by default; the
 * message gives its line). Each job ends `failed` on its own, and a file rejected at registration gets no chunks.
 */
import assert from "node:assert/strict";
import { generateRows, HEADER } from "../scripts/generate_csv.ts";
import { checksum, connect, E2E, type JobRow, Scope, type Sql, upload, waitForJob } from "./support/stack.ts";

const enc = new TextEncoder();

/** Header + `n` generated rows (LF); returns the text and the physical line the next record would start on. */
function goodCsv(n: number, header = HEADER): { text: string; nextLine: number } {
  let text = header.join(",") + "\n";
  let line = 2;
  for (const row of generateRows({ rows: n, seed: 5 })) {
    text += row.text;
    line += row.lines;
  }
  return { text, nextLine: line };
}

/** A one-line record with every column valid (`drop` leaves those columns out). */
function plainRow(id: number, drop: string[] = []): string {
  const values: Record<string, string> = {
    id: String(id),
    customer_id: "00000000-0000-4000-8000-" + String(id).padStart(12, "0"),
    email: `u${id}@example.com`,
    country: "US",
    amount: "1.00",
    quantity: "1",
    paid: "true",
    ordered_at: "2024-01-01T00:00:00Z",
    status: "new",
    note: "ok",
  };
  return HEADER.filter((h) => !drop.includes(h)).map((h) => values[h]).join(",") + "\n";
}

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([enc.encode(text)]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function failedJob(sql: Sql, name: string, body: Uint8Array | string): Promise<JobRow> {
  await upload(name, body);
  const job = await waitForJob(sql, name, 30_000);
  assert.equal(job.status, "failed", `${name}: expected failed, got ${job.status} (${job.error})`);
  assert.ok(job.error, `${name}: the job has an error message`);
  return job;
}

Deno.test({ name: "bad files: each fails its job with a specific message", ...E2E }, async (t) => {
  const sql = connect();
  const scope = new Scope(sql, "bad");
  try {
    const target = await scope.table("bad");
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: target });

    await t.step("empty file", async () => {
      const job = await failedJob(sql, scope.object("empty.csv"), new Uint8Array(0));
      assert.match(job.error!, /^File is empty$/);
      assert.equal(job.chunk_count, 0);
    });

    await t.step("gzip bytes named .csv", async () => {
      const job = await failedJob(sql, scope.object("orders.csv"), await gzip(goodCsv(200).text));
      assert.match(job.error!, /gzip-compressed/);
      assert.equal(job.chunk_count, 0);
    });

    await t.step("header missing required columns", async () => {
      const drop = ["customer_id", "email"];
      let csv = HEADER.filter((h) => !drop.includes(h)).join(",") + "\n";
      for (let id = 1; id <= 50; id++) csv += plainRow(id, drop);
      const job = await failedJob(sql, scope.object("missing.csv"), csv);
      const listed = /lacks required columns of [^:]+: (.*?) \(/.exec(job.error!)?.[1];
      assert.equal(listed, '"customer_id", "email"', `names exactly the missing columns: ${job.error}`);
      assert.equal(job.chunk_count, 0);
    });

    await t.step("no matching profile", async () => {
      const name = `${scope.prefix}-unmatched/orders.csv`;
      scope.objects.push(name);
      const job = await failedJob(sql, name, goodCsv(20).text);
      assert.match(job.error!, /^No import profile matches "[^"]+orders\.csv" in bucket "csv-uploads"/);
      assert.equal(job.chunk_count, 0);
    });

    await t.step("invalid UTF-8 in the head", async () => {
      const head = goodCsv(30).text;
      const latin1 = new Uint8Array([...enc.encode(head), ...enc.encode("31,"), ...[0x43, 0x61, 0x66, 0xe9]]);
      const job = await failedJob(sql, scope.object("latin1.csv"), latin1);
      assert.match(job.error!, /not UTF-8/);
      assert.match(job.error!, new RegExp(`0xE9 at offset ${enc.encode(head).length + 6}\\b`, "i"));
      assert.equal(job.chunk_count, 0);
    });

    await t.step("unterminated quote at EOF", async () => {
      // Far past the 64 KiB head the sniffer reads, so the chunk's parser finds it at the end of the file.
      const { text, nextLine } = goodCsv(3000);
      const bad = `${text}${plainRow(999_999).replace(",ok\n", ',"open\nnote')}`;
      const job = await failedJob(sql, scope.object("unterminated.csv"), bad);
      assert.match(job.error!, new RegExp(`^Unterminated quoted field starting at line ${nextLine}$`));
      assert.ok(job.chunk_count >= 1, "the file was planned; its chunk found the problem");
    });

    await t.step("record over MAX_RECORD_BYTES", async () => {
      const { text, nextLine } = goodCsv(600);
      const huge = plainRow(1_000_000).replace(",ok\n", `,${"y".repeat(1024 * 1024 + 10)}\n`);
      const job = await failedJob(sql, scope.object("huge_record.csv"), text + huge + plainRow(1_000_001));
      assert.match(
        job.error!,
        new RegExp(`^Record at line ${nextLine} is larger than the limit of 1048576 bytes$`),
      );
      const { count } = await checksum(sql, target);
      assert.ok(count <= 600, "nothing after the oversized record was loaded");
    });
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
