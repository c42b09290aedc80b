-- Issue 15, a table made from the file: a profile may make its target from the file when the target does not exist.
--
-- - profiles.create_table: when the target is missing, the register function infers a schema from records sampled
--   over the whole file (supabase/functions/_shared/csv/infer_schema.ts), creates the table (row-level security
--   enabled and no policy: only the service role and the owner read it until its owner adds policies, as the
--   dashboard's table editor does) and loads it, writing with the pipeline's rights. The CREATE TABLE is kept on the
--   job (jobs.table_sql). A target that exists is loaded as usual (a second file into a table made by the first).
-- - profiles.target_table may then be null: each file gets a table named from its object path
--   (infer_schema.ts tableNameFromPath) in profiles.target_schema.
-- - A dry run does not make the target: it makes a stand-in in the private schema csv_import_scratch (the job's target,
--   jobs.scratch_table of 20261209000200_dry_run.sql), validates against it, and prune_finished_jobs drops it once
--   the job is done.
-- - Zero configuration: the profile 'tables-from-files' makes a table in public for every file under auto/ in
--   csv-uploads (tolerating 1 % rejects). A profile with a longer pattern wins (resolve_profile); delete this one to
--   turn the behaviour off.

alter table csv_import.profiles
  add column create_table boolean not null default false,
  add column target_schema text,
  alter column target_table drop not null,
  add constraint profiles_target_check check (
    target_table is not null or (create_table and target_schema is not null)),
  add constraint profiles_target_schema_check check (
    target_schema is null or not csv_import.is_protected_schema(target_schema));
comment on column csv_import.profiles.create_table is
  'Make the target from the file when it does not exist (a schema inferred from sampled records); see target_schema';
comment on column csv_import.profiles.target_schema is
  'With create_table and no target_table: each file gets a table named from its object path in this schema';

create schema if not exists csv_import_scratch;
revoke all on schema csv_import_scratch from public;

insert into csv_import.profiles (name, bucket_id, path_pattern, target_table, target_schema, create_table,
                                 tolerated_reject_rate)
values ('tables-from-files', 'csv-uploads', 'auto/%', null, 'public', true, 0.01)
on conflict (name) do nothing;

-- As in 20261204001400_create_retention.sql, and: validated jobs age out like the other finished ones; first, the
-- scratch tables of finished dry runs are dropped, whatever their age.
create or replace function csv_import.prune_finished_jobs(
  keep interval default interval '30 days',
  max_jobs int default 500,
  max_rows bigint default 200000
)
returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ids bigint[];
  v_done bigint[];
  v_jobs bigint;
  v_chunks bigint;
  v_rejects bigint;
  v_batches bigint;
  v_claims bigint := 0;
  v_count bigint;
  v_scratch record;
begin
  if keep is null or keep < interval '1 day' then
    raise exception 'keep must be at least 1 day, got %', coalesce(keep::text, 'null')
      using errcode = '22023',
      hint = 'reconcile re-registers object versions of the last day that have no job';
  end if;

  -- The scratch tables of finished dry runs, whatever their age (each waits at most 1 s for its lock, else it is
  -- left for the next call).
  perform pg_catalog.set_config('lock_timeout', '1s', true);
  for v_scratch in
    select id, scratch_table from csv_import.jobs
    where scratch_table is not null and status in ('validated', 'failed', 'cancelled', 'succeeded', 'succeeded_with_rejects')
    for update skip locked
  loop
    begin
      execute pg_catalog.format('drop table if exists %s', v_scratch.scratch_table);
      update csv_import.jobs set scratch_table = null where id = v_scratch.id;
    exception when lock_not_available then
      null;
    end;
  end loop;

  -- The jobs that hold claims (a skip scan over the primary key), and of those the ones that will load no more.
  with recursive ids as (
    (select job_id from csv_import.key_claims order by job_id limit 1)
    union all
    select (select k.job_id from csv_import.key_claims k where k.job_id > ids.job_id order by k.job_id limit 1)
    from ids where ids.job_id is not null
  )
  select coalesce(array_agg(ids.job_id), '{}') into v_done
  from ids left join csv_import.jobs j on j.id = ids.job_id
  where ids.job_id is not null
    and (j.id is null or j.status in ('succeeded', 'succeeded_with_rejects', 'validated')
         or j.superseded_by is not null);
  if cardinality(v_done) > 0 then
    delete from csv_import.key_claims k using (
      select job_id, key from csv_import.key_claims where job_id = any (v_done) limit greatest(max_rows * 5, 0)
    ) d
    where k.job_id = d.job_id and k.key = d.key;
    get diagnostics v_claims = row_count;
  end if;

  select coalesce(array_agg(id order by id), '{}') into v_ids
  from (
    select id, row_number() over (order by finished_at, id) as n,
           sum(rejects_stored + chunk_count) over (order by finished_at, id) as running
    from (
      select id, finished_at, rejects_stored, chunk_count from csv_import.jobs
      where status in ('succeeded', 'succeeded_with_rejects', 'validated', 'failed', 'cancelled')
        and finished_at < now() - keep
      order by finished_at, id
      limit greatest(max_jobs, 0)
      for update skip locked
    ) locked
  ) taken
  where running <= max_rows or n = 1;

  if cardinality(v_ids) = 0 then
    return jsonb_build_object('jobs', 0, 'chunks', 0, 'rejects', 0, 'batch_log', 0, 'key_claims', v_claims);
  end if;

  update csv_import.jobs set superseded_by = null
  where superseded_by = any (v_ids) and not (id = any (v_ids));
  delete from csv_import.rejects where job_id = any (v_ids);
  get diagnostics v_rejects = row_count;
  delete from csv_import.batch_log where job_id = any (v_ids);
  get diagnostics v_batches = row_count;
  delete from csv_import.key_claims where job_id = any (v_ids);
  get diagnostics v_count = row_count;
  v_claims := v_claims + v_count;
  delete from csv_import.chunks where job_id = any (v_ids);
  get diagnostics v_chunks = row_count;
  delete from csv_import.jobs where id = any (v_ids);
  get diagnostics v_jobs = row_count;
  return jsonb_build_object('jobs', v_jobs, 'chunks', v_chunks, 'rejects', v_rejects, 'batch_log', v_batches,
    'key_claims', v_claims);
end
$$;

revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
