-- File order for keys repeated across chunks (upsert and skip_duplicates).
--
-- Why: the chunks of one file load in parallel and commit in any order, and a chunk may be retried; with a plain
-- INSERT … ON CONFLICT the occurrence that commits last (upsert) or first (skip_duplicates) won, whatever its place
-- in the file (issue 11: upsert kept the earlier row, skip_duplicates the later one, 3 runs of 3).
--
-- The rule, in file order (a record's line is its place in the file; lines are unique per job):
-- - upsert: the last occurrence of a key in the file wins. A row is written only if its line is at least the line
--   recorded for its key in this job, and then becomes the recorded line. Rows already in the table (before the
--   job, or from other jobs) are overwritten.
-- - skip_duplicates: the first occurrence wins, and a row that was in the table before the job (or written by
--   anyone else) stays. A row of this job with an earlier line than the one that wrote its key replaces that row's
--   values; a key held by a row not written by this job is recorded with line 0, which nothing in the file beats.
-- - The key is the profile's conflict_columns; for skip_duplicates without them, the target's primary key, else
--   its first unique index on plain columns. Rows with a null in the key never conflict (unique indexes treat
--   nulls as distinct) and are written as before; a table without any such key has no repeated keys to order.
-- - Counts stay exact (rows parsed = loaded + rejected + skipped) and do not depend on the commit order: upsert
--   counts every accepted row as loaded (an occurrence a later one replaces, or that was never written because a
--   later one had committed first, included); skip_duplicates counts one loaded row per key the job added and
--   every other accepted occurrence as skipped (when an earlier occurrence replaces a later one that committed
--   first, the later one's chunk has counted the loaded row and the earlier one's counts the skipped one).
-- - Only rows the table accepts record a line: a row the table refuses (bisected and rejected) records nothing,
--   so the next valid occurrence takes its place. A superseded occurrence is never written, so a constraint it
--   alone violates (check, foreign key) does not make it a reject; its values were validated like every row's.
--
-- Invariants:
-- - csv_import.key_claims rows are written in the batch's own transaction, by the same statements that write the
--   target rows: a rolled-back batch leaves no claim, a committed one leaves exactly its claims.
-- - Two batches of one job that hold a key serialize on its claim row (the second waits for the first to commit,
--   then decides on the committed line); claims are taken in key order, so two batches never deadlock on them.
-- - No foreign key on key_claims (as batch_log): a key check per row and a lock on the job row would be added to
--   every batch. Rows are deleted by csv_import.prune_finished_jobs: at once for jobs that can no longer load
--   (succeeded, or superseded), with the job for the others (a failed or cancelled job may be retried).

-- (The table csv_import.key_claims is in 20261204000000_create_csv_import_schema.sql.)

-- The key file order is kept on when a profile names no conflict_columns: the target's primary key, else the
-- columns of its first unique, non-partial index on plain columns (by index oid); null when it has none.
-- Reads the catalog only. Caller: write_keyed.
-- Locks: none. Idempotent.
create or replace function csv_import._target_key(p_table regclass)
returns text[]
language sql stable
set search_path = ''
as $$
  select array_agg(a.attname::text order by k.ord)
  from (
    select i.indexrelid, i.indkey
    from pg_catalog.pg_index i
    where i.indrelid = p_table and i.indisunique and i.indpred is null and i.indexprs is null
    order by i.indisprimary desc, i.indexrelid
    limit 1
  ) x
  cross join lateral unnest(x.indkey::int2[]) with ordinality as k(attnum, ord)
  join pg_catalog.pg_attribute a on a.attrelid = p_table and a.attnum = k.attnum
$$;

-- The statements write_keyed runs for one job's target, as jsonb: "upsert" (one statement) or "claim",
-- "insert_fresh", "replace" (skip_duplicates, rows with a key), and "insert_unkeyed" (rows with a null in the key,
-- or every row when there is no key). They read the staging table pg_temp.csv_import_keyed_stage (seq, line, c1..cn as
-- text) with $1 < seq <= $2; $3 is the job, $4 an array of lines. p_columns: [{"name", "type"}] in c1..cn order,
-- types as describe_target prints them (schema-qualified); names are quoted here, the table goes through regclass.
-- Pure (reads the catalog for the key). Caller: write_keyed.
-- Locks: none.
create or replace function csv_import._keyed_statements(
  p_mode csv_import.conflict_mode,
  p_table regclass,
  p_columns jsonb,
  p_key text[]
)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_key text[] := case when cardinality(p_key) > 0 then p_key else csv_import._target_key(p_table) end;
  v_cols text;
  v_casts text;
  v_k text;        -- the key of a staged row
  v_kt text;       -- the key of a target row (RETURNING)
  v_null text;     -- a staged row has a null in its key
  v_kc text;       -- the conflict target
  v_set text;      -- DO UPDATE SET of the non-key columns
  v_range constant text := 's.seq > $1 and s.seq <= $2';
  v_stage constant text := 'pg_temp.csv_import_keyed_stage s';
  v_write text;
  v_over text := '';
  v_complete boolean;
begin
  select string_agg(format('%I', c.name), ', ' order by c.i),
         string_agg(format('s.c%s::%s', c.i, c.type), ', ' order by c.i),
         string_agg(format('%I = excluded.%I', c.name, c.name), ', ' order by c.i)
           filter (where not (c.name = any (coalesce(v_key, '{}'))))
  into v_cols, v_casts, v_set
  from rows from (jsonb_to_recordset(p_columns) as (name text, type text)) with ordinality as c(name, type, i);

  -- Each key column must come from the file; otherwise (e.g. an identity key the table fills) rows have no key.
  select format('jsonb_build_array(%s)', string_agg(format('s.c%s::%s', c.i, c.type), ', ' order by k.ord)),
         format('jsonb_build_array(%s)', string_agg(format('%I', k.name), ', ' order by k.ord)),
         string_agg(format('s.c%s is null', c.i), ' or ' order by k.ord),
         string_agg(format('%I', k.name), ', ' order by k.ord),
         count(c.i) = cardinality(v_key)
  into v_k, v_kt, v_null, v_kc, v_complete
  from unnest(v_key) with ordinality as k(name, ord)
  left join rows from (jsonb_to_recordset(p_columns) as (name text, type text)) with ordinality as c(name, type, i) on c.name = k.name;
  if v_complete is not true then
    v_k := null;
    v_null := 'true';
  end if;

  -- Values given for an identity-always column are written as given, as COPY and insert_isolating write them.
  if exists (select 1 from jsonb_to_recordset(p_columns) as c(identity text) where c.identity = 'always') then
    v_over := 'overriding system value ';
  end if;
  v_write := format('insert into %s (%s) %sselect %s from %s', p_table, v_cols, v_over, v_casts, v_stage);
  if p_mode = 'upsert' then
    return jsonb_build_object('upsert', format(
      $f$with w as (
           insert into csv_import.key_claims as k (job_id, key, line)
           select $3, r.key, max(r.line) from (select %1$s as key, s.line from %2$s where %3$s and not (%4$s)) r
           group by r.key order by r.key
           on conflict (job_id, key) do update set line = excluded.line where k.line <= excluded.line
           returning k.line)
         insert into %5$s (%6$s) %10$sselect %7$s from %2$s left join w on w.line = s.line
         where %3$s and (w.line is not null or %4$s) order by s.seq
         on conflict (%8$s) do %9$s$f$,
      coalesce(v_k, 'null::jsonb'), v_stage, v_range, v_null, p_table, v_cols, v_casts, v_kc,
      case when v_set is null then 'nothing' else 'update set ' || v_set end, v_over));
  end if;

  return jsonb_build_object(
    'insert_unkeyed', format('%s where %s and (%s) order by s.seq on conflict do nothing', v_write, v_range, v_null))
    || case when v_k is null then '{}'::jsonb else jsonb_build_object(
    'claim', format(
      $f$with r as (select distinct on (%1$s) %1$s as key, s.line from %2$s where %3$s and not (%4$s)
                    order by %1$s, s.line),
         c as (insert into csv_import.key_claims as k (job_id, key, line)
               select $3, r.key, r.line from r order by r.key
               on conflict (job_id, key) do update set line = excluded.line, prev_line = k.line
               where excluded.line < k.line
               returning k.line, k.prev_line)
         select coalesce(array_agg(line) filter (where prev_line is null), '{}'),
                coalesce(array_agg(line) filter (where prev_line is not null), '{}') from c$f$,
      v_k, v_stage, v_range, v_null),
    -- Lines are matched by joins and the keys not inserted by EXCEPT, not by `= any ($4)`, NOT IN or a join with
    -- the insert's RETURNING: the planner does not know how many rows those have and compared every row with every
    -- other (144 s for a 10,000-row batch, against 0.4 s now).
    'insert_fresh', format(
      $f$with ins as (%1$s join unnest($4::bigint[]) as l(line) on l.line = s.line where %2$s order by s.seq
                      on conflict do nothing returning %3$s as key),
         kept as (update csv_import.key_claims k set line = 0
                  from ((select %4$s as key from %5$s join unnest($4::bigint[]) as l(line) on l.line = s.line
                         where %2$s)
                        except all (select key from ins)) nf
                  where k.job_id = $3 and k.key = nf.key
                  returning 1)
         select (select count(*) from ins), (select count(*) from kept)$f$,
      v_write, v_range, v_kt, v_k, v_stage),
    'replace', format(
      '%s join unnest($4::bigint[]) as l(line) on l.line = s.line where %s order by s.seq on conflict (%s) do %s',
      v_write, v_range, v_kc, case when v_set is null then 'nothing' else 'update set ' || v_set end))
  end;
end
$$;

-- Writes staged rows ($1, $2] of one job's batch in the mode's file order (see the top of this file); returns
-- {"loaded", "skipped"}. Raises on a refused row (the caller bisects). Locks: the key_claims rows of the range's
-- keys (in key order), then the target rows it writes. Caller: _write_keyed_isolating.
-- Not idempotent: it writes (the claims make a replay of the same lines a no-op).
create or replace function csv_import._write_keyed_range(
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
  v_fresh bigint[];
  v_replace bigint[];
  v_inserted bigint;
  v_kept bigint;
  v_count bigint;
  v_loaded bigint := 0;
begin
  if p_mode = 'upsert' then
    execute p_sql ->> 'upsert' using p_from, p_to, p_job_id;
    return jsonb_build_object('loaded', p_to - p_from, 'skipped', 0);
  end if;
  if p_sql ? 'claim' then
    execute p_sql ->> 'claim' using p_from, p_to, p_job_id into v_fresh, v_replace;
    if cardinality(v_fresh) > 0 then
      execute p_sql ->> 'insert_fresh' using p_from, p_to, p_job_id, v_fresh into v_inserted, v_kept;
      v_loaded := v_inserted;
    end if;
    if cardinality(v_replace) > 0 then
      execute p_sql ->> 'replace' using p_from, p_to, p_job_id, v_replace;
    end if;
  end if;
  execute p_sql ->> 'insert_unkeyed' using p_from, p_to;
  get diagnostics v_count = row_count;
  v_loaded := v_loaded + v_count;
  return jsonb_build_object('loaded', v_loaded, 'skipped', p_to - p_from - v_loaded);
end
$$;

-- _write_keyed_range with refusals isolated as insert_isolating does: a range the table refuses (a row refusal:
-- csv_import.is_row_refusal, a trigger's RAISE included) is rolled back to its savepoint and split in halves, left first (file order),
-- down to single rows, which become rejects {seq, message, detail, column}. Anything else propagates.
-- Returns {"loaded", "skipped", "rejects"}. Caller: write_keyed.
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
    if not csv_import.is_row_refusal(v_state) then -- the one list (20261204000700_create_row_refusals.sql)
      raise;
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

-- Writes the staged rows 1..p_rows of one batch of job p_job_id into p_table in mode p_mode (upsert or
-- skip_duplicates), keeping file order for repeated keys across the job's batches and chunks; rows the table
-- refuses become rejects. Runs in the batch's transaction (between begin_batch and commit_batch) and never ends
-- it. Returns {"loaded", "skipped", "rejects": [{seq, message, detail, column}]}; loaded + skipped + rejects =
-- p_rows. Locks: see _write_keyed_range. Idempotent per transaction only as the batch is (begin_batch's sequence
-- check). Caller: the loader (BatchLoader.writeIsolating), with the staging table filled.
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
begin
  if p_mode not in ('upsert', 'skip_duplicates') then
    raise exception 'write_keyed writes upsert and skip_duplicates batches, not %', p_mode using errcode = '22023';
  end if;
  return csv_import._write_keyed_isolating(p_job_id, p_mode,
    csv_import._keyed_statements(p_mode, p_table::regclass, p_columns, p_key), 0, p_rows);
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
