-- A file whose columns the uploader may not write fails at registration with one clear message (issue 11,
-- item 1, docs/security.md), as the same INSERT through the API fails whole: before, each of its rows was
-- refused on its own (42501 "permission denied for table …"), bisected row by row and stored as a reject.

-- Raises 42501 naming the columns of p_columns that the role authenticated may not INSERT into p_table
-- (table or column privileges, and USAGE on its schema); returns nothing when it may write them all.
-- Read-only. Caller: the register function, for jobs that write with the uploader's rights.
create or replace function csv_import.check_uploader_privileges(p_table text, p_columns text[])
returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_oid oid := pg_catalog.to_regclass(p_table);
  v_denied text;
begin
  if v_oid is null then
    raise exception 'Target table % does not exist', p_table using errcode = '42P01';
  end if;
  if not pg_catalog.has_schema_privilege('authenticated',
       (select c.relnamespace from pg_catalog.pg_class c where c.oid = v_oid), 'USAGE') then
    raise exception 'Uploaders may not write %: the role authenticated has no USAGE on its schema; grant it, or set the profile''s write_as to ''service_role''',
      p_table using errcode = '42501';
  end if;
  select pg_catalog.string_agg(pg_catalog.quote_ident(col), ', ' order by ord) into v_denied
  from unnest(p_columns) with ordinality as u(col, ord)
  where not pg_catalog.has_column_privilege('authenticated', v_oid, col, 'INSERT');
  if v_denied is not null then
    raise exception 'Uploaders may not write column(s) % of % (privileges of the role authenticated): leave them out of the file, grant INSERT on them, or set the profile''s write_as to ''service_role''',
      v_denied, p_table using errcode = '42501';
  end if;
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
