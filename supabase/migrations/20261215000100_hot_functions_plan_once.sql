-- Issue 14: the PL/pgSQL functions on the per-upload, per-chunk and per-batch paths use generic plans from their
-- first call on a connection (plan_cache_mode = force_generic_plan), instead of planning each statement again for
-- its first five calls.
--
-- Why: PL/pgSQL plans a statement with parameters afresh for each of its first five executions on a connection
-- (custom plans) before it settles on a generic plan, which it then keeps. The connections that call these
-- functions are short-lived: each function isolate opens its own, and the runtime retires an isolate after a second
-- of CPU, so in issue 14's small-file burst 39 backends served 300 files, each calling every one of these
-- functions a dozen times or so. Most calls were among the first five. Measured on the local stack, one psql
-- session calling csv_import.chunk_context twelve times: 24–35 ms (the connection's first call), then 0.9–3.3 ms
-- for calls two to six, then 0.13–0.4 ms; with this setting calls two to six took 0.2–0.9 ms. In the burst
-- (`deno run -A bench/burst.ts --big 0`, six rounds alternated with the default, track_functions = all): the
-- csv_import functions' own time 4.4–8.6 s against 6.4–9.3 s per burst (lower in five rounds of six, median 15 %
-- less), commit_batch 1.6–2.6 ms a call against 3.2–4.0, describe_target 0.9–1.5 against 1.4–2.1.
--
-- Generic plans are what these statements end with anyway: their parameters are ids, leases and counts, never a
-- value that decides which index or partial index applies (statuses and kinds are constants in the text).
-- A CREATE OR REPLACE of one of these functions replaces its SET clauses: keep the setting there
-- (supabase/tests/database/schema/function_plans.test.sql checks it).
alter function csv_import._current_job_of_object(text, text) set plan_cache_mode = force_generic_plan;
alter function csv_import._early_stop_reason(csv_import.jobs) set plan_cache_mode = force_generic_plan;
alter function csv_import._finalize_tiling_gap(csv_import.jobs) set plan_cache_mode = force_generic_plan;
alter function csv_import._finalize_verdict(csv_import.jobs, numeric, numeric, numeric, numeric)
  set plan_cache_mode = force_generic_plan;
alter function csv_import._log_batch() set plan_cache_mode = force_generic_plan;
alter function csv_import._on_object_change() set plan_cache_mode = force_generic_plan;
alter function csv_import._stop_jobs_of_object(text, text, text, bigint) set plan_cache_mode = force_generic_plan;
alter function csv_import._stop_jobs_of_object_quickly(text, text, text, bigint)
  set plan_cache_mode = force_generic_plan;
alter function csv_import._store_plan(bigint, jsonb, bigint, bigint, bigint, integer)
  set plan_cache_mode = force_generic_plan;
alter function csv_import.begin_batch(bigint, uuid, integer) set plan_cache_mode = force_generic_plan;
alter function csv_import.check_target(text) set plan_cache_mode = force_generic_plan;
alter function csv_import.chunk_context(bigint, uuid) set plan_cache_mode = force_generic_plan;
alter function csv_import.claim_chunks(integer, integer, interval) set plan_cache_mode = force_generic_plan;
alter function csv_import.claim_rejects_files(integer, integer) set plan_cache_mode = force_generic_plan;
alter function csv_import.commit_batch(bigint, uuid, integer, bigint, bigint, bigint, bigint, bigint, bigint, jsonb,
  boolean, interval, bigint, bigint) set plan_cache_mode = force_generic_plan;
alter function csv_import.complete_inline_scan(bigint, uuid, smallint, bigint, boolean)
  set plan_cache_mode = force_generic_plan;
alter function csv_import.describe_target(text) set plan_cache_mode = force_generic_plan;
alter function csv_import.enqueue_registration(text, text, uuid, text, bigint, text, text)
  set plan_cache_mode = force_generic_plan;
alter function csv_import.fan_out_width(integer, integer) set plan_cache_mode = force_generic_plan;
alter function csv_import.finalize_job(bigint) set plan_cache_mode = force_generic_plan;
alter function csv_import.function_endpoint(text) set plan_cache_mode = force_generic_plan;
alter function csv_import.has_deferred_constraints(text) set plan_cache_mode = force_generic_plan;
alter function csv_import.is_import_candidate(text, text) set plan_cache_mode = force_generic_plan;
alter function csv_import.load_writer(bigint) set plan_cache_mode = force_generic_plan;
alter function csv_import.object_is_current(text, text, text) set plan_cache_mode = force_generic_plan;
alter function csv_import.plan_write_as(text, text, text) set plan_cache_mode = force_generic_plan;
alter function csv_import.reclaim_and_claim_chunks(integer, integer, interval) set plan_cache_mode = force_generic_plan;
alter function csv_import.reclaim_expired_leases() set plan_cache_mode = force_generic_plan;
alter function csv_import.register_job(bigint, jsonb) set plan_cache_mode = force_generic_plan;
alter function csv_import.renew_lease(bigint, uuid, interval) set plan_cache_mode = force_generic_plan;
alter function csv_import.request_function(text, jsonb) set plan_cache_mode = force_generic_plan;
alter function csv_import.request_registration(bigint) set plan_cache_mode = force_generic_plan;
alter function csv_import.request_timeout_ms(text) set plan_cache_mode = force_generic_plan;
alter function csv_import.resolve_profile(text, text) set plan_cache_mode = force_generic_plan;
alter function csv_import.retry_delay(integer, interval, interval, double precision)
  set plan_cache_mode = force_generic_plan;
alter function csv_import.yield_chunk(bigint, uuid) set plan_cache_mode = force_generic_plan;
