/**
 * End-to-end tests of the Storage API stand-in: served with Deno.serve on loopback, driven by the real
 * @supabase/supabase-js client and plain fetch, against the local Postgres (platform bootstrap applied).
 *
 * Invariants:
 * - Everything this test creates is uniquely named (random suffix) and removed at the end: buckets,
 *   objects, RLS policies and triggers (scoped with `WHEN bucket_id = …` so other suites are unaffected),
 *   the log table and the temporary root directory.
 * - Bounded: the largest object is 100 MB, streamed (never held whole in memory).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createClient } from "@supabase/supabase-js";
import { ANON_KEY, SERVICE_ROLE_KEY, signJwt } from "../keys.ts";
import { createStorageApi } from "./api.ts";
import { bucketDirName, FileStore } from "./files.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
/** The same database as a platform role: the stand-in connects as Storage does, the fixtures as the platform's
 * superuser (they use pg_stat_file and put triggers on storage.objects, which postgres may not). */
const dbUrlAs = (user: string) => {
  const url = new URL(DB_URL);
  url.username = user;
  return url.toString();
};
const MiB = 1024 * 1024;

async function bytesOf(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A lazily generated body of `total` bytes; `pulled()` tells how much the consumer actually read. */
function lazyBody(total: number, chunk = MiB) {
  let sent = 0;
  const base = crypto.getRandomValues(new Uint8Array(Math.min(chunk, 65536)));
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(chunk, total - sent);
      const buf = new Uint8Array(n);
      for (let off = 0; off < n; off += base.length) {
        buf.set(base.subarray(0, Math.min(base.length, n - off)), off);
      }
      new DataView(buf.buffer).setUint32(0, sent / chunk);
      sent += n;
      controller.enqueue(buf);
    },
  });
  return { stream, pulled: () => sent, base };
}

Deno.test({
  name: "storage api: supabase-js + fetch against the local stand-in",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const sfx = crypto.randomUUID().slice(0, 8);
  const B = `st-${sfx}`; // private bucket: uploads, ranges, triggers
  const PUB = `st-pub-${sfx}`; // public bucket
  const LIM = `st-lim-${sfx}`; // 1 KiB file_size_limit
  const RLS = `st-rls-${sfx}`; // RLS-policed bucket
  const BIG = `st-big-${sfx}`; // 100 MB throughput object
  const CFG = `st-cfg-${sfx}`; // created by ensureBuckets
  const ALL = [B, PUB, LIM, RLS, BIG, CFG];
  const rootDir = await Deno.makeTempDir({ prefix: "storage-api-test-" });
  await Deno.chmod(rootDir, 0o755); // the postgres OS user stats files from the test trigger
  const files = new FileStore(rootDir);
  const events: Record<string, unknown>[] = [];
  const api = createStorageApi({
    dbUrl: dbUrlAs("supabase_storage_admin"),
    rootDir,
    fileSizeLimitBytes: 200 * MiB,
    log: (e) => events.push(e),
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, api.handle);
  const base = `http://127.0.0.1:${server.addr.port}`;
  const rest = `${base}/storage/v1`;
  // One HTTP client for every request this test makes, closed before the server shuts down.
  const http = Deno.createHttpClient({});
  const fetch = (input: RequestInfo | URL, init?: RequestInit) =>
    globalThis.fetch(input, { ...init, client: http } as RequestInit);
  const mk = (key: string, token?: string) =>
    createClient(base, key, {
      auth: { persistSession: false, autoRefreshToken: false },
      global: { fetch },
      ...(token ? { accessToken: () => Promise.resolve(token) } : {}),
    });
  const service = mk(SERVICE_ROLE_KEY);
  const svc = { apikey: SERVICE_ROLE_KEY, Authorization: `Bearer ${SERVICE_ROLE_KEY}` };
  const sql = postgres(dbUrlAs("supabase_admin"), { max: 2, onnotice: () => {} });
  const log = `storage_api_test_log_${sfx.replaceAll("-", "")}`;

  try {
    // DDL on storage.objects waits for other sessions' locks: bound the wait and say why if it fails.
    await sql.begin((tx) =>
      tx.unsafe(`
      set local lock_timeout = '60s';
      create table public.${log} (id bigserial primary key, op text, name text, version text, size bigint,
                                  file_size bigint);
      create function public.${log}() returns trigger language plpgsql security definer set search_path = ''
      as $fn$
      declare st record;
      begin
        select * into st from pg_stat_file('${rootDir}/${bucketDirName(B)}/' || new.version, true);
        insert into public.${log} (op, name, version, size, file_size)
        values (tg_op, new.name, new.version, (new.metadata->>'size')::bigint, st.size);
        return null;
      end $fn$;
      create trigger ${log} after insert or update on storage.objects for each row
        when (new.bucket_id = '${B}') execute function public.${log}();
      create function public.${log}_fail() returns trigger language plpgsql as $fn$
      begin raise exception 'final insert refused by the test'; end $fn$;
      create trigger ${log}_fail before insert or update on storage.objects for each row
        when (new.bucket_id = '${B}' and new.name like 'fail/%' and new.metadata is not null)
        execute function public.${log}_fail();
      create policy ${log}_ins on storage.objects for insert to authenticated
        with check (bucket_id = '${RLS}' and (storage.foldername(name))[1] = auth.uid()::text);
      create policy ${log}_sel on storage.objects for select to authenticated
        using (bucket_id = '${RLS}' and (storage.foldername(name))[1] = auth.uid()::text);`)
    ).catch((e) => {
      throw new Error(`could not install the test trigger/policies on storage.objects: ${e.message}`);
    });

    await t.step("buckets: create, duplicate, get, list, update", async () => {
      assert.deepEqual(await service.storage.createBucket(B, { public: false }), {
        data: { name: B },
        error: null,
      });
      for (
        const [id, opts] of [[PUB, { public: true }], [LIM, { public: false, fileSizeLimit: 1024 }]] as const
      ) {
        assert.equal((await service.storage.createBucket(id, opts)).error, null);
      }
      assert.equal((await service.storage.createBucket(RLS, { public: false })).error, null);
      assert.equal((await service.storage.createBucket(BIG, { public: false })).error, null);
      const dup = await service.storage.createBucket(B, { public: false });
      assert.equal(dup.error?.statusCode, "409");
      assert.equal((dup.error as { status?: number }).status, 400);
      const got = await service.storage.getBucket(LIM);
      assert.equal(got.data?.file_size_limit, 1024);
      assert.equal(got.data?.public, false);
      const listed = await service.storage.listBuckets();
      assert.ok(listed.data?.some((b) => b.id === PUB && b.public));
      assert.equal(
        (await service.storage.updateBucket(PUB, { public: true, allowedMimeTypes: ["text/*"] })).error,
        null,
      );
      assert.deepEqual((await service.storage.getBucket(PUB)).data?.allowed_mime_types, ["text/*"]);
      const tooBig = await service.storage.createBucket(`st-x-${sfx}`, {
        public: false,
        fileSizeLimit: "1GB",
      });
      assert.equal(tooBig.error?.statusCode, "413");
      const missing = await service.storage.getBucket(`st-none-${sfx}`);
      assert.equal(missing.error?.statusCode, "404");
      assert.equal(missing.error?.message, "Bucket not found");
    });

    const text = "hello, ünïcode storage\n";
    const blobBytes = crypto.getRandomValues(new Uint8Array(5000));
    const streamed = "id,name\n1,alpha\n2,beta\n";
    const textName = "docs/hello wörld ✓.txt";

    await t.step("upload a string, a Blob and a ReadableStream; download exact bytes", async () => {
      const bucket = service.storage.from(B);
      const up = await bucket.upload(textName, text, { contentType: "text/plain" });
      assert.equal(up.error, null);
      assert.equal(up.data?.path, textName);
      assert.equal(up.data?.fullPath, `${B}/${textName}`);
      assert.match(up.data!.id, /^[0-9a-f-]{36}$/);
      assert.equal((await bucket.upload("blob.bin", new Blob([blobBytes]))).error, null);
      const body = new Blob([streamed]).stream();
      assert.equal((await bucket.upload("data/stream.csv", body, { contentType: "text/csv" })).error, null);

      assert.equal(await (await bucket.download(textName)).data?.text(), text);
      assert.deepEqual(
        new Uint8Array(await (await bucket.download("blob.bin")).data!.arrayBuffer()),
        blobBytes,
      );
      assert.equal(await (await bucket.download("data/stream.csv")).data?.text(), streamed);
    });

    await t.step("Range: 206 slices, suffix, open-ended, unsatisfiable as the S3 backend; HEAD", async () => {
      const url = `${rest}/object/${B}/blob.bin`;
      const size = blobBytes.length;
      const cases: [string, number, number][] = [
        ["bytes=10-19", 10, 19],
        ["bytes=-7", size - 7, size - 1],
        ["bytes=4990-", 4990, size - 1],
        ["bytes=4995-999999", 4995, size - 1],
      ];
      for (const [range, start, end] of cases) {
        const res = await fetch(url, { headers: { ...svc, Range: range } });
        assert.equal(res.status, 206, range);
        assert.equal(res.headers.get("content-range"), `bytes ${start}-${end}/${size}`);
        assert.equal(res.headers.get("accept-ranges"), "bytes");
        assert.equal(res.headers.get("content-length"), String(end - start + 1));
        assert.deepEqual(await bytesOf(res), blobBytes.slice(start, end + 1));
      }
      const full = await fetch(url, { headers: svc });
      assert.equal(full.status, 200);
      assert.equal(full.headers.get("accept-ranges"), "bytes");
      assert.match(full.headers.get("etag") ?? "", /^"[0-9a-f]{32}"$/);
      assert.equal(full.headers.get("cache-control"), "max-age=3600");
      assert.ok(full.headers.get("last-modified"));
      await full.body?.cancel();
      // Hosted on S3: GetObject's InvalidRange escapes the renderer unrendered → HTTP 500 (errors.ts). The
      // stand-in answered 416 before; that was the file backend's answer, which hosted does not run.
      const unsatisfiable = await fetch(url, { headers: { ...svc, Range: `bytes=${size}-` } });
      assert.equal(unsatisfiable.status, 500);
      assert.deepEqual(await unsatisfiable.json(), {
        statusCode: "500",
        code: "InternalError",
        error: "Internal",
        message: "Internal Server Error",
      });
      const headRes = await fetch(url, { method: "HEAD", headers: svc });
      assert.equal(headRes.status, 200);
      assert.equal(headRes.headers.get("content-length"), String(size));
      assert.equal(headRes.headers.get("etag"), full.headers.get("etag"));
    });

    await t.step("info(), exists(), list()", async () => {
      const bucket = service.storage.from(B);
      const { data, error } = await bucket.info("blob.bin");
      assert.equal(error, null);
      assert.equal(data?.size, blobBytes.length);
      assert.equal(data?.bucketId, B);
      assert.equal(data?.name, "blob.bin");
      assert.equal(data?.contentType, "application/octet-stream");
      assert.equal(data?.cacheControl, "max-age=3600");
      assert.match(data!.version, /^[0-9a-f-]{36}$/);
      assert.equal((await bucket.exists("blob.bin")).data, true);
      assert.equal((await bucket.exists("nope.bin")).data, false);

      const top = await bucket.list();
      assert.equal(top.error, null);
      assert.deepEqual(top.data?.map((e) => [e.name, e.id === null]), [
        ["blob.bin", false],
        ["data", true],
        ["docs", true],
      ]);
      const docs = await bucket.list("docs");
      assert.equal(docs.data?.[0].name, "hello wörld ✓.txt");
      assert.equal(docs.data?.[0].metadata?.size, new TextEncoder().encode(text).length);
      assert.equal((await bucket.list("", { search: "bl" })).data?.length, 1);
    });

    await t.step(
      "no upsert over an existing object → Duplicate; upsert → UPDATE trigger, bytes stored first",
      async () => {
        const bucket = service.storage.from(B);
        const dup = await bucket.upload(textName, "again");
        assert.equal(dup.error?.statusCode, "409");
        assert.equal(dup.error?.message, "The resource already exists");

        const first = await bucket.upload("trig/one.csv", "a,b\n1,2\n");
        assert.equal(first.error, null);
        const second = await bucket.upload("trig/one.csv", "a,b\n1,2\n3,4\n5,6\n", { upsert: true });
        assert.equal(second.error, null);
        assert.equal(second.data?.id, first.data?.id, "same row, new version");
        const rows = await sql.unsafe(`select op, version, size, file_size from public.${log}
                                     where name = 'trig/one.csv' order by id`);
        assert.deepEqual(rows.map((r) => [r.op, Number(r.size)]), [["INSERT", 8], ["UPDATE", 16]]);
        // The trigger (SECURITY DEFINER) stat'ed the version file while firing: the bytes were complete on
        // disk before the row was written.
        assert.deepEqual(rows.map((r) => Number(r.file_size)), [8, 16]);
        assert.notEqual(rows[0].version, rows[1].version);
        assert.equal(
          await exists(files.pathOf(B, rows[0].version)),
          false,
          "previous version's bytes removed",
        );
        assert.equal(await exists(files.pathOf(B, rows[1].version)), true);
        assert.equal(await (await bucket.download("trig/one.csv")).data?.text(), "a,b\n1,2\n3,4\n5,6\n");
      },
    );

    await t.step("a failing final insert leaves no bytes and no row", async () => {
      const dir = `${rootDir}/${bucketDirName(B)}`;
      const before = [...Deno.readDirSync(dir)].length;
      const res = await service.storage.from(B).upload("fail/x.csv", "will not stay");
      assert.equal(res.error?.statusCode, "500");
      assert.equal([...Deno.readDirSync(dir)].length, before);
      assert.equal(
        (await sql`select 1 from storage.objects where bucket_id = ${B} and name = 'fail/x.csv'`).length,
        0,
      );
    });

    await t.step("remove() deletes the row and the bytes; move and copy", async () => {
      const bucket = service.storage.from(B);
      const [row] =
        await sql`select version from storage.objects where bucket_id = ${B} and name = 'data/stream.csv'`;
      const removed = await bucket.remove(["data/stream.csv"]);
      assert.equal(removed.error, null);
      assert.deepEqual(removed.data?.map((o) => o.name), ["data/stream.csv"]);
      assert.equal((await bucket.exists("data/stream.csv")).data, false);
      assert.equal(await exists(files.pathOf(B, row.version)), false);

      assert.equal((await bucket.copy("blob.bin", "copies/blob.bin")).data?.path, `${B}/copies/blob.bin`);
      assert.deepEqual(
        (await bucket.move("copies/blob.bin", "moved/blob.bin")).data?.message,
        "Successfully moved",
      );
      assert.equal((await bucket.exists("copies/blob.bin")).data, false);
      assert.deepEqual(
        new Uint8Array(await (await bucket.download("moved/blob.bin")).data!.arrayBuffer()),
        blobBytes,
      );
      const del = await fetch(`${rest}/object/${B}/moved/blob.bin`, { method: "DELETE", headers: svc });
      assert.deepEqual(await del.json(), { message: "Successfully deleted" });
      const again = await fetch(`${rest}/object/${B}/moved/blob.bin`, { method: "DELETE", headers: svc });
      assert.deepEqual(await again.json(), {
        statusCode: "404",
        code: "NoSuchKey",
        error: "not_found",
        message: "Object not found",
      });
      assert.equal(again.status, 400);
    });

    await t.step("signed URLs work and honour Range; tampering is refused", async () => {
      const bucket = service.storage.from(B);
      const { data, error } = await bucket.createSignedUrl("blob.bin", 60);
      assert.equal(error, null);
      const res = await fetch(data!.signedUrl);
      assert.equal(res.status, 200);
      assert.ok(res.headers.get("expires"));
      assert.deepEqual(await bytesOf(res), blobBytes);
      const ranged = await fetch(data!.signedUrl, { headers: { Range: "bytes=100-199" } });
      assert.equal(ranged.status, 206);
      assert.deepEqual(await bytesOf(ranged), blobBytes.slice(100, 200));
      const token = new URL(data!.signedUrl).searchParams.get("token")!;
      const other = await fetch(`${rest}/object/sign/${B}/trig/one.csv?token=${token}`);
      assert.equal((await other.json()).code, "InvalidSignature");
      const forged = await fetch(`${rest}/object/sign/${B}/blob.bin?token=${token.slice(0, -3)}abc`);
      assert.deepEqual(await forged.json(), {
        statusCode: "400",
        code: "InvalidJWT",
        error: "InvalidJWT",
        message: "invalid signature",
      });
      const many = await bucket.createSignedUrls(["blob.bin", "missing.bin"], 60);
      assert.ok(many.data?.[0].signedUrl);
      assert.equal(many.data?.[1].signedUrl, null);
      const upUrl = await bucket.createSignedUploadUrl("signed/up.txt");
      const up = await bucket.uploadToSignedUrl("signed/up.txt", upUrl.data!.token, "via signed url");
      assert.equal(up.error, null);
      assert.equal(await (await bucket.download("signed/up.txt")).data?.text(), "via signed url");
    });

    await t.step("'..' segments are refused with a 400 InvalidKey; names never become paths", async () => {
      for (const path of [`${B}/a%2F..%2Fescape.txt`, `${B}/..%2F..%2Fetc%2Fpasswd`]) {
        const res = await fetch(`${rest}/object/${path}`, { method: "POST", headers: svc, body: "x" });
        assert.equal(res.status, 400);
        const body = await res.json();
        assert.equal(body.code, "InvalidKey");
        assert.equal(body.statusCode, "400");
      }
      const moved = await service.storage.from(B).move("blob.bin", "../../outside.bin");
      assert.equal((moved.error as { statusCode?: string }).statusCode, "400");
      // A raw request target with a literal `..` segment is not resolved away by the server.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      const head =
        `POST /storage/v1/object/${B}/x/../y.txt HTTP/1.1\r\nHost: x\r\napikey: ${SERVICE_ROLE_KEY}\r\n` +
        `Content-Length: 1\r\nConnection: close\r\n\r\nx`;
      await conn.write(new TextEncoder().encode(head));
      const reply = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
      assert.match(reply, /^HTTP\/1\.1 400/);
      assert.match(reply, /"code":"InvalidKey"/);
      assert.equal(await exists(`${rootDir}/escape.txt`), false);
    });

    await t.step(
      "public bucket: public route without credentials; private bucket is not public",
      async () => {
        assert.equal((await service.storage.from(PUB).upload("p.txt", "public text")).error, null);
        const publicUrl = service.storage.from(PUB).getPublicUrl("p.txt").data.publicUrl;
        const res = await fetch(publicUrl);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), "public text");
        const denied = await fetch(`${rest}/object/public/${B}/blob.bin`);
        assert.equal(denied.status, 400);
        assert.equal((await denied.json()).message, "Bucket not found");
        const anonGeneric = await fetch(`${rest}/object/${PUB}/p.txt`);
        assert.equal(anonGeneric.status, 200, "generic route accepts no JWT for public buckets");
        await anonGeneric.body?.cancel();
        const wrongType = await service.storage.from(PUB).upload("p.png", "x", { contentType: "image/png" });
        assert.equal(wrongType.error?.statusCode, "415");
      },
    );

    await t.step(
      "RLS: own folder only; anon refused; service key bypasses; invalid JWT refused",
      async () => {
        const exp = Math.floor(Date.now() / 1000) + 600;
        const [alice, bob] = [crypto.randomUUID(), crypto.randomUUID()];
        const asAlice = mk(ANON_KEY, await signJwt({ sub: alice, role: "authenticated", exp }));
        const asBob = mk(ANON_KEY, await signJwt({ sub: bob, role: "authenticated", exp }));
        const dir = `${rootDir}/${bucketDirName(RLS)}`;

        assert.equal((await asAlice.storage.from(RLS).upload(`${alice}/a.csv`, "alice")).error, null);
        const [row] = await sql`select owner, owner_id from storage.objects where bucket_id = ${RLS}
                              and name = ${alice + "/a.csv"}`;
        assert.deepEqual([row.owner, row.owner_id], [alice, alice]);
        const filesBefore = [...Deno.readDirSync(dir)].length;
        const intrude = await asAlice.storage.from(RLS).upload(`${bob}/evil.csv`, "nope");
        assert.equal(intrude.error?.statusCode, "403");
        assert.equal(intrude.error?.message, "new row violates row-level security policy");
        assert.equal([...Deno.readDirSync(dir)].length, filesBefore, "refused before any byte was stored");

        assert.equal((await asBob.storage.from(RLS).upload(`${bob}/b.csv`, "bob")).error, null);
        const peek = await asAlice.storage.from(RLS).download(`${bob}/b.csv`);
        assert.equal((peek.error as { statusCode?: string }).statusCode, "404");
        assert.equal(
          await (await asAlice.storage.from(RLS).download(`${alice}/a.csv`)).data?.text(),
          "alice",
        );
        assert.deepEqual((await asAlice.storage.from(RLS).list(bob)).data, []);
        assert.equal((await asAlice.storage.from(RLS).list(alice)).data?.length, 1);
        assert.deepEqual(
          (await asAlice.storage.from(RLS).remove([`${alice}/a.csv`])).data,
          [],
          "no DELETE policy",
        );

        const anon = await mk(ANON_KEY).storage.from(RLS).upload(`${alice}/anon.csv`, "anon");
        assert.equal(anon.error?.statusCode, "403");
        assert.equal((await service.storage.from(RLS).upload(`${bob}/by-service.csv`, "svc")).error, null);

        const forged = await signJwt({ sub: alice, role: "authenticated", exp }).then((j) =>
          j.slice(0, -2) + "xx"
        );
        const bad = await mk(ANON_KEY, forged).storage.from(RLS).upload(`${alice}/bad.csv`, "bad");
        assert.equal(bad.error?.statusCode, "403");
        assert.equal(bad.error?.message, "invalid signature");
        const none = await fetch(`${rest}/object/${RLS}/${alice}/x.csv`, { method: "POST", body: "x" });
        assert.deepEqual(await none.json(), {
          statusCode: "403",
          code: "AccessDenied",
          error: "Unauthorized",
          message: "jwt must be provided",
        });
      },
    );

    await t.step("file_size_limit: refused with EntityTooLarge, without reading the body", async () => {
      const small = await service.storage.from(LIM).upload("ok.txt", "x".repeat(1024));
      assert.equal(small.error, null);
      const big = await service.storage.from(LIM).upload("big.txt", "x".repeat(1025));
      assert.equal(big.error?.statusCode, "413");
      assert.equal(big.error?.message, "The object exceeded the maximum allowed size");
      const body = lazyBody(64 * MiB);
      const res = await fetch(`${rest}/object/${LIM}/stream.bin`, {
        method: "POST",
        headers: svc,
        body: body.stream,
        duplex: "half",
      } as RequestInit);
      assert.equal(res.status, 400);
      assert.equal((await res.json()).statusCode, "413");
      assert.ok(body.pulled() < 8 * MiB, `server read ${body.pulled()} bytes of a 64 MiB body`);
      assert.equal([...Deno.readDirSync(`${rootDir}/${bucketDirName(LIM)}`)].length, 1, "only ok.txt stored");
    });

    await t.step("throughput: 100 MB upload, full read and parallel 8 MB ranges", async () => {
      const total = 100 * 1000 * 1000;
      const body = lazyBody(total);
      let started = performance.now();
      const up = await fetch(`${rest}/object/${BIG}/big.bin`, {
        method: "POST",
        headers: { ...svc, "content-type": "application/octet-stream" },
        body: body.stream,
        duplex: "half",
      } as RequestInit);
      assert.equal(up.status, 200, await up.clone().text());
      await up.body?.cancel();
      const uploadMBs = total / 1e6 / ((performance.now() - started) / 1000);

      started = performance.now();
      const heapBefore = Deno.memoryUsage().rss;
      const full = await fetch(`${rest}/object/${BIG}/big.bin`, { headers: svc });
      let n = 0;
      for await (const chunk of full.body!) n += chunk.byteLength;
      assert.equal(n, total);
      const fullMBs = total / 1e6 / ((performance.now() - started) / 1000);
      const rssGrowthMB = (Deno.memoryUsage().rss - heapBefore) / 1e6;

      const rangeSize = 8 * 1000 * 1000;
      const starts = Array.from({ length: Math.ceil(total / rangeSize) }, (_, i) => i * rangeSize);
      started = performance.now();
      let read = 0;
      const worker = async () => {
        for (let s = starts.shift(); s !== undefined; s = starts.shift()) {
          const end = Math.min(s + rangeSize, total) - 1;
          const res = await fetch(`${rest}/object/authenticated/${BIG}/big.bin`, {
            headers: { ...svc, Range: `bytes=${s}-${end}` },
          });
          assert.equal(res.status, 206);
          const got = await bytesOf(res);
          assert.equal(got.byteLength, end - s + 1);
          // every 1 MiB chunk starts with its index (big-endian u32), then the repeating base pattern
          const firstChunkStart = Math.ceil(s / MiB) * MiB;
          if (firstChunkStart + 8 <= end) {
            assert.equal(new DataView(got.buffer).getUint32(firstChunkStart - s), firstChunkStart / MiB);
            assert.deepEqual(
              got.subarray(firstChunkStart - s + 4, firstChunkStart - s + 8),
              body.base.subarray(4, 8),
            );
          }
          read += got.byteLength;
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      assert.equal(read, total);
      const rangeMBs = total / 1e6 / ((performance.now() - started) / 1000);
      console.log(
        `throughput: upload ${uploadMBs.toFixed(0)} MB/s, full read ${fullMBs.toFixed(0)} MB/s ` +
          `(rss +${rssGrowthMB.toFixed(0)} MB), 8 MB ranges x8 parallel ${rangeMBs.toFixed(0)} MB/s`,
      );
    });

    await t.step("ensureBuckets creates configured buckets; delete/empty bucket", async () => {
      await api.ensureBuckets([{
        id: CFG,
        public: true,
        fileSizeLimit: 5 * MiB,
        allowedMimeTypes: ["text/csv"],
      }]);
      const got = await service.storage.getBucket(CFG);
      assert.deepEqual([got.data?.public, got.data?.file_size_limit, got.data?.allowed_mime_types], [
        true,
        5 * MiB,
        ["text/csv"],
      ]);
      await api.ensureBuckets([{ id: CFG, public: false }]);
      assert.equal((await service.storage.getBucket(CFG)).data?.public, false);

      const notEmpty = await service.storage.deleteBucket(B);
      assert.equal(notEmpty.error?.statusCode, "409");
      for (const id of ALL) {
        assert.equal((await service.storage.emptyBucket(id)).error, null, id);
        assert.equal((await service.storage.deleteBucket(id)).error, null, id);
      }
      for (const id of ALL) {
        const left = await Array.fromAsync(Deno.readDir(rootDir)).then((d) =>
          d.find((e) => e.name === bucketDirName(id))
        );
        if (left) {
          assert.equal([...Deno.readDirSync(`${rootDir}/${left.name}`)].length, 0, `bytes left in ${id}`);
        }
      }
      assert.ok(events.some((e) => e.event === "storage.request" && e.status === 206));
    });
  } finally {
    await sql.begin(async (tx) => {
      await tx`set local storage.allow_delete_query = 'true'`;
      await tx`delete from storage.objects where bucket_id = any(${ALL})`;
      await tx`delete from storage.buckets where id = any(${ALL})`;
    });
    await sql.begin((tx) =>
      tx.unsafe(`
        set local lock_timeout = '60s';
        drop trigger if exists ${log} on storage.objects;
        drop trigger if exists ${log}_fail on storage.objects;
        drop function if exists public.${log}();
        drop function if exists public.${log}_fail();
        drop policy if exists ${log}_ins on storage.objects;
        drop policy if exists ${log}_sel on storage.objects;
        drop table if exists public.${log};`)
    ).catch((e) => console.error(`left behind on storage.objects (drop by hand): ${log}*: ${e.message}`));
    await sql.end();
    http.close(); // pooled client connections would otherwise hold the graceful shutdown open
    await server.shutdown();
    await api.close();
    await Deno.remove(rootDir, { recursive: true });
  }
});
