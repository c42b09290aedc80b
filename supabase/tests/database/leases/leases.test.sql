-- Leases: the heartbeat (csv_import.renew_lease), the 10-second reclaim (csv_import.reclaim_expired_leases) and
-- handing back a stopped job's chunk (csv_import.release_stopped_chunk).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(14);

\ir ../_fixtures/jobs.psql

do $$ begin
  perform pgtap_csv.plan_job('A', 300, 0, 100, '{"max_attempts": 3}');
  perform pgtap_csv.lease('A', 'load', 0);
end $$;

-- Heartbeat.
update csv_import.chunks set lease_until = now() + interval '1 second' where id = pgtap_csv.chunk('A', 'load', 0);
select is(csv_import.renew_lease(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), interval '20 seconds'),
  'ok', 'the leaseholder renews its lease');
select is((select lease_until from csv_import.chunks where id = pgtap_csv.chunk('A', 'load', 0)), now() + interval '20 seconds',
  '… by the interval it asks for');
select is(csv_import.renew_lease(pgtap_csv.chunk('A', 'load', 0), gen_random_uuid(), interval '20 seconds'), 'lost',
  'another token: lost (the worker must stop)');

-- Reclaim: an expired lease is requeued at once (no backoff: the lease itself was the wait), attempts kept.
update csv_import.chunks set lease_until = now() - interval '1 second' where id = pgtap_csv.chunk('A', 'load', 0);
select ok(csv_import.reclaim_expired_leases() >= 1, 'expired leases are reclaimed (this one, and any other left here)');
select results_eq(
  $$ select status::text, attempts, available_at <= now(), lease_token, last_error from csv_import.chunks
     where id = pgtap_csv.chunk('A', 'load', 0) $$,
  $$ values ('pending', 1, true, null::uuid, 'Lease expired: the worker stopped before finishing the chunk (attempt 1 of 3)') $$,
  'the chunk is pending again, ready at once');
select is(csv_import.renew_lease(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), interval '20 seconds'),
  'lost', 'the old leaseholder''s heartbeat now says lost');
select is((select csv_import.reclaim_expired_leases() >= 0 and status = 'pending' from csv_import.chunks
           where id = pgtap_csv.chunk('A', 'load', 0)), true, 'a second round leaves the requeued chunk alone');

-- The last attempt's expiry dead-letters the chunk (and the job fails once nothing else runs).
do $$ begin
  update csv_import.chunks set attempts = 2 where id = pgtap_csv.chunk('A', 'load', 0);
  perform pgtap_csv.lease('A', 'load', 0);
  update csv_import.chunks set lease_until = now() - interval '1 second' where id = pgtap_csv.chunk('A', 'load', 0);
end $$;
select ok(csv_import.reclaim_expired_leases() >= 1, 'the third expiry is reclaimed …');
select is((select status::text from csv_import.chunks where id = pgtap_csv.chunk('A', 'load', 0)), 'dead',
  '… as a dead chunk (attempt 3 of 3)');

-- A stopped job's leftover chunk with an expired lease is cancelled, not requeued.
do $$ begin
  perform pgtap_csv.plan_job('B', 300, 0, 100);
  perform pgtap_csv.lease('B', 'load', 0);
  update csv_import.jobs set status = 'cancelled' where id = pgtap_csv.job('B');
  update csv_import.chunks set lease_until = now() - interval '1 second' where id = pgtap_csv.chunk('B', 'load', 0);
end $$;
select ok(csv_import.reclaim_expired_leases() >= 1, 'a stopped job''s expired chunk is reclaimed …');
select is((select status::text from csv_import.chunks where id = pgtap_csv.chunk('B', 'load', 0)), 'cancelled',
  '… as cancelled');

-- Handing back: the worker of a stopped job's chunk cancels it at once; a running job's chunk is left alone.
do $$ begin
  perform pgtap_csv.plan_job('C', 300, 0, 100);
  perform pgtap_csv.lease('C', 'load', 0);
end $$;
select is(csv_import.release_stopped_chunk(pgtap_csv.chunk('C', 'load', 0), pgtap_csv.token('C', 'load', 0)), 'running',
  'a running job''s chunk is not handed back');
update csv_import.jobs set status = 'cancelled' where id = pgtap_csv.job('C');
select is(csv_import.release_stopped_chunk(pgtap_csv.chunk('C', 'load', 0), gen_random_uuid()), 'running',
  'another token changes nothing');
select is(csv_import.release_stopped_chunk(pgtap_csv.chunk('C', 'load', 0), pgtap_csv.token('C', 'load', 0)), 'cancelled',
  'the leaseholder of a stopped job''s chunk hands it back: cancelled');

select * from finish();
rollback;
