/** Table test of the caller check: only the service key, a secret key or the internal secret. */
import assert from "node:assert/strict";
import { isServiceCaller } from "./auth.ts";
import { loadConfig } from "./config.ts";

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
