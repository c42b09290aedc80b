-- What loads cost, by target table (migration 20261216000000_chunk_sizes_from_measured_cost.sql): load invocations
-- record bytes, rows and work (csv_import.record_load_cost), registration reads the work per row of the table's
-- recent loads (csv_import.measured_row_cost) to size the next file's chunks (pipeline/chunk_size.ts).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(14);

create schema pgtap_target;
create table pgtap_target.items (id bigint primary key, name text);
\ir ../_fixtures/jobs.psql

select pgtap_csv.plan_job('costs', 300000000, 0, 8388608);
select pgtap_csv.plan_job('other', 300000000, 0, 8388608, '{"target_table": "pgtap_target.others"}');

select is(csv_import.measured_row_cost('pgtap_target.items'), null, 'a table nothing was loaded into: no cost');

select lives_ok(
  $$ select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 0), 8388608, 100000, 200) $$,
  'a load chunk records its cost');
select results_eq(
  $$ select job_id, target_table, bytes, rows, work_ms::float8 from csv_import.load_costs
     where job_id = pgtap_csv.job('costs') $$,
  $$ values (pgtap_csv.job('costs'), 'pgtap_target.items'::text, 8388608::bigint, 100000::bigint, 200::float8) $$,
  '… under its job and the job''s target table');
select is(csv_import.measured_row_cost('pgtap_target.items'), 0.002::float8, '… 200 ms over 100,000 rows');

select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 1), 4194304, 100000, 400);
select is(csv_import.measured_row_cost('pgtap_target.items'), 0.003::float8,
  'work per row over the recent loads: (200 + 400) ms over 200,000 rows, not an average of the two ratios');

select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'scan', 0), 8388608, 100000, 9000);
select is((select count(*)::int from csv_import.load_costs where job_id = pgtap_csv.job('costs')), 2,
  'a scan chunk records nothing');

select csv_import.record_load_cost(pgtap_csv.chunk('other', 'load', 0), 8388608, 1000, 9000);
select is(csv_import.measured_row_cost('pgtap_target.items'), 0.003::float8, 'another table''s loads do not count');
select is(csv_import.measured_row_cost('pgtap_target.others'), 9::float8, '… and count for their own');

select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 2), 1048576, 0, 50);
select is(csv_import.measured_row_cost('pgtap_target.items'), 0.003::float8,
  'a load that parsed no row does not count');

-- Only the latest 32 loads count: 32 cheap ones after the two above leave those out.
select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 3 + i), 8388608, 100000, 100)
from generate_series(0, 31) i;
select is(csv_import.measured_row_cost('pgtap_target.items'), 0.001::float8, 'only the latest 32 loads count');

-- Only the last 30 days count.
update csv_import.load_costs set measured_at = now() - interval '31 days' where job_id = pgtap_csv.job('costs');
select is(csv_import.measured_row_cost('pgtap_target.items'), null, 'loads older than 30 days do not count');

select throws_ok(
  $$ select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 0), 0, 10, 1) $$,
  '22023', null, 'a cost of no bytes is refused');
select throws_ok(
  $$ select csv_import.record_load_cost(pgtap_csv.chunk('costs', 'load', 0), 10, 10, 'NaN'::real) $$,
  '22023', null, '… and one of no number');

delete from csv_import.jobs where id = pgtap_csv.job('costs');
select is((select count(*)::int from csv_import.load_costs where target_table = 'pgtap_target.items'), 0,
  'a job''s costs go with it (retention)');

select * from finish();
rollback;
