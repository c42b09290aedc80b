-- Functions on the per-file, per-chunk and per-batch paths keep their plans (migration
-- 20261214000000_hot_functions_keep_their_plans.sql): PostgreSQL before 18 re-plans a LANGUAGE sql function it
-- cannot inline (SECURITY DEFINER or a `set` clause) at every call, PL/pgSQL plans each statement once per
-- connection. Measured there: chunk_context 0.79–0.86 ms a call as SQL, 0.13–0.17 ms as PL/pgSQL.
--
-- Two guards: the hot functions are PL/pgSQL (a later CREATE OR REPLACE in SQL would undo it silently) and use
-- generic plans from their first call (migration 20261215000100_hot_functions_plan_once.sql: PL/pgSQL otherwise
-- plans a statement five times per connection first, and the functions' connections are short-lived; commit_batch
-- 3.2–4.0 → 1.6–2.6 ms a call in the small-file burst; a CREATE OR REPLACE drops a function's SET clauses, which
-- this notices); and every csv_import SQL-language function that cannot be inlined is one of the known cold ones
-- below, so that a new one is a decision (cold, or written in PL/pgSQL), not an accident.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(2);

-- The functions called per upload, per chunk or per batch: each must exist (a rename would otherwise slip past),
-- be PL/pgSQL and carry the setting. The answer names every one that falls short, and how.
select is(
  (select array_agg(h.name || ': ' || case
                      when p.oid is null then 'missing'
                      when l.lanname <> 'plpgsql' then 'not PL/pgSQL'
                      else 'no plan_cache_mode=force_generic_plan' end
                    order by h.name)
   from unnest(array['_current_job_of_object', '_early_stop_reason', '_finalize_tiling_gap', '_finalize_verdict',
                     '_log_batch', '_on_object_change', '_stop_jobs_of_object', '_stop_jobs_of_object_quickly',
                     '_store_plan', 'begin_batch', 'check_target', 'chunk_context', 'claim_chunks',
                     'claim_rejects_files', 'commit_batch', 'complete_inline_scan', 'describe_target',
                     'enqueue_registration', 'fan_out_width', 'finalize_job', 'function_endpoint',
                     'has_deferred_constraints', 'is_import_candidate', 'load_writer', 'measured_row_cost',
                     'object_is_current', 'plan_write_as', 'reclaim_and_claim_chunks', 'reclaim_expired_leases',
                     'record_load_cost', 'register_job', 'renew_lease', 'request_function',
                     'request_registration', 'request_timeout_ms', 'resolve_profile', 'retry_delay',
                     'yield_chunk']) as h(name)
   left join pg_catalog.pg_proc p
     on p.proname = h.name and p.pronamespace = 'csv_import'::regnamespace
   left join pg_catalog.pg_language l on l.oid = p.prolang
   where p.oid is null or l.lanname <> 'plpgsql'
      or not ('plan_cache_mode=force_generic_plan' = any (coalesce(p.proconfig, '{}')))),
  null,
  'the functions called per upload, per chunk or per batch are PL/pgSQL and plan their statements once per '
    'connection');

select is(
  (select array_agg(p.proname::text order by p.proname)
   from pg_catalog.pg_proc p
   join pg_catalog.pg_namespace n on n.oid = p.pronamespace
   join pg_catalog.pg_language l on l.oid = p.prolang
   where n.nspname = 'csv_import' and l.lanname = 'sql' and (p.prosecdef or p.proconfig is not null)
     and p.proname not in (
       -- Per compressed chunk, inside chunk_context's own plan; a handful per job.
       '_checkpoint_json', '_resume_checkpoint',
       -- Only with FAN_OUT_AUTO_MAX set (fan_out_width returns before them otherwise).
       'fan_out_hold', 'fan_out_window',
       -- Per refused row, per rejects file, per health or operator request, per registration attempt or prune.
       'is_row_refusal', 'may_be_input_refusal', 'record_rejects_file', 'rejects_csv_pages', 'health',
       '_health_metrics', 'registration_max_attempts', 'registrations_waiting', 'record_object_etag',
       'prune_batch_log',
       -- Per table a job writes or makes, at registration.
       '_target_key', 'is_protected_schema', 'protected_schemas')),
  null,
  'every SQL-language function that cannot be inlined is a known cold one');

select * from finish();
rollback;
