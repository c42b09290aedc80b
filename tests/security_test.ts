/**
 * The security suite (issue #5), against the running local stack:
 *
 * 1. Row-level security with real user JWTs: two users upload through the Storage stand-in with their own access
 *    tokens (allowed by a Storage policy the test adds, as an application would); their jobs run; then SQL run
 *    exactly as PostgREST runs a request (`set local role authenticated` + `request.jwt.claims`) shows each user
 *    only their own jobs, chunks, rejects and progress, anon nothing, and neither may write a csv_import table,
 *    read Vault, or call any csv_import function (enumerated from pg_proc, so a new function without a REVOKE
 *    fails here); pg_net's queue is readable in SQL as on the platform (PUBLIC grants), and not exposed.
 * 2. Caller checks: every function directory under supabase/functions (enumerated) refuses a missing key, the
 *    anon and publishable keys, a user JWT, a JWT signed with the wrong secret, an expired service-role JWT, a
 *    wrong secret key and a wrong internal secret with 401 and the same JSON error, without echoing the
 *    credential; it accepts the service role and secret keys. config.toml sets verify_jwt = false for each, and
 *    the 401 is the function's own answer (the runtime let the request through).
 * 3. No secret leaks: after a failing file, a job with rejects and calls with bad keys, no key, JWT secret,
 *    database password or Vault secret value appears in the stack's logs, the invocation records, job and chunk
 *    errors, rejects (rows and the rejects CSV), pg_net's stored responses, pg_cron's run history, the health
 *    output or function responses; keys used from SQL come from Vault only (no key literal in cron.job commands
 *    or function bodies).
 * 4. Identifiers and object names: a target whose schema, table and column names are hostile but legal loads
 *    exactly; profiles naming system, platform or pipeline tables are refused, and registration refuses a view,
 *    a missing table and a malformed name with a clear job error; object names with quotes, semicolons, emoji,
 *    NFC/NFD variants, a leading slash, `//` and exactly 1024 bytes are imported under their exact name, while
 *    BiDi marks, zero-width characters, `%` and 1025 bytes are refused by Storage with its InvalidKey error, and
 *    `.`/`..` segments never reach Storage (HTTP clients resolve them).
 * 5. Limits: a profile's max_file_bytes fails a larger file with a clear error; a bucket's file_size_limit
 *    answers 413 with Storage's body and creates no job; a profile's max_stored_rejects stores only the first
 *    rejects, counts all, and job_progress says so.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { parse as parseToml } from "smol-toml";
import {
  ANON_KEY,
  JWT_SECRET,
  PUBLISHABLE_KEY,
  SECRET_KEY,
  SERVICE_ROLE_KEY,
  signJwt,
} from "../local-stack/keys.ts";
import {
  BUCKET,
  connect,
  DB_URL,
  download,
  E2E,
  jobByObject,
  type JobRow,
  Scope,
  SUPABASE_URL,
  unique,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";
import { type Outcome, runAs, userClaims, userStorage } from "./support/users.ts";

const REPO = new URL("..", import.meta.url).pathname;
const STATE_DIR = Deno.env.get("STATE_DIR") ?? `${REPO}.local`;
const JOB_TIMEOUT = 90_000;

function rowsOf(outcome: Outcome, what: string): Record<string, unknown>[] {
  assert.ok("rows" in outcome, `${what}: ${JSON.stringify(outcome)}`);
  return outcome.rows;
}

function refused(outcome: Outcome, what: string, message: RegExp = /^permission denied for /): void {
  assert.ok("code" in outcome, `${what} must be refused, but it returned ${JSON.stringify(outcome)}`);
  assert.equal(outcome.code, "42501", `${what}: ${outcome.message}`);
  assert.match(outcome.message, message, what);
}

/** A profile whose files have a header row (small test files are too short for the sniffer to be sure). */
async function createTable(scope: Scope, ddlName: string, columns: string): Promise<void> {
  await scope.sql.unsafe(`create table ${ddlName} (${columns})`);
  scope.tables.push(ddlName);
}

// 1. RLS ------------------------------------------------------------------------------------------------------

Deno.test(
  { name: "security: users see only their own jobs, write nothing, call nothing", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "rls");
    try {
      const table = `public.${unique("e2e_rls")}`;
      await createTable(scope, table, "id int, name text");
      await scope.profile({
        hasHeader: true,
        pathPattern: `${scope.prefix}/%`,
        targetTable: table,
        toleratedRejectRate: 0.5,
      });
      // The application's upload rule: each user uploads into their own folder.
      await scope.userFolderUploads();

      const users = { alice: crypto.randomUUID(), bob: crypto.randomUUID() };
      const jwts = {
        alice: await signJwt(userClaims(users.alice)),
        bob: await signJwt(userClaims(users.bob)),
      };
      const names = {
        alice: scope.object(`${users.alice}/orders.csv`),
        bob: scope.object(`${users.bob}/orders.csv`),
      };
      for (const who of ["alice", "bob"] as const) {
        const body = `id,name\n1,${who}\n2,${who}\nnot-a-number,${who}\n`;
        const { error } = await userStorage(jwts[who]).upload(
          names[who],
          new TextEncoder().encode(body),
          { contentType: "text/csv" },
        );
        assert.equal(error, null, `${who}'s upload: ${error?.message}`);
      }
      // Bob may not upload into Alice's folder; the refusal happens before any job exists.
      const intruder = `${scope.prefix}/${users.alice}/from-bob.csv`;
      const { error: denied } = await userStorage(jwts.bob).upload(
        intruder,
        new TextEncoder().encode("id\n1\n"),
      );
      assert.equal(denied?.message, "new row violates row-level security policy");
      assert.equal(await jobByObject(sql, intruder), undefined, "a refused upload registers nothing");

      const jobs: Record<string, JobRow> = {};
      for (const who of ["alice", "bob"] as const) {
        jobs[who] = await waitForJob(sql, names[who], JOB_TIMEOUT);
        assert.equal(jobs[who].status, "succeeded_with_rejects", `${who}: ${jobs[who].error}`);
        const [{ owner_id }] = await sql`select owner_id from csv_import.jobs where id = ${jobs[who].id}`;
        assert.equal(owner_id, users[who], "the job's owner is the uploader (the JWT's sub)");
      }
      const both = `(${jobs.alice.id}, ${jobs.bob.id})`;

      for (const who of ["alice", "bob"] as const) {
        const claims = userClaims(users[who]);
        const mine = Number(jobs[who].id);
        const seen = async (query: string) =>
          rowsOf(await runAs(sql, "authenticated", claims, query), `${who}: ${query}`).map((r) =>
            Number(r.job_id)
          );
        assert.deepEqual(await seen(`select id as job_id from csv_import.jobs where id in ${both}`), [mine]);
        assert.deepEqual(await seen(`select job_id from csv_import.job_progress where job_id in ${both}`), [
          mine,
        ]);
        assert.deepEqual(
          await seen(`select distinct job_id from csv_import.chunks where job_id in ${both}`),
          [mine],
        );
        const rejects = rowsOf(
          await runAs(
            sql,
            "authenticated",
            claims,
            `select job_id, line_number, raw_record from csv_import.rejects where job_id in ${both}`,
          ),
          `${who}'s rejects`,
        );
        assert.deepEqual(
          rejects.map((r) => [Number(r.job_id), Number(r.line_number), r.raw_record]),
          [[mine, 4, `not-a-number,${who}`]],
          `${who} reads exactly their own reject`,
        );
        // The whole table, not just these jobs: nothing of anybody else's.
        const foreign = rowsOf(
          await runAs(
            sql,
            "authenticated",
            claims,
            `select id from csv_import.jobs where owner_id <> '${users[who]}'
           or owner_id is null limit 1`,
          ),
          "others' jobs",
        );
        assert.equal(foreign.length, 0, `${who} sees no job of anybody else: ${JSON.stringify(foreign)}`);
      }

      // A JWT without a user and the anon role see nothing.
      const noUser = { role: "authenticated", exp: Math.floor(Date.now() / 1000) + 60 };
      const noUserRows = rowsOf(
        await runAs(sql, "authenticated", noUser, `select id from csv_import.jobs`),
        "no sub",
      );
      assert.equal(noUserRows.length, 0, "a JWT without sub sees no job");
      for (const table of ["jobs", "chunks", "rejects", "profiles", "job_progress", "batch_log"]) {
        refused(
          await runAs(sql, "anon", { role: "anon" }, `select * from csv_import.${table} limit 1`),
          `anon reading csv_import.${table}`,
          /permission denied for schema csv_import/,
        );
      }

      // Writes: no pipeline table takes an insert, update or delete from a user, not even on their own rows.
      const alice = userClaims(users.alice);
      const tables = (await sql<{ name: string }[]>`
      select c.relname as name from pg_class c
      where c.relnamespace = 'csv_import'::regnamespace and c.relkind in ('r', 'p') order by 1`).map((r) =>
        r.name
      );
      assert.ok(tables.includes("jobs") && tables.includes("rejects"), tables.join(","));
      const firstColumn: Record<string, string> = Object.fromEntries(
        (await sql<{ rel: string; col: string }[]>`
          select distinct on (c.relname) c.relname as rel, quote_ident(a.attname) as col from pg_class c
          join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            and a.attidentity = '' and a.attgenerated = ''
          where c.relnamespace = 'csv_import'::regnamespace order by c.relname, a.attnum`).map((
          r,
        ) => [r.rel, r.col]),
      );
      for (const table of tables) {
        for (
          const statement of [
            `insert into csv_import.${table} default values`,
            `update csv_import.${table} set ${firstColumn[table]} = ${firstColumn[table]}`,
            `delete from csv_import.${table}`,
            `truncate csv_import.${table}`,
          ]
        ) {
          const outcome = await runAs(sql, "authenticated", alice, statement);
          refused(outcome, `authenticated: ${statement}`);
        }
      }
      const [{ count }] = await sql`select count(*)::int as count from csv_import.jobs where id in ${
        sql([
          jobs.alice.id,
          jobs.bob.id,
        ])
      } and status = 'succeeded_with_rejects'`;
      assert.equal(count, 2, "both jobs are unchanged");

      // Every csv_import function and procedure, called directly, is refused to users and anon (trigger functions cannot be
      // called directly at all; their EXECUTE privilege is checked instead).
      const functions = await sql<{ sig: string; call: string | null }[]>`
      select p.oid::regprocedure::text as sig,
             case when p.prorettype = 'trigger'::regtype then null
                  else format(case p.prokind when 'p' then 'call csv_import.%I(%s)' else 'select csv_import.%I(%s)' end,
                    p.proname,
                    (select string_agg(format('null::%s', format_type(t, null)), ', ' order by i)
                     from unnest(p.proargtypes) with ordinality as a(t, i))) end as call
      from pg_proc p where p.pronamespace = 'csv_import'::regnamespace order by 1`;
      assert.ok(functions.length >= 30, `found ${functions.length} functions`);
      for (const fn of functions) {
        const [{ anon, authenticated }] = await sql`
        select has_function_privilege('anon', ${fn.sig}::regprocedure, 'execute') as anon,
               has_function_privilege('authenticated', ${fn.sig}::regprocedure, 'execute') as authenticated`;
        assert.deepEqual(
          { anon, authenticated },
          { anon: false, authenticated: false },
          `EXECUTE on ${fn.sig}`,
        );
        if (fn.call === null) continue;
        refused(await runAs(sql, "authenticated", alice, fn.call), `authenticated: ${fn.call}`);
        refused(await runAs(sql, "anon", { role: "anon" }, fn.call), `anon: ${fn.call}`);
      }
      // Not even their own job: cancelling or retrying is the service role's (README, "Operating it").
      refused(
        await runAs(sql, "authenticated", alice, `select csv_import.cancel_job(${jobs.alice.id}, 'mine')`),
        "cancel own job",
      );

      // The secrets the database holds are out of reach: Vault's.
      for (const relation of ["vault.decrypted_secrets", "vault.secrets"]) {
        refused(await runAs(sql, "authenticated", alice, `select * from ${relation} limit 1`), relation);
        refused(await runAs(sql, "anon", { role: "anon" }, `select * from ${relation} limit 1`), relation);
      }
      // pg_net's queue (whose headers carry the pipeline's credential) is not closed in SQL on the platform: pg_net
      // grants ALL on its tables to PUBLIC (supabase/pg_net sql/pg_net.sql) and the Supabase image gives anon and
      // authenticated USAGE on schema net (supabase/postgres init-scripts/00000000000003-post-setup.sql), both
      // owned by supabase_admin, so a migration run as postgres cannot revoke them. What keeps users out is that
      // their only SQL route, the Data API, exposes no schema but these (net is not among them).
      const exposed = /^schemas\s*=\s*\[([^\]]*)\]/m.exec(
        await Deno.readTextFile(`${REPO}supabase/config.toml`),
      );
      assert.ok(exposed, "config.toml [api] schemas");
      assert.ok(!/"(net|vault|cron|csv_import)"/.test(exposed[1]), `exposed API schemas: ${exposed[1]}`);
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

// 2. Caller checks ------------------------------------------------------------------------------------------------

/** The pipeline's function directories (every folder with an index.ts, except _shared). */
async function functionNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${REPO}supabase/functions`)) {
    if (!entry.isDirectory || entry.name.startsWith("_")) continue;
    try {
      await Deno.stat(`${REPO}supabase/functions/${entry.name}/index.ts`);
      names.push(entry.name);
    } catch {
      // not a function
    }
  }
  return names.sort();
}

/** A harmless request each function accepts from the service role. */
const SERVICE_CALL: Record<string, { method: string; path?: string; body?: unknown; ok: number[] }> = {
  "csv-import-register": { method: "POST", body: { job_id: 2 ** 52 }, ok: [200] },
  "csv-import-chunk": {
    method: "POST",
    body: { chunk_id: 2 ** 52, lease_token: crypto.randomUUID() },
    ok: [202],
  },
  "csv-import-inflate": {
    method: "POST",
    body: { chunk_id: 2 ** 52, lease_token: crypto.randomUUID() },
    ok: [202],
  },
  "csv-import-dispatch": { method: "POST", body: {}, ok: [200] },
  "csv-import-health": { method: "GET", ok: [200, 503] },
};

/** Functions for signed-in users, not the service role: tests/client_api_test.ts proves their refusals. */
const USER_FUNCTIONS = ["csv-import-api"];
/** What a call of a user function asks (its answers to wrong keys are checked for leaks below). */
const USER_CALL = { method: "GET", path: "/imports", body: undefined, ok: [] };

async function call(name: string, headers: Record<string, string>) {
  const spec = SERVICE_CALL[name] ?? USER_CALL;
  const res = await fetch(`${SUPABASE_URL}/functions/v1/${name}${spec.path ?? ""}`, {
    method: spec.method,
    headers: { "Content-Type": "application/json", ...headers },
    body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
  });
  return { status: res.status, text: await res.text() };
}

Deno.test({ name: "security: every function refuses callers without the service role", ...E2E }, async () => {
  const all = await functionNames();
  const names = all.filter((name) => !USER_FUNCTIONS.includes(name));
  assert.deepEqual(names, Object.keys(SERVICE_CALL).sort(), "a new function needs a harmless call here");

  // config.toml: each function has verify_jwt = false (it checks the caller itself).
  const config = parseToml(await Deno.readTextFile(`${REPO}supabase/config.toml`)) as {
    functions: Record<string, { verify_jwt?: boolean }>;
  };
  for (const name of all) assert.equal(config.functions[name]?.verify_jwt, false, `${name}: verify_jwt`);

  const now = Math.floor(Date.now() / 1000);
  const wrongSecret = new TextEncoder().encode("not-the-project-jwt-secret-but-32-characters-long");
  const forged = await new SignJWT({ iss: "supabase-demo", role: "service_role", exp: now + 3600 })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(wrongSecret);
  const expired = await signJwt({
    iss: "supabase-demo",
    role: "service_role",
    iat: now - 7200,
    exp: now - 3600,
  });
  const user = await signJwt(userClaims(crypto.randomUUID()));
  const wrongSecretKey = `sb_secret_${crypto.randomUUID().replaceAll("-", "")}`;
  const bearer = (key: string) => ({ Authorization: `Bearer ${key}`, apikey: key });
  const refusedCalls: [string, Record<string, string>][] = [
    ["no credentials", {}],
    ["the anon key", bearer(ANON_KEY)],
    ["the publishable key", bearer(PUBLISHABLE_KEY)],
    ["a user's JWT", bearer(user)],
    ["a service-role JWT signed with the wrong secret", bearer(forged)],
    ["an expired service-role JWT", bearer(expired)],
    ["a wrong secret key", bearer(wrongSecretKey)],
    ["a wrong internal secret", { "x-pipeline-secret": wrongSecretKey }],
    ["the service key as apikey but a user JWT as bearer", { Authorization: `Bearer ${user}`, apikey: user }],
    ["the JWT secret itself", bearer(JWT_SECRET)],
  ];
  for (const name of names) {
    for (const [what, headers] of refusedCalls) {
      const res = await call(name, headers);
      assert.equal(res.status, 401, `${name} with ${what}: ${res.status} ${res.text}`);
      assert.deepEqual(JSON.parse(res.text), {
        error: "unauthorized",
        message: "This function only accepts the service role key or the pipeline's internal secret",
      }, `${name} with ${what}: the function's own refusal (verify_jwt = false reached the handler)`);
      for (const value of Object.values(headers)) {
        const token = value.replace(/^Bearer /, "");
        assert.ok(!res.text.includes(token), `${name} echoes the credential`);
      }
    }
    for (const key of [SECRET_KEY, SERVICE_ROLE_KEY]) {
      const res = await call(name, bearer(key));
      assert.ok(
        SERVICE_CALL[name].ok.includes(res.status),
        `${name} with the service key: ${res.status} ${res.text}`,
      );
    }
  }
});

// 3. No secret leaks ----------------------------------------------------------------------------------------------

function base64url(text: string): string {
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

async function readTree(path: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    return out;
  }
  if (info.isFile) return [[path, await Deno.readTextFile(path)]];
  for await (const entry of Deno.readDir(path)) out.push(...await readTree(`${path}/${entry.name}`));
  return out;
}

Deno.test({ name: "security: no key or secret in logs, errors, rejects or responses", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "leak");
  try {
    const table = `public.${unique("e2e_leak")}`;
    await createTable(scope, table, "id int primary key, name text");
    await scope.profile({
      hasHeader: true,
      pathPattern: `${scope.prefix}/%`,
      targetTable: table,
      toleratedRejectRate: 1,
    });

    // A failing file, a job with rejects (one raw record quotes a secret-looking value the user put in their own
    // data: data is not masked), and calls with wrong keys.
    const bad = scope.object("binary.csv");
    await upload(bad, new Uint8Array([0, 1, 2, 3, 0xff, 0xfe, 0, 0, 7, 8]));
    const rejected = scope.object("rejects.csv");
    await upload(rejected, "id,name\n1,a\nx,b\n3,c\n4,d,extra\n");
    const probeKey = `sb_secret_${crypto.randomUUID().replaceAll("-", "")}`;
    const responses: string[] = [];
    for (const name of await functionNames()) {
      const res = await call(name, { Authorization: `Bearer ${probeKey}`, apikey: probeKey });
      responses.push(res.text);
    }
    const badJob = await waitForJob(sql, bad, JOB_TIMEOUT);
    assert.equal(badJob.status, "failed");
    const rejectsJob = await waitForJob(sql, rejected, JOB_TIMEOUT);
    assert.equal(rejectsJob.status, "succeeded_with_rejects", rejectsJob.error ?? "");
    assert.equal(rejectsJob.rows_rejected, 2);
    const rejectsFile = await download(rejectsJob.rejects_object!);
    assert.ok(rejectsFile?.includes('"x,b"'), rejectsFile ?? "no rejects file");

    const health = await fetch(`${SUPABASE_URL}/functions/v1/csv-import-health`, {
      headers: { apikey: SECRET_KEY },
    });
    responses.push(await health.text());
    const metrics = await fetch(`${SUPABASE_URL}/functions/v1/csv-import-health/metrics`, {
      headers: { apikey: SECRET_KEY },
    });
    responses.push(await metrics.text());
    const invocations = await fetch(`${SUPABASE_URL}/_local/functions/invocations`, {
      headers: { Authorization: `Bearer ${SERVICE_ROLE_KEY}` },
    });
    responses.push(await invocations.text());

    // Every value that must stay secret.
    const vault = await sql<{ name: string; value: string }[]>`
      select name, decrypted_secret as value from vault.decrypted_secrets where name <> 'csv_import_api_url'`;
    const dbPassword = decodeURIComponent(new URL(DB_URL).password);
    const secrets: [string, string][] = [
      ["the service role key", SERVICE_ROLE_KEY],
      ["the secret key", SECRET_KEY],
      ["the JWT secret", JWT_SECRET],
      ["the JWT secret (JWKS form)", base64url(JWT_SECRET)],
      ["the database password in a URL", `:${dbPassword}@`],
      ["the presented wrong key", probeKey],
      ...vault.map((v): [string, string] => [`Vault secret ${v.name}`, v.value]),
    ];

    const observed: [string, string][] = [];
    // The files `scripts/stack.sh logs` follows (gateway, Postgres) and the invocation records.
    for (const [path, text] of await readTree(`${STATE_DIR}/logs`)) observed.push([path, text]);
    assert.ok(observed.length > 0, `logs under ${STATE_DIR}/logs`);
    responses.forEach((text, i) => observed.push([`response ${i}`, text]));
    observed.push(["the rejects CSV", rejectsFile!]);
    const queries: [string, string][] = [
      ["job errors", `select string_agg(coalesce(error, ''), e'\\n') from csv_import.jobs`],
      ["chunk errors", `select string_agg(coalesce(last_error, ''), e'\\n') from csv_import.chunks`],
      [
        "rejects",
        `select string_agg(reason || ' ' || raw_record || ' ' || coalesce(column_name, ''), e'\\n')
                   from csv_import.rejects`,
      ],
      [
        "pg_net responses",
        `select string_agg(coalesce(content, '') || coalesce(error_msg, '') ||
                            coalesce(headers::text, ''), e'\\n') from net._http_response`,
      ],
      [
        "pg_cron run history",
        `select string_agg(coalesce(return_message, '') || command, e'\\n')
                               from cron.job_run_details`,
      ],
    ];
    for (const [what, query] of queries) {
      const [{ text }] = await sql.unsafe<{ text: string | null }[]>(`select (${query}) as text`);
      observed.push([what, text ?? ""]);
    }
    for (const [where, text] of observed) {
      for (const [what, secret] of secrets) {
        assert.ok(!text.includes(secret), `${what} appears in ${where}`);
      }
    }

    // Keys used from SQL come from Vault: no key literal in pg_cron's commands or any function's body.
    const keyPattern = String.raw`(eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.|sb_secret_|super-secret-jwt)`;
    const literal = await sql`
      select 'cron job ' || jobname as where_ from cron.job where command ~ ${keyPattern}
      union all
      select 'function ' || p.oid::regprocedure::text from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('csv_import', 'public', 'storage', 'net', 'cron') and p.prosrc ~ ${keyPattern}`;
    assert.equal(literal.length, 0, `no key literal in SQL: ${JSON.stringify(literal)}`);
    const [{ reads_vault }] = await sql`
      select prosrc like '%vault.decrypted_secrets%' as reads_vault from pg_proc
      where oid = 'csv_import.function_endpoint(text)'::regprocedure`;
    assert.equal(reads_vault, true, "the endpoint's key is read from Vault");
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

// 4. Identifiers and object names --------------------------------------------------------------------------------

Deno.test({ name: "security: hostile-but-legal identifiers load exactly", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "ident");
  const schema = `e2e sch"ema; drop table x; -- ${unique("s")}`;
  const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
  try {
    await sql.unsafe(`create schema ${ident(schema)}`);
    scope.defer(() => sql.unsafe(`drop schema if exists ${ident(schema)} cascade`));
    // A canary the names would drop if they reached SQL unquoted.
    await sql.unsafe(`create table ${ident(schema)}.x (id int)`);
    const tableName = `Tab"le; DROP TABLE x; -- ☃ Ünïcode`;
    const columns = ["Id", `na"me`, "semi;colon", "MiXeD Case", "ünï ☃", `"; drop table x; --`];
    const table = `${ident(schema)}.${ident(tableName)}`;
    await sql.unsafe(
      `create table ${table} (${
        columns.map((c, i) => `${ident(c)} ${i === 0 ? "int primary key" : "text"}`).join(", ")
      })`,
    );
    await scope.profile({ hasHeader: true, pathPattern: `${scope.prefix}/%`, targetTable: table });
    const csvField = (s: string) => `"${s.replaceAll('"', '""')}"`;
    const rows = [
      ["1", "a", "b;c", "D", "é", "x"],
      ["2", `q"uote`, "'; drop table x; --", "", "☃", "y"],
    ];
    const name = scope.object("ident.csv");
    await upload(name, [columns, ...rows].map((r) => r.map(csvField).join(",")).join("\n") + "\n");
    const job = await waitForJob(sql, name, JOB_TIMEOUT);
    assert.equal(job.status, "succeeded", job.error ?? "");
    const [{ target_table }] = await sql`select target_table from csv_import.jobs where id = ${job.id}`;
    assert.equal(target_table, table, "the job records the canonical quoted name");
    const loaded = await sql.unsafe(`select * from ${table} order by 1`);
    assert.deepEqual(
      loaded.map((r) => columns.map((c) => r[c] ?? "")),
      rows.map((r) => [Number(r[0]), ...r.slice(1)]),
    );
    const [{ canary }] = await sql.unsafe(
      `select to_regclass('${ident(schema).replaceAll("'", "''")}.x') is not null as canary`,
    );
    assert.equal(canary, true, "the canary table survived");

    // An unquoted mixed-case name resolves as SQL folds it, and the loader writes that same table.
    const lower = unique("e2e_fold");
    await createTable(scope, `public.${lower}`, "id int primary key");
    const folded = scope.prefix + "/fold/";
    await scope.profile({
      hasHeader: true,
      pathPattern: `${folded}%`,
      targetTable: `Public.${lower.toUpperCase()}`,
    });
    const foldName = `${folded}f.csv`;
    scope.objects.push(foldName, `${foldName}.rejects.csv`);
    await upload(foldName, "id\n1\n2\n");
    const foldJob = await waitForJob(sql, foldName, JOB_TIMEOUT);
    assert.equal(foldJob.status, "succeeded", foldJob.error ?? "");
    const [{ n }] = await sql.unsafe(`select count(*)::int as n from public.${lower}`);
    assert.equal(n, 2);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

Deno.test({ name: "security: system, platform and pipeline tables are never targets", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "target");
  try {
    for (
      const target of [
        "pg_catalog.pg_authid",
        "csv_import.jobs",
        "auth.users",
        "storage.objects",
        "vault.secrets",
      ]
    ) {
      await assert.rejects(
        scope.profile({ pathPattern: `${scope.prefix}/never/%`, targetTable: target }),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, "42501", e.message);
          assert.match(
            e.message,
            /which imports may not write \(system, Supabase platform and csv_import schemas/,
          );
          return true;
        },
        target,
      );
    }
    // Caught at registration: a view, a missing table, a malformed name (and a protected schema that a profile
    // row could only name by bypassing the trigger, as a superuser restoring a dump might).
    const view = `public.${unique("e2e_view")}`;
    await sql.unsafe(`create view ${view} as select 1 as id`);
    scope.defer(() => sql.unsafe(`drop view if exists ${view}`));
    const cases: [string, string, RegExp][] = [
      ["view", view, /^The profile's target: Target public\.e2e_view_\w+ is not a table \(a view\)/],
      ["missing", "public.no_such_table_e2e", /Target table public\.no_such_table_e2e does not exist$/],
      [
        "unqualified",
        "no_such_table_e2e",
        /does not exist \(write it schema-qualified, e\.g\. public\.no_such/,
      ],
    ];
    for (const [label, target, message] of cases) {
      await scope.profile({ pathPattern: `${scope.prefix}/${label}/%`, targetTable: target });
      const name = `${scope.prefix}/${label}/f.csv`;
      scope.objects.push(name);
      await upload(name, "id\n1\n");
      const job = await waitForJob(sql, name, JOB_TIMEOUT);
      assert.equal(job.status, "failed", label);
      assert.match(job.error ?? "", message, label);
    }
    const bypass = unique(`${scope.prefix}_profile`);
    await sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`; // skips the profile trigger
      await tx`insert into csv_import.profiles (name, path_pattern, target_table)
               values (${bypass}, ${scope.prefix + "/bypass/%"}, 'auth.users')`;
    });
    scope.profiles.push(bypass);
    const name = `${scope.prefix}/bypass/f.csv`;
    scope.objects.push(name);
    await upload(name, "id\n1\n");
    const job = await waitForJob(sql, name, JOB_TIMEOUT);
    assert.equal(job.status, "failed");
    assert.match(job.error ?? "", /Target table auth\.users is in schema auth, which imports may not write/);
  } finally {
    await scope.dispose();
    await sql.end();
  }
});

/** POSTs bytes to Storage with the service key under a raw (already encoded) path. */
async function rawUpload(encodedPath: string, body: string) {
  const res = await fetch(`${SUPABASE_URL}/storage/v1/object/${BUCKET}/${encodedPath}`, {
    method: "POST",
    headers: { apikey: SECRET_KEY, "Content-Type": "text/csv" }, // an sb_ key: apikey only, as hosted requires
    body,
  });
  return { status: res.status, body: await res.json() };
}

const encodePath = (name: string) => name.split("/").map(encodeURIComponent).join("/");

Deno.test(
  { name: "security: odd object names are imported exactly or refused by Storage", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "names");
    try {
      const table = `public.${unique("e2e_names")}`;
      await createTable(scope, table, "id int, name text");
      await scope.profile({
        hasHeader: true,
        pathPattern: `%${scope.prefix}/%`,
        targetTable: table,
        toleratedRejectRate: 1,
      });
      const p = scope.prefix;
      const accepted = [
        `${p}/o'brien; drop table x; --.csv`,
        `${p}/caf\u00e9.csv`, // NFC
        `${p}/cafe\u0301.csv`, // NFD: a different object and job
        `${p}/📦 emoji.csv`,
        `${p}//double-slash.csv`,
        `/${p}/leading-slash.csv`,
        `${p}/` + "x".repeat(1024 - p.length - 5) + ".csv", // exactly 1024 bytes, with rejects
      ];
      assert.equal(new TextEncoder().encode(accepted.at(-1)!).length, 1024);
      for (const name of accepted) {
        scope.objects.push(name, `${name}.rejects.csv`);
        const res = await rawUpload(encodePath(name), `id,name\n1,${name.length}\nbad,row\n`);
        assert.equal(res.status, 200, `${name}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.Key, `${BUCKET}/${name}`);
      }
      const ids = new Set<number>();
      for (const name of accepted) {
        const job = await waitForJob(sql, name, JOB_TIMEOUT);
        assert.equal(job.object_name, name, "the exact name (bytes) is recorded on the job");
        assert.equal(job.status, "succeeded_with_rejects", `${name}: ${job.error}`);
        assert.equal(job.rows_loaded, 1);
        assert.equal(job.rows_rejected, 1);
        assert.equal(job.rejects_status, "written");
        ids.add(job.id);
      }
      assert.equal(ids.size, accepted.length, "NFC and NFD names are different objects, with different jobs");

      // The 1024-byte name's rejects file cannot be `<name>.rejects.csv` (1036 bytes); it is still written.
      const longJob = await jobByObject(sql, accepted.at(-1)!);
      assert.ok(new TextEncoder().encode(longJob!.rejects_object!).length <= 1024, longJob!.rejects_object!);
      scope.objects.push(longJob!.rejects_object!);
      assert.match(await download(longJob!.rejects_object!) ?? "(not found)", /^"3","id",".*","bad,row"\r$/m);

      // Refused by Storage with its hosted error (nothing registered).
      const refusedNames = [
        `${p}/rtl\u200f.csv`,
        `${p}/zero\u200bwidth.csv`,
        `${p}/bidi\u202eoverride.csv`,
        `${p}/per%cent.csv`,
        `${p}/` + "y".repeat(1025 - p.length - 5) + ".csv",
      ];
      for (const name of refusedNames) {
        const res = await rawUpload(encodePath(name), "id\n1\n");
        assert.equal(res.status, 400, name);
        assert.deepEqual(res.body, {
          statusCode: "400",
          code: "InvalidKey",
          error: "InvalidKey",
          message: `Invalid key: ${name}`,
        });
        assert.equal(await jobByObject(sql, name), undefined);
      }
      // `.` and `..` segments (also as %2E) are resolved by the HTTP client before Storage sees the path: the
      // object lands under the resolved name, never outside the prefix.
      const dotted = await rawUpload(`${p}/a/%2E%2E/dots.csv`, "id\n1\n");
      scope.objects.push(`${p}/dots.csv`, `${p}/dots.csv.rejects.csv`);
      assert.equal(dotted.status, 200);
      assert.equal(dotted.body.Key, `${BUCKET}/${p}/dots.csv`);
      const dots = await waitForJob(sql, `${p}/dots.csv`, JOB_TIMEOUT);
      assert.equal(dots.status, "succeeded");
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

// 5. Limits ---------------------------------------------------------------------------------------------------------

Deno.test({ name: "security: file size and stored-reject limits, with clear errors", ...E2E }, async () => {
  const sql = connect();
  const scope = new Scope(sql, "limits");
  const bucket = unique("e2e-limit").replaceAll("_", "-");
  try {
    const table = `public.${unique("e2e_limits")}`;
    await createTable(scope, table, "id int, name text");

    // A profile's max_file_bytes.
    const small = `${scope.prefix}/small/`;
    const profileName = unique(`${scope.prefix}_small`);
    await scope.profile({ hasHeader: true, name: profileName, pathPattern: `${small}%`, targetTable: table });
    await sql`update csv_import.profiles set max_file_bytes = 100 where name = ${profileName}`;
    const big = `${small}big.csv`;
    scope.objects.push(big);
    const body = "id,name\n" + Array.from({ length: 20 }, (_, i) => `${i},row${i}`).join("\n") + "\n";
    await upload(big, body);
    const bigJob = await waitForJob(sql, big, JOB_TIMEOUT);
    assert.equal(bigJob.status, "failed");
    assert.equal(
      bigJob.error,
      `File is ${body.length} bytes; the limit of profile "${profileName}" is 100 bytes (max_file_bytes)`,
    );
    assert.equal(bigJob.chunk_count, 0, "nothing was planned");

    // A bucket's file_size_limit: Storage refuses with its hosted error (HTTP 400 carrying statusCode "413",
    // as hosted Storage answers) before the pipeline sees anything.
    await sql`insert into storage.buckets (id, name, public, file_size_limit) values (${bucket}, ${bucket}, false, 64)`;
    scope.defer(() =>
      sql.begin(async (tx) => {
        await tx`select set_config('storage.allow_delete_query', 'true', true)`;
        await tx`delete from storage.buckets where id = ${bucket}`;
      })
    );
    const tooBig = `${scope.prefix}/too-big.csv`;
    const res = await fetch(`${SUPABASE_URL}/storage/v1/object/${bucket}/${encodePath(tooBig)}`, {
      method: "POST",
      headers: { apikey: SECRET_KEY, "Content-Type": "text/csv" }, // an sb_ key: apikey only, as hosted requires
      body,
    });
    const refusal = await res.json();
    assert.equal(res.status, 400, JSON.stringify(refusal));
    assert.deepEqual(refusal, {
      statusCode: "413",
      code: "EntityTooLarge",
      error: "Payload too large",
      message: "The object exceeded the maximum allowed size",
    });
    const [{ n }] = await sql`select count(*)::int as n from csv_import.jobs where bucket_id = ${bucket}`;
    assert.equal(n, 0);

    // A profile's max_stored_rejects: the first 3 rejects are stored, all 10 are counted, and it says so.
    const capped = `${scope.prefix}/capped/`;
    const cappedProfile = unique(`${scope.prefix}_capped`);
    await scope.profile({
      hasHeader: true,
      name: cappedProfile,
      pathPattern: `${capped}%`,
      targetTable: table,
      toleratedRejectRate: 1,
    });
    await sql`update csv_import.profiles set max_stored_rejects = 3 where name = ${cappedProfile}`;
    const name = `${capped}many.csv`;
    scope.objects.push(name, `${name}.rejects.csv`);
    const lines = ["id,name", "1,ok"];
    for (let i = 0; i < 10; i++) lines.push(`bad${i},x`);
    await upload(name, lines.join("\n") + "\n");
    const job = await waitForJob(sql, name, JOB_TIMEOUT);
    assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
    assert.equal(job.rows_rejected, 10, "every reject is counted");
    const stored =
      await sql`select line_number::int from csv_import.rejects where job_id = ${job.id} order by 1`;
    assert.deepEqual(stored.map((r) => r.line_number), [3, 4, 5], "the first three are stored");
    const [progress] = await sql`
      select rows_rejected::int, rejects_stored::int, rejects_note from csv_import.job_progress where job_id = ${job.id}`;
    assert.deepEqual(progress, {
      rows_rejected: 10,
      rejects_stored: 3,
      rejects_note:
        "Only the first 3 of 10 rejects are stored (the per-job limit, MAX_STORED_REJECTS or the profile's max_stored_rejects); all are counted",
    });
    const file = await waitFor(
      "the rejects file",
      async () => (await download(`${name}.rejects.csv`)) ?? undefined,
      30_000,
    );
    assert.equal(file.trim().split("\r\n").length, 1 + 3, "the rejects file holds the stored rejects");
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
