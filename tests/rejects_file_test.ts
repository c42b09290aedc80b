/**
 * The rejects CSV has one writer: dispatches running at the same moment (the end of every chunk invocation, cron's,
 * the kicks') claim due files through csv_import.claim_rejects_files, so a file is uploaded once, not replaced
 * under a reader who already followed the job's rejects_object (a CI run once downloaded such a file mid-replace).
 * On the real stack: a finished job with rejects is made due again and two writers race for it.
 */
import assert from "node:assert/strict";
import { StorageClient } from "../supabase/functions/_shared/platform/storage.ts";
import { writePendingRejectFiles } from "../supabase/functions/_shared/pipeline/rejects_file.ts";
import { SECRET_KEY } from "../local-stack/keys.ts";
import { connect, download, E2E, Scope, SUPABASE_URL, upload, waitForJob } from "./support/stack.ts";

Deno.test({ name: "rejects file: two dispatches at once upload it once", ...E2E }, async () => {
  const sql = connect(4);
  const scope = new Scope(sql, "rejfile");
  try {
    const table = await scope.table("rejfile");
    const name = scope.object("orders.csv");
    await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table, toleratedRejectRate: 1 });
    const customer = "00000000-0000-4000-8000-000000000002";
    const rows = ["1", "2", "3", "not-a-number", "5"].map((id) => `${id},${customer},${id}@x.test\n`);
    await upload(name, "id,customer_id,email\n" + rows.join(""));
    const job = await waitForJob(sql, name);
    assert.equal(job.status, "succeeded_with_rejects", JSON.stringify(job));
    const expected = await download(job.rejects_object!);
    assert.match(expected ?? "", /^line_number,column,reason,raw_record\r\n"5","id",[^\n]+\n$/);

    // Due again, as right after finalize; then two writers at once, each on its own connection. The stack's
    // own dispatches (cron, other jobs) may claim it first within the few milliseconds in between: then
    // neither writer uploads, and the race is run again (at most 3 times).
    const uploads: string[] = [];
    const counting: typeof fetch = (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if ((init?.method ?? "GET") === "POST" && decodeURIComponent(url).endsWith(`/${name}.rejects.csv`)) {
        uploads.push(url);
      }
      return fetch(input, init);
    };
    const storage = new StorageClient({ supabaseUrl: SUPABASE_URL, key: SECRET_KEY, fetch: counting });
    for (let round = 1; round <= 3 && uploads.length === 0; round++) {
      await sql`update csv_import.jobs set rejects_status = 'pending', rejects_object = null,
        rejects_claimed_until = null where id = ${job.id}`;
      const writers = [connect(1), connect(1)];
      try {
        await Promise.all(writers.map((w) => writePendingRejectFiles(w, storage, 1000)));
      } finally {
        await Promise.all(writers.map((w) => w.end()));
      }
      if (uploads.length === 0) await waitForJob(sql, name); // someone else's dispatch wrote it
    }
    assert.equal(uploads.length, 1, `uploads of the rejects file: ${uploads.length}`);
    const [after] = await sql<{ rejects_status: string; rejects_object: string; claimed: Date | null }[]>`
      select rejects_status, rejects_object, rejects_claimed_until as claimed from csv_import.jobs
      where id = ${job.id}`;
    assert.deepEqual(after, {
      rejects_status: "written",
      rejects_object: `${name}.rejects.csv`,
      claimed: null,
    });
    assert.equal(
      await download(after.rejects_object),
      expected,
      "the file is the same as the pipeline's first",
    );
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
