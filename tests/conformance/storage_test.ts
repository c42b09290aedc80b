/**
 * Conformance of the Storage stand-in (local-stack/storage/) with hosted Supabase Storage on its S3 backend,
 * asserted against the running stack over real HTTP and the real local Postgres. Each test names its source:
 * supabase/storage at 4fa61fb (paths below are that repository's) or a Supabase doc.
 *
 * - Error answers: HTTP 400 with the real code in the body's `statusCode` for every error but 500
 *   (`src/internal/errors/storage-error.ts:23`, `src/http/error-handler.ts:46-52`); 544, 429 and 500 keep their
 *   status; an unsatisfiable Range on S3 is an unrendered S3 exception → HTTP 500 (`src/storage/renderer/
 *   renderer.ts:81-102`, error-handler.ts's last branch). Injected faults take the same shapes.
 * - Keys: an sb_ key in `Authorization: Bearer` is refused unless it equals `apikey`
 *   (supabase/supabase:apps/docs/content/guides/api/api-keys.mdx, "Known limitations").
 * - Stale reads: the Smart CDN may serve an overwritten object's previous version for up to 60 s
 *   (https://supabase.com/docs/guides/storage/cdn/smart-cdn); the "stale" fault serves the old bytes and headers.
 * - TUS resumable uploads (`src/http/routes/tus/index.ts`, `lifecycle.ts`): the protocol, hosted's metadata and
 *   headers, the CORS preflight, and the object row written only when the last byte is stored (lifecycle.ts:337).
 *
 * Invariants: every object is created under a unique prefix and removed at the end; fault plans are cleared.
 */
import assert from "node:assert/strict";
import { PUBLISHABLE_KEY, SECRET_KEY, SERVICE_ROLE_KEY } from "../../local-stack/keys.ts";
import {
  BUCKET,
  clearStorageFaults,
  connect,
  E2E,
  Scope,
  setStorageFaults,
  type StorageFaultPlan,
  SUPABASE_URL,
  upload,
} from "../support/stack.ts";

const STORAGE = `${SUPABASE_URL}/storage/v1`;
const TUS = `${STORAGE}/upload/resumable`;
const asService = { apikey: SECRET_KEY }; // an sb_ key as hosted takes it: apikey only
const objectUrl = (name: string) =>
  `${STORAGE}/object/authenticated/${BUCKET}/${name.split("/").map(encodeURIComponent).join("/")}`;

/** An ETag without the weak marker: the runtime weakens it when it compresses a body (Accept-Encoding). */
const strong = (etag: string | null) => etag?.replace(/^W\//, "") ?? null;

async function answer(res: Response): Promise<{ status: number; body: unknown }> {
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

Deno.test(
  { name: "conformance/storage: error answers as hosted (error-handler.ts:46-52)", ...E2E },
  async (t) => {
    const sql = connect(1);
    const scope = new Scope(sql, "conf-errors");
    try {
      const name = scope.object(".bytes.bin"); // hidden: no import job
      await upload(name, "0123456789");
      await t.step(
        "missing object: HTTP 400, NoSuchKey with 404 in the body (codes.ts NoSuchKey)",
        async () => {
          assert.deepEqual(
            await answer(await fetch(objectUrl(`${scope.prefix}/missing.csv`), { headers: asService })),
            {
              status: 400,
              body: { statusCode: "404", code: "NoSuchKey", error: "not_found", message: "Object not found" },
            },
          );
        },
      );
      await t.step(
        "missing bucket: HTTP 400, NoSuchBucket with 404 in the body (codes.ts NoSuchBucket)",
        async () => {
          const res = await fetch(`${STORAGE}/object/authenticated/no-such-bucket-${crypto.randomUUID()}/x`, {
            headers: asService,
          });
          assert.deepEqual(await answer(res), {
            status: 400,
            body: {
              statusCode: "404",
              code: "NoSuchBucket",
              error: "Bucket not found",
              message: "Bucket not found",
            },
          });
        },
      );
      await t.step(
        "invalid JWT: HTTP 400, AccessDenied with 403 in the body (plugins/jwt.ts → AccessDenied)",
        async () => {
          const res = await fetch(objectUrl(name), {
            headers: { Authorization: "Bearer not.a.jwt", apikey: "not.a.jwt" },
          });
          const { status, body } = await answer(res);
          assert.equal(status, 400);
          assert.equal((body as Record<string, string>).statusCode, "403");
          assert.equal((body as Record<string, string>).code, "AccessDenied");
        },
      );
      await t.step(
        "unsatisfiable Range on the S3 backend: HTTP 500 InternalError (renderer.ts rethrows S3's 416)",
        async () => {
          const res = await fetch(objectUrl(name), { headers: { ...asService, Range: "bytes=10-" } });
          assert.deepEqual(await answer(res), {
            status: 500,
            body: {
              statusCode: "500",
              code: "InternalError",
              error: "Internal",
              message: "Internal Server Error",
            },
          });
          const ok = await fetch(objectUrl(name), { headers: { ...asService, Range: "bytes=9-" } });
          assert.equal(ok.status, 206);
          assert.equal(await ok.text(), "9");
        },
      );
      const shapes: [NonNullable<StorageFaultPlan["error"]>, number, Record<string, string>][] = [
        ["InternalError", 500, { statusCode: "500", code: "InternalError" }],
        ["LockTimeout", 400, { statusCode: "503", code: "LockTimeout", error: "acquiring_lock_timeout" }],
        ["DatabaseReadOnly", 400, { statusCode: "503", code: "DatabaseReadOnly" }],
        ["SlowDown", 400, { statusCode: "503", code: "S3Error", message: "SlowDown" }],
        ["DatabaseTimeout", 544, { statusCode: "544", code: "DatabaseTimeout" }],
        ["TooManyConnections", 429, { statusCode: "429", code: "SlowDown", error: "too_many_connections" }],
      ];
      for (const [error, status, body] of shapes) {
        await t.step(
          `injected ${error}: HTTP ${status}, ${body.statusCode} in the body (codes.ts ${error})`,
          async () => {
            await setStorageFaults({ kind: "status", error, every: 1, limit: 1, prefix: `${scope.prefix}/` });
            const faulted = await answer(await fetch(objectUrl(name), { headers: asService }));
            assert.equal(faulted.status, status);
            for (const [key, value] of Object.entries(body)) {
              assert.equal((faulted.body as Record<string, string>)[key], value, `${error}: ${key}`);
            }
            const after = await fetch(objectUrl(name), { headers: asService });
            assert.equal(await after.text(), "0123456789", "the next read is served (limit 1)");
            assert.equal((await clearStorageFaults()).faults.status, 1);
          },
        );
      }
    } finally {
      await clearStorageFaults().catch(() => {});
      await scope.dispose();
      await sql.end();
    }
  },
);

Deno.test({
  name: "conformance/storage: sb_ keys in Authorization only when equal to apikey (api-keys.mdx)",
  ...E2E,
}, async (t) => {
  const sql = connect(1);
  const scope = new Scope(sql, "conf-keys");
  try {
    const name = scope.object(".key.bin");
    await upload(name, "key");
    const cases: [string, Record<string, string>, boolean][] = [
      ["sb_secret_ as apikey only", { apikey: SECRET_KEY }, true],
      ["sb_secret_ as Bearer and the same apikey", {
        Authorization: `Bearer ${SECRET_KEY}`,
        apikey: SECRET_KEY,
      }, true],
      ["sb_secret_ as Bearer alone", { Authorization: `Bearer ${SECRET_KEY}` }, false],
      ["sb_secret_ as Bearer, another apikey", {
        Authorization: `Bearer ${SECRET_KEY}`,
        apikey: PUBLISHABLE_KEY,
      }, false],
      ["sb_publishable_ as Bearer alone", { Authorization: `Bearer ${PUBLISHABLE_KEY}` }, false],
      ["a legacy service-role JWT as Bearer alone", { Authorization: `Bearer ${SERVICE_ROLE_KEY}` }, true],
      ["a legacy JWT as Bearer with an sb_ apikey", {
        Authorization: `Bearer ${SERVICE_ROLE_KEY}`,
        apikey: SECRET_KEY,
      }, true],
    ];
    for (const [what, headers, allowed] of cases) {
      await t.step(`Storage: ${what} → ${allowed ? "served" : "401"}`, async () => {
        const res = await fetch(objectUrl(name), { headers });
        const text = await res.text();
        if (allowed) {
          assert.equal(res.status, 200, text);
          assert.equal(text, "key");
        } else {
          assert.equal(res.status, 401, text);
          assert.ok(!text.includes(SECRET_KEY) && !text.includes(PUBLISHABLE_KEY), "the key is not echoed");
        }
      });
      await t.step(
        `Functions: ${what} → ${allowed ? "reaches the function" : "401 at the gateway"}`,
        async () => {
          const res = await fetch(`${SUPABASE_URL}/functions/v1/csv-import-health`, { headers });
          const text = await res.text();
          if (allowed) assert.ok([200, 503].includes(res.status), `${res.status} ${text}`);
          else {
            assert.equal(res.status, 401, text);
            assert.match(text, /sb_/, "the gateway's refusal, not the function's");
          }
        },
      );
    }
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({
  name: "conformance/storage: a stale CDN copy serves the old version's bytes and headers (smart-cdn)",
  ...E2E,
}, async () => {
  const sql = connect(1);
  const scope = new Scope(sql, "conf-stale");
  try {
    const name = scope.object(".cdn.bin");
    await upload(name, "old bytes!!");
    await setStorageFaults({ kind: "stale", ttl_ms: 3000, prefix: `${scope.prefix}/` });
    const first = await fetch(objectUrl(name), { headers: asService }); // caches the old version
    const oldEtag = strong(first.headers.get("etag"));
    assert.equal(await first.text(), "old bytes!!");
    await upload(name, "new", { upsert: true });
    const [{ etag: newEtag }] = await sql<{ etag: string }[]>`
      select metadata->>'eTag' as etag from storage.objects where bucket_id = ${BUCKET} and name = ${name}`;
    assert.notEqual(newEtag, oldEtag);

    const stale = await fetch(objectUrl(name), { headers: { ...asService, Range: "bytes=0-3" } });
    assert.equal(stale.status, 206);
    assert.equal(strong(stale.headers.get("etag")), oldEtag, "the old version's ETag");
    assert.equal(stale.headers.get("content-range"), "bytes 0-3/11", "the old version's size");
    assert.equal(await stale.text(), "old ");
    const head = await fetch(objectUrl(name), { method: "HEAD", headers: asService });
    await head.body?.cancel();
    assert.equal(strong(head.headers.get("etag")), oldEtag, "HEAD from the cached copy too");

    await new Promise((resolve) => setTimeout(resolve, 3200));
    const fresh = await fetch(objectUrl(name), { headers: asService });
    assert.equal(strong(fresh.headers.get("etag")), newEtag, "after ttl_ms the new version");
    assert.equal(await fresh.text(), "new");
    const counters = await clearStorageFaults();
    assert.ok(counters.faults.stale >= 2, `stale answers counted: ${JSON.stringify(counters.faults)}`);
  } finally {
    await clearStorageFaults().catch(() => {});
    await scope.dispose();
    await sql.end();
  }
});

/** Upload-Metadata: comma-separated `key base64(value)` pairs (TUS 1.0.0 creation extension). */
function tusMetadata(meta: Record<string, string>): string {
  return Object.entries(meta).map(([k, v]) => `${k} ${btoa(v)}`).join(",");
}

Deno.test({
  name: "conformance/storage: TUS resumable uploads as hosted (routes/tus/index.ts, lifecycle.ts)",
  ...E2E,
}, async (t) => {
  const sql = connect(1);
  const scope = new Scope(sql, "conf-tus");
  try {
    await t.step(
      "CORS preflight: hosted's allowedHeaders, the TUS headers, no credentials needed",
      async () => {
        const res = await fetch(TUS, {
          method: "OPTIONS",
          headers: {
            Origin: "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers":
              "authorization,apikey,x-upsert,tus-resumable,upload-length,upload-metadata",
          },
        });
        await res.body?.cancel();
        assert.equal(res.status, 204);
        const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
        for (
          const h of [
            "authorization",
            "x-upsert",
            "apikey",
            "upload-metadata",
            "upload-offset",
            "tus-resumable",
          ]
        ) {
          assert.ok(allowed.includes(h), `Access-Control-Allow-Headers has ${h}: ${allowed}`);
        }
        assert.match(res.headers.get("access-control-allow-methods") ?? "", /PATCH/);
        assert.ok(res.headers.get("access-control-allow-origin"));
        assert.equal(res.headers.get("tus-resumable"), "1.0.0");
        assert.match(res.headers.get("tus-extension") ?? "", /creation/);
      },
    );

    await t.step(
      "no credentials: refused like any upload (HTTP 400, AccessDenied 403 in the body)",
      async () => {
        const res = await fetch(TUS, {
          method: "POST",
          headers: {
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "3",
            "Upload-Metadata": tusMetadata({ bucketName: BUCKET, objectName: "x" }),
          },
        });
        const { status, body } = await answer(res);
        assert.equal(status, 400);
        assert.equal((body as Record<string, string>).statusCode, "403");
      },
    );

    const name = scope.object(".tus.bin");
    const bytes = new TextEncoder().encode("0123456789abcdefghij");
    let location = "";
    await t.step("creation: 201 with a Location; the upload is not an object yet", async () => {
      const res = await fetch(TUS, {
        method: "POST",
        headers: {
          ...asService,
          "Tus-Resumable": "1.0.0",
          "Upload-Length": String(bytes.length),
          "Upload-Metadata": tusMetadata({
            bucketName: BUCKET,
            objectName: name,
            contentType: "text/plain",
            cacheControl: "3600",
          }),
        },
      });
      await res.body?.cancel();
      assert.equal(res.status, 201);
      location = res.headers.get("location") ?? "";
      assert.ok(location.startsWith(`${TUS}/`), location);
    });
    const objectRows = () =>
      sql`select 1 from storage.objects where bucket_id = ${BUCKET} and name = ${name}`;
    await t.step(
      "part of the bytes: stored, offset advanced, still no storage.objects row (lifecycle.ts:337)",
      async () => {
        const patch = await fetch(location, {
          method: "PATCH",
          headers: {
            ...asService,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
          },
          body: bytes.slice(0, 7),
        });
        await patch.body?.cancel();
        assert.equal(patch.status, 204);
        assert.equal(patch.headers.get("upload-offset"), "7");
        assert.equal((await objectRows()).length, 0, "no row before the last byte");
        const head = await fetch(location, {
          method: "HEAD",
          headers: { ...asService, "Tus-Resumable": "1.0.0" },
        });
        await head.body?.cancel();
        assert.equal(head.headers.get("upload-offset"), "7", "HEAD tells where to resume");
        assert.equal(head.headers.get("upload-length"), String(bytes.length));
      },
    );
    await t.step(
      "the last byte: the row is written, the object reads back with hosted's metadata",
      async () => {
        const patch = await fetch(location, {
          method: "PATCH",
          headers: {
            ...asService,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "7",
            "Content-Type": "application/offset+octet-stream",
          },
          body: bytes.slice(7),
        });
        await patch.body?.cancel();
        assert.equal(patch.status, 204);
        assert.equal(patch.headers.get("upload-offset"), String(bytes.length));
        assert.equal((await objectRows()).length, 1, "the row exists once the last byte is stored");
        const res = await fetch(objectUrl(name), { headers: asService });
        assert.equal(await res.text(), "0123456789abcdefghij");
        assert.equal(
          res.headers.get("cache-control"),
          "max-age=3600",
          "cacheControl seconds → max-age (onCreate)",
        );
        assert.equal(res.headers.get("content-type"), "text/plain");
        const [row] = await sql<{ size: string; etag: string }[]>`
        select metadata->>'size' as size, metadata->>'eTag' as etag from storage.objects
        where bucket_id = ${BUCKET} and name = ${name}`;
        assert.equal(row.size, String(bytes.length));
        assert.equal(strong(res.headers.get("etag")), row.etag);
      },
    );
    await t.step(
      "without x-upsert an existing object is refused at creation (409, onResponseError's text)",
      async () => {
        const res = await fetch(TUS, {
          method: "POST",
          headers: {
            ...asService,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "1",
            "Upload-Metadata": tusMetadata({ bucketName: BUCKET, objectName: name }),
          },
        });
        const text = await res.text();
        assert.equal(res.status, 409, text);
        assert.match(text, /already exists/);
      },
    );
    await t.step("with x-upsert: true the object is replaced when the upload completes", async () => {
      const res = await fetch(TUS, {
        method: "POST",
        headers: {
          ...asService,
          "x-upsert": "true",
          "Tus-Resumable": "1.0.0",
          "Upload-Length": "2",
          "Content-Type": "application/offset+octet-stream",
          "Upload-Metadata": tusMetadata({ bucketName: BUCKET, objectName: name }),
        },
        body: "ok", // creation-with-upload
      });
      await res.body?.cancel();
      assert.equal(res.status, 201);
      const read = await fetch(objectUrl(name), { headers: asService });
      assert.equal(await read.text(), "ok");
    });
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
