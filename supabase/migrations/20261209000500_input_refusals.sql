-- Values an input function refuses with an error outside the row-refusal classes (issue 15's all-types differential,
-- tests/all_types_test.ts): `psql \copy` refuses just that row, the pipeline failed the whole chunk.
-- - reg* types name catalog objects: a name that does not exist is 42P01 (regclass), 42704 (regtype, regrole,
--   regconfig, ...), 42883 (regproc), 3F000 (regnamespace), 42602 (a malformed name), 42725 (an ambiguous one);
-- - types whose input always refuses (ghstore, pg_brin_bloom_summary, ...) raise 0A000, PostGIS's parse errors
--   ("parse error - invalid geometry") XX000.
-- Those SQLSTATEs also come from causes that are not a row's (a dropped target table, a corrupted index), so they
-- are not row refusals (csv_import.is_row_refusal is unchanged). Instead they are candidates
-- (csv_import.may_be_input_refusal): insert_isolating bisects a range that raises one, and a single row that raises
-- one is that row's fault only when its staged text cast to the column types alone (p_probe: `select c1::t1, …
-- from the staging table` for the row) raises the same SQLSTATE, i.e. the value's input function refuses it; then
-- it is a reject with PostgreSQL's message. Otherwise the error propagates as before (the batch is retried): a
-- statement-level error costs the bisection's way down to the first row, O(log n) statements.
--
-- Also: the INSERT runs with the session's own search_path (pg_settings.reset_val) instead of the function's
-- empty one, so that PostgreSQL words a refusal as the loading session's COPY (and `\copy`) does: `value for
-- domain mood_d violates ...`, not `public.mood_d` (format_type qualifies a type its search_path cannot see), and
-- reg* values resolve unqualified names as COPY resolves them. Every name in the INSERT the worker builds is
-- schema-qualified (loader.ts), and pg_catalog is searched first either way.

-- Whether an error with SQLSTATE p_sqlstate may be a value's input function refusing it without being a row refusal
-- (see above): classes 0A (feature not supported), 3F (invalid schema name), 42 (syntax error or access rule
-- violation: undefined objects, malformed or ambiguous names), XX (internal error). Immutable. No locks.
-- Callers: insert_isolating, _write_keyed_isolating; mirrored by the chunk worker (load/loader.ts mayBeInputRefusal).
create or replace function csv_import.may_be_input_refusal(p_sqlstate text)
returns boolean
language sql immutable
set search_path = ''
as $$
  select coalesce(length(p_sqlstate) = 5 and left(p_sqlstate, 2) in ('0A', '3F', '42', 'XX'), false)
$$;

-- The 4-argument insert_isolating (20261204000700_create_row_refusals.sql) is replaced by this one with p_probe;
-- both would match a call with named arguments, so the old one goes.
drop function if exists csv_import.insert_isolating(text, bigint, bigint, jsonb);

-- Row-isolating insert (see 20261204000700_create_row_refusals.sql for the whole contract): runs p_insert over the
-- staged rows (p_from, p_to] and bisects a refused range down to single rows, each a reject with PostgreSQL's
-- message; other errors propagate. New here: p_probe (optional), `select <each staged column cast to its column's
-- type, then to its domain if it has one> from the staging table where seq > $1 and seq <= $2`: with it, an error that may be an input function's
-- refusal (csv_import.may_be_input_refusal) is bisected too, and a single row raising it is a reject when the probe
-- of that row raises the same SQLSTATE; and the INSERT and the probe run with the session's search_path.
-- Returns {"inserted", "rejects": [{seq, message, detail, column}]}. SECURITY INVOKER, service role only.
-- Locks: what the INSERTs take on the target. Not idempotent: it writes.
create or replace function csv_import.insert_isolating(
  p_insert text, p_from bigint, p_to bigint, p_writer jsonb default null, p_probe text default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_role text := p_writer ->> 'role';
  v_caller_role text := pg_catalog.current_setting('role');
  v_count bigint;
  v_state text;
  v_message text;
  v_detail text;
  v_column text;
  v_probe_state text;
  v_left jsonb;
  v_right jsonb;
  v_mid bigint;
begin
  if p_writer is not null and v_role is distinct from 'authenticated' and v_role is distinct from 'anon' then
    raise exception 'insert_isolating: a writer''s role must be authenticated or anon, not %', v_role
      using errcode = '22023';
  end if;
  if p_to <= p_from then
    return jsonb_build_object('inserted', 0, 'rejects', '[]'::jsonb);
  end if;
  -- Until this function returns (its SET clause restores the empty path then).
  perform pg_catalog.set_config('search_path',
    (select s.reset_val from pg_catalog.pg_settings s where s.name = 'search_path'), true);
  begin
    if p_writer is not null then
      perform pg_catalog.set_config('request.jwt.claims', (p_writer -> 'claims')::text, true);
      perform pg_catalog.set_config('request.jwt.claim.sub', coalesce(p_writer -> 'claims' ->> 'sub', ''), true);
      perform pg_catalog.set_config('request.jwt.claim.role', v_role, true);
      perform pg_catalog.set_config('role', v_role, true);
    end if;
    execute p_insert using p_from, p_to;
    get diagnostics v_count = row_count;
    if p_writer is not null then
      perform pg_catalog.set_config('role', v_caller_role, true);
    end if;
    return jsonb_build_object('inserted', v_count, 'rejects', '[]'::jsonb);
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
      v_detail = pg_exception_detail, v_column = column_name;
    if not csv_import.is_row_refusal(v_state) then
      if p_probe is null or not csv_import.may_be_input_refusal(v_state) then
        raise;
      end if;
      if p_to - p_from = 1 then
        -- The row's values alone, through their input functions: the same error means the value is refused.
        begin
          execute p_probe using p_from, p_to;
        exception when others then
          get stacked diagnostics v_probe_state = returned_sqlstate;
        end;
        if v_probe_state is distinct from v_state then
          raise;
        end if;
      end if;
    end if;
  end;
  if p_to - p_from = 1 then
    return jsonb_build_object('inserted', 0, 'rejects', jsonb_build_array(jsonb_build_object(
      'seq', p_to, 'message', v_message,
      'detail', case when p_writer is null then nullif(v_detail, '') end,
      'column', nullif(v_column, ''))));
  end if;
  v_mid := p_from + (p_to - p_from) / 2;
  v_left := csv_import.insert_isolating(p_insert, p_from, v_mid, p_writer, p_probe);
  v_right := csv_import.insert_isolating(p_insert, v_mid, p_to, p_writer, p_probe);
  return jsonb_build_object('inserted', (v_left->>'inserted')::bigint + (v_right->>'inserted')::bigint,
    'rejects', (v_left->'rejects') || (v_right->'rejects'));
end
$$;

-- The same for upsert and skip_duplicates (csv_import.write_keyed): its statements call functions by unqualified
-- name (jsonb_build_array, unnest, ...) and keep the empty search_path, so the values' verdict and wording come from
-- the probe, run with the session's search_path by csv_import._input_refusal: a single row raising a candidate
-- error is a reject when the probe raises the same SQLSTATE (else the error propagates), and a row refusal the
-- probe reproduces (a domain's CHECK, an enum label) takes the probe's wording, as COPY words it.

-- Runs p_probe (a probe as insert_isolating's) over the staged rows (p_from, p_to] with the session's search_path;
-- null when the values are read, else the error {state, message, detail, column}. Writes nothing. Locks: none.
-- Callers: _write_keyed_isolating.
create or replace function csv_import._input_refusal(p_probe text, p_from bigint, p_to bigint)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_state text;
  v_message text;
  v_detail text;
  v_column text;
begin
  perform pg_catalog.set_config('search_path',
    (select s.reset_val from pg_catalog.pg_settings s where s.name = 'search_path'), true);
  execute p_probe using p_from, p_to;
  return null;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail,
    v_column = column_name;
  return jsonb_build_object('state', v_state, 'message', v_message, 'detail', nullif(v_detail, ''),
    'column', nullif(v_column, ''));
end
$$;

-- _write_keyed_range with refusals isolated (20261204000800_create_key_claims.sql), and with p_sql's "probe"
-- (write_keyed adds it) deciding the errors that may be an input function's refusal and wording the values'
-- refusals as COPY does (above). Returns {"loaded", "skipped", "rejects"}. Caller: write_keyed.
-- Locks: as _write_keyed_range, per bisected half. Not idempotent: it writes.
create or replace function csv_import._write_keyed_isolating(
  p_job_id bigint,
  p_mode csv_import.conflict_mode,
  p_sql jsonb,
  p_from bigint,
  p_to bigint
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_result jsonb;
  v_state text;
  v_message text;
  v_detail text;
  v_column text;
  v_probe jsonb;
  v_left jsonb;
  v_right jsonb;
  v_mid bigint;
begin
  if p_to <= p_from then
    return jsonb_build_object('loaded', 0, 'skipped', 0, 'rejects', '[]'::jsonb);
  end if;
  begin
    v_result := csv_import._write_keyed_range(p_job_id, p_mode, p_sql, p_from, p_to);
    return v_result || jsonb_build_object('rejects', '[]'::jsonb);
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
      v_detail = pg_exception_detail, v_column = column_name;
    if not csv_import.is_row_refusal(v_state)
       and (p_sql ->> 'probe' is null or not csv_import.may_be_input_refusal(v_state)) then
      raise;
    end if;
    if p_to - p_from = 1 and p_sql ? 'probe' then
      v_probe := csv_import._input_refusal(p_sql ->> 'probe', p_from, p_to);
      if v_probe ->> 'state' is not distinct from v_state then
        v_message := v_probe ->> 'message';
        v_detail := v_probe ->> 'detail';
        v_column := v_probe ->> 'column';
      elsif not csv_import.is_row_refusal(v_state) then
        raise;
      end if;
    end if;
  end;
  if p_to - p_from = 1 then
    return jsonb_build_object('loaded', 0, 'skipped', 0, 'rejects', jsonb_build_array(jsonb_build_object(
      'seq', p_to, 'message', v_message, 'detail', nullif(v_detail, ''), 'column', nullif(v_column, ''))));
  end if;
  v_mid := p_from + (p_to - p_from) / 2;
  v_left := csv_import._write_keyed_isolating(p_job_id, p_mode, p_sql, p_from, v_mid);
  v_right := csv_import._write_keyed_isolating(p_job_id, p_mode, p_sql, v_mid, p_to);
  return jsonb_build_object(
    'loaded', (v_left ->> 'loaded')::bigint + (v_right ->> 'loaded')::bigint,
    'skipped', (v_left ->> 'skipped')::bigint + (v_right ->> 'skipped')::bigint,
    'rejects', (v_left -> 'rejects') || (v_right -> 'rejects'));
end
$$;

-- write_keyed (20261204000800_create_key_claims.sql) with the probe of the staged values: `select s.c1::<type1>, …
-- from pg_temp.csv_import_keyed_stage s where s.seq > $1 and s.seq <= $2`, types from p_columns, each followed by a
-- cast to the column's domain when p_columns names one ("domain": the worker's LoadColumn.domain), so that the
-- domain's CHECKs are read (the staged text goes to a server-validated column's base type first).
create or replace function csv_import.write_keyed(
  p_job_id bigint,
  p_mode csv_import.conflict_mode,
  p_table text,
  p_columns jsonb,
  p_key text[],
  p_rows bigint
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_probe text;
begin
  if p_mode not in ('upsert', 'skip_duplicates') then
    raise exception 'write_keyed writes upsert and skip_duplicates batches, not %', p_mode using errcode = '22023';
  end if;
  select pg_catalog.format('select %s from pg_temp.csv_import_keyed_stage s where s.seq > $1 and s.seq <= $2',
           pg_catalog.string_agg(pg_catalog.format('s.c%s::%s', c.i, c.type)
             || coalesce('::' || c.domain, ''), ', ' order by c.i))
  into v_probe
  from rows from (pg_catalog.jsonb_to_recordset(p_columns) as (name text, type text, domain text))
    with ordinality as c(name, type, domain, i);
  return csv_import._write_keyed_isolating(p_job_id, p_mode,
    csv_import._keyed_statements(p_mode, p_table::regclass, p_columns, p_key)
      || pg_catalog.jsonb_build_object('probe', v_probe), 0, p_rows);
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
