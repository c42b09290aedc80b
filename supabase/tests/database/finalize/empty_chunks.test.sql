-- csv_import.finalize_job, tiling with load chunks that own no record (one record spans the whole chunk): such a
-- chunk reports no offsets (first_record_at and next_record_at null) and parses nothing, and is skipped; the
-- owning chunks, in order, must continue exactly where the previous owning one stopped, the first starting at
-- data_start and the last ending at object_size.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(10);

\ir ../_fixtures/jobs.psql
-- Marks every chunk of a job finished as workers would leave them: scans succeeded; load chunk i succeeded,
-- owning [first_record_at, next_record_at) = its byte range, with p_parsed rows of which p_rejected rejected.
create function pgtap_csv.finish_chunks(p_job text, p_parsed bigint default 10, p_rejected bigint default 0)
returns void language sql as $$
  update csv_import.chunks set status = 'succeeded', finished_at = now(), lease_token = null, lease_until = null,
    quote_parity = case when kind = 'scan' then 0 end, newline_count = case when kind = 'scan' then 10 end,
    first_record_at = case when kind = 'load' then start_offset end,
    next_record_at = case when kind = 'load' then end_offset end,
    rows_parsed = case when kind = 'load' then p_parsed else 0 end,
    rows_loaded = case when kind = 'load' then p_parsed - p_rejected else 0 end,
    rows_rejected = case when kind = 'load' then p_rejected else 0 end
  where job_id = pgtap_csv.job(p_job)
$$;
create function pgtap_csv.outcome(p_job text) returns table (status text, error text) language sql stable as $$
  select status::text, error from csv_import.jobs where id = pgtap_csv.job(p_job)
$$;

-- Marks load chunk p_index as owning no record (a record from an earlier chunk spans it).
create function pgtap_csv.empty_chunk(p_job text, p_index int) returns void language sql as $$
  update csv_import.chunks set first_record_at = null, next_record_at = null, rows_parsed = 0, rows_loaded = 0,
    rows_rejected = 0
  where id = pgtap_csv.chunk(p_job, 'load', p_index)
$$;
-- Sets load chunk p_index's owned records to [p_first, p_next).
create function pgtap_csv.owns(p_job text, p_index int, p_first bigint, p_next bigint) returns void language sql as $$
  update csv_import.chunks set first_record_at = p_first, next_record_at = p_next
  where id = pgtap_csv.chunk(p_job, 'load', p_index)
$$;
create function pgtap_csv.tiling_error(p_chunk int) returns text language sql stable as $$
  select format('Consistency check failed: the chunks'' records do not tile the file exactly (chunk %s)', p_chunk)
$$;

-- Succeeding jobs ----------------------------------------------------------------------------------------------------------
-- MIDDLE: 4 load chunks of 100 bytes after a 20-byte header; a record starting at 110 runs to 330, so chunk 2 owns nothing.
do $$ begin
  perform pgtap_csv.plan_job('MIDDLE', 420, 20, 100);
  perform pgtap_csv.finish_chunks('MIDDLE', 10);
  perform pgtap_csv.owns('MIDDLE', 1, 120, 330);
  perform pgtap_csv.empty_chunk('MIDDLE', 2);
  perform pgtap_csv.owns('MIDDLE', 3, 330, 420);
end $$;
select is(csv_import.finalize_job(pgtap_csv.job('MIDDLE')), 'succeeded'::csv_import.job_status,
  'an empty middle chunk is skipped: the owning chunks tile the file');
select results_eq(
  $$ select status::text, error, rows_parsed, rows_loaded, bytes_loaded from csv_import.jobs where id = pgtap_csv.job('MIDDLE') $$,
  $$ values ('succeeded', null::text, 30::bigint, 30::bigint, 400::bigint) $$,
  '… with the owning chunks'' rows and every succeeded chunk''s bytes');

do $$ begin
  -- SEVERAL: chunks 1 and 2 are both spanned by a record starting in chunk 0.
  perform pgtap_csv.plan_job('SEVERAL', 400, 0, 100);
  perform pgtap_csv.finish_chunks('SEVERAL');
  perform pgtap_csv.owns('SEVERAL', 0, 0, 301);
  perform pgtap_csv.empty_chunk('SEVERAL', 1);
  perform pgtap_csv.empty_chunk('SEVERAL', 2);
  perform pgtap_csv.owns('SEVERAL', 3, 301, 400);
  -- LAST: the last record starts in chunk 1 and runs to the end of the file.
  perform pgtap_csv.plan_job('LAST', 300, 0, 100);
  perform pgtap_csv.finish_chunks('LAST');
  perform pgtap_csv.owns('LAST', 1, 100, 300);
  perform pgtap_csv.empty_chunk('LAST', 2);
  -- REJECTS: an empty chunk next to chunks with rejects.
  perform pgtap_csv.plan_job('REJECTS', 300, 0, 100, '{"tolerated_reject_rate": 0.5}');
  perform pgtap_csv.finish_chunks('REJECTS', 10, 2);
  perform pgtap_csv.owns('REJECTS', 0, 0, 250);
  perform pgtap_csv.empty_chunk('REJECTS', 1);
  perform pgtap_csv.owns('REJECTS', 2, 250, 300);
end $$;
select is(csv_import.finalize_job(pgtap_csv.job('SEVERAL')), 'succeeded'::csv_import.job_status,
  'several consecutive empty chunks: succeeded');
select is(csv_import.finalize_job(pgtap_csv.job('LAST')), 'succeeded'::csv_import.job_status,
  'an empty last chunk: the last owning chunk ends at object_size, succeeded');
select is(csv_import.finalize_job(pgtap_csv.job('REJECTS')), 'succeeded_with_rejects'::csv_import.job_status,
  'an empty chunk next to chunks with rejects: succeeded_with_rejects');
select results_eq(
  $$ select rows_parsed, rows_loaded, rows_rejected, rejects_status::text from csv_import.jobs where id = pgtap_csv.job('REJECTS') $$,
  $$ values (20::bigint, 16::bigint, 4::bigint, 'pending') $$,
  '… the totals are the owning chunks'', the rejects file is due');

-- Failing jobs -----------------------------------------------------------------------------------------------------------------
do $$ begin
  -- PARSED: an "empty" chunk that parsed rows.
  perform pgtap_csv.plan_job('PARSED', 300, 0, 100);
  perform pgtap_csv.finish_chunks('PARSED');
  perform pgtap_csv.owns('PARSED', 0, 0, 250);
  perform pgtap_csv.empty_chunk('PARSED', 1);
  update csv_import.chunks set rows_parsed = 3, rows_loaded = 3 where id = pgtap_csv.chunk('PARSED', 'load', 1);
  perform pgtap_csv.owns('PARSED', 2, 250, 300);
  -- NEXT-ONLY: no first record but a next marker.
  perform pgtap_csv.plan_job('NEXT-ONLY', 300, 0, 100);
  perform pgtap_csv.finish_chunks('NEXT-ONLY');
  perform pgtap_csv.owns('NEXT-ONLY', 0, 0, 250);
  perform pgtap_csv.empty_chunk('NEXT-ONLY', 1);
  update csv_import.chunks set next_record_at = 250 where id = pgtap_csv.chunk('NEXT-ONLY', 'load', 1);
  perform pgtap_csv.owns('NEXT-ONLY', 2, 250, 300);
  -- GAP: bytes [250, 260) belong to nobody across the empty chunk.
  perform pgtap_csv.plan_job('GAP', 300, 0, 100);
  perform pgtap_csv.finish_chunks('GAP');
  perform pgtap_csv.owns('GAP', 0, 0, 250);
  perform pgtap_csv.empty_chunk('GAP', 1);
  perform pgtap_csv.owns('GAP', 2, 260, 300);
  -- OVERLAP: bytes [240, 250) are owned twice across the empty chunk.
  perform pgtap_csv.plan_job('OVERLAP', 300, 0, 100);
  perform pgtap_csv.finish_chunks('OVERLAP');
  perform pgtap_csv.owns('OVERLAP', 0, 0, 250);
  perform pgtap_csv.empty_chunk('OVERLAP', 1);
  perform pgtap_csv.owns('OVERLAP', 2, 240, 300);
  -- SHORT: the chunk before an empty last chunk stops before the end of the file.
  perform pgtap_csv.plan_job('SHORT', 300, 0, 100);
  perform pgtap_csv.finish_chunks('SHORT');
  perform pgtap_csv.owns('SHORT', 1, 100, 290);
  perform pgtap_csv.empty_chunk('SHORT', 2);
  -- FIRST: chunk 0 owns nothing, so the first owning chunk does not start at data_start.
  perform pgtap_csv.plan_job('FIRST', 300, 10, 100);
  perform pgtap_csv.finish_chunks('FIRST');
  perform pgtap_csv.empty_chunk('FIRST', 0);
  perform pgtap_csv.owns('FIRST', 1, 110, 210);
  perform pgtap_csv.owns('FIRST', 2, 210, 300);
  -- CANCELLED: a chunk with no markers that did not succeed is not "empty".
  perform pgtap_csv.plan_job('CANCELLED', 300, 0, 100);
  perform pgtap_csv.finish_chunks('CANCELLED');
  perform pgtap_csv.owns('CANCELLED', 0, 0, 250);
  perform pgtap_csv.empty_chunk('CANCELLED', 1);
  update csv_import.chunks set status = 'cancelled' where id = pgtap_csv.chunk('CANCELLED', 'load', 1);
  perform pgtap_csv.owns('CANCELLED', 2, 250, 300);
end $$;
create table pgtap_csv.finalized as
  select i, n, csv_import.finalize_job(pgtap_csv.job(n))::text as returned
  from unnest(array['PARSED', 'NEXT-ONLY', 'GAP', 'OVERLAP', 'SHORT', 'FIRST', 'CANCELLED']) with ordinality as t(n, i);
select results_eq(
  $$ select n, returned, (pgtap_csv.outcome(n)).status, (pgtap_csv.outcome(n)).error from pgtap_csv.finalized order by i $$,
  $$ values ('PARSED', 'failed', 'failed', pgtap_csv.tiling_error(1)),
            ('NEXT-ONLY', 'failed', 'failed', pgtap_csv.tiling_error(1)),
            ('GAP', 'failed', 'failed', pgtap_csv.tiling_error(2)),
            ('OVERLAP', 'failed', 'failed', pgtap_csv.tiling_error(2)),
            ('SHORT', 'failed', 'failed', pgtap_csv.tiling_error(1)),
            ('FIRST', 'failed', 'failed', pgtap_csv.tiling_error(1)),
            ('CANCELLED', 'failed', 'failed', pgtap_csv.tiling_error(1)) $$,
  'an empty chunk that parsed rows or has a next marker, a gap or an overlap across an empty chunk, a short last '
  'owning chunk, a first owning chunk after data_start, an unfinished chunk: failed, naming the chunk');
select is((select rows_parsed from csv_import.jobs where id = pgtap_csv.job('PARSED')), 23::bigint,
  'the failed job still records the chunks'' totals');

-- Through the worker protocol: commit_batch of an empty chunk (no first record, no next offset) ----------------------------------
do $$ begin
  perform pgtap_csv.plan_job('PROTOCOL', 300, 0, 100);
  update csv_import.chunks set status = 'succeeded', quote_parity = 0, newline_count = 1, ends_with_terminator = false,
    finished_at = now()
  where job_id = pgtap_csv.job('PROTOCOL') and kind = 'scan';
  update csv_import.chunks set entry_parity = 0, lines_before = 1, at_record_start = false
  where job_id = pgtap_csv.job('PROTOCOL') and kind = 'load' and chunk_index > 0;
  perform pgtap_csv.lease('PROTOCOL', 'load', i) from generate_series(0, 2) as i;
  perform csv_import.commit_batch(pgtap_csv.chunk('PROTOCOL', 'load', 0), pgtap_csv.token('PROTOCOL', 'load', 0), 0,
    0, 250, 3, 2, 2, 0, '[]', true);
  perform csv_import.commit_batch(pgtap_csv.chunk('PROTOCOL', 'load', 1), pgtap_csv.token('PROTOCOL', 'load', 1), 0,
    null, null, null, 0, 0, 0, '[]', true);
end $$;
select results_eq(
  $$ select status::text, first_record_at, next_record_at, rows_parsed from csv_import.chunks
     where id = pgtap_csv.chunk('PROTOCOL', 'load', 1) $$,
  $$ values ('succeeded', null::bigint, null::bigint, 0::bigint) $$,
  'commit_batch leaves an empty chunk without markers');
select is(
  (csv_import.commit_batch(pgtap_csv.chunk('PROTOCOL', 'load', 2), pgtap_csv.token('PROTOCOL', 'load', 2), 0,
     250, 300, 5, 1, 1, 0, '[]', true)) ->> 'job_status',
  'succeeded', 'the last chunk''s commit finalizes the job: succeeded');

select * from finish();
rollback;
