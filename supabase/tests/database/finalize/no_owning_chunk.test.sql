-- csv_import.finalize_job: a planned job whose load chunks all report owning no record cannot succeed (load
-- chunk 0 starts at data_start, a record start, so at least one chunk always owns a record).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(2);

insert into storage.buckets (id, name) values ('csv-uploads', 'csv-uploads') on conflict do nothing;
insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, status)
values ('csv-uploads', 'pgtap/no-owner.csv', 'v1', 300, 'registering');
select csv_import.register_job((select id from csv_import.jobs where object_name = 'pgtap/no-owner.csv'),
  '{"data_start": 0, "chunk_size": 100, "header_lines": 0}');
update csv_import.chunks set status = 'succeeded'
where job_id = (select id from csv_import.jobs where object_name = 'pgtap/no-owner.csv');

select is(csv_import.finalize_job((select id from csv_import.jobs where object_name = 'pgtap/no-owner.csv'))::text,
  'failed', 'no chunk owning a record: failed, not succeeded');
select matches((select error from csv_import.jobs where object_name = 'pgtap/no-owner.csv'),
  '^Consistency check failed: the chunks'' records do not tile the file exactly \(chunk 0\)$', 'with the reason');

select * from finish();
rollback;
