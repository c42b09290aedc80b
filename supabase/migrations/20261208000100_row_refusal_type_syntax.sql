-- Columns whose types PostgreSQL validates itself (issue 15: arrays, ranges, interval, inet, extension types;
-- pg_types/convert.ts checkedByServer) reach the type's input function with the file's text. Some input functions
-- refuse a bad value with SQLSTATE 42601 (syntax_error) rather than a class-22 data exception: hstore's
-- "syntax error in hstore: unexpected end of string", for one. Such a value refuses its row, as 22P02 does, so
-- 42601 joins the row refusals; the chunk worker's list (load/loader.ts ROW_REFUSAL_CODES) says the same.
-- A 42601 of the pipeline's own SQL would now refuse every row of a batch, each with PostgreSQL's message, and the
-- job would fail on its reject rate: loud, never silent. Internal errors (class XX, PostGIS's parse errors among
-- them) still propagate and are retried.

-- Whether an error with SQLSTATE p_sqlstate refuses one row (which the isolating insert turns into a reject)
-- rather than the statement, the connection or the transaction. Classes: 21 cardinality (a key repeated
-- within one upsert), 22 data exception, 23 integrity constraint (deferred ones too, once checked), 27 triggered
-- data change, 44 WITH CHECK OPTION, 09 triggered action; codes: P0001 a trigger's RAISE, P0002/P0003 its
-- SELECT INTO STRICT, P0004 its ASSERT, 42501 a row-level security policy refused the row (or the writer lacks
-- a privilege, which every row then reports), 54000 a row too large for its index or page, 42601 a type's input
-- function refusing a value as a syntax error (hstore). Immutable.
-- No locks. Callers: insert_isolating, _write_keyed_isolating; mirrored by the chunk worker.
create or replace function csv_import.is_row_refusal(p_sqlstate text)
returns boolean
language sql immutable
set search_path = ''
as $$
  select coalesce(length(p_sqlstate) = 5 and (
    left(p_sqlstate, 2) in ('21', '22', '23', '27', '44', '09')
    or p_sqlstate in ('P0001', 'P0002', 'P0003', 'P0004', '42501', '54000', '42601')), false)
$$;

revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
