/**
 * Unit tests of the pure parsers: Range headers, config.toml storage settings, object-key rules and the
 * streaming multipart reader (no database, no network).
 */
import assert from "node:assert/strict";
import { parseConfigSize, parseStorageConfig } from "./config.ts";
import { StorageError } from "./errors.ts";
import { boundaryOf, readMultipart } from "./multipart.ts";
import { mustBeValidKey, parseApiSize } from "./names.ts";
import { parseRange } from "./range.ts";

Deno.test("parseRange: single ranges, suffix, open-ended, ignored and unsatisfiable forms", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), { kind: "partial", start: 0, end: 9 });
  assert.deepEqual(parseRange("bytes=90-", 100), { kind: "partial", start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-10", 100), { kind: "partial", start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-500", 100), { kind: "partial", start: 0, end: 99 });
  assert.deepEqual(parseRange("bytes=50-5000", 100), { kind: "partial", start: 50, end: 99 });
  for (const ignored of [null, "", "bytes=", "items=0-1", "bytes=0-1,5-6", "bytes=9-1", "bytes=a-b"]) {
    assert.deepEqual(parseRange(ignored, 100), { kind: "full" }, String(ignored));
  }
  for (const bad of ["bytes=100-", "bytes=100-200", "bytes=-0"]) {
    assert.deepEqual(parseRange(bad, 100), { kind: "unsatisfiable" }, bad);
  }
  assert.deepEqual(parseRange("bytes=0-", 0), { kind: "unsatisfiable" });
});

Deno.test("config.toml: CLI sizes are binary, buckets default private without limits", () => {
  assert.equal(parseConfigSize("50MiB"), 50 * 1024 * 1024);
  assert.equal(parseConfigSize("50MB"), 50 * 1024 * 1024);
  assert.equal(parseConfigSize("32kB"), 32 * 1024);
  assert.equal(parseConfigSize("1024"), 1024);
  assert.throws(() => parseConfigSize("lots"));
  const config = parseStorageConfig(`
[storage]
enabled = true
file_size_limit = "100MiB"

[storage.buckets.csv-uploads]
public = false
file_size_limit = "50MiB"
allowed_mime_types = ["text/csv", "text/plain"]
objects_path = "./seed"

[storage.buckets.avatars]
public = true
`);
  assert.equal(config.enabled, true);
  assert.equal(config.fileSizeLimitBytes, 100 * 1024 * 1024);
  assert.deepEqual(config.buckets, [
    {
      id: "csv-uploads",
      public: false,
      fileSizeLimit: 50 * 1024 * 1024,
      allowedMimeTypes: ["text/csv", "text/plain"],
    },
    { id: "avatars", public: true, fileSizeLimit: null, allowedMimeTypes: null },
  ]);
  assert.deepEqual(parseStorageConfig(""), {
    enabled: true,
    fileSizeLimitBytes: 50 * 1024 * 1024,
    buckets: [],
  });
});

Deno.test("object keys: unicode and spaces allowed; dot segments, controls and S3-unsafe characters refused", () => {
  for (const ok of ["a.csv", "folder/sub folder/ünï ✓ 😀.csv", "a..b/c", ".hidden/x", "x/.../y"]) {
    mustBeValidKey(ok);
  }
  for (
    const bad of [
      "",
      "..",
      "../x",
      "a/../b",
      "a/..",
      "./a",
      "a/./b",
      "a\u0000b",
      "a\\b",
      "50%",
      "a#b",
      "\u202Eevil",
    ]
  ) {
    assert.throws(
      () => mustBeValidKey(bad),
      (e) => e instanceof StorageError && e.code === "InvalidKey",
      bad,
    );
  }
  assert.throws(() => mustBeValidKey("é".repeat(513)), StorageError, "over 1024 UTF-8 bytes");
  assert.equal(parseApiSize("100MB"), 100e6);
  assert.equal(parseApiSize("1.5GB"), 1.5e9);
});

Deno.test("multipart: fields first, then the file part named '' streamed across chunk boundaries", async () => {
  const form = new FormData();
  form.append("cacheControl", "60");
  form.append("metadata", JSON.stringify({ a: 1 }));
  const payload = crypto.getRandomValues(new Uint8Array(60_000));
  payload.set(new TextEncoder().encode("\r\n--not-the-boundary\r\n"), 1000);
  form.append("", new Blob([payload], { type: "text/csv" }));
  const req = new Request("http://x/", { method: "POST", body: form });
  const boundary = boundaryOf(req.headers.get("content-type")!)!;
  // Re-chunk the encoded body into awkward 7-byte pieces to exercise delimiter search across chunks.
  const raw = new Uint8Array(await req.arrayBuffer());
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < raw.length; i += 7) controller.enqueue(raw.slice(i, i + 7));
      controller.close();
    },
  });
  const { fields, file } = await readMultipart(body, boundary, 1024);
  assert.deepEqual(fields, { cacheControl: "60", metadata: '{"a":1}' });
  assert.equal(file?.contentType, "text/csv");
  assert.deepEqual(new Uint8Array(await new Response(file!.body).arrayBuffer()), payload);
});

Deno.test("multipart: a truncated body errors instead of yielding a short file", async () => {
  const form = new FormData();
  form.append("", new Blob(["0123456789".repeat(100)]));
  const req = new Request("http://x/", { method: "POST", body: form });
  const raw = new Uint8Array(await req.arrayBuffer());
  const { file } = await readMultipart(
    new Blob([raw.slice(0, raw.length - 60)]).stream(),
    boundaryOf(req.headers.get("content-type")!)!,
    1024,
  );
  await assert.rejects(new Response(file!.body).arrayBuffer());
});
