-- csv_import.describe_target: tables and types in schemas whose names need quoting, and domains over domains (the
-- typmod, hence char_length / numeric precision and scale / datetime precision, comes from the innermost level that
-- declares one; NOT NULL and CHECKs from any level). Row shape: TargetColumnRow in
-- supabase/functions/_shared/pg_types/columns.ts.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(9);

create schema "Weird Schema";
create type "Weird Schema"."Mood" as enum ('sad', 'Happy Days');
create domain "Weird Schema".short_code as varchar(10) check (length(value) > 1);
create domain "Weird Schema"."Code" as "Weird Schema".short_code not null;
create domain "Weird Schema"."Code Again" as "Weird Schema"."Code";
create domain "Weird Schema".padded as char(3);
create domain "Weird Schema".padded2 as "Weird Schema".padded;
create domain "Weird Schema".amount as numeric(8, 3);
create domain "Weird Schema".amount2 as "Weird Schema".amount check (value >= 0);
create domain "Weird Schema".hundreds as numeric(5, -2);
create domain "Weird Schema".stamp as timestamp(3);
create domain "Weird Schema".stamp2 as "Weird Schema".stamp;
create table "Weird Schema"."My Table" (
  "Order ID" int primary key,
  "Code" "Weird Schema"."Code",
  code3 "Weird Schema"."Code Again",
  plain_code varchar(7) not null,
  pad "Weird Schema".padded2,
  amt "Weird Schema".amount2,
  rounded "Weird Schema".hundreds,
  at "Weird Schema".stamp2,
  mood "Weird Schema"."Mood"
);
create table "Weird Schema"."My.Table" (id int);

create schema pgtap_csv;
create function pgtap_csv.describe(p_table text) returns table (
  name text, ordinal int, column_type text, base_type_name text, base_type_schema text, base_type text, typmod int,
  is_domain boolean, not_null boolean, column_not_null boolean, domain_not_null boolean, domain_has_checks boolean,
  char_length int, numeric_precision int, numeric_scale int, datetime_precision int, enum_labels jsonb)
language sql as $$
  select * from jsonb_to_recordset(csv_import.describe_target(p_table)) as c(
    name text, ordinal int, column_type text, base_type_name text, base_type_schema text, base_type text, typmod int,
    is_domain boolean, not_null boolean, column_not_null boolean, domain_not_null boolean, domain_has_checks boolean,
    char_length int, numeric_precision int, numeric_scale int, datetime_precision int, enum_labels jsonb)
$$;

select results_eq(
  $$ select name, ordinal, column_type, base_type_name, base_type_schema, base_type from pgtap_csv.describe('"Weird Schema"."My Table"') $$,
  $$ values
     ('Order ID',   1, 'integer',                        'int4',    'pg_catalog',   'integer'),
     ('Code',       2, '"Weird Schema"."Code"',          'varchar', 'pg_catalog',   'character varying(10)'),
     ('code3',      3, '"Weird Schema"."Code Again"',    'varchar', 'pg_catalog',   'character varying(10)'),
     ('plain_code', 4, 'character varying(7)',           'varchar', 'pg_catalog',   'character varying(7)'),
     ('pad',        5, '"Weird Schema".padded2',         'bpchar',  'pg_catalog',   'character(3)'),
     ('amt',        6, '"Weird Schema".amount2',         'numeric', 'pg_catalog',   'numeric(8,3)'),
     ('rounded',    7, '"Weird Schema".hundreds',        'numeric', 'pg_catalog',   'numeric(5,-2)'),
     ('at',         8, '"Weird Schema".stamp2',          'timestamp', 'pg_catalog', 'timestamp(3) without time zone'),
     ('mood',       9, '"Weird Schema"."Mood"',          'Mood',    'Weird Schema', '"Weird Schema"."Mood"') $$,
  'a quoted schema and table: column names unquoted, types quoted as SQL needs them, domains resolved to their base');

select results_eq(
  $$ select name, typmod, char_length, numeric_precision, numeric_scale, datetime_precision
     from pgtap_csv.describe('"Weird Schema"."My Table"') where is_domain or name = 'plain_code' $$,
  $$ values
     ('Code',       14,     10,           null::int, null::int, null::int),
     ('code3',      14,     10,           null,      null,      null),
     ('plain_code', 11,     7,            null,      null,      null),
     ('pad',        7,      3,            null,      null,      null),
     ('amt',        524295, null,         8,         3,         null),
     ('rounded',    329730, null,         5,         -2,        null),
     ('at',         3,      null,         null,      null,      3) $$,
  'domains over domains take the typmod of the level that declares it: char_length, numeric precision and (negative) scale, '
  'datetime precision');

select results_eq(
  $$ select name, is_domain, not_null, column_not_null, domain_not_null, domain_has_checks
     from pgtap_csv.describe('"Weird Schema"."My Table"') where name in ('Code', 'code3', 'plain_code', 'pad', 'amt') $$,
  $$ values
     ('Code',       true,  true,  false, true,  true),
     ('code3',      true,  true,  false, true,  true),
     ('plain_code', false, true,  true,  false, false),
     ('pad',        true,  false, false, false, false),
     ('amt',        true,  false, false, false, true) $$,
  'NOT NULL and CHECKs count from any domain level, however deep');

select is((select enum_labels from pgtap_csv.describe('"Weird Schema"."My Table"') where name = 'mood'),
  '["sad", "Happy Days"]'::jsonb, 'an enum in a quoted schema: its labels');

select is(
  (select count(*)::int from jsonb_array_elements(csv_import.describe_target('"Weird Schema"."My Table"')) c
   where (select array_agg(k order by k) from jsonb_object_keys(c) k) is distinct from array[
     'base_type', 'base_type_category', 'base_type_kind', 'base_type_name', 'base_type_schema', 'char_length',
     'column_not_null', 'column_type', 'datetime_precision', 'domain_has_checks', 'domain_not_null', 'element_type',
     'enum_labels', 'generated', 'has_default', 'identity', 'is_domain', 'name', 'not_null', 'numeric_precision',
     'numeric_scale', 'ordinal', 'typmod']),
  0, 'every row has exactly the fields of TargetColumnRow');

select results_eq($$ select name, column_type from pgtap_csv.describe('"Weird Schema"."My.Table"') $$,
  $$ values ('id', 'integer') $$, 'a quoted table name containing a dot');

select throws_ok($$ select csv_import.describe_target('Weird Schema.My Table') $$, '42P01',
  'Target table Weird Schema.My Table does not exist', 'the same name unquoted: a clear error, not a syntax error');
select throws_ok($$ select csv_import.describe_target('"weird schema"."my table"') $$, '42P01',
  'Target table "weird schema"."my table" does not exist', 'quoted names are case-sensitive');
select throws_ok($$ select csv_import.describe_target('"Weird Schema".My Table') $$, '42P01',
  'Target table "Weird Schema".My Table does not exist', 'a half-quoted name: the same error');

select * from finish();
rollback;
