-- Row refusals: every row the target refuses becomes a reject, with PostgreSQL's own message, and every
-- acceptable row of the batch loads.
--
-- Invariants:
-- - csv_import.is_row_refusal is the one list of SQLSTATEs that refuse a row; the chunk worker's isRowRefusal
--   (supabase/functions/_shared/load/loader.ts) mirrors it, and tests/target_refusals_test.ts compares the two.
-- - Connection (08), transaction state (25), rollback (40: serialization, deadlock), resource (53), object
--   state (55: lock not available), operator intervention (57: cancel, shutdown), system (58) and internal
--   (XX) errors are never isolated: they propagate, and the batch is retried.

-- Whether an error with SQLSTATE p_sqlstate refuses one row (which the isolating insert turns into a reject)
-- rather than the statement, the connection or the transaction. Classes: 21 cardinality (a key repeated
-- within one upsert), 22 data exception, 23 integrity constraint (deferred ones too, once checked), 27 triggered
-- data change, 44 WITH CHECK OPTION, 09 triggered action; codes: P0001 a trigger's RAISE, P0002/P0003 its
-- SELECT INTO STRICT, P0004 its ASSERT, 42501 a row-level security policy refused the row (or the writer lacks
-- a privilege, which every row then reports), 54000 a row too large for its index or page. Immutable.
-- No locks. Callers: insert_isolating, _write_keyed_isolating; mirrored by the chunk worker.
create or replace function csv_import.is_row_refusal(p_sqlstate text)
returns boolean
language sql immutable
set search_path = ''
as $$
  select coalesce(length(p_sqlstate) = 5 and (
    left(p_sqlstate, 2) in ('21', '22', '23', '27', '44', '09')
    or p_sqlstate in ('P0001', 'P0002', 'P0003', 'P0004', '42501', '54000')), false)
$$;

-- Whether the target (or a partition of it) has constraints PostgreSQL checks only at commit (INITIALLY
-- DEFERRED foreign keys, unique, exclusion or constraint triggers). The chunk worker then checks them before it
-- commits a batch (SET CONSTRAINTS ALL IMMEDIATE), where a refusal can still be isolated: at COMMIT it would
-- fail the whole batch, again at every retry. Read-only. Caller: the chunk worker, once per load.
-- Locks: none.
create or replace function csv_import.has_deferred_constraints(p_table text)
returns boolean
language sql stable
set search_path = ''
as $$
  with tree as ( -- pg_partition_tree lists nothing for a table that is not partitioned
    select pg_catalog.to_regclass(p_table) as relid
    union select relid from pg_catalog.pg_partition_tree(pg_catalog.to_regclass(p_table))
  )
  select exists (select 1 from pg_catalog.pg_constraint k join tree t on t.relid = k.conrelid where k.condeferred)
      or exists (select 1 from pg_catalog.pg_trigger g join tree t on t.relid = g.tgrelid
                 where g.tginitdeferred and g.tgenabled <> 'D' and (g.tgtype & 4) <> 0) -- fires on INSERT
$$;

-- Rows of a refused piece whose key already exists in the target (insert mode), found set-wise before
-- insert_isolating bisects the rest: each becomes a reject with PostgreSQL's own wording (duplicate key value
-- violates unique constraint "<index>", Key (<columns>)=(<values>) already exists.) and is removed from the
-- caller's staging table pg_temp.csv_import_stage (columns c1..cn, text, in p_columns order). Why: bisection
-- costs ~1 ms per refused row (two statements, each a subtransaction, per row when every row is refused): a
-- re-imported 30,000-row file took 62 s; one query per unique index instead.
-- Only unique indexes that are immediate, valid, without expressions or predicates, NULLs distinct, and whose
-- key columns are all in the file are used; anything else (and a duplicate within the file itself) is left to
-- bisection, as is everything if a query here fails. SECURITY INVOKER: it sees the target as the caller does.
-- Returns (seq, message, detail). Caller: the chunk worker's isolating path (loader.ts).
-- Locks: none on the target (it only reads it); the rows it deletes are in the caller's own temp table. Not
-- idempotent: taken rows leave the staging table.
create or replace function csv_import.take_existing_keys(p_table text, p_columns text[], p_types text[])
returns table (seq bigint, message text, detail text)
language plpgsql
set search_path = ''
as $$
declare
  v_index record;
  v_cond text;
  v_vals text;
  v_cols text;
  v_pos int;
  v_ok boolean;
begin
  for v_index in
    select i.indexrelid, c.relname::text as name, i.indkey::int[] as keys, i.indnkeyatts as nkeys
    from pg_catalog.pg_index i join pg_catalog.pg_class c on c.oid = i.indexrelid
    where i.indrelid = pg_catalog.to_regclass(p_table) and i.indisunique and i.indisvalid and i.indimmediate
      and i.indexprs is null and i.indpred is null
      and not coalesce((pg_catalog.to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false)
    order by i.indexrelid
  loop
    v_cond := null; v_vals := null; v_cols := null; v_ok := true;
    for k in 1 .. v_index.nkeys loop
      select array_position(p_columns, a.attname::text) into v_pos
      from pg_catalog.pg_attribute a
      where a.attrelid = pg_catalog.to_regclass(p_table)
        and a.attnum = v_index.keys[pg_catalog.array_lower(v_index.keys, 1) + k - 1]; -- int2vector: 0-based
      if v_pos is null then
        v_ok := false;
        exit;
      end if;
      v_cond := concat_ws(' and ', v_cond, format('t.%s = (s.c%s)::%s',
        pg_catalog.pg_get_indexdef(v_index.indexrelid, k, true), v_pos, p_types[v_pos]));
      v_vals := concat_ws(' || '', '' || ', v_vals, format('((s.c%s)::%s)::text', v_pos, p_types[v_pos]));
      v_cols := concat_ws(', ', v_cols, pg_catalog.pg_get_indexdef(v_index.indexrelid, k, true));
    end loop;
    continue when not v_ok;
    begin
      return query execute format(
        'with gone as (delete from pg_temp.csv_import_stage s where exists (select 1 from %s t where %s) '
        'returning s.seq, %s as vals) select seq, %L::text, ''Key ('' || %L || '')=('' || vals || '') already exists.'' from gone',
        p_table, v_cond, v_vals, format('duplicate key value violates unique constraint "%s"', v_index.name), v_cols);
    exception when others then
      raise warning 'csv_import.take_existing_keys: % on index % (left to bisection)', sqlerrm, v_index.name;
    end;
  end loop;
end
$$;

-- Row-isolating insert, used by the chunk worker for a batch piece the database refused (insert mode) and for
-- every batch in upsert / skip_duplicates mode: runs p_insert, an INSERT … SELECT over the rows
-- (p_from, p_to] of the caller's staging table (the range as $1 and $2), and when the database refuses it with a
-- row refusal (csv_import.is_row_refusal) bisects the range in subtransactions down to single rows, so that
-- every acceptable row loads and each refused row is reported once, with PostgreSQL's message. Any other error
-- propagates. k refused rows of n cost O(k log n) statements, all on the server: from the worker each
-- statement costs a round trip, ~1.5 ms with postgres.js in Deno, so a file re-imported in insert mode (every
-- row a duplicate key) took ~11 ms per row client-side; here ~0.1 ms per row.
-- Returns {"inserted": rows written (inserted or updated, for upserts; rows a BEFORE trigger dropped are not
-- counted), "rejects": [{seq, message, detail, column}]}.
-- With p_writer {"role": …, "claims": {…}} (csv_import.load_writer, 20261204000900_create_target_security.sql) every
-- INSERT it runs (the whole range, then the halves of a refused range) runs as that role with those claims set as
-- PostgREST sets them, and the caller's role is restored after it; a refused INSERT's subtransaction rollback
-- restores it by itself. Rejects of such a writer carry no DETAIL (it may show values of rows the writer cannot
-- read).
-- SECURITY INVOKER, executable by the service role only: the caller needs no more than its own rights to
-- lower them, and clients can never run caller-supplied SQL through it.
-- Locks: what the INSERTs take on the target (row locks, unique-index waits). Not idempotent: it writes.
create or replace function csv_import.insert_isolating(
  p_insert text, p_from bigint, p_to bigint, p_writer jsonb default null
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
      raise;
    end if;
  end;
  if p_to - p_from = 1 then
    return jsonb_build_object('inserted', 0, 'rejects', jsonb_build_array(jsonb_build_object(
      'seq', p_to, 'message', v_message,
      'detail', case when p_writer is null then nullif(v_detail, '') end,
      'column', nullif(v_column, ''))));
  end if;
  v_mid := p_from + (p_to - p_from) / 2;
  v_left := csv_import.insert_isolating(p_insert, p_from, v_mid, p_writer);
  v_right := csv_import.insert_isolating(p_insert, v_mid, p_to, p_writer);
  return jsonb_build_object('inserted', (v_left->>'inserted')::bigint + (v_right->>'inserted')::bigint,
    'rejects', (v_left->'rejects') || (v_right->'rejects'));
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
