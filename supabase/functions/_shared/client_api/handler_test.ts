import assert from "node:assert/strict";
import type { Sql } from "../platform/db.ts";
import { type ClientApiDeps, clientApiHandler, route } from "./handler.ts";
import { ImportNotFound } from "./queries.ts";

const USER = { id: "a17a17a1-aaaa-4aaa-8aaa-aaaaaaaaaaaa", claims: { role: "authenticated" } };

/** Deps whose "database" answers each query with `rows` (a fake tagged template) and records signing. */
function fakeDeps(rows: Record<string, unknown>[], signed: string[], user = USER): ClientApiDeps {
  const tx = (() => Promise.resolve(rows)) as unknown as Sql;
  return {
    authenticate: () => Promise.resolve(user),
    asUser: (_user, work) => work(tx),
    signUrl: (bucket, name) => {
      signed.push(`${bucket}/${name}`);
      return Promise.resolve(`https://signed/${name}`);
    },
  };
}

const get = (path: string, method = "GET") => new Request(`http://x/csv-import-api${path}`, { method });

Deno.test("route: the import paths, wherever the function is mounted", () => {
  assert.deepEqual(route("/csv-import-api/imports"), { id: null, action: null });
  assert.deepEqual(route("/functions/v1/csv-import-api/imports/42/"), { id: 42, action: null });
  assert.deepEqual(route("/csv-import-api/imports/42/rejects-file"), { id: 42, action: "rejects-file" });
  assert.equal(route("/csv-import-api/other"), null);
  assert.throws(() => route("/csv-import-api/imports/abc"), /positive integer, got "abc"/);
});

Deno.test("handler: no user → 401 before any query; OPTIONS passes without one", async () => {
  const deps = { ...fakeDeps([], []), authenticate: () => Promise.resolve(null) };
  deps.asUser = () => Promise.reject(new Error("no query may run"));
  const handler = clientApiHandler(() => deps);
  const res = await handler(get("/imports"));
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, "unauthorized");
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal((await handler(get("/imports", "OPTIONS"))).status, 204);
});

Deno.test("handler: an import the user cannot see is 404; a bad limit is 400", async () => {
  const handler = clientApiHandler(() => fakeDeps([], []));
  const res = await handler(get("/imports/7"));
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: "not_found", message: "Import 7 not found" });
  const bad = await handler(get("/imports?limit=0"));
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
  const cancel = clientApiHandler(() => ({
    ...fakeDeps([], []),
    asUser: () => Promise.reject(new ImportNotFound(9)),
  }));
  assert.equal((await cancel(get("/imports/9/cancel", "POST"))).status, 404);
});

Deno.test("handler: the rejects file is signed only when written, for the object the user's row names", async () => {
  const signed: string[] = [];
  const row = { bucket: "csv-uploads", rejects_status: "written", rejects_object: "a/x.rejects.csv" };
  const written = await clientApiHandler(() => fakeDeps([{ import: row }], signed))(
    get("/imports/3/rejects-file"),
  );
  assert.deepEqual(await written.json(), { status: "written", url: "https://signed/a/x.rejects.csv" });
  assert.deepEqual(signed, ["csv-uploads/a/x.rejects.csv"]);
  const pending = { ...row, rejects_status: "pending", rejects_object: null };
  const notYet = await clientApiHandler(() => fakeDeps([{ import: pending }], signed))(
    get("/imports/3/rejects-file"),
  );
  assert.deepEqual(await notYet.json(), { status: "pending", url: null });
  assert.equal(signed.length, 1, "nothing more was signed");
});

Deno.test("handler: an unexpected error is 500 with a masked message; a broken configuration is 500", async () => {
  const failing = clientApiHandler(() => ({
    ...fakeDeps([], []),
    asUser: () => Promise.reject(new Error("postgresql://postgres:hunter2@db/postgres refused")),
  }));
  const res = await failing(get("/imports"));
  assert.equal(res.status, 500);
  assert.ok(!(await res.text()).includes("hunter2"));
  const broken = clientApiHandler(() => {
    throw new Error("SUPABASE_URL is not set");
  });
  const answer = await broken(get("/imports"));
  assert.equal(answer.status, 500);
  assert.equal((await answer.json()).error, "invalid_configuration");
});
