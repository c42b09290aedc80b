-- The state vocabulary is typed: every status column is an enum with exactly these labels, in this order, and
-- begin_batch answers with batch_state (pipeline/sql_replies.ts mirrors it; tests/sql_replies_test.ts compares).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(11);

select enum_has_labels('csv_import', 'job_status',
  array['registering', 'queued', 'running', 'succeeded', 'succeeded_with_rejects', 'validated', 'failed', 'cancelled'],
  'job_status: the job state machine');
select enum_has_labels('csv_import', 'chunk_status', array['pending', 'running', 'succeeded', 'dead', 'cancelled'],
  'chunk_status: the chunk state machine');
select enum_has_labels('csv_import', 'batch_state',
  array['ok', 'lease_lost', 'duplicate', 'stopped', 'missing', 'superseded'],
  'batch_state: what begin_batch and a refused commit_batch answer');
select enum_has_labels('csv_import', 'rejects_file_status', array['none', 'pending', 'written'],
  'rejects_file_status: where a job''s rejects CSV stands');
select enum_has_labels('csv_import', 'chunk_kind', array['scan', 'load', 'inflate'], 'chunk_kind');

select col_type_is('csv_import', 'jobs', 'status', 'csv_import', 'job_status', 'jobs.status is a job_status');
select col_type_is('csv_import', 'jobs', 'rejects_status', 'csv_import', 'rejects_file_status',
  'jobs.rejects_status is a rejects_file_status');
select col_type_is('csv_import', 'chunks', 'status', 'csv_import', 'chunk_status', 'chunks.status is a chunk_status');
select col_type_is('csv_import', 'chunks', 'kind', 'csv_import', 'chunk_kind', 'chunks.kind is a chunk_kind');
select function_returns('csv_import', 'begin_batch', array['bigint', 'uuid', 'integer'], 'csv_import.batch_state',
  'begin_batch answers a batch_state');
select throws_ok($$ update csv_import.jobs set rejects_status = 'maybe' where false $$, '22P02', null,
  'a rejects status outside the enum is refused');

select * from finish();
rollback;
