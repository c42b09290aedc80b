-- The rejects CSV is rendered by the database, in pages, with the file's exact size known before the first byte.
--
-- What was wrong: the function that wrote a job's rejects file fetched every stored reject as a row object, built
-- the CSV text in JavaScript and buffered the whole file to upload it with a known length. For the default cap of
-- 100,000 stored rejects that is about 0.4 s of CPU and 50–80 MB of memory in whichever chunk invocation finished
-- the job (tests/reject_heavy_test.ts measured 80 MB), and a raw record can be up to MAX_RECORD_BYTES, so the file
-- had no bound at all.
--
-- Now csv_import.rejects_csv_pages gives the file as pages of about p_page_bytes, each row carrying the file's total
-- size; the function streams the pages into a standard upload (small files) or a resumable one in 6 MB parts
-- (platform/storage_resumable.ts), so its memory is a page and a part whatever the file's size.
--
-- The CSV (unchanged from the JavaScript writer it replaces): header line_number,column,reason,raw_record; CRLF
-- line ends; every field quoted, quotes doubled (RFC 4180); a field starting with =, +, -, @, TAB or CR gets a
-- leading apostrophe so that spreadsheet programs show it as text (OWASP "CSV injection"); a missing column
-- name is an empty field.

-- One field of the rejects CSV. Inlined into the query that calls it (plain SQL, immutable, no SET clause:
-- PostgreSQL inlines it, ~3x faster over 100,000 rejects than a function call per field); every name it uses is
-- schema-qualified, so the caller's search_path cannot change what it does.
create function csv_import.rejects_csv_field(p_value text)
returns text
language sql immutable parallel safe
as $$
  select '"' || pg_catalog.replace(
    case when pg_catalog.left(p_value, 1) in ('=', '+', '-', '@', pg_catalog.chr(9), pg_catalog.chr(13))
      then '''' || p_value else coalesce(p_value, '') end,
    '"', '""') || '"'
$$;

-- A job's rejects CSV in pages of whole lines, in line order: page 0 starts with the header; a page ends after the
-- line that takes the file past the next multiple of p_page_bytes (so a page is about p_page_bytes, or one line
-- when a line is longer); `page` is the p_page_bytes stretch its first line starts in (ascending, with gaps after
-- long lines). total_bytes, the same on every row, is the file's size in bytes.
-- Caller: rejects_file.ts (writePendingRejectFiles), with a cursor. Locks: none. Read-only.
create function csv_import.rejects_csv_pages(p_job_id bigint, p_page_bytes int default 1048576)
returns table (page bigint, body text, total_bytes bigint)
language sql stable security definer
set search_path = ''
as $$
  with lines as (
    select 0::bigint as line_number, 0::bigint as id, E'line_number,column,reason,raw_record\r\n' as line
    union all
    select r.line_number, r.id,
      csv_import.rejects_csv_field(r.line_number::text) || ',' || csv_import.rejects_csv_field(r.column_name)
        || ',' || csv_import.rejects_csv_field(r.reason) || ',' || csv_import.rejects_csv_field(r.raw_record)
        || E'\r\n'
    from csv_import.rejects r
    where r.job_id = p_job_id
  ),
  placed as (
    select l.line_number, l.id, l.line,
      (coalesce(sum(pg_catalog.octet_length(l.line)) over (order by l.line_number, l.id
         rows between unbounded preceding and 1 preceding), 0) / greatest(p_page_bytes, 1))::bigint as page
    from lines l
  ),
  pages as (
    select p.page, pg_catalog.string_agg(p.line, '' order by p.line_number, p.id) as body
    from placed p group by p.page
  )
  select pages.page, pages.body, (sum(pg_catalog.octet_length(pages.body)) over ())::bigint
  from pages order by pages.page
$$;

revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
