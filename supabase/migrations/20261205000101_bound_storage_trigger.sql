-- The storage trigger does nothing for objects the pipeline does not watch, and never makes an upload or delete
-- fail or wait long.
--
-- What was wrong (platform-fidelity review rows 8 and 11): the trigger fires for every row Storage writes, in every
-- bucket of the project. For a delete or a move it always called _stop_jobs_of_object_quickly, whose exception block
-- opens a subtransaction, whatever the bucket (a bulk delete of 1,000 objects: 1,000 subtransactions); and nothing
-- bounded the lock waits of the registration itself (enqueue_registration inserts the job and updates it), so an
-- upload could wait on the pipeline's locks up to Storage's statement_timeout (30 s, supabase/storage src/config.ts)
-- and then fail with 500. PL/pgSQL's OTHERS does not catch query_canceled (57014), which that timeout raises
-- (https://www.postgresql.org/docs/current/plpgsql-control-structures.html#PLPGSQL-ERROR-TRAPPING).
--
-- Now:
-- - An object that is not an import candidate (csv_import.is_import_candidate: not csv-uploads nor a profile's
--   bucket, or a rejects file or hidden file) returns at once — for a delete or move, the old name is what counts —
--   before any exception block: no subtransaction, no read of csv_import.jobs. A job left active for an object in a
--   bucket no longer watched is stopped by reconcile (_stop_stale_jobs: its version is gone).
-- - The trigger runs with lock_timeout = 2s (function-level SET, restored on exit): every lock it waits for, it
--   waits for at most 2 s, then 55P03 (lock_not_available) is raised, which OTHERS catches. The registration's
--   exception block then leaves the version to reconcile (_reconcile_orphans registers a watched version that has no
--   job; _stop_stale_jobs stops jobs whose version is gone). At most two such waits happen (registering, then
--   stopping older jobs inside _stop_jobs_of_object_quickly, whose own 2 s bound is unchanged), far below Storage's
--   30 s statement_timeout, so query_canceled is never reached through the trigger's own waits; it is deliberately not
--   caught: it means Storage (or an operator) cancelled the statement, and swallowing it would keep the upload's
--   transaction running past the cancel.
-- - The early checks read csv_import.profiles only (AccessShareLock): they wait only behind DDL that holds ACCESS
--   EXCLUSIVE on it (a migration), and then at most 2 s.
--
-- Replaces _on_object_change of 20261204000200_create_registration.sql (same trigger, same behaviour otherwise).
-- Locks: as before, each wait bounded by 2 s. Idempotent per object version (enqueue_registration).
-- Caller: the trigger tg_objects__csv_import_register (after insert or update or delete on storage.objects).
create or replace function csv_import._on_object_change()
returns trigger
language plpgsql security definer
set search_path = ''
set lock_timeout = '2s'
as $$
begin
  if tg_op = 'DELETE' or (old.bucket_id, old.name) is distinct from (new.bucket_id, new.name) then
    if csv_import.is_import_candidate(old.bucket_id, old.name) then
      perform csv_import._stop_jobs_of_object_quickly(old.bucket_id, old.name,
        case when tg_op = 'DELETE' then format('The object %s was deleted during the import', old.name)
             else format('The object %s/%s was moved to %s/%s during the import', old.bucket_id, old.name,
                         new.bucket_id, new.name) end, null);
    end if;
    if tg_op = 'DELETE' then
      return old;
    end if;
  elsif tg_op = 'UPDATE' and new.version is not distinct from old.version then
    return new; -- metadata-only change, same bytes
  end if;
  if not csv_import.is_import_candidate(new.bucket_id, new.name) then
    return new;
  end if;
  begin
    perform csv_import.enqueue_registration(new.bucket_id, new.name, new.id, new.version,
      nullif(new.metadata ->> 'size', '')::bigint, coalesce(new.owner_id, new.owner::text),
      nullif(new.metadata ->> 'eTag', ''));
  exception when others then
    -- Never fail the upload (a lock wait past lock_timeout lands here too); csv_import.reconcile registers any
    -- watched object version that has no job.
    raise warning 'csv_import: could not register %/% now (%); reconcile will', new.bucket_id, new.name, sqlerrm;
  end;
  return new;
end
$$;

revoke execute on function csv_import._on_object_change() from public, anon, authenticated;
grant execute on function csv_import._on_object_change() to service_role;
