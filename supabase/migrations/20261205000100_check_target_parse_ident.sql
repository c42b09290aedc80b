-- check_target refuses a malformed table name by its syntax on every PostgreSQL version.
--
-- What was wrong: check_target relied on to_regclass raising 42602 for a malformed name. Since PostgreSQL 16 the
-- to_reg* functions return NULL on bad syntax instead (PostgreSQL commit 3ea7329, "Simplify the implementations of
-- the to_reg* functions"; verified on 17.10), so on 17 — what supabase/config.toml and new hosted projects run —
-- `public.t; drop table x` was answered "does not exist" (42P01). The name was still refused; the message and code
-- were wrong, and the pgTAP test that pins them failed.
--
-- Now the name is parsed first with pg_catalog.parse_ident, which raises on bad syntax on every version (as
-- csv_import._check_profile_target already does), and must have one or two parts (schema.table; a three-part name
-- is a cross-database reference, which to_regclass raises on in 15 and answers NULL in 17). Only then is it resolved.
--
-- Replaces check_target of 20261204000900_create_target_security.sql (same signature, messages and codes).
-- Read-only; locks nothing; idempotent. Caller: register (through csv_import.register_job's checks), tests.
create or replace function csv_import.check_target(p_table text)
returns text
language plpgsql stable
set search_path = ''
as $$
declare
  v_parts text[];
  v_oid oid;
  v_schema text;
  v_name text;
  v_kind "char";
begin
  begin
    v_parts := pg_catalog.parse_ident(p_table);
    if pg_catalog.cardinality(v_parts) not between 1 and 2 then
      raise exception using errcode = '42602';
    end if;
    v_oid := pg_catalog.to_regclass(p_table);
  exception when invalid_name or syntax_error or invalid_text_representation or invalid_parameter_value
                 or feature_not_supported or null_value_not_allowed then
    raise exception 'Target table % is not a valid table name: write schema.table, quoting names that need it (e.g. public."My Table")',
      coalesce(pg_catalog.quote_literal(p_table), 'null') using errcode = '42602';
  end;
  if v_oid is null then
    raise exception 'Target table % does not exist%', p_table,
      case when p_table not like '%.%' then ' (write it schema-qualified, e.g. public.' || p_table || ')' else '' end
      using errcode = '42P01';
  end if;
  select n.nspname, c.relname, c.relkind into v_schema, v_name, v_kind
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.oid = v_oid;
  if csv_import.is_protected_schema(v_schema) then
    raise exception 'Target table %.% is in schema %, which imports may not write (system, Supabase platform and csv_import schemas are protected)',
      pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_name), pg_catalog.quote_ident(v_schema)
      using errcode = '42501';
  end if;
  if v_kind not in ('r', 'p') then
    raise exception 'Target %.% is not a table (a %); imports write ordinary or partitioned tables only',
      pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_name),
      case v_kind when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table'
                  when 'S' then 'sequence' when 'i' then 'index' else 'relation of kind ' || v_kind::text end
      using errcode = '42809';
  end if;
  return pg_catalog.format('%I.%I', v_schema, v_name);
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on function csv_import.check_target(text) from public, anon, authenticated;
grant execute on function csv_import.check_target(text) to service_role;
