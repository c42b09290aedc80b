import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";
import { serviceHandler } from "./handler.ts";

const PASSWORD = "pw-4d2c9e";
const BROKEN = {
  SUPABASE_URL: `postgresql://postgres:${PASSWORD}@db.internal/postgres`,
  SUPABASE_DB_URL: `postgresql://postgres:${PASSWORD}@127.0.0.1/postgres`,
  SUPABASE_SERVICE_ROLE_KEY: "service-key",
  SUPABASE_SECRET_KEYS: "not json",
  PIPELINE_INTERNAL_SECRET: "internal",
};

async function withCapturedErrors<T>(body: (lines: string[]) => Promise<T>): Promise<T> {
  const lines: string[] = [];
  const original = console.error;
  console.error = (line: string) => lines.push(line);
  try {
    return await body(lines);
  } finally {
    console.error = original;
  }
}

Deno.test("serviceHandler: an invalid configuration answers 401 to strangers and 500 without values to callers", async () => {
  let ran = false;
  const handle = serviceHandler("register", () => {
    ran = true;
    return Promise.resolve(new Response("ran"));
  }, { config: () => loadConfig(BROKEN), env: () => BROKEN });
  const cases: [Record<string, string>, number][] = [
    [{}, 401],
    [{ authorization: "Bearer wrong" }, 401],
    [{ apikey: "service-ke" }, 401],
    [{ authorization: "Bearer service-key" }, 500],
    [{ apikey: "service-key" }, 500],
    [{ "x-pipeline-secret": "internal" }, 500],
  ];
  await withCapturedErrors(async (lines) => {
    for (const [headers, expected] of cases) {
      const before = lines.length;
      const res = await handle(new Request("http://x/register", { method: "POST", headers, body: "{}" }));
      const text = await res.text();
      assert.equal(res.status, expected, `${JSON.stringify(headers)}: ${text}`);
      for (const secret of [PASSWORD, "db.internal", "not json", "service-key", 'internal"']) {
        assert.ok(!text.includes(secret), `${JSON.stringify(headers)} got a configured value: ${text}`);
      }
      if (expected === 500) {
        assert.equal(JSON.parse(text).error, "invalid_configuration");
        const logged = lines.slice(before).join("\n");
        assert.match(logged, /"event":"invalid_configuration"/);
        assert.match(logged, /SUPABASE_URL must be an http\(s\) URL/);
        assert.ok(!logged.includes(PASSWORD), logged);
      } else {
        assert.equal(lines.length, before, "a stranger's request logs nothing");
      }
    }
  });
  assert.equal(ran, false);
});

Deno.test("serviceHandler: with no usable key at all, every caller gets 401", async () => {
  const env = { SUPABASE_URL: "http://x", SUPABASE_DB_URL: "postgresql://u@h/d" };
  const handle = serviceHandler("health", () => Promise.resolve(new Response("ran")), {
    config: () => loadConfig(env),
    env: () => env,
  });
  const callers: Record<string, string>[] = [{}, { authorization: "Bearer " }, { apikey: "" }];
  for (const headers of callers) {
    const res = await handle(new Request("http://x/health", { headers }));
    assert.equal(res.status, 401);
    await res.body?.cancel();
  }
});
