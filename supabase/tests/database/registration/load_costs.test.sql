-- What loads cost (migration 20261216000000_chunk_sizes_from_measured_cost.sql): load invocations record bytes,
-- rows, rejects, fields per row and work (csv_import.record_load_cost); registration reads the work per row of the
-- table's recent clean loads, or other tables' work per field times the file's fields
-- (csv_import.measured_row_cost), to size the next file's chunks (pipeline/chunk_size.ts).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(19);

create schema pgtap_target;
create table pgtap_target.items (id bigint primary key, name text);
\ir ../_fixtures/jobs.psql

-- The costs other tests and benchmarks left behind are not this test's.
delete from csv_import.load_costs;

select pgtap_csv.plan_job('costs', 300000000, 0, 8388608);
select pgtap_csv.plan_job('other', 300000000, 0, 8388608, '{"target_table": "pgtap_target.others"}');

select is(csv_import.measured_row_cost('pgtap_target.items', 2), null, 'nothing loaded anywhere: no cost');

select lives_ok(
  $$ select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 0), 8388608, 100000, 0, 2, 200) $$,
  'a load chunk records its cost');
select results_eq(
  $$ select job_id, target_table, bytes, rows, rejected, fields, work_ms::float8 from csv_import.load_costs
     where job_id = pgtap_csv.job('costs') $$,
  $$ values (pgtap_csv.job('costs'), 'pgtap_target.items'::text, 8388608::bigint, 100000::bigint, 0::bigint, 2,
             200::float8) $$,
  '… under its job and the job''s target table');
select is(csv_import.measured_row_cost('pgtap_target.items', 2), 0.002::float8, '… 200 ms over 100,000 rows');
select is(csv_import.measured_row_cost('pgtap_target.items', 7), 0.002::float8,
  '… per row of the table, whatever the new file''s fields');

select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 1), 4194304, 100000, 1000, 2, 400);
select is(csv_import.measured_row_cost('pgtap_target.items', 2), 0.003::float8,
  'work per row over the recent loads: (200 + 400) ms over 200,000 rows, not an average of the two ratios; '
  '1 % rejected still counts');

select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 2), 4194304, 100000, 1001, 2, 90000);
select is(csv_import.measured_row_cost('pgtap_target.items', 2), 0.003::float8,
  'a load with more than 1 % rejected does not count');

select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'scan', 0), 8388608, 100000, 0, 2, 9000);
select is((select count(*)::int from csv_import.load_costs where job_id = pgtap_csv.job('costs')), 3,
  'a scan chunk records nothing');

select is(round(csv_import.measured_row_cost('pgtap_target.others', 3)::numeric, 12), 0.0045,
  'a table with no loads of its own: the other tables'' work per field (600 ms over 400,000 fields), times 3');
select csv_import.record_load_cost(pgtap_csv.chunk('other', 'load', 0), 8388608, 1000, 0, 1, 9000);
select is(csv_import.measured_row_cost('pgtap_target.items', 2), 0.003::float8, 'another table''s loads do not count');
select is(csv_import.measured_row_cost('pgtap_target.others', 3), 9::float8, '… and count for their own');

select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 3), 1048576, 0, 0, 2, 50);
select is(csv_import.measured_row_cost('pgtap_target.items', 2), 0.003::float8,
  'a load that parsed no row does not count');

-- Only the latest 32 loads count: 32 cheap ones after those above leave them out.
select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 4 + i), 8388608, 100000, 0, 2, 100)
from generate_series(0, 31) i;
select is(csv_import.measured_row_cost('pgtap_target.items', 2), 0.001::float8, 'only the latest 32 loads count');

-- Only the last 30 days count.
update csv_import.load_costs set measured_at = now() - interval '31 days';
select is(csv_import.measured_row_cost('pgtap_target.items', 2), null, 'loads older than 30 days do not count');

select throws_ok(
  $$ select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 0), 0, 10, 0, 1, 1) $$,
  '22023', null, 'a cost of no bytes is refused');
select throws_ok(
  $$ select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 0), 10, 10, 11, 1, 1) $$,
  '22023', null, '… more rejects than rows');
select throws_ok(
  $$ select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 0), 10, 10, 0, 0, 1) $$,
  '22023', null, '… no fields');
select throws_ok(
  $$ select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 0), 10, 10, 0, 1, 'NaN'::real) $$,
  '22023', null, '… and work of no number');

delete from csv_import.jobs where id = pgtap_csv.job('costs');
select is((select count(*)::int from csv_import.load_costs where target_table = 'pgtap_target.items'), 0,
  'a job''s costs go with it (retention)');

select * from finish();
rollback;
