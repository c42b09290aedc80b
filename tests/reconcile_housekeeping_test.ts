/**
 * The reconciler's housekeeping cannot roll back its recovery work (platform-fidelity review row 10). Pruning
 * cron.job_run_details and net._http_response runs last, each in its own exception block
 * (csv_import._reconcile_prune_history), so when postgres has lost its privileges on them — as hosted projects did
 * after pg_upgrade ("42501: permission denied for table http_request_queue",
 * https://supabase.com/docs/guides/troubleshooting/42501--permission-denied-for-table-httprequestqueue-KnozmQ) —
 * reconcile still commits what it recovered, and says what it could not prune.
 *
 * The privileges are revoked for real by the platform's superuser (supabase_admin) and restored afterwards: the
 * grants the Supabase image gives (pg_cron after-create: ALL on cron tables to postgres with grant option; pg_net:
 * ALL on its tables to PUBLIC).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { BUCKET, DB_URL, E2E, unique } from "./support/stack.ts";

const TABLES = ["cron.job_run_details", "net._http_response"];
type Grant = { table: string; privilege: string; grantable: boolean; grantee: string };

function connectAs(user: string, onnotice: (notice: postgres.Notice) => void = () => {}) {
  const url = new URL(DB_URL);
  url.username = user;
  return postgres(url.toString(), { max: 1, onnotice, idle_timeout: 5, prepare: false });
}

Deno.test(
  "reconcile commits its recovery when pruning pg_cron's and pg_net's history is refused",
  E2E,
  async () => {
    const admin = connectAs("supabase_admin");
    const warnings: string[] = [];
    const pg = connectAs("postgres", (notice) => warnings.push(String(notice.message)));
    const name = `housekeeping/${unique("orphan")}.csv`;
    const saved: Grant[] = [];
    try {
      // An object version the trigger never registered (triggers off, as if the trigger had failed), old enough for
      // reconcile to take it (_reconcile_orphans: older than a minute).
      await admin.begin(async (tx) => {
        await tx`set local session_replication_role = replica`;
        await tx`insert into storage.objects (bucket_id, name, version, metadata, created_at, updated_at)
               values (${BUCKET}, ${name}, 'v1', '{"size": 10}', now() - interval '2 minutes', now() - interval '2 minutes')`;
      });
      for (const table of TABLES) {
        saved.push(
          ...await admin<Grant[]>`
          select ${table} as "table", a.privilege_type as privilege, a.is_grantable as grantable,
                 case when a.grantee = 0 then 'public' else quote_ident(a.grantee::regrole::text) end as grantee
          from pg_class c, aclexplode(c.relacl) a
          where c.oid = ${table}::regclass and a.grantee <> c.relowner`,
        );
        await admin.unsafe(`revoke all on ${table} from public, postgres cascade`);
      }
      assert.equal(
        (await pg`select has_table_privilege('cron.job_run_details', 'delete')
                     or has_table_privilege('net._http_response', 'delete') as d`)[0].d,
        false,
        "the revoke took effect",
      );

      await pg`select csv_import.reconcile()`;

      const jobs =
        await pg`select object_version from csv_import.jobs where bucket_id = ${BUCKET} and object_name = ${name}`;
      assert.deepEqual(jobs.map((j) => j.object_version), ["v1"], "the orphan's registration was committed");
      assert.ok(
        warnings.some((w) => w.includes("could not prune cron.job_run_details")),
        `a warning for cron.job_run_details: ${warnings.join("; ")}`,
      );
      assert.ok(
        warnings.some((w) => w.includes("could not prune net._http_response")),
        `a warning for net._http_response: ${warnings.join("; ")}`,
      );
    } finally {
      for (const g of saved) {
        await admin.unsafe(
          `grant ${g.privilege} on ${g.table} to ${g.grantee}${g.grantable ? " with grant option" : ""}`,
        );
      }
      await pg`select csv_import.stop_job(id, 'cancelled', 'test cleanup') from csv_import.jobs
             where bucket_id = ${BUCKET} and object_name = ${name}`;
      await admin.begin(async (tx) => {
        await tx`set local storage.allow_delete_query = 'true'`;
        await tx`delete from storage.objects where bucket_id = ${BUCKET} and name = ${name}`;
      });
      await admin.end();
      await pg.end();
    }
  },
);
