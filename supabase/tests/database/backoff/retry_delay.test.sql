-- csv_import.retry_delay: the documented delay table, monotonic, capped, jitter bounds, no overflow.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(9);

-- The table in the function's header: min(5 s * 2^(n-1), 10 min) * (0.5 + jitter/2).
select results_eq(
  $$ select n, extract(epoch from csv_import.retry_delay(n, jitter => 0))::numeric
     from generate_series(1, 10) as n order by n $$,
  $$ values (1, 2.5), (2, 5.0), (3, 10.0), (4, 20.0), (5, 40.0), (6, 80.0), (7, 160.0), (8, 300.0), (9, 300.0),
            (10, 300.0) $$,
  'jitter 0: half of the capped exponential delay (2.5 s, 5 s, … 300 s)');

select results_eq(
  $$ select n, extract(epoch from csv_import.retry_delay(n, jitter => 0.999))::numeric
     from generate_series(1, 10) as n order by n $$,
  $$ values (1, 4.9975), (2, 9.995), (3, 19.99), (4, 39.98), (5, 79.96), (6, 159.92), (7, 319.84), (8, 599.7),
            (9, 599.7), (10, 599.7) $$,
  'jitter 0.999: just under the capped exponential delay (5 s, 10 s, … 600 s)');

select is(
  (select count(*)::int from generate_series(1, 29) as n, (values (0.0::float8), (0.5), (0.999)) as j(j)
   where csv_import.retry_delay(n + 1, jitter => j) < csv_import.retry_delay(n, jitter => j)),
  0, 'monotonic in the attempt for any fixed jitter');

select is(
  (select max(csv_import.retry_delay(n, jitter => 1)) from generate_series(1, 60) as n),
  interval '10 minutes', 'never above the 10 minute cap');

select lives_ok(
  $$ select csv_import.retry_delay(n, jitter => 0.5) from generate_series(1, 1000) as n $$,
  'very high attempt numbers (a profile may allow many attempts) return the cap instead of overflowing');

select is(csv_import.retry_delay(1000, jitter => 0), interval '5 minutes', 'attempt 1000 at jitter 0 is half the cap');

select is(
  (select count(*)::int from generate_series(1, 200)
   where csv_import.retry_delay(3) not between interval '10 seconds' and interval '20 seconds'),
  0, 'default random jitter stays in [half, full] of the delay (attempt 3: 10–20 s)');

select results_eq(
  $$ values (csv_import.retry_delay(0, jitter => 0)), (csv_import.retry_delay(-3, jitter => 0)),
            (csv_import.retry_delay(2, jitter => -1)), (csv_import.retry_delay(2, jitter => 7)) $$,
  $$ values (interval '2.5 seconds'), (interval '2.5 seconds'), (interval '5 seconds'), (interval '10 seconds') $$,
  'attempts below 1 count as 1; jitter is clamped to [0, 1]');

select is(csv_import.retry_delay(3, interval '1 second', interval '3 seconds', 0), interval '1.5 seconds',
  'base and cap are parameters');

select * from finish();
rollback;
