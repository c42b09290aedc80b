-- The pipeline's pg_cron jobs (cron.schedule with an existing name replaces that job's schedule and command).

-- The reconciler, every minute (csv_import.reconcile).
select cron.schedule('csv-import-reconcile', '* * * * *', 'select csv_import.reconcile()');

-- Expired leases every 10 s (pg_cron job csv-import-leases): a seconds schedule where pg_cron has them (1.5+,
-- hosted Supabase); on older pg_cron (Debian 12 ships 1.4: minutes only, and a job's procedure may not COMMIT) six
-- jobs a minute, at 0, 10, … 50 s, each a sleep then the reclaim in its own statement (pg_cron runs a job's
-- command as one implicit transaction: the reclaim commits at once after the sleep; the sleep holds no xid).
do $$
declare
  v_offset int;
begin
  if (select pg_catalog.string_to_array(pg_catalog.split_part(extversion, '-', 1), '.')::int[] >= array[1, 5]
      from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform cron.schedule('csv-import-leases', '10 seconds', 'select csv_import.reclaim_leases_and_kick()');
  else
    foreach v_offset in array array[0, 10, 20, 30, 40, 50] loop
      perform cron.schedule(format('csv-import-leases-%s', v_offset), '* * * * *',
        format('select pg_catalog.pg_sleep(%s); select csv_import.reclaim_leases_and_kick()', v_offset));
    end loop;
  end if;
end
$$;

-- batch_log retention, hourly.
select cron.schedule('csv-import-prune-batch-log', '17 * * * *', 'select csv_import.prune_batch_log()');

-- Finished jobs older than 30 days, every 10 minutes (see 20261204001400_create_retention.sql to change the age).
select cron.schedule('csv-import-prune-finished-jobs', '*/10 * * * *', 'select csv_import.prune_finished_jobs()');
