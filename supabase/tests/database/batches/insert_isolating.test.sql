-- csv_import.insert_isolating: the row-isolating insert of a staged batch (refused pieces, upsert and
-- skip_duplicates modes): every acceptable row loads, each refused row is reported once with PostgreSQL's
-- message, other errors propagate, and it runs with the caller's rights.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(23);

create schema pgtap_iso;
create table pgtap_iso.items (id int primary key, qty int check (qty >= 0), note text not null);
insert into pgtap_iso.items values (2, 1, 'existing');
create temp table csv_import_stage (seq bigint generated always as identity, c1 text, c2 text, c3 text)
  on commit drop;
insert into csv_import_stage (c1, c2, c3) values
  ('1', '5', 'a'),        -- 1 ok
  ('2', '5', 'b'),        -- 2 duplicate of an existing row
  ('3', '-1', 'c'),       -- 3 check violation
  ('4', '5', null),       -- 4 not null violation
  ('5', '5', 'e'),        -- 5 ok
  ('5', '6', 'f'),        -- 6 duplicate within the batch (the first one wins)
  ('x', '1', 'g'),        -- 7 bad integer
  ('8', '1', 'h');        -- 8 ok

create function pgtap_iso.run(p_from bigint, p_to bigint, p_conflict text default '') returns jsonb
language sql as $$
  select csv_import.insert_isolating(
    'insert into pgtap_iso.items (id, qty, note) select c1::int, c2::int, c3 from pg_temp.csv_import_stage '
    || 'where seq > $1 and seq <= $2 order by seq ' || p_conflict, p_from, p_to)
$$;

select is((pgtap_iso.run(0, 1) ->> 'inserted')::int, 1, 'a clean range loads whole');
select is(jsonb_array_length(pgtap_iso.run(1, 1) -> 'rejects'), 0, 'an empty range does nothing');

create temp table result on commit drop as select pgtap_iso.run(1, 8) as r;
select is((select (r ->> 'inserted')::int from result), 2, 'of rows 2..8 the two good ones load (5 and 8)');
select results_eq(
  $$ select (x ->> 'seq')::int from result, jsonb_array_elements(r -> 'rejects') as x order by 1 $$,
  $$ values (2), (3), (4), (6), (7) $$,
  'every refused row is reported once, by its staging seq');
select matches((select x ->> 'message' from result, jsonb_array_elements(r -> 'rejects') as x where x ->> 'seq' = '2'),
  '^duplicate key value violates unique constraint', 'with PostgreSQL''s message …');
select is((select x ->> 'detail' from result, jsonb_array_elements(r -> 'rejects') as x where x ->> 'seq' = '2'),
  'Key (id)=(2) already exists.', '… its detail …');
select is((select x ->> 'column' from result, jsonb_array_elements(r -> 'rejects') as x where x ->> 'seq' = '4'),
  'note', '… and the column when PostgreSQL names one');
select is((select x ->> 'column' from result, jsonb_array_elements(r -> 'rejects') as x where x ->> 'seq' = '7'),
  null, 'no column when PostgreSQL names none');
select results_eq($$ select id, qty, note from pgtap_iso.items order by id $$,
  $$ values (1, 5, 'a'), (2, 1, 'existing'), (5, 5, 'e'), (8, 1, 'h') $$,
  'the table holds exactly the accepted rows, the first of two duplicates');

select is((pgtap_iso.run(0, 2, 'on conflict (id) do nothing') ->> 'inserted')::int, 0,
  'with ON CONFLICT DO NOTHING the count is of rows actually inserted');

select throws_ok($$ select csv_import.insert_isolating('select 1/0 from pgtap_iso.nope where $1 < $2', 0, 1) $$,
  '42P01', null, 'an error that is not about the data propagates');

-- A row a trigger refuses (RAISE: P0001) is a reject like any other; an error that is not about one row
-- (here a trigger raising a serialization failure, 40001) propagates, so the batch is retried.
create function pgtap_iso.guard() returns trigger language plpgsql as $$
begin
  if new.note = 'raise' then raise exception 'note % is not allowed', new.note; end if;
  if new.note = 'retry' then raise exception 'try again' using errcode = '40001'; end if;
  return new;
end $$;
create trigger guard before insert on pgtap_iso.items for each row execute function pgtap_iso.guard();
truncate csv_import_stage restart identity;
insert into csv_import_stage (c1, c2, c3) values ('20', '1', 'ok'), ('21', '1', 'raise'), ('22', '1', 'ok');
create temp table raised on commit drop as select pgtap_iso.run(0, 3) as r;
select is((select (r ->> 'inserted')::int from raised), 2, 'rows around a row a trigger refuses load');
select is((select r -> 'rejects' -> 0 ->> 'message' from raised), 'note raise is not allowed',
  'the trigger''s refusal is the reject''s reason');
insert into csv_import_stage (c1, c2, c3) values ('23', '1', 'retry');
select throws_ok($$ select pgtap_iso.run(3, 4) $$, '40001', 'try again',
  'a serialization failure raised while inserting propagates');

select is((select prosecdef from pg_proc where oid = 'csv_import.insert_isolating(text,bigint,bigint,jsonb,text)'::regprocedure),
  false, 'it runs with the caller''s rights (SECURITY INVOKER)');

-- As the uploader (p_writer): each INSERT runs as `authenticated` with the uploader's claims, so row-level
-- security, auth.uid() defaults and unique keys of rows the uploader cannot see apply as through the API; the
-- caller's role is back afterwards; rejects carry no DETAIL; clients still cannot call it.
create table pgtap_iso.notes (id int primary key, user_id uuid not null default auth.uid(), body text);
alter table pgtap_iso.notes enable row level security;
create policy own_read on pgtap_iso.notes for select to authenticated using (user_id = auth.uid());
create policy own_write on pgtap_iso.notes for insert to authenticated with check (user_id = auth.uid());
grant usage on schema pgtap_iso to authenticated;
grant select, insert on pgtap_iso.notes to authenticated;
insert into pgtap_iso.notes values (1, '00000000-0000-4000-8000-00000000000b', 'bob''s');
create temp table notes_stage (seq bigint generated always as identity, c1 text, c2 text, c3 text) on commit drop;
grant select on notes_stage to authenticated;
insert into notes_stage (c1, c2, c3) values
  ('2', null, 'mine'),                                   -- 1 ok: user_id defaults to the uploader
  ('3', '00000000-0000-4000-8000-00000000000b', 'evil'), -- 2 plants bob's id: refused by the policy
  ('1', null, 'probe');                                  -- 3 bob's key: a duplicate alice cannot see
create temp table as_alice on commit drop as select csv_import.insert_isolating(
  'insert into pgtap_iso.notes (id, user_id, body) select c1::int, coalesce(c2::uuid, auth.uid()), c3 '
  || 'from pg_temp.notes_stage where seq > $1 and seq <= $2 order by seq', 0, 3,
  '{"role": "authenticated", "claims": {"sub": "00000000-0000-4000-8000-00000000000a", "role": "authenticated"}}'
) as r;
select is((select (r ->> 'inserted')::int from as_alice), 1, 'as the uploader: the acceptable row loads …');
select is((select user_id::text from pgtap_iso.notes where id = 2), '00000000-0000-4000-8000-00000000000a',
  '… owned by the uploader (auth.uid())');
select matches((select x ->> 'message' from as_alice, jsonb_array_elements(r -> 'rejects') x where x ->> 'seq' = '2'),
  '^new row violates row-level security policy', 'a row planting another user''s id is refused by the policy');
select matches((select x ->> 'message' from as_alice, jsonb_array_elements(r -> 'rejects') x where x ->> 'seq' = '3'),
  '^duplicate key value violates unique constraint', 'a duplicate of a row the uploader cannot see is refused …');
select is((select count(*)::int from as_alice, jsonb_array_elements(r -> 'rejects') x where x ->> 'detail' is not null),
  0, '… and no reject carries a DETAIL (Key (id)=(1) would show a row the uploader cannot read)');
select is(current_user::text, 'postgres', 'the caller''s role is back afterwards');
select throws_ok($$ select csv_import.insert_isolating('select $1, $2', 0, 1, '{"role": "postgres", "claims": {}}') $$,
  '22023', null, 'a writer may only be authenticated or anon');
select is(has_function_privilege('authenticated', 'csv_import.insert_isolating(text,bigint,bigint,jsonb,text)', 'execute'),
  false, 'clients cannot run it (it runs caller-supplied SQL)');

select * from finish();
rollback;
