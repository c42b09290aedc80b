-- Issue 14: the storage trigger does nothing for Storage's permission probe. Before it stores an upload's bytes,
-- Storage tries the object's INSERT (or, with x-upsert, its upsert) in a transaction it always rolls back, to
-- evaluate RLS (supabase/storage src/storage/uploader.ts `canUpload` → `testPermission`, the row written with
-- `version: '1'`; every stored version is a fresh UUID, `prepareUpload` → `randomUUID()`). The trigger used to
-- register that row like an upload (a job, its pg_net request, the supersede check against the object's older
-- jobs), all of it rolled back with the probe. In issue 14's burst of small files (`deno run -A bench/burst.ts
-- --big 0`, pg_stat_statements with track = all) the probes' INSERTs took 4.7 ms each against 1.2 ms for the
-- uploads' own: the registration work done twice per file. An x-upsert probe of an object being imported also
-- locked that job's chunks to supersede it, waiting up to 2 s behind a batch for nothing.
-- A committed row with version '1' (none is written by Storage) would still be registered by csv_import.reconcile
-- (_reconcile_orphans reads the table, not the trigger).
-- Otherwise as in 20261205000101_bound_storage_trigger.sql.
create or replace function csv_import._on_object_change()
returns trigger
language plpgsql security definer
set search_path = ''
set lock_timeout = '2s'
as $$
begin
  if tg_op <> 'DELETE' and new.version = '1' then
    return new; -- Storage's permission probe, always rolled back
  end if;
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

