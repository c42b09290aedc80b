import assert from "node:assert/strict";
import { CORS_HEADERS, withCors } from "./cors.ts";

Deno.test("cors: the preflight is answered without running the handler; every answer carries the headers", async () => {
  let calls = 0;
  const handler = withCors((_req) => {
    calls++;
    return Promise.resolve(
      Response.json({ error: "unauthorized" }, { status: 401, headers: { "X-Kept": "1" } }),
    );
  });
  const preflight = await handler(new Request("http://x/jobs", { method: "OPTIONS" }));
  assert.equal(preflight.status, 204);
  assert.equal(calls, 0, "no credential is needed for the preflight");
  for (const [name, value] of Object.entries(CORS_HEADERS)) assert.equal(preflight.headers.get(name), value);

  const refused = await handler(new Request("http://x/jobs"));
  assert.equal(refused.status, 401, "the status is kept");
  assert.equal(refused.headers.get("x-kept"), "1", "the handler's headers are kept");
  assert.equal(refused.headers.get("access-control-allow-origin"), "*", "a browser can read the refusal");
  assert.deepEqual(await refused.json(), { error: "unauthorized" });
});
