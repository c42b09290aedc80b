-- Issue 14: a register isolate that falls idle takes the registrations that were requested and have not reached it
-- (pipeline/register_queue.ts, drain). pg_net sends a batch of requests, then its worker sleeps (1 s:
-- `supabase/pg_net` src/worker.c), so in a burst of uploads the register isolate sat idle between batches while
-- jobs waited for the next one: measured in issue 14's burst (300 small files, `deno run -A bench/burst.ts`), no
-- registration for ~1.1 s after the first 16.
--
-- Jobs after p_after (by id) created at or after p_created_after whose registration was requested once and has not
-- failed (a transient failure sets `error` and waits out its backoff for reconcile), oldest first, at most p_limit.
-- The caller passes when its isolate started: a job created before that may wait in an older isolate's queue (one
-- the runtime retired, still working through what it was sent, or handing it on), and taking it would register it
-- twice at once (safe, csv_import.register_job plans once, but twice the work in a burst that is short of CPU);
-- jobs created since can only have been sent to this isolate, the function's active one. Read-only: taking a job is
-- registering it. Uses jobs_active_idx (status). Caller: csv-import-register, when its queue falls idle.
create or replace function csv_import.registrations_waiting(p_after bigint, p_created_after timestamptz,
                                                            p_limit int)
returns setof bigint
language sql stable security definer
set search_path = ''
as $$
  select j.id from csv_import.jobs j
  where j.status = 'registering' and j.error is null and j.register_attempts = 1 and j.id > p_after
    and j.created_at >= p_created_after
  order by j.id
  limit greatest(p_limit, 0)
$$;

revoke execute on function csv_import.registrations_waiting(bigint, timestamptz, int) from public, anon, authenticated;
grant execute on function csv_import.registrations_waiting(bigint, timestamptz, int) to service_role;
