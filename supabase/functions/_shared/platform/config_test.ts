/** Configuration: defaults, old worker names, size units, and one clear error listing every bad key. */
import assert from "node:assert/strict";
import { ConfigError, DEFAULTS, loadConfig, parseSize } from "./config.ts";

const base = {
  SUPABASE_URL: "http://127.0.0.1:54321/",
  SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
  SUPABASE_SERVICE_ROLE_KEY: "service-jwt",
};

Deno.test("defaults apply, the URL loses its trailing slash, the config is frozen", () => {
  const config = loadConfig(base);
  assert.equal(config.supabaseUrl, "http://127.0.0.1:54321");
  assert.equal(config.bucket, DEFAULTS.STORAGE_BUCKET);
  assert.equal(config.batchSize, DEFAULTS.WORKER_BATCH_SIZE);
  assert.equal(config.fanOutWidth, DEFAULTS.WORKER_CONCURRENT_BATCHES);
  assert.equal(config.chunkSize, DEFAULTS.CHUNK_SIZE);
  assert.equal(config.copyFormat, "binary");
  assert.equal(loadConfig({ ...base, WORKER_COPY_FORMAT: "text" }).copyFormat, "text");
  assert.ok(Object.isFrozen(config));
});

Deno.test("the old worker's names keep their meaning; new secret keys are accepted and preferred", () => {
  const config = loadConfig({
    SUPABASE_URL: "https://ref.supabase.co",
    SUPABASE_DB_URL: "postgres://u:p@h:6543/postgres",
    SUPABASE_SERVICE_KEY: "legacy-alias",
    SUPABASE_SECRET_KEYS: '{"default":"sb_secret_abc"}',
    STORAGE_BUCKET: "imports",
    WORKER_BATCH_SIZE: "2000",
    WORKER_CONCURRENT_BATCHES: "8",
    CHUNK_SIZE: "4MiB",
  });
  assert.deepEqual(config.acceptedServiceKeys, ["sb_secret_abc", "legacy-alias"]);
  assert.equal(config.serviceKey, "sb_secret_abc", "a secret key is preferred over the legacy JWT");
  assert.equal(config.bucket, "imports");
  assert.equal(config.batchSize, 2000);
  assert.equal(config.fanOutWidth, 8);
  assert.equal(config.chunkSize, 4 * 1024 * 1024);
});

Deno.test("every problem is reported at once, by key, without secret values", () => {
  try {
    loadConfig({
      SUPABASE_URL: "ftp://nope",
      SUPABASE_SECRET_KEYS: "not json",
      WORKER_BATCH_SIZE: "0",
      CHUNK_SIZE: "big",
      STORAGE_BUCKET: "Bad Bucket",
      WORKER_COPY_FORMAT: "csv",
    });
    assert.fail("expected a ConfigError");
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    const text = error.problems.join("\n");
    for (
      const key of [
        "SUPABASE_URL",
        "SUPABASE_DB_URL",
        "SUPABASE_SECRET_KEYS",
        "WORKER_BATCH_SIZE",
        "CHUNK_SIZE",
        "STORAGE_BUCKET",
        "WORKER_COPY_FORMAT",
        "no service key",
      ]
    ) {
      assert.ok(text.includes(key), `missing ${key} in: ${text}`);
    }
  }
});

Deno.test("sizes accept plain integers and binary units", () => {
  const table: [string, number | null][] = [
    ["8388608", 8388608],
    ["8MiB", 8 * 1024 ** 2],
    ["8 MB", 8 * 1024 ** 2],
    ["512KiB", 512 * 1024],
    ["1g", 1024 ** 3],
    ["1.5MiB", null],
    ["-1", null],
    ["", null],
  ];
  for (const [raw, want] of table) assert.equal(parseSize(raw), want, raw);
});
