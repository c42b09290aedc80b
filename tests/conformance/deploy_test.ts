/**
 * Conformance of the one-command deploy, `scripts/deploy.sh`, as far as this machine allows: there is no hosted
 * project here, so the steps that talk to Supabase's Management API (link, db push, secrets, functions) run
 * against `tests/support/fake_supabase.sh`, a CLI stand-in that records its arguments and keeps a fake
 * project's state, while the steps that talk to the project's database and Storage (Vault entries, bucket) run
 * for real against the local stack. One test runs the real pinned CLI's `db push --dry-run` against the local
 * database.
 *
 * What each step must do, and where that comes from:
 * - `supabase link --project-ref`, `db push --db-url|--linked --include-all --skip-vault --yes --dry-run`,
 *   `functions deploy <names…> --project-ref --use-api`, `secrets set --env-file`, `secrets list -o json`,
 *   `projects api-keys --reveal -o json`: the flags of CLI 2.117.0 (`tools/node_modules/.bin/supabase <cmd> --help`);
 *   "Remote database is up to date." is what `db push --dry-run` prints when nothing is pending (same CLI), or
 *   "Local database is up to date." when --db-url is a loopback address on config.toml's db port (54322).
 * - Secret names may not start with `SUPABASE_` (https://supabase.com/docs/guides/functions/limits, "Secrets").
 * - Vault entries are written with `vault.create_secret` / `vault.update_secret`
 *   (https://supabase.com/docs/guides/database/vault); the names are those `csv_import.function_endpoint` reads
 *   (supabase/migrations/20261205000000_prefix_function_names.sql).
 * - Buckets are created with `POST /storage/v1/bucket {id, name, public}` (supabase/storage:src/http/routes/bucket/
 *   createBucket.ts); an `sb_` key goes only as `apikey` (supabase/supabase:apps/docs/content/guides/api/api-keys.mdx).
 *
 * Invariants: the tests leave the local stack as they found it (the Vault entry csv_import_internal_secret they
 * create is deleted, the buckets they create are removed); every deploy runs in its own temporary work directory.
 */
import assert from "node:assert/strict";
import { SERVICE_ROLE_KEY } from "../../local-stack/keys.ts";
import { connect, DB_URL, E2E, type Sql, SUPABASE_URL, unique } from "../support/stack.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const FAKE_CLI = `${REPO}tests/support/fake_supabase.sh`;
const REF = "abcdefghijklmnopqrst";
const TOKEN = "sbp_0123456789abcdef0123456789abcdef01234567";
const FUNCTIONS = [
  "csv-import-register",
  "csv-import-chunk",
  "csv-import-inflate",
  "csv-import-dispatch",
  "csv-import-health",
  "csv-import-api",
];
const WRITES = /^(link|db\tpush\t(?!.*--dry-run)|secrets\tset|functions\tdeploy)/;
/** The calls that change the project; `link` only writes supabase/.temp/ on this machine. */
const PROJECT_WRITES = /^(db\tpush\t(?!.*--dry-run)|secrets\tset|functions\tdeploy)/;

interface Project {
  dir: string;
  workdir: string;
  log: string;
  state: string;
  home: string;
}

/** A work directory whose supabase/ links to the repo's migrations, functions and config, plus fake CLI state. */
async function fakeProject(): Promise<Project> {
  const dir = await Deno.makeTempDir({ prefix: "deploy_test_" });
  const workdir = `${dir}/w`;
  await Deno.mkdir(`${workdir}/supabase`, { recursive: true });
  for (const entry of ["migrations", "functions", "config.toml"]) {
    await Deno.symlink(`${REPO}supabase/${entry}`, `${workdir}/supabase/${entry}`);
  }
  await Deno.mkdir(`${dir}/home`);
  await Deno.writeTextFile(`${dir}/log`, "");
  return { dir, workdir, log: `${dir}/log`, state: `${dir}/state`, home: `${dir}/home` };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs scripts/deploy.sh with only the given environment (plus PATH and HOME) and --workdir of the project. */
async function deploy(p: Project, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command("bash", {
    args: [`${REPO}scripts/deploy.sh`, ...args, "--workdir", p.workdir],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: p.home,
      FAKE_LOG: p.log,
      FAKE_STATE: p.state,
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The fake CLI's calls since the last read, as tab-joined argument lines, without the trailing --workdir. */
async function calls(p: Project): Promise<string[]> {
  const text = await Deno.readTextFile(p.log);
  await Deno.writeTextFile(p.log, "");
  return text.split("\n").filter((l) => l !== "").map((l) => l.replace(/\t--workdir\t[^\t]+/, ""));
}

const fakeEnv = (extra: Record<string, string> = {}) => ({
  SUPABASE_CLI: FAKE_CLI,
  SUPABASE_ACCESS_TOKEN: TOKEN,
  SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
  ...extra,
});

async function envFile(p: Project, lines: string[]): Promise<string> {
  const path = `${p.dir}/settings.env`;
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

async function vaultRows(sql: Sql): Promise<{ name: string; value: string; updated_at: Date }[]> {
  const rows = await sql<{ name: string; value: string; updated_at: Date }[]>`
    select name, decrypted_secret as value, updated_at from vault.decrypted_secrets
    where name like 'csv\_import\_%' order by name`;
  return rows.map((r) => ({ ...r }));
}

async function bucketRows(sql: Sql, id: string): Promise<{ public: boolean }[]> {
  const rows = await sql<{ public: boolean }[]>`select public from storage.buckets where id = ${id}`;
  return rows.map((r) => ({ ...r }));
}

async function removeBucket(id: string): Promise<void> {
  const res = await fetch(`${SUPABASE_URL}/storage/v1/bucket/${id}`, {
    method: "DELETE",
    headers: { apikey: SERVICE_ROLE_KEY, Authorization: `Bearer ${SERVICE_ROLE_KEY}` },
  });
  await res.body?.cancel();
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const localArgs = ["--project-ref", REF, "--db-url", DB_URL, "--api-url", SUPABASE_URL];

Deno.test({
  name: "deploy: --dry-run against a fake project ref prints every step it would run and changes nothing",
  ...E2E,
  fn: async () => {
    const sql = connect(1);
    const p = await fakeProject();
    const bucket = unique("deploytest");
    try {
      const before = await vaultRows(sql);
      const settings = await envFile(p, [`STORAGE_BUCKET=${bucket}`, "WORKER_BATCH_SIZE=2000"]);
      const run = await deploy(p, [...localArgs, "--env-file", settings, "--dry-run"], fakeEnv());
      assert.equal(run.code, 0, run.stderr);
      const steps = run.stdout.split("\n").filter((l) => /^\[deploy\] \d /.test(l));
      assert.deepEqual(steps.map((l) => l.split(":")[0]), [
        "[deploy] 1 link",
        "[deploy] 2 db push",
        "[deploy] 3 secrets",
        "[deploy] 4 functions",
        "[deploy] 5 vault",
        "[deploy] 6 bucket",
      ]);
      assert.match(steps[0], /would run: supabase link --project-ref abcdefghijklmnopqrst$/);
      assert.match(
        steps[1],
        /would run: supabase db push --db-url postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres --include-all --skip-vault --yes$/,
      );
      assert.match(
        steps[2],
        /would run: supabase secrets set --project-ref abcdefghijklmnopqrst --env-file <private file: STORAGE_BUCKET=deploytest_\w+ WORKER_BATCH_SIZE=2000 PIPELINE_INTERNAL_SECRET=\*\*\*>$/,
      );
      assert.match(
        steps[3],
        new RegExp(
          `would run: supabase functions deploy ${FUNCTIONS.join(" ")} --project-ref ${REF} --use-api$`,
        ),
      );
      if (before.some((r) => r.name === "csv_import_internal_secret")) {
        assert.match(steps[4], /5 vault: unchanged \(csv_import_api_url csv_import_internal_secret\)$/);
      } else assert.match(steps[4], /would run: psql .*: csv_import_internal_secret: create$/);
      assert.match(
        steps[5],
        new RegExp(
          `would run: POST ${SUPABASE_URL}/storage/v1/bucket \\{"id":"${bucket}","name":"${bucket}","public":false\\}$`,
        ),
      );
      assert.match(run.stdout, /dry run: nothing was changed/);
      // Every migration is listed as pending (the fake project has none).
      for (const f of Deno.readDirSync(`${REPO}supabase/migrations`)) {
        assert.ok(run.stdout.includes(f.name), f.name);
      }
      // Secrets appear nowhere: not the key, not the database password.
      assert.ok(!run.stdout.includes(SERVICE_ROLE_KEY) && !run.stderr.includes(SERVICE_ROLE_KEY));
      assert.ok(!run.stdout.includes("postgres:postgres@"));
      // Only read-only commands ran; nothing changed in Vault, Storage or the work directory.
      const ran = await calls(p);
      assert.deepEqual(ran.filter((l) => WRITES.test(l)), []);
      assert.deepEqual(ran.map((l) => l.split("\t").slice(0, 2).join(" ")), [
        "db push",
        "secrets list",
        "functions list",
      ]);
      assert.deepEqual(await vaultRows(sql), before);
      assert.deepEqual(await bucketRows(sql, bucket), []);
      assert.throws(() => Deno.statSync(`${p.workdir}/supabase/.temp/project-ref`));
    } finally {
      await sql.end();
      await Deno.remove(p.dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deploy: the real pinned CLI's db push --dry-run finds the local database up to date (migrations recorded as the CLI records them), and lists an earlier-dated new migration",
  ...E2E,
  fn: async () => {
    const p = await fakeProject();
    try {
      // The CLI insists on TLS unless told otherwise; the local stack has none.
      const args = ["--project-ref", REF, "--db-url", `${DB_URL}?sslmode=disable`, "--api-url", SUPABASE_URL];
      const run = await deploy(p, [...args, "--dry-run"], {
        SUPABASE_ACCESS_TOKEN: TOKEN,
        SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
      });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /CLI 2\.117\.0/);
      assert.match(run.stdout, /2 db push: unchanged \(the database is up to date\)/);
      assert.match(run.stdout, /dry run: nothing was changed/);

      // A migration dated before the newest applied one (as 20261203000000 is for a project deployed before it
      // existed) is listed to be applied, not refused: deploy.sh passes --include-all.
      await Deno.remove(`${p.workdir}/supabase/migrations`);
      await Deno.mkdir(`${p.workdir}/supabase/migrations`);
      for (const f of Deno.readDirSync(`${REPO}supabase/migrations`)) {
        await Deno.symlink(
          `${REPO}supabase/migrations/${f.name}`,
          `${p.workdir}/supabase/migrations/${f.name}`,
        );
      }
      await Deno.writeTextFile(
        `${p.workdir}/supabase/migrations/20261203000001_deploy_test_probe.sql`,
        "select 1;\n",
      );
      const early = await deploy(p, [...args, "--dry-run"], {
        SUPABASE_ACCESS_TOKEN: TOKEN,
        SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
      });
      assert.equal(early.code, 0, early.stderr);
      assert.match(
        early.stdout,
        /2 db push: would run: supabase db push --db-url \S+ --include-all --skip-vault --yes/,
      );
      assert.match(early.stdout, /20261203000001_deploy_test_probe\.sql/);
    } finally {
      await Deno.remove(p.dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deploy: runs link, db push, secrets, functions, Vault and bucket in order; a second run changes nothing",
  ...E2E,
  fn: async () => {
    const sql = connect(1);
    const p = await fakeProject();
    const bucket = unique("deploytest");
    // Start without an internal secret (restored at the end if the stack had one).
    const [saved] = await sql<{ value: string }[]>`
      delete from vault.secrets where name = 'csv_import_internal_secret' returning secret as value`;
    try {
      const settings = await envFile(p, [
        `STORAGE_BUCKET=${bucket}`,
        "# a comment",
        "WORKER_BATCH_SIZE=2000",
      ]);
      const args = [...localArgs, "--env-file", settings];

      const first = await deploy(p, args, fakeEnv());
      assert.equal(first.code, 0, first.stderr);
      const ran = await calls(p);
      const cmd = (l: string) => l.split("\t").slice(0, 2).join(" ");
      assert.deepEqual(ran.filter((l) => WRITES.test(l)).map(cmd), [
        "link --project-ref",
        "db push",
        "secrets set",
        "functions deploy",
      ]);
      assert.equal(ran[0], `link\t--project-ref\t${REF}`);
      assert.ok(
        ran.includes(`db\tpush\t--db-url\t${DB_URL}\t--include-all\t--skip-vault\t--yes`),
        ran.join("\n"),
      );
      assert.ok(ran.includes(`functions\tdeploy\t${FUNCTIONS.join("\t")}\t--project-ref\t${REF}\t--use-api`));
      const vault = await vaultRows(sql);
      assert.deepEqual(vault.map((r) => r.name), [
        "csv_import_api_url",
        "csv_import_internal_secret",
        "csv_import_service_key",
      ]);
      assert.equal(vault[0].value, SUPABASE_URL);
      const internal = vault[1].value;
      assert.match(internal, /^[0-9a-f]{64}$/);
      // The function secret and the Vault entry hold the same value (the fake records its digest).
      const setLine = ran.find((l) => l.startsWith("secrets\tset"))!;
      assert.ok(setLine.includes(`PIPELINE_INTERNAL_SECRET=${await sha256(internal)}`), setLine);
      assert.ok(setLine.includes(`WORKER_BATCH_SIZE=${await sha256("2000")}`), setLine);
      assert.ok(
        !first.stdout.includes(internal) && !first.stderr.includes(internal),
        "the secret is never printed",
      );
      assert.deepEqual(await bucketRows(sql, bucket), [{ public: false }]);
      assert.match(first.stdout, /done: changed link; db push; secrets \(/);
      // The seed's key entry stays, and the operator is told it is unused.
      assert.match(
        first.stdout,
        /note: Vault also holds csv_import_service_key; unused while csv_import_internal_secret is set/,
      );

      const second = await deploy(p, args, fakeEnv());
      assert.equal(second.code, 0, second.stderr);
      for (const step of ["1 link", "2 db push", "3 secrets", "4 functions", "5 vault", "6 bucket"]) {
        assert.match(second.stdout, new RegExp(`\\[deploy\\] ${step}: unchanged`), second.stdout);
      }
      assert.match(second.stdout, /done: nothing changed/);
      assert.deepEqual((await calls(p)).filter((l) => WRITES.test(l)), []);
      assert.deepEqual(await vaultRows(sql), vault, "Vault untouched: same values, same updated_at");
      assert.deepEqual(await bucketRows(sql, bucket), [{ public: false }]);

      // A new internal secret given by the operator updates both places, once.
      const third = await deploy(p, args, fakeEnv({ PIPELINE_INTERNAL_SECRET: "b".repeat(64) }));
      assert.equal(third.code, 0, third.stderr);
      assert.match(third.stdout, /5 vault: .*csv_import_internal_secret: update/);
      const thirdCalls = await calls(p);
      assert.deepEqual(thirdCalls.filter((l) => WRITES.test(l)).map(cmd), ["secrets set"]);
      assert.ok(thirdCalls.find((l) => l.startsWith("secrets\tset"))!.endsWith(
        `PIPELINE_INTERNAL_SECRET=${await sha256("b".repeat(64))}`,
      ));
      const after = await vaultRows(sql);
      assert.equal(after.filter((r) => r.name === "csv_import_internal_secret").length, 1);
      assert.equal(after.find((r) => r.name === "csv_import_internal_secret")!.value, "b".repeat(64));
      assert.ok(!third.stdout.includes("b".repeat(64)));
    } finally {
      await sql`delete from vault.secrets where name = 'csv_import_internal_secret'`;
      if (saved) await sql`select vault.create_secret(${saved.value}, 'csv_import_internal_secret')`;
      await removeBucket(bucket);
      await sql.end();
      await Deno.remove(p.dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deploy: --vault-credential service-key stores the key instead of an internal secret (unchanged when equal)",
  ...E2E,
  fn: async () => {
    const sql = connect(1);
    const p = await fakeProject();
    try {
      const before = await vaultRows(sql);
      const run = await deploy(p, [...localArgs, "--vault-credential", "service-key"], fakeEnv());
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /5 vault: unchanged \(csv_import_api_url csv_import_service_key\)/);
      assert.match(run.stdout, /6 bucket: unchanged \('csv-uploads' exists, private\)/);
      assert.match(run.stdout, /3 secrets: unchanged \(0 set/);
      assert.deepEqual(await vaultRows(sql), before);
    } finally {
      await sql.end();
      await Deno.remove(p.dir, { recursive: true });
    }
  },
});

for (const failing of ["db push", "functions deploy"]) {
  Deno.test({
    name: `deploy: a failing ${failing} stops the deploy with its message; no later step runs`,
    ...E2E,
    fn: async () => {
      const sql = connect(1);
      const p = await fakeProject();
      const bucket = unique("deploytest");
      try {
        const before = await vaultRows(sql);
        const settings = await envFile(p, [`STORAGE_BUCKET=${bucket}`]);
        const run = await deploy(p, [...localArgs, "--env-file", settings], fakeEnv({ FAKE_FAIL: failing }));
        assert.equal(run.code, 1);
        const step = failing === "db push" ? "db push" : "functions";
        assert.match(run.stderr, new RegExp(`\\[deploy\\] failed: step '${step}' \\(supabase ${failing} `));
        assert.match(run.stderr, new RegExp(`fake supabase: ${failing} failed: unexpected status 500`));
        assert.ok(!run.stderr.includes("postgres:postgres@"), "the database password is masked");
        const writes = (await calls(p)).filter((l) => WRITES.test(l)).map((l) =>
          l.split("\t").slice(0, 2).join(" ")
        );
        assert.deepEqual(
          writes,
          failing === "db push"
            ? ["link --project-ref", "db push"]
            : ["link --project-ref", "db push", "secrets set", "functions deploy"],
        );
        assert.deepEqual(await vaultRows(sql), before);
        assert.deepEqual(await bucketRows(sql, bucket), []);
      } finally {
        await removeBucket(bucket);
        await sql.end();
        await Deno.remove(p.dir, { recursive: true });
      }
    },
  });
}

/** A PATH of symlinks to every command the script needs, except the one left out. */
async function pathWithout(p: Project, missing: string): Promise<string> {
  const bin = `${p.dir}/bin`;
  await Deno.mkdir(bin);
  const needed = [
    "bash",
    "jq",
    "curl",
    "openssl",
    "sha256sum",
    "psql",
    "sed",
    "grep",
    "tr",
    "mktemp",
    "chmod",
    "rm",
    "cat",
    "head",
    "tail",
    "cut",
    "sort",
    "find",
    "xargs",
    "paste",
    "dirname",
    "mkdir",
    "env",
    "basename",
  ];
  for (const tool of needed.filter((t) => t !== missing)) {
    const which = await new Deno.Command("bash", { args: ["-c", `command -v ${tool}`], stdout: "piped" })
      .output();
    await Deno.symlink(new TextDecoder().decode(which.stdout).trim(), `${bin}/${tool}`);
  }
  return bin;
}

const refusals: {
  what: string;
  args?: string[];
  env?: (p: Project) => Promise<Record<string, string>> | Record<string, string>;
  message: string | RegExp;
}[] = [
  {
    what: "no project ref",
    args: ["--db-url", DB_URL],
    message: "no project ref: pass --project-ref <ref> (the 20 letters in your project's dashboard URL)",
  },
  {
    what: "a malformed project ref",
    args: ["--project-ref", "my-project-1234567890", "--db-url", DB_URL],
    message: "project ref 'my-project-1234567890' is not 20 lowercase letters",
  },
  {
    what: "no pinned CLI",
    env: () => fakeEnv({ SUPABASE_CLI: "/nonexistent/supabase" }),
    message: "the pinned Supabase CLI is missing (/nonexistent/supabase): run bash scripts/install.sh",
  },
  {
    what: "another CLI version",
    env: () => fakeEnv({ FAKE_VERSION: "2.100.0" }),
    message:
      `Supabase CLI '2.100.0' at ${FAKE_CLI}, but tools/package.json pins 2.117.0: run bash scripts/install.sh`,
  },
  {
    what: "no access token and no login",
    env: () => ({
      SUPABASE_CLI: FAKE_CLI,
      SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
      FAKE_LOGGED_OUT: "1",
    }),
    message:
      "no Supabase access token: set SUPABASE_ACCESS_TOKEN (https://supabase.com/dashboard/account/tokens) or run supabase login",
  },
  {
    what: "no database URL or password",
    args: ["--project-ref", REF, "--api-url", SUPABASE_URL],
    message:
      "no database credentials: pass --db-url <postgresql://…> or set SUPABASE_DB_PASSWORD (Dashboard → Project Settings → Database)",
  },
  {
    what: "no psql",
    env: async (p) => fakeEnv({ PATH: await pathWithout(p, "psql") }),
    message: "psql not found: install the PostgreSQL client (e.g. apt-get install postgresql-client)",
  },
  {
    what: "an unreachable database",
    args: [
      "--project-ref",
      REF,
      "--db-url",
      "postgresql://postgres:hunter2@127.0.0.1:1/postgres",
      "--api-url",
      SUPABASE_URL,
    ],
    message:
      /^cannot connect to the database at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres \(--db-url\): /,
  },
  {
    what: "a setting the functions do not read",
    args: [...localArgs, "--env-file", "SETTINGS"],
    message: /: WORKER_BATCH_SIZ is not a setting the functions read \(see docs\/configuration\.md\)$/,
  },
  {
    what: "a SUPABASE_ setting",
    args: [...localArgs, "--env-file", "SETTINGS_SUPABASE"],
    message: /: SUPABASE_URL: names starting with SUPABASE_ are injected by the platform and cannot be set$/,
  },
  {
    what: "no service key for the Storage API",
    env: () => ({ SUPABASE_CLI: FAKE_CLI, SUPABASE_ACCESS_TOKEN: TOKEN, FAKE_SERVICE_KEY: "" }),
    message:
      `no service key for the Storage API: set SUPABASE_SECRET_KEY (an sb_secret_… key) or SUPABASE_SERVICE_ROLE_KEY, or make supabase projects api-keys --project-ref ${REF} --reveal work`,
  },
];

for (const r of refusals) {
  Deno.test({
    name: `deploy refuses, before changing the project, when a prerequisite is missing: ${r.what}`,
    ...E2E,
    fn: async () => {
      const p = await fakeProject();
      try {
        await Deno.writeTextFile(`${p.dir}/bad.env`, "WORKER_BATCH_SIZ=100\n");
        await Deno.writeTextFile(`${p.dir}/supabase.env`, "SUPABASE_URL=https://example.com\n");
        const args = (r.args ?? localArgs).map((a) =>
          a === "SETTINGS" ? `${p.dir}/bad.env` : a === "SETTINGS_SUPABASE" ? `${p.dir}/supabase.env` : a
        );
        const run = await deploy(p, args, r.env ? await r.env(p) : fakeEnv());
        assert.equal(run.code, 2, `${run.stdout}\n${run.stderr}`);
        const line = run.stderr.trim();
        assert.ok(line.startsWith("[deploy] refused: "), line);
        const message = line.slice("[deploy] refused: ".length);
        if (typeof r.message === "string") assert.equal(message, r.message);
        else assert.match(message, r.message);
        assert.ok(!line.includes("hunter2"));
        // Refused before any change to the project (only `supabase link`, local files, may have run).
        assert.deepEqual((await calls(p)).filter((l) => PROJECT_WRITES.test(l)), []);
      } finally {
        await Deno.remove(p.dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "deploy refuses a bucket that exists and is public, before changing the project",
  ...E2E,
  fn: async () => {
    const sql = connect(1);
    const p = await fakeProject();
    const bucket = unique("deploytest");
    try {
      const res = await fetch(`${SUPABASE_URL}/storage/v1/bucket`, {
        method: "POST",
        headers: {
          apikey: SERVICE_ROLE_KEY,
          Authorization: `Bearer ${SERVICE_ROLE_KEY}`,
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ id: bucket, name: bucket, public: true }),
      });
      assert.equal(res.status, 200, await res.text());
      const settings = await envFile(p, [`STORAGE_BUCKET=${bucket}`]);
      const run = await deploy(p, [...localArgs, "--env-file", settings], fakeEnv());
      assert.equal(run.code, 2);
      assert.equal(
        run.stderr.trim(),
        `[deploy] refused: bucket '${bucket}' exists and is public (public: true): uploads would be readable by anyone; make it private (Dashboard → Storage → Edit bucket) or choose another STORAGE_BUCKET`,
      );
      assert.deepEqual((await calls(p)).filter((l) => WRITES.test(l)), [`link\t--project-ref\t${REF}`]);
      assert.deepEqual(await bucketRows(sql, bucket), [{ public: true }]);
    } finally {
      await removeBucket(bucket);
      await sql.end();
      await Deno.remove(p.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "deploy accepts every setting docs/configuration.md documents for the functions (dry run)",
  ...E2E,
  fn: async () => {
    const p = await fakeProject();
    try {
      const doc = await Deno.readTextFile(`${REPO}docs/configuration.md`);
      const table = doc.slice(doc.indexOf("## Edge Function environment"), doc.indexOf("## Database side"));
      const names = [...table.matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1])
        .filter((n) => !n.startsWith("SUPABASE_"));
      assert.ok(names.length >= 20, `found ${names.length} documented settings`);
      const settings = await envFile(
        p,
        names.map((n) => `${n}=${n === "STORAGE_BUCKET" ? "csv-uploads" : "1"}`),
      );
      const run = await deploy(p, [...localArgs, "--env-file", settings, "--dry-run"], fakeEnv());
      assert.equal(run.code, 0, run.stderr);
      for (const n of names.filter((n) => n !== "PIPELINE_INTERNAL_SECRET")) {
        assert.match(run.stdout, new RegExp(`${n}=`));
      }
    } finally {
      await Deno.remove(p.dir, { recursive: true });
    }
  },
});
