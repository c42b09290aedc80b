/**
 * Issue 17's client API, end to end on the local stack, through the csv-import-api function: users created in the
 * local Auth stand-in sign in with supabase-js, Alice uploads with her own session, and the API answers with her
 * rights only (the SQL runs as her, so row-level security decides). Alice lists her import, follows its progress
 * to the end, reads its first rejects, downloads the rejects file through the signed link and cancels a second
 * import; Bob sees none of it; callers without a user's token get 401.
 *
 * The import to cancel is kept from finishing without timing: a Storage read fault (local-only
 * /_local/storage/faults) fails every read of that one object, so its registration retries and the job stays
 * unfinished until it is cancelled.
 */
import assert from "node:assert/strict";
import { ANON_KEY, PUBLISHABLE_KEY, SECRET_KEY, SERVICE_ROLE_KEY, signJwt } from "../local-stack/keys.ts";
import {
  BUCKET,
  clearStorageFaults,
  connect,
  E2E,
  Scope,
  setStorageFaults,
  SUPABASE_URL,
  unique,
  waitFor,
} from "./support/stack.ts";
import { newSignedInUser, type SignedInUser, userClaims, userStorage } from "./support/users.ts";

const API = `${SUPABASE_URL}/functions/v1/csv-import-api`;
const TERMINAL = ["succeeded", "succeeded_with_rejects", "validated", "failed", "cancelled"];
const WAIT_MS = 90_000;

/** Calls the client API; `token` null sends only the publishable key. */
async function api(
  path: string,
  token: string | null,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { apikey: PUBLISHABLE_KEY, ...init.headers };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${API}${path}`, { method: init.method ?? "GET", headers });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

const as = (user: SignedInUser) => user.accessToken;

Deno.test(
  { name: "client API: a user's imports, progress, rejects, rejects file and cancel", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "client_api");
    const users: SignedInUser[] = [];
    try {
      const table = `public.${unique("e2e_client_api")}`;
      await sql.unsafe(`create table ${table} (id int, name text)`);
      scope.tables.push(table);
      await scope.profile({
        hasHeader: true,
        pathPattern: `${scope.prefix}/%`,
        targetTable: table,
        toleratedRejectRate: 0.5,
      });
      // The application's upload rule: each user uploads into their own folder.
      await scope.userFolderUploads();

      const alice = await newSignedInUser("alice");
      const bob = await newSignedInUser("bob");
      users.push(alice, bob);

      // Alice uploads a file with one bad row, with her own session.
      const name = scope.object(`${alice.id}/orders.csv`);
      const body = "id,name\n1,one\n2,two\nnot-a-number,three\n";
      const { error } = await userStorage(alice.accessToken).upload(name, new TextEncoder().encode(body), {
        contentType: "text/csv",
      });
      assert.equal(error, null, `Alice's upload: ${error?.message}`);

      // She lists it, then follows its progress to the end.
      const listed = await waitFor("Alice's import in her list", async () => {
        const { status, body } = await api("/imports?limit=10", as(alice));
        assert.equal(status, 200, JSON.stringify(body));
        return (body.imports as { object: string; id: number }[]).find((i) => i.object === name);
      }, WAIT_MS);
      const done = await waitFor("Alice's import to end", async () => {
        const { status, body } = await api(`/imports/${listed.id}`, as(alice));
        assert.equal(status, 200, JSON.stringify(body));
        return TERMINAL.includes(body.status as string) && body.rejects_status !== "pending"
          ? body
          : undefined;
      }, WAIT_MS);
      assert.equal(done.status, "succeeded_with_rejects", JSON.stringify(done));
      assert.equal(done.bucket, BUCKET);
      assert.equal(done.table_name, table);
      assert.equal(done.rows_loaded, 2);
      assert.equal(done.rows_rejected, 1);
      assert.equal(done.percent, 100);
      assert.equal(done.bytes_done, done.bytes_total);
      assert.equal(done.eta_seconds, null, "no ETA once the import ended");
      assert.equal(done.dry_run, false);
      for (
        const key of ["id", "object", "rows_parsed", "rows_skipped", "rows_per_second", "error", "created_at"]
      ) {
        assert.ok(key in done, `Import has ${key}`);
      }

      // Its first rejects, by line.
      const rejects = await api(`/imports/${listed.id}/rejects?limit=5`, as(alice));
      assert.equal(rejects.status, 200, JSON.stringify(rejects.body));
      assert.equal(rejects.body.total, 1);
      const [reject] = rejects.body.rejects as Record<string, unknown>[];
      assert.equal(reject.line, 4);
      assert.equal(reject.column_name, "id");
      assert.match(String(reject.raw), /not-a-number/);
      assert.ok(typeof reject.reason === "string" && reject.reason.length > 0);

      // The rejects file through a signed link: no key needed to download it.
      const file = await api(`/imports/${listed.id}/rejects-file`, as(alice));
      assert.equal(file.status, 200, JSON.stringify(file.body));
      assert.equal(file.body.status, "written");
      const signed = String(file.body.url);
      assert.match(signed, /\/storage\/v1\/object\/sign\/.*\?token=/);
      scope.objects.push(String(done.rejects_object));
      const download = await fetch(signed);
      assert.equal(download.status, 200);
      const csv = await download.text();
      assert.match(csv, /not-a-number,three/, csv);

      // Bob sees none of it.
      const bobList = await api("/imports", as(bob));
      assert.equal(bobList.status, 200);
      assert.deepEqual(bobList.body.imports, []);
      for (const path of ["", "/rejects", "/rejects-file"]) {
        const seen = await api(`/imports/${listed.id}${path}`, as(bob));
        assert.equal(seen.status, 404, `Bob GET ${path}: ${JSON.stringify(seen.body)}`);
        assert.equal(seen.body.error, "not_found");
      }

      // A second import that cannot finish (every read of it fails), which Alice cancels and Bob cannot.
      const stuck = scope.object(`${alice.id}/stuck.csv`);
      await setStorageFaults({ kind: "status", error: "InternalError", every: 1, prefix: stuck });
      scope.defer(() => clearStorageFaults());
      const { error: stuckError } = await userStorage(alice.accessToken).upload(
        stuck,
        new TextEncoder().encode("id,name\n1,one\n"),
        { contentType: "text/csv" },
      );
      assert.equal(stuckError, null);
      const pending = await waitFor("the stuck import in Alice's list", async () => {
        const { body } = await api("/imports", as(alice));
        return (body.imports as { object: string; id: number; status: string }[]).find((i) =>
          i.object === stuck
        );
      }, WAIT_MS);
      assert.ok(!TERMINAL.includes(pending.status), `the stuck import is unfinished: ${pending.status}`);
      const bobCancel = await api(`/imports/${pending.id}/cancel`, as(bob), { method: "POST" });
      assert.equal(bobCancel.status, 404, JSON.stringify(bobCancel.body));
      const cancelled = await api(`/imports/${pending.id}/cancel`, as(alice), { method: "POST" });
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      assert.deepEqual(cancelled.body, { status: "cancelled" });
      const after = await api(`/imports/${pending.id}`, as(alice));
      assert.equal(after.body.status, "cancelled");
      assert.equal(after.body.error, "Cancelled by its owner");
      const listedNow = await api("/imports", as(alice));
      assert.deepEqual(
        (listedNow.body.imports as { id: number }[]).map((i) => i.id),
        [pending.id, listed.id],
        "newest first",
      );
    } finally {
      await scope.dispose();
      if (users.length > 0) await sql`delete from auth.users where id in ${sql(users.map((u) => u.id))}`;
      await sql.end();
    }
  },
);

Deno.test({ name: "client API: callers without a signed-in user's token get 401", ...E2E }, async () => {
  const stranger = await signJwt(userClaims(crypto.randomUUID())); // well signed, but no such user in Auth
  const refusals: [string, string | null, Record<string, string>][] = [
    ["no token", null, {}],
    ["the anon key", ANON_KEY, {}],
    ["the publishable key as bearer", PUBLISHABLE_KEY, {}],
    ["the service role key", SERVICE_ROLE_KEY, { apikey: SERVICE_ROLE_KEY }],
    ["the secret key", SECRET_KEY, { apikey: SECRET_KEY }],
    ["a token of no user", stranger, {}],
    ["garbage", "not-a-jwt", {}],
  ];
  for (const [what, token, headers] of refusals) {
    for (
      const [method, path] of [["GET", "/imports"], ["GET", "/imports/1"], ["POST", "/imports/1/cancel"]]
    ) {
      const { status, body } = await api(path, token, { method, headers });
      assert.equal(status, 401, `${what} ${method} ${path}: ${JSON.stringify(body)}`);
      assert.equal(body.error, "unauthorized");
    }
  }
  // The browser's preflight needs no token.
  const preflight = await fetch(`${API}/imports`, { method: "OPTIONS" });
  await preflight.body?.cancel();
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
});
