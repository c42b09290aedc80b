/**
 * Table tests of the small pure modules: the in-place backoff formula, log redaction, the rejects CSV's field
 * quoting (formula-injection safe), the column mapping rules and the caller check.
 */
import assert from "node:assert/strict";
import { isServiceCaller } from "./auth.ts";
import { mapColumns, MappingError, normalizeName } from "./columns.ts";
import { loadConfig } from "./config.ts";
import { redact } from "./log.ts";
import type { TargetColumn } from "./pg_types/columns.ts";
import { csvField, rejectsObjectName } from "./rejects_file.ts";
import { backoffMs, isTransient, TransientError } from "./retry.ts";

Deno.test("backoff: exponential, capped, with equal jitter (half the delay is always kept)", () => {
  const table: [number, number, number][] = [
    [1, 50, 100],
    [2, 100, 200],
    [3, 200, 400],
    [4, 400, 800],
    [5, 800, 1600],
    [6, 1000, 2000],
    [20, 1000, 2000],
  ];
  for (const [attempt, low, high] of table) {
    assert.equal(backoffMs(attempt, 100, 2000, 0), low, `attempt ${attempt} at jitter 0`);
    assert.equal(backoffMs(attempt, 100, 2000, 1), high, `attempt ${attempt} at jitter 1`);
  }
});

Deno.test("transient errors are recognised; the file's errors are not", () => {
  const pg = (code: string) => Object.assign(new Error("x"), { code });
  for (
    const e of [
      new TransientError("x"),
      pg("40001"),
      pg("40P01"),
      pg("08006"),
      pg("57P01"),
      pg("ECONNRESET"),
      new TypeError("error sending request: connection reset"),
    ]
  ) {
    assert.ok(isTransient(e), String((e as { code?: string }).code ?? e.message));
  }
  for (const e of [pg("23505"), pg("22P02"), new Error("File is empty"), "text"]) assert.ok(!isTransient(e));
});

Deno.test("logs never carry keys, JWTs or database passwords", () => {
  const line = redact(
    "Authorization: Bearer abc.def sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz " +
      "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlX3NpZ24 postgresql://postgres:hunter2@db:5432/postgres",
  );
  for (const secret of ["abc.def", "N7UND0Ug", "eyJyb2xl", "hunter2"]) {
    assert.ok(!line.includes(secret), line);
  }
});

Deno.test("error texts lose URL passwords and key=value credentials, and keep what explains the error", () => {
  const table: [string, string][] = [
    [
      "connect ECONNREFUSED postgresql://postgres.ref:s3cr3t%40pw@pooler.example.com:6543/postgres",
      "connect ECONNREFUSED postgresql://postgres.ref:[redacted]@pooler.example.com:6543/postgres",
    ],
    ["GET https://user:hunter2@example.com/x failed", "GET https://user:[redacted]@example.com/x failed"],
    [
      "host=db port=5432 password=hunter2 user=postgres",
      "host=db port=5432 password=[redacted] user=postgres",
    ],
    ["fetch /object?apikey=abc123&x=1 → 400", "fetch /object?apikey=[redacted]&x=1 → 400"],
    ['headers {"x-pipeline-secret": "pipe-s3cret"}', 'headers {"x-pipeline-secret": "[redacted]"}'],
    [
      'password authentication failed for user "postgres"',
      'password authentication failed for user "postgres"',
    ],
    ['"lease_token" must be a UUID', '"lease_token" must be a UUID'],
  ];
  for (const [input, want] of table) assert.equal(redact(input), want, input);
});

Deno.test("rejects CSV fields are quoted and spreadsheet formulas neutralised", () => {
  const table: [string | number | null, string][] = [
    ["plain", '"plain"'],
    ['say "hi"', '"say ""hi"""'],
    ["=cmd()", `"'=cmd()"`],
    ["+1", `"'+1"`],
    ["-1", `"'-1"`],
    ["@SUM(A1)", `"'@SUM(A1)"`],
    ["\tx", `"'\tx"`],
    ["a\nb", '"a\nb"'],
    [42, '"42"'],
    [null, '""'],
  ];
  for (const [value, want] of table) assert.equal(csvField(value), want);
  assert.equal(rejectsObjectName("in/orders.csv"), "in/orders.csv.rejects.csv");
});

const col = (name: string, extra: Partial<TargetColumn> = {}) =>
  ({ name, notNull: false, hasDefault: false, generated: false, ...extra }) as TargetColumn;
const table = [
  col("id", { notNull: true }),
  col("email", { notNull: true }),
  col("created_at", { notNull: true, hasDefault: true }),
  col("total", { generated: true }),
  col("note"),
];

Deno.test("header names match columns case-, space-, _- and --insensitively, and through aliases", () => {
  assert.equal(normalizeName(" Order_ID "), normalizeName("order-id"));
  const mapping = mapColumns(
    ["ID", "E-Mail Address", "Unknown", "NOTE"],
    table,
    { email: ["e-mail address"] },
    "public.t",
    4,
  );
  assert.deepEqual(mapping.mapped.map((m) => [m.field, m.column.name]), [[0, "id"], [1, "email"], [
    3,
    "note",
  ]]);
  assert.deepEqual(mapping.ignored, ["Unknown"]);
  assert.equal(mapping.expectedFields, 4);
});

Deno.test("mapping errors name the problem: missing required columns, duplicates, too many fields", () => {
  assert.throws(
    () => mapColumns(["note"], table, {}, "public.t", 1),
    (e: Error) => e instanceof MappingError && /"id", "email"/.test(e.message),
  );
  assert.throws(() => mapColumns(["id", "ID", "email"], table, {}, "public.t", 3), /both map to column "id"/);
  assert.throws(
    () => mapColumns(null, table, {}, "public.t", 5),
    /5 fields per row but public.t has only 4 writable columns/,
  );
  const positional = mapColumns(null, table, {}, "public.t", 2);
  assert.deepEqual(
    positional.mapped.map((m) => m.column.name),
    ["id", "email"],
    "without a header: by position, generated skipped",
  );
});

Deno.test("only the service key, a secret key or the internal secret may call", () => {
  const config = loadConfig({
    SUPABASE_URL: "http://x",
    SUPABASE_DB_URL: "postgresql://x",
    SUPABASE_SERVICE_ROLE_KEY: "service-jwt",
    SUPABASE_SECRET_KEYS: '{"default":"sb_secret_1"}',
    PIPELINE_INTERNAL_SECRET: "internal",
  });
  const req = (headers: Record<string, string>) => new Request("http://x", { headers });
  assert.ok(isServiceCaller(req({ Authorization: "Bearer service-jwt" }), config));
  assert.ok(isServiceCaller(req({ apikey: "sb_secret_1" }), config));
  assert.ok(isServiceCaller(req({ "x-pipeline-secret": "internal" }), config));
  assert.ok(!isServiceCaller(req({}), config));
  assert.ok(!isServiceCaller(req({ Authorization: "Bearer service-jw" }), config));
  assert.ok(!isServiceCaller(req({ Authorization: "Bearer service-jwtx" }), config));
  assert.ok(!isServiceCaller(req({ apikey: "anon" }), config));
});

Deno.test("rejects file names fit Storage's 1024-byte limit", () => {
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  assert.equal(rejectsObjectName("in/a.csv", 7), "in/a.csv.rejects.csv");
  const long = "in/" + "é".repeat(505) + ".csv"; // 1017 bytes: `.rejects.csv` would make it 1029
  assert.equal(rejectsObjectName(long, 7), "in/job-7.rejects.csv");
  const deep = "d".repeat(1010) + "/f.csv"; // even the folder is too long for job-<id>.rejects.csv beside it
  assert.equal(rejectsObjectName(deep, 42), "job-42.rejects.csv");
  for (const name of [long, deep]) assert.ok(bytes(rejectsObjectName(name, 1)) <= 1024);
});
