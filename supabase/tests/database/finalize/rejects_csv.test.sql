-- csv_import.rejects_csv_field / csv_import.rejects_csv_pages: the rejects CSV as the database renders it — fields
-- quoted and formula-safe, lines in line order, pages of whole lines, the file's exact size on every page.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(12);

-- Fields ---------------------------------------------------------------------------------------------------------------
select results_eq(
  $$ select csv_import.rejects_csv_field(v) from unnest(array['plain', 'say "hi"', '=cmd()', '+1', '-1', '@SUM(A1)',
       E'\tx', E'\rx', E'a\nb', '42', '', null, 'a=b']) with ordinality as u(v, n) order by n $$,
  $$ values ('"plain"'), ('"say ""hi"""'), ($q$"'=cmd()"$q$), ($q$"'+1"$q$), ($q$"'-1"$q$), ($q$"'@SUM(A1)"$q$),
            (E'"\'\tx"'), (E'"\'\rx"'), (E'"a\nb"'), ('"42"'), ('""'), ('""'), ('"a=b"') $$,
  'fields are quoted with quotes doubled; =, +, -, @, TAB and CR at the start get an apostrophe; null is empty');
select is((select count(*)::int from pg_proc where oid = 'csv_import.rejects_csv_field(text)'::regprocedure
             and provolatile = 'i' and proconfig is null and not prosecdef), 1,
  'the field function is immutable with no SET clause (so that PostgreSQL inlines it)');

-- Pages ---------------------------------------------------------------------------------------------------------------
create temp table job as
  with j as (insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, status)
             values ('csv-uploads', 'pgtap/rejects_csv/a.csv', 'v1', 100, 'running') returning id)
  select id from j;
-- Inserted out of line order, with a line that has two rejects (ordered by id) and multibyte text.
insert into csv_import.rejects (job_id, line_number, column_name, reason, raw_record)
select (select id from job), l, c, r, w from (values
  (7, 'amount', 'invalid input syntax for type numeric: "x"', '7,x'),
  (3, null, 'expected 2 fields, found 3', '=1,2,3'),
  (7, 'id', 'duplicate', 'é,€'),
  (5, 'note', 'too long', repeat('ü', 40))
) v(l, c, r, w);

select is((select string_agg(body, '' order by page) from csv_import.rejects_csv_pages((select id from job))),
  E'line_number,column,reason,raw_record\r\n'
  || E'"3","","expected 2 fields, found 3","\'=1,2,3"\r\n'
  || '"5","note","too long","' || repeat('ü', 40) || E'"\r\n'
  || E'"7","amount","invalid input syntax for type numeric: ""x""","7,x"\r\n'
  || E'"7","id","duplicate","é,€"\r\n',
  'the file: the header, then one line per reject in line order (ties by id), CRLF line ends');
select is((select count(*)::int from csv_import.rejects_csv_pages((select id from job))), 1,
  'a small file is one page');
select is(
  (select array_agg(distinct total_bytes) from csv_import.rejects_csv_pages((select id from job), 64)),
  (select array[sum(octet_length(body))] from csv_import.rejects_csv_pages((select id from job))),
  'total_bytes is the file''s size in bytes (UTF-8), the same on every page');
select results_eq(
  $$ select page, right(body, 2) = E'\r\n' from csv_import.rejects_csv_pages((select id from job), 64) $$,
  $$ values (0::bigint, true), (1::bigint, true), (2::bigint, true), (4::bigint, true) $$,
  'pages of 64 bytes, each of whole lines, numbered by the 64-byte stretch their first line starts in');
select is(
  (select string_agg(body, '' order by page) from csv_import.rejects_csv_pages((select id from job), 64)),
  (select string_agg(body, '' order by page) from csv_import.rejects_csv_pages((select id from job))),
  'pages put together are the whole file');
select is(
  (select body from csv_import.rejects_csv_pages((select id from job), 64) where page = 0),
  E'line_number,column,reason,raw_record\r\n"3","","expected 2 fields, found 3","\'=1,2,3"\r\n',
  'a page ends after the line that takes the file past a multiple of the page size');
select is(
  (select array_agg(page) from csv_import.rejects_csv_pages((select id from job), 1)),
  array[0, 38, 85, 191, 258]::bigint[],
  'a line longer than a page is a page of its own (pages numbered by the offset they start at)');

select is((select count(*)::int from csv_import.rejects_csv_pages(-1)), 1, 'a job without rejects: the header only');
select is((select body from csv_import.rejects_csv_pages(-1)), E'line_number,column,reason,raw_record\r\n', '… as its page');

-- Privileges ------------------------------------------------------------------------------------------------------------
select results_eq(
  $$ select r, has_function_privilege(r, 'csv_import.rejects_csv_pages(bigint, int)', 'execute')
     from unnest(array['anon', 'authenticated', 'service_role']) as r $$,
  $$ values ('anon', false), ('authenticated', false), ('service_role', true) $$,
  'only the service role may read a job''s rejects file');

select * from finish();
rollback;
