/**
 * The pipeline against hosted Storage's behaviours, on the real local stack (the stand-in imitates them, each
 * pinned in tests/conformance/storage_test.ts):
 * - a CDN serving an overwritten object's previous version for a while (Smart CDN: up to 60 s,
 *   https://supabase.com/docs/guides/storage/cdn/smart-cdn): an overwrite with a same-size file loads the new
 *   file's rows exactly, not one of the old version's, and the job waits instead of failing;
 * - errors as HTTP 400 with 503 in the body during registration (supabase/storage src/http/error-handler.ts):
 *   registration retries and succeeds;
 * - an object gone before registration (404 in a 400's body): the job fails saying so (register.ts);
 * - the CLI's resumable (TUS) upload against the local endpoint, interrupted mid-piece and resumed by
 *   tus-js-client, then the import loads exactly the file's rows.
 * Every check compares the target with `psql \copy` of the same file (count and checksum).
 */
import assert from "node:assert/strict";
import { uploadResumable } from "../cli/upload.ts";
import { SECRET_KEY } from "../local-stack/keys.ts";
import { assertExactJob, prepareFile } from "./support/faults.ts";
import {
  BUCKET,
  checksum,
  clearStorageFaults,
  connect,
  describeJob,
  E2E,
  psqlCopy,
  Scope,
  setStorageFaults,
  type Sql,
  SUPABASE_URL,
  unique,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";

/** A two-column table without a primary key (a row written twice would show). */
async function plainTable(sql: Sql, scope: Scope, label: string): Promise<string> {
  const name = `public.${unique(`e2e_${label}`)}`;
  await sql.unsafe(`create table ${name} (id bigint not null, val text not null)`);
  scope.tables.push(name);
  return name;
}

/** `rows` rows whose `val` is `tag` repeated: files of different tags (same length) have the same size. */
function sameSizeCsv(rows: number, tag: string): string {
  const lines = ["id,val"];
  for (let i = 1; i <= rows; i++) lines.push(`${String(i).padStart(7, "0")},${tag.repeat(8)}`);
  return lines.join("\n") + "\n";
}

Deno.test(
  { name: "storage platform: an overwrite read through a stale CDN copy loads only the new version", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "stale");
    try {
      const target = await plainTable(sql, scope, "stale");
      const reference = await plainTable(sql, scope, "stale_ref");
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: target,
        chunkSizeBytes: 32 * 1024,
      });
      const v1 = sameSizeCsv(12_000, "a");
      const v2 = sameSizeCsv(12_000, "b");
      assert.equal(v1.length, v2.length, "same size");
      const dir = await scope.tempDir();
      await Deno.writeTextFile(`${dir}/v2.csv`, v2);
      await psqlCopy(reference, `${dir}/v2.csv`);
      const want = await checksum(sql, reference);

      const name = scope.object("data.csv");
      await setStorageFaults({ kind: "stale", ttl_ms: 30_000, prefix: `${scope.prefix}/` });
      await upload(name, v1);
      const first = await waitForJob(sql, name, 120_000);
      assert.equal(first.status, "succeeded", await describeJob(sql, name));
      // v1's reads cached v1 "at the CDN". Now the table is emptied and the object overwritten, same size.
      await sql.unsafe(`delete from ${target}`);
      const started = performance.now();
      await upload(name, v2, { upsert: true });
      const job = await waitFor(
        "the job of the new version to finish",
        async () => {
          const [row] = await sql<{ id: number; status: string }[]>`
            select id, status::text from csv_import.jobs
            where bucket_id = ${BUCKET} and object_name = ${name} and id <> ${first.id}
              and status in ('succeeded', 'succeeded_with_rejects', 'failed', 'cancelled')`;
          return row;
        },
        150_000,
        () => describeJob(sql, name),
      );
      const counters = await clearStorageFaults();
      console.log(
        `  stale: job ${job.id} ${job.status} in ${((performance.now() - started) / 1000).toFixed(1)} s, ` +
          `${counters.faults.stale} stale answers of ${counters.reads} reads`,
      );
      assert.equal(job.status, "succeeded", await describeJob(sql, name));
      assert.ok(counters.faults.stale > 0, "the new version's job met stale copies of the old one");
      assert.deepEqual(await checksum(sql, target), want, "exactly v2's rows: none of v1's");
      const [{ old }] = await sql.unsafe(`select count(*)::int as old from ${target} where val like 'a%'`);
      assert.equal(old, 0, "not one row of the old version");
      const [{ dead }] = await sql<{ dead: number }[]>`
        select count(*)::int as dead from csv_import.chunks where job_id = ${job.id} and status <> 'succeeded'`;
      assert.equal(dead, 0, "every chunk succeeded");
    } finally {
      await clearStorageFaults().catch(() => {});
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  { name: "storage platform: HTTP 400 with 503 in the body during registration is retried", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "regfault");
    try {
      const p = await prepareFile(sql, scope, { rows: 3_000, seed: 5, label: "regfault" });
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: p.target,
        chunkSizeBytes: 128 * 1024,
      });
      const name = scope.object("rows.csv");
      // The register function's first request reads the head 6 times (its attempt budget): all six meet a
      // LockTimeout, so it answers retry_later; the reconciler asks again and the next reads meet the rest.
      await setStorageFaults({
        kind: "status",
        error: "LockTimeout",
        every: 1,
        limit: 8,
        prefix: `${scope.prefix}/`,
      });
      await upload(name, { path: p.file });
      const job = await waitForJob(sql, name, 150_000);
      const counters = await clearStorageFaults();
      assert.equal(counters.faults.status, 8, "every planned fault was served");
      await assertExactJob(sql, job, p, { minChunks: 1 });
      const [{ attempts }] = await sql<{ attempts: number }[]>`
        select register_attempts as attempts from csv_import.jobs where id = ${job.id}`;
      assert.ok(attempts >= 2, `registration was requested again after the transient failure (${attempts})`);
    } finally {
      await clearStorageFaults().catch(() => {});
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  { name: "storage platform: an object gone before registration fails its job saying so", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "gone");
    try {
      const target = await plainTable(sql, scope, "gone");
      await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: target });
      const name = scope.object("gone.csv");
      // A row whose bytes are not stored (as when the object is removed between upload and registration):
      // Storage answers the read with HTTP 400 and 404 in the body.
      await sql`insert into storage.objects (bucket_id, name, version, metadata)
        values (${BUCKET}, ${name}, 'not-stored', ${sql.json({ size: 100, mimetype: "text/csv" })})`;
      const job = await waitForJob(sql, name, 60_000);
      assert.equal(job.status, "failed", await describeJob(sql, name));
      const [{ error }] = await sql<
        { error: string }[]
      >`select error from csv_import.jobs where id = ${job.id}`;
      assert.equal(error, `The object ${BUCKET}/${name} no longer exists`);
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test(
  {
    name: "storage platform: the CLI's resumable upload, interrupted and resumed, then an exact import",
    ...E2E,
  },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "tus");
    // A proxy in front of the stack that cuts the third PATCH short: half its bytes reach Storage, the client
    // gets a 502 (a dropped connection), so tus-js-client must ask for the offset (HEAD) and resume mid-piece.
    const seen: string[] = [];
    let patches = 0;
    const proxy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
      const url = new URL(req.url);
      const upstream = `${SUPABASE_URL}${url.pathname}${url.search}`;
      const headers = new Headers(req.headers);
      headers.delete("host");
      let body: Uint8Array<ArrayBuffer> | undefined = req.body
        ? new Uint8Array(await req.arrayBuffer())
        : undefined;
      let cut = false;
      if (req.method === "PATCH" && ++patches === 3 && body) {
        body = body.subarray(0, Math.floor(body.length / 2));
        cut = true;
      }
      seen.push(`${req.method}${cut ? "(cut)" : ""}`);
      const res = await fetch(upstream, { method: req.method, headers, body });
      if (cut) {
        await res.body?.cancel();
        return new Response("connection lost", { status: 502 });
      }
      const out = new Headers(res.headers);
      const location = out.get("location");
      if (location) {
        out.set("location", location.replace(SUPABASE_URL, `http://127.0.0.1:${proxy.addr.port}`));
      }
      return new Response(res.body, { status: res.status, headers: out });
    });
    try {
      const p = await prepareFile(sql, scope, { rows: 8_000, seed: 3, label: "tus" });
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: p.target,
        chunkSizeBytes: 256 * 1024,
      });
      const name = scope.object("resumable.csv");
      const size = (await Deno.stat(p.file)).size;
      await uploadResumable({
        supabaseUrl: `http://127.0.0.1:${proxy.addr.port}`,
        key: SECRET_KEY,
        bucket: BUCKET,
        objectName: name,
        path: p.file,
        size,
        upsert: false,
        chunkSize: 128 * 1024,
      });
      const cutAt = seen.indexOf("PATCH(cut)");
      assert.ok(cutAt > 0, `a PATCH was cut: ${seen.join(" ")}`);
      assert.equal(seen[cutAt + 1], "HEAD", `the client asked where to resume: ${seen.join(" ")}`);
      const job = await waitForJob(sql, name, 120_000);
      await assertExactJob(sql, job, p, { minChunks: 2 });
      const [{ jobs }] = await sql<{ jobs: number }[]>`
        select count(*)::int as jobs from csv_import.jobs where bucket_id = ${BUCKET} and object_name = ${name}`;
      assert.equal(jobs, 1, "one object row, written once, when the last byte was stored: one job");
    } finally {
      await proxy.shutdown();
      await scope.dispose();
      await sql.end();
    }
  },
);
