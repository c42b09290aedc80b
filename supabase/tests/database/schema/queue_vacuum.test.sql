-- The queue tables are vacuumed after 1,000 changed rows, not after a fifth of the table (migration
-- 20261215000000_queue_tables_vacuumed_by_churn.sql): every claim counts running chunks and finds ready ones
-- through partial indexes that each chunk leaves a dead entry in, and bitmap scans of those visit every dead
-- entry's heap page until VACUUM removes it. Measured there: claim_chunks 6.8–7.0 ms a call with 4,700 dead
-- entries against 2.3–2.9 ms after a VACUUM. A later ALTER TABLE … RESET, or a table rebuilt without the options,
-- would bring the growth back with every test green; this assertion catches it.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(1);

select set_eq(
  $$select c.relname::text, o from pg_catalog.pg_class c cross join unnest(c.reloptions) as o
    where c.oid in ('csv_import.chunks'::regclass, 'csv_import.jobs'::regclass)$$,
  $$select t, o from unnest(array['chunks', 'jobs']) as t
    cross join unnest(array['autovacuum_vacuum_scale_factor=0', 'autovacuum_vacuum_threshold=1000',
                            'autovacuum_analyze_scale_factor=0', 'autovacuum_analyze_threshold=1000']) as o$$,
  'csv_import.chunks and csv_import.jobs are vacuumed and analysed after 1,000 changed rows, whatever their size');

select * from finish();
rollback;
