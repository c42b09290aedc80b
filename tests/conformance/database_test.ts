/**
 * Conformance of the local database (local-stack/postgres.sh, local-stack/sql/platform.sql) with the Supabase
 * Postgres image and hosted projects: roles, owners, grants, how pg_cron and pg_net come to exist, and dblink's
 * refusal of password-less connections. Every test asserts against the running local Postgres and names its source
 * (a doc URL or `repo:path`); supabase/postgres paths are from its migrations/ and ansible/ folders.
 *
 * Invariants: read-only, except a scratch database (created and dropped) and a dblink extension created inside a
 * transaction that is rolled back.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { SECRET_KEY } from "../../local-stack/keys.ts";
import { DB_URL, E2E, SUPABASE_URL, unique } from "../support/stack.ts";

const REPO_ROOT = new URL("../../", import.meta.url).pathname;

function connectAs(user: string, options: postgres.Options<Record<string, postgres.PostgresType>> = {}) {
  const url = new URL(DB_URL);
  url.username = user;
  return postgres(url.toString(), {
    max: 1,
    onnotice: () => {},
    idle_timeout: 5,
    prepare: false,
    ...options,
  });
}

async function withSql<T>(user: string, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = connectAs(user);
  try {
    return await work(sql);
  } finally {
    await sql.end();
  }
}

Deno.test(
  "supabase/postgres:migrations/db/migrations/10000000000000_demote-postgres.sql — postgres is NOSUPERUSER with CREATEDB CREATEROLE REPLICATION BYPASSRLS LOGIN",
  E2E,
  async () => {
    await withSql("postgres", async (sql) => {
      const [role] =
        await sql`select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin,
      rolinherit from pg_roles where rolname = current_user`;
      assert.deepEqual({ ...role }, {
        rolsuper: false,
        rolcreatedb: true,
        rolcreaterole: true,
        rolreplication: true,
        rolbypassrls: true,
        rolcanlogin: true,
        rolinherit: true,
      });
      const [{ superusers }] = await sql`select array_agg(rolname::text order by rolname) as superusers
      from pg_roles where rolsuper`;
      assert.deepEqual(superusers, ["supabase_admin"], "supabase_admin is the only superuser");
      const [{ bootstrap }] = await sql`select rolname::text as bootstrap from pg_roles where oid = 10`;
      assert.equal(bootstrap, "supabase_admin", "supabase_admin is the bootstrap superuser (initdb user)");
    });
  },
);

Deno.test(
  "supabase/postgres:migrations/db/migrations (20230201083204, 20230306081037, 20240606060239) and supabase/postgres#994 — postgres's memberships",
  E2E,
  async () => {
    await withSql("postgres", async (sql) => {
      const rows =
        await sql`select roleid::regrole::text as role from pg_auth_members where member = 'postgres'::regrole`;
      const roles = new Set(rows.map((r) => r.role));
      for (
        const expected of [
          "anon",
          "authenticated",
          "service_role",
          "pg_monitor",
          "pg_read_all_data",
          "pg_signal_backend",
        ]
      ) {
        assert.ok(roles.has(expected), `postgres is a member of ${expected}`);
      }
      for (const forbidden of ["supabase_admin", "supabase_storage_admin", "supabase_auth_admin"]) {
        const [{ member }] = await sql`select pg_has_role('postgres', ${forbidden}, 'member') as member`;
        assert.equal(
          member,
          false,
          `postgres is not a member of ${forbidden} (#994 revoked storage/auth admin)`,
        );
      }
    });
  },
);

Deno.test(
  "supabase/storage:migrations/tenant/0046-buckets-objects-grants.sql, 0049 — storage tables owned by supabase_storage_admin, ALL WITH GRANT OPTION to postgres",
  E2E,
  async () => {
    await withSql("postgres", async (sql) => {
      for (const table of ["storage.objects", "storage.buckets"]) {
        const [{ owner }] =
          await sql`select relowner::regrole::text as owner from pg_class where oid = ${table}::regclass`;
        assert.equal(owner, "supabase_storage_admin", `${table} owner`);
        for (
          const privilege of ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]
        ) {
          const [{ ok }] = await sql`select has_table_privilege('postgres', ${table}, ${
            privilege + " WITH GRANT OPTION"
          }) as ok`;
          assert.equal(ok, true, `postgres holds ${privilege} WITH GRANT OPTION on ${table}`);
        }
      }
    });
  },
);

Deno.test(
  "supabase/postgres:migrations/db/init-scripts/00000000000000-initial-schema.sql, migrate.sh — publication and database owned by postgres; Vault owned by supabase_admin",
  E2E,
  async () => {
    await withSql("postgres", async (sql) => {
      const [{ pub }] =
        await sql`select pubowner::regrole::text as pub from pg_publication where pubname = 'supabase_realtime'`;
      assert.equal(pub, "postgres");
      const [{ db }] =
        await sql`select datdba::regrole::text as db from pg_database where datname = 'postgres'`;
      assert.equal(db, "postgres");
      const [{ vault }] =
        await sql`select relowner::regrole::text as vault from pg_class where oid = 'vault.secrets'::regclass`;
      assert.equal(
        vault,
        "supabase_admin",
        "supabase_vault is created by supabase_admin (20221207154255_create_pgsodium_and_vault.sql)",
      );
      const [{ read }] = await sql`select has_table_privilege('vault.decrypted_secrets', 'select') as read`;
      assert.equal(
        read,
        true,
        "postgres reads vault.decrypted_secrets (https://supabase.com/docs/guides/database/vault)",
      );
    });
  },
);

Deno.test(
  "supabase/postgres:ansible/files/postgresql_extension_custom_scripts/pg_cron/after-create.sql — pg_cron owned by supabase_admin, cron.job read-only to postgres, job_run_details ALL",
  E2E,
  async () => {
    await withSql("postgres", async (sql) => {
      const [ext] =
        await sql`select extowner::regrole::text as owner, extnamespace::regnamespace::text as schema
      from pg_extension where extname = 'pg_cron'`;
      assert.deepEqual(
        { ...ext },
        { owner: "supabase_admin", schema: "pg_catalog" },
        "created by supabase_admin through supautils, in pg_catalog (supautils.extensions_parameter_overrides)",
      );
      const [p] = await sql`select has_table_privilege('cron.job', 'select') as job_select,
      has_table_privilege('cron.job', 'insert') as job_insert,
      has_table_privilege('cron.job_run_details', 'delete') as details_delete,
      has_schema_privilege('cron', 'usage') as cron_usage`;
      assert.deepEqual({ ...p }, {
        job_select: true,
        job_insert: false,
        details_delete: true,
        cron_usage: true,
      });
      const [{ owner }] =
        await sql`select relowner::regrole::text as owner from pg_class where oid = 'cron.job'::regclass`;
      assert.equal(owner, "supabase_admin");
    });
  },
);

Deno.test(
  "supabase/pg_net:sql/pg_net.sql and supabase/postgres init-scripts/00000000000003-post-setup.sql — pg_net in schema net, tables to PUBLIC, http_post SECURITY DEFINER",
  E2E,
  async () => {
    await withSql("postgres", async (sql) => {
      const [ext] =
        await sql`select extowner::regrole::text as owner, extnamespace::regnamespace::text as schema
      from pg_extension where extname = 'pg_net'`;
      assert.deepEqual(
        { ...ext },
        { owner: "supabase_admin", schema: "extensions" },
        "`create extension pg_net schema extensions` (supabase/cli internal/db/start/templates/webhook.sql)",
      );
      const [p] =
        await sql`select has_table_privilege('public', 'net.http_request_queue', 'insert') as public_insert,
      has_schema_privilege('anon', 'net', 'usage') as anon_usage,
      (select prosecdef from pg_proc where oid = 'net.http_post(text, jsonb, jsonb, jsonb, integer)'::regprocedure) as secdef,
      has_function_privilege('public', 'net.http_post(text, jsonb, jsonb, jsonb, integer)', 'execute') as public_exec`;
      assert.deepEqual({ ...p }, { public_insert: true, anon_usage: true, secdef: true, public_exec: false });
    });
  },
);

Deno.test(
  "https://supabase.com/docs/guides/cron/install — pg_cron and pg_net are created by the first migration, not by the bootstrap",
  E2E,
  async () => {
    await withSql("postgres", async (sql) => {
      const [first] = await sql`select version, array_to_string(statements, E'\n') as body
      from supabase_migrations.schema_migrations order by version limit 1`;
      assert.equal(first.version, "20261203000000", "the extensions migration is the first applied");
      assert.match(first.body, /create extension pg_cron with schema pg_catalog/);
      assert.match(first.body, /create extension pg_net with schema extensions/);
      // Created after the platform's objects and before the pipeline's schema (oids grow as objects are made).
      const [o] = await sql`select
      (select oid from pg_extension where extname = 'pg_cron') as cron,
      (select oid from pg_extension where extname = 'pg_net') as net,
      'storage.objects'::regclass::oid as storage,
      'csv_import'::regnamespace::oid as pipeline`;
      for (const ext of ["cron", "net"] as const) {
        assert.ok(
          Number(o[ext]) > Number(o.storage) && Number(o[ext]) < Number(o.pipeline),
          `pg_${ext} (oid ${
            o[ext]
          }) was created between the bootstrap (${o.storage}) and the migrations (${o.pipeline})`,
        );
      }
    });
    // The bootstrap alone, on an empty database: neither extension.
    const scratch = unique("conformance_bootstrap");
    await withSql("supabase_admin", (admin) => admin.unsafe(`create database ${scratch} owner postgres`));
    try {
      const url = new URL(DB_URL);
      const out = await new Deno.Command("psql", {
        args: [
          "-X",
          "-q",
          "-v",
          "ON_ERROR_STOP=1",
          "-h",
          url.hostname,
          "-p",
          url.port,
          "-U",
          "supabase_admin",
          "-d",
          scratch,
          "-f",
          `${REPO_ROOT}local-stack/sql/platform.sql`,
        ],
        env: { PGOPTIONS: "-c client_min_messages=error" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, `the bootstrap failed: ${new TextDecoder().decode(out.stderr)}`);
      const url2 = new URL(DB_URL);
      url2.pathname = `/${scratch}`;
      const sql = postgres(url2.toString(), { max: 1, onnotice: () => {}, prepare: false });
      try {
        const exts = await sql`select extname::text from pg_extension order by 1`;
        const names = exts.map((e) => e.extname);
        assert.ok(
          !names.includes("pg_cron") && !names.includes("pg_net"),
          `the bootstrap created ${names.join(", ")}`,
        );
        assert.ok(names.includes("pgcrypto"), "(the bootstrap did run)");
      } finally {
        await sql.end();
      }
    } finally {
      await withSql(
        "supabase_admin",
        (admin) => admin.unsafe(`drop database if exists ${scratch} with (force)`),
      );
    }
  },
);

Deno.test(
  "https://www.postgresql.org/docs/current/contrib-dblink-connect-u.html with supabase/postgres:ansible/files/postgresql_config/pg_hba.conf.j2 — dblink refuses postgres over trusted loopback, accepts a password-checked route",
  E2E,
  async () => {
    const sql = connectAs("postgres");
    try {
      await sql.begin(async (tx) => {
        await tx`create extension if not exists dblink with schema extensions`;
        const port = (await tx`select current_setting('port') as p`)[0].p;
        const trusted = `host=127.0.0.1 port=${port} dbname=postgres user=postgres password=postgres`;
        await tx`savepoint refused`;
        await assert.rejects(
          tx`select extensions.dblink_connect('conformance_trust', ${trusted})`,
          /password is required|password or GSSAPI/,
          "127.0.0.1 is trust: no password was used, so dblink refuses",
        );
        await tx`rollback to savepoint refused`;
        const [{ sockets }] = await tx`select current_setting('unix_socket_directories') as sockets`;
        const socket = String(sockets).split(",")[0].trim();
        const checked = `host=${socket} port=${port} dbname=postgres user=postgres password=postgres`;
        await tx`select extensions.dblink_connect('conformance_socket', ${checked})`;
        await tx`select extensions.dblink_disconnect('conformance_socket')`;
        const [{ connectU }] =
          await tx`select has_function_privilege('postgres', 'extensions.dblink_connect_u(text)', 'execute') as "connectU"`;
        assert.equal(connectU, false, "dblink/after-create.sql: only supabase_admin keeps dblink_connect_u");
        throw new Rollback();
      }).catch((e) => {
        if (!(e instanceof Rollback)) throw e;
      });
    } finally {
      await sql.end();
    }
  },
);

class Rollback extends Error {}

Deno.test(
  "supabase/postgres:ansible/files/postgresql_config/pg_hba.conf.j2 — 127.0.0.1 trusts any password; the stand-in's socket checks it (stricter than the image's peer)",
  E2E,
  async () => {
    const wrong = connectAs("postgres", { pass: "not-the-password" });
    try {
      const [{ ok }] = await wrong`select true as ok`;
      assert.equal(ok, true, "loopback TCP is trust");
    } finally {
      await wrong.end();
    }
    const sockets = await withSql(
      "postgres",
      async (sql) => (await sql`select current_setting('unix_socket_directories') as s`)[0].s,
    );
    const viaSocket = postgres({
      host: String(sockets).split(",")[0].trim(),
      port: Number(new URL(DB_URL).port),
      database: "postgres",
      username: "postgres",
      password: "not-the-password",
      max: 1,
      onnotice: () => {},
    });
    try {
      await assert.rejects(viaSocket`select 1`, /password authentication failed/);
    } finally {
      await viaSocket.end();
    }
  },
);

Deno.test(
  "supabase/postgres:init-scripts/00000000000002-storage-schema.sql and supabase/pg_net:src/worker.c — Storage connects as supabase_storage_admin, the pg_net worker as the bootstrap superuser",
  E2E,
  async () => {
    const res = await fetch(`${SUPABASE_URL}/storage/v1/bucket`, { headers: { apikey: SECRET_KEY } });
    await res.body?.cancel();
    assert.equal(res.status, 200);
    await withSql("postgres", async (sql) => {
      const rows = await sql`select distinct usename::text as usename, application_name from pg_stat_activity
      where application_name = 'pg_net worker' or usename = 'supabase_storage_admin'`;
      const users = new Set(
        rows.map((r) => `${r.application_name === "pg_net worker" ? "pg_net" : "storage"}:${r.usename}`),
      );
      assert.ok(users.has("pg_net:supabase_admin"), `pg_net worker sessions: ${[...users].join(", ")}`);
      assert.ok(users.has("storage:supabase_storage_admin"), `storage sessions: ${[...users].join(", ")}`);
      assert.ok(!users.has("pg_net:postgres"));
    });
  },
);

Deno.test(
  "supabase/postgres:ansible/files/postgresql_config/supautils.conf.j2 (privileged_role_allowed_configs, policy_grants) — postgres sets session_replication_role and manages policies on storage.objects, not on tables it does not own",
  E2E,
  async () => {
    const sql = connectAs("postgres");
    try {
      await sql.begin(async (tx) => {
        await tx`set local session_replication_role = replica`;
        // (Event triggers, which imitate policy_grants locally, do not fire in replica mode.)
        await tx`set local session_replication_role = origin`;
        await tx`create policy conformance_policy on storage.objects for select to authenticated using (false)`;
        await tx`drop policy conformance_policy on storage.objects`;
        const [{ member }] =
          await tx`select pg_has_role('postgres', 'supabase_storage_admin', 'member') as member`;
        assert.equal(member, false, "no lasting membership of the table's owner");
        await tx`savepoint other`;
        await assert.rejects(
          tx`create policy conformance_policy on cron.job_run_details using (false)`,
          /must be owner/,
        );
        await tx`rollback to savepoint other`;
        throw new Rollback();
      }).catch((e) => {
        if (!(e instanceof Rollback)) throw e;
      });
    } finally {
      await sql.end();
    }
  },
);
