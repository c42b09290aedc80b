/**
 * An idle register isolate takes the registrations that were requested and have not reached it
 * (pipeline/register_queue.ts, drain; csv_import.registrations_waiting), against the real local stack: a job row
 * as the storage trigger leaves it, but whose pg_net request never comes (none is queued, and reconcile would ask
 * again only in an hour), is registered once the register isolate falls idle after another request. The job's
 * object does not exist, so its registration ends it failed with Storage's answer: proof that registerJob ran.
 */
import assert from "node:assert/strict";
import { connect, E2E, invokeFunction, Scope, sleep, waitFor } from "./support/stack.ts";

Deno.test(
  { name: "registration drain: an idle register isolate takes a job no request reached", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "drain");
    try {
      // A registration of a job that does not exist ends at once and leaves the queue idle: the drain's cue.
      const nudge = () => invokeFunction("csv-import-register", { job_id: Number.MAX_SAFE_INTEGER });
      // The drain takes only jobs created since its isolate started: warm the isolate before making the job, and
      // try again with a new job should the runtime have replaced the isolate in between.
      let registered: { status: string; error: string | null } | undefined;
      for (let attempt = 0; attempt < 3 && registered === undefined; attempt++) {
        await nudge();
        const [{ id }] = await sql<{ id: number }[]>`
        insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, register_attempts,
                                     register_after)
        values ('csv-uploads', ${
          scope.object(`missing-${attempt}.csv`)
        }, 'v1', 100, 1, now() + interval '1 hour')
        returning id`;
        scope.defer(() => sql`delete from csv_import.jobs where id = ${id}`);
        await sleep(300);
        const [before] = await sql<
          { status: string }[]
        >`select status::text from csv_import.jobs where id = ${id}`;
        assert.equal(before.status, "registering", "nothing registers it unasked");
        await nudge();
        registered = await waitFor("the drained job's registration", async () => {
          const [job] = await sql<{ status: string; error: string | null }[]>`
          select status::text, error from csv_import.jobs where id = ${id}`;
          return job.status === "registering" ? undefined : job;
        }, 5_000).catch(() => undefined);
      }
      assert.ok(registered, "the idle isolate registered the job whose request never came");
      assert.equal(registered.status, "failed");
      assert.match(registered.error ?? "", /no longer exists/);
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
