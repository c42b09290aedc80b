-- csv_import.write_keyed: upsert and skip_duplicates batches keep file order for a repeated key, whatever order
-- the job's batches run in (a batch here is one call on the staged rows; batches of other chunks are other calls,
-- earlier or later lines in any order): upsert's last occurrence wins, skip_duplicates' first, a row that was in the
-- table before the job stays under skip_duplicates; refused rows are isolated and record nothing; counts add up;
-- null keys, the key by default (primary key), a key the file does not carry; other errors propagate.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(21);

create schema pgtap_keyed;
create table pgtap_keyed.items (id int primary key, v text not null, n int check (n >= 0));
create table pgtap_keyed.ids (id int generated always as identity primary key, code int unique, v text);
create temp table csv_import_keyed_stage (seq bigint generated always as identity, line bigint not null,
  c1 text, c2 text, c3 text) on commit drop;

-- Stages `rows` (line, id, v, n) and writes them as one batch of job `job`.
create function pgtap_keyed.batch(p_job bigint, p_mode text, p_rows text[][], p_key text[] default '{id}',
  p_table text default 'pgtap_keyed.items',
  p_columns jsonb default '[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"},
                            {"name": "n", "type": "integer"}]')
returns jsonb language plpgsql as $$
begin
  truncate pg_temp.csv_import_keyed_stage restart identity;
  for i in 1 .. coalesce(array_length(p_rows, 1), 0) loop
    insert into pg_temp.csv_import_keyed_stage (line, c1, c2, c3)
    values (p_rows[i][1]::bigint, p_rows[i][2], p_rows[i][3], p_rows[i][4]);
  end loop;
  return csv_import.write_keyed(p_job, p_mode::csv_import.conflict_mode, p_table, p_columns, p_key,
    coalesce(array_length(p_rows, 1), 0));
end $$;
create function pgtap_keyed.counts(p_result jsonb) returns text language sql as $$
  select format('loaded %s skipped %s rejected %s', p_result ->> 'loaded', p_result ->> 'skipped',
    jsonb_array_length(p_result -> 'rejects'))
$$;
create function pgtap_keyed.table_text() returns text language sql as $$
  select string_agg(format('%s=%s', id, v), ' ' order by id) from pgtap_keyed.items
$$;

-- upsert ------------------------------------------------------------------------------------------------------------
insert into pgtap_keyed.items values (8, 'old', 0);
-- The last chunk first: lines 300..303; key 7 twice in the batch (303 wins), 8 overwrites the old row.
select is(pgtap_keyed.counts(pgtap_keyed.batch(-1, 'upsert',
    array[['300', '7', 'l300', '1'], ['301', '8', 'l301', '1'], ['302', '9', 'l302', '1'], ['303', '7', 'l303', '1']])),
  'loaded 4 skipped 0 rejected 0', 'upsert: every row of a batch counts as loaded');
select is(pgtap_keyed.table_text(), '7=l303 8=l301 9=l302', 'upsert: in a batch the last occurrence wins');
-- Then chunk 0 (lines 2..4): earlier lines of 7 and 8 do not overwrite; 10 is new; 9 at line 4 < 302 neither.
select is(pgtap_keyed.counts(pgtap_keyed.batch(-1, 'upsert',
    array[['2', '7', 'l2', '1'], ['3', '8', 'l3', '1'], ['4', '9', 'l4', '1'], ['5', '10', 'l5', '1']])),
  'loaded 4 skipped 0 rejected 0', 'upsert: an earlier occurrence arriving later still counts as loaded');
select is(pgtap_keyed.table_text(), '7=l303 8=l301 9=l302 10=l5', 'upsert: and changes nothing');
-- A middle chunk: 9 at line 400 (later) wins; 10 at line 401 violates the check: rejected, 10 keeps line 5.
select is(pgtap_keyed.counts(pgtap_keyed.batch(-1, 'upsert', array[['400', '9', 'l400', '1'], ['401', '10', 'l401', '-1']])),
  'loaded 1 skipped 0 rejected 1', 'upsert: a refused row is rejected');
select is(pgtap_keyed.table_text(), '7=l303 8=l301 9=l400 10=l5', 'upsert: a later line wins, a refused one not');
select is((select line from csv_import.key_claims where job_id = -1 and key = '[10]'), 5::bigint,
  'upsert: a refused row records no line');
-- Another job overwrites whatever this one wrote (jobs are ordered by nothing but time).
select pgtap_keyed.batch(-2, 'upsert', array[['2', '7', 'job2', '1']]);
select is(pgtap_keyed.table_text(), '7=job2 8=l301 9=l400 10=l5', 'upsert: another job''s row overwrites');

-- skip_duplicates ---------------------------------------------------------------------------------------------------
truncate pgtap_keyed.items;
insert into pgtap_keyed.items values (8, 'old', 0);
-- The last chunk first: 7 (twice: 300 wins), 8 is kept (old), a null key, a refused row.
select is(pgtap_keyed.counts(pgtap_keyed.batch(-3, 'skip_duplicates',
    array[['300', '7', 'l300', '1'], ['301', '8', 'l301', '1'], ['302', '7', 'l302', '1'], ['303', '9', 'l303', '1'],
          ['304', null, 'nokey', '1'], ['305', '11', 'bad', '-1']])),
  'loaded 2 skipped 2 rejected 2', 'skip: new keys load, repeats and existing keys are skipped, bad rows rejected');
select is(pgtap_keyed.table_text(), '7=l300 8=old 9=l303', 'skip: in a batch the first occurrence wins');
-- Then chunk 0: earlier occurrences of 7 and 9 replace the later ones; 8 stays old; 11 is new (its refused
-- occurrence recorded nothing).
select is(pgtap_keyed.counts(pgtap_keyed.batch(-3, 'skip_duplicates',
    array[['2', '7', 'l2', '1'], ['3', '8', 'l3', '1'], ['4', '9', 'l4', '1'], ['5', '11', 'l5', '1']])),
  'loaded 1 skipped 3 rejected 0', 'skip: an earlier occurrence replacing a later one counts as skipped');
select is(pgtap_keyed.table_text(), '7=l2 8=old 9=l4 11=l5', 'skip: the first occurrence in the file wins');
-- A middle chunk: later lines change nothing.
select is(pgtap_keyed.counts(pgtap_keyed.batch(-3, 'skip_duplicates', array[['100', '7', 'l100', '1'], ['101', '8', 'l101', '1']])),
  'loaded 0 skipped 2 rejected 0', 'skip: later occurrences are skipped');
select is(pgtap_keyed.table_text(), '7=l2 8=old 9=l4 11=l5', 'skip: and change nothing');
select is((select string_agg(format('%s:%s', key, line), ' ' order by key) from csv_import.key_claims where job_id = -3),
  '[7]:2 [8]:0 [9]:4 [11]:5', 'skip: claims hold each key''s line, 0 for a row the job did not write');
-- Another job skips this one's rows.
select pgtap_keyed.batch(-4, 'skip_duplicates', array[['2', '7', 'job4', '1']]);
select is(pgtap_keyed.table_text(), '7=l2 8=old 9=l4 11=l5', 'skip: another job keeps this one''s rows');

-- The key by default, and a key the file does not carry --------------------------------------------------------------
select is(csv_import._target_key('pgtap_keyed.items'), '{id}', 'the primary key is the default key');
select is(pgtap_keyed.counts(pgtap_keyed.batch(-5, 'skip_duplicates', array[['2', '7', 'x', '1']], '{}')),
  'loaded 0 skipped 1 rejected 0', 'skip_duplicates without conflict_columns uses the primary key');
-- ids: the identity primary key is not in the file: rows have no key, every one is inserted (code's unique index
-- still skips repeats, as ON CONFLICT DO NOTHING does).
select is(pgtap_keyed.counts(pgtap_keyed.batch(-6, 'skip_duplicates',
    array[['2', '1', 'a', null], ['3', '1', 'b', null], ['4', '2', 'c', null]], '{}', 'pgtap_keyed.ids',
    '[{"name": "code", "type": "integer"}, {"name": "v", "type": "text"}]')),
  'loaded 2 skipped 1 rejected 0', 'a key the file does not carry: plain skip of duplicates');

-- Errors that are not the data's propagate (here: no unique index on the conflict columns).
select throws_ok($$select pgtap_keyed.batch(-7, 'upsert', array[['2', '7', 'x', '1']], '{v}')$$, '42P10', null,
  'an error that is not a data error propagates');
select ok(not has_function_privilege('authenticated', 'csv_import.write_keyed(bigint, csv_import.conflict_mode, text, jsonb, text[], bigint)', 'execute'),
  'clients may not call it');

select * from finish();
rollback;
