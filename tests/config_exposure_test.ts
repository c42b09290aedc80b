/**
 * Issue 11, item 9: a function whose configuration is invalid must not hand that configuration to callers.
 *
 * The pipeline's real functions (supabase/functions) run in the local Edge Functions runtime, started here on
 * its own loopback port with a broken environment: SUPABASE_URL holds a connection string with a password
 * (a pasted-in-the-wrong-box mistake) and CHUNK_SIZE a value that must not be echoed either. Then, for every
 * function:
 * - a caller with no key (or a wrong one) gets 401, the same answer as with a valid configuration;
 * - a caller with the service role key or the secret key gets 500 with a generic message;
 * - no response body holds any configured value, and the function's log names the problem (masked).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SECRET_KEY, SERVICE_ROLE_KEY } from "../local-stack/keys.ts";
import { createFunctionsRuntime } from "../local-stack/functions/runtime.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const FUNCTIONS = [
  "csv-import-register",
  "csv-import-chunk",
  "csv-import-inflate",
  "csv-import-dispatch",
  "csv-import-health",
];
const URL_PASSWORD = "url-password-7f3a91";
const CHUNK_VALUE = "chunk-value-c0ffee";
const BROKEN_ENV = {
  SUPABASE_URL: `postgresql://postgres:${URL_PASSWORD}@db.internal:5432/postgres`,
  SUPABASE_DB_URL: "postgresql://postgres:db-password-5b1e@127.0.0.1:1/postgres",
  CHUNK_SIZE: CHUNK_VALUE,
};
const SECRETS = [URL_PASSWORD, CHUNK_VALUE, "db-password-5b1e", "db.internal", SERVICE_ROLE_KEY, SECRET_KEY];

Deno.test("an invalid configuration is never shown to callers; keyless callers get 401", async () => {
  const events: Record<string, unknown>[] = [];
  const rt = createFunctionsRuntime({
    functionsDir: join(REPO, "supabase", "functions"),
    configToml: join(REPO, "supabase", "config.toml"),
    env: BROKEN_ENV,
    log: (event) => events.push(event),
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, rt.handle);
  const base = `http://127.0.0.1:${server.addr.port}/functions/v1`;
  try {
    const call = async (name: string, headers: Record<string, string>) => {
      const res = await fetch(`${base}/${name}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ job_id: 1 }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      for (const secret of SECRETS) {
        assert.ok(!text.includes(secret), `${name} answered ${res.status} with a configured value: ${text}`);
      }
      return { status: res.status, text };
    };
    for (const name of FUNCTIONS) {
      const refused: Record<string, string>[] = [{}, { authorization: "Bearer not-a-key" }, {
        apikey: "sb_secret_wrong",
      }];
      for (const headers of refused) {
        const { status, text } = await call(name, headers);
        assert.equal(status, 401, `${name} without a valid key: ${status} ${text}`);
      }
      for (const key of [SERVICE_ROLE_KEY, SECRET_KEY]) {
        // An sb_ key as apikey only (hosted's gateway refuses it as Bearer); the legacy JWT as Bearer.
        const { status, text } = await call(
          name,
          key.startsWith("sb_") ? { apikey: key } : { authorization: `Bearer ${key}` },
        );
        assert.equal(status, 500, `${name} with a valid key: ${status} ${text}`);
        const body = JSON.parse(text);
        assert.equal(body.error, "invalid_configuration");
        assert.match(body.message, /configuration of the \S+ function is invalid/);
        assert.equal(body.problems, undefined);
      }
    }
    // The operator learns what is wrong from the function's log, masked.
    const logged = events.filter((e) => e.event === "log").map((e) => String(e.message));
    for (const name of FUNCTIONS) {
      assert.ok(
        logged.some((line) => line.includes('"invalid_configuration"') && line.includes(`"${name}"`)),
        `no invalid_configuration log line from ${name}`,
      );
    }
    const problemLine = logged.find((line) => line.includes("CHUNK_SIZE must be an integer"));
    assert.ok(problemLine, "the log names the malformed key");
    assert.ok(!problemLine.includes(URL_PASSWORD), `the log shows a password: ${problemLine}`);
  } finally {
    await rt.close();
    await server.shutdown();
  }
});
