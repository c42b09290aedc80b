/** Table tests of log redaction: no key, JWT or password reaches a log line or a stored error. */
import assert from "node:assert/strict";
import { redact } from "./log.ts";

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
