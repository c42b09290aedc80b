import assert from "node:assert/strict";
import { join } from "node:path";
import { createWebApp } from "./web_app.ts";

Deno.test("web app route: the built files with their types, a generated config.json, nothing else", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "index.html"), "<!doctype html>");
    await Deno.writeTextFile(join(dir, "app.js"), "export {}");
    await Deno.writeTextFile(join(dir, "secret.ts"), "no");
    const config = {
      publishableKey: "sb_publishable_x",
      bucket: "csv-uploads",
      uploadFolder: "web",
      realtime: false,
    };
    const app = createWebApp({ distDir: dir, config });
    const get = (path: string, method = "GET") =>
      app(new Request(`http://127.0.0.1:1${path}`, { method }), path);

    const index = await get("/app/");
    assert.equal(index.status, 200);
    assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(await index.text(), "<!doctype html>");
    const js = await get("/app/app.js");
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    await js.body?.cancel();
    assert.deepEqual(await (await get("/app/config.json")).json(), {
      supabaseUrl: "http://127.0.0.1:1",
      ...config,
    });
    const redirect = await get("/app");
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get("location"), "http://127.0.0.1:1/app/");
    for (const path of ["/app/secret.ts", "/app/missing.js", "/app/../app.js", "/app/a/app.js"]) {
      const response = await get(path);
      assert.equal(response.status, 404, path);
      await response.body?.cancel();
    }
    const post = await get("/app/index.html", "POST");
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
