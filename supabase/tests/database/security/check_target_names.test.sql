-- csv_import.check_target refuses malformed names by their syntax (42602, "is not a valid table name") on every
-- PostgreSQL version (migration 20261205000100_check_target_parse_ident). Since PostgreSQL 16 to_regclass returns
-- NULL on bad syntax instead of raising (PostgreSQL commit 3ea7329), so a check_target that relied on it answered
-- 42P01 "does not exist" for these names on 17: every assertion below fails there without the parse_ident step.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(7);

select is(pg_catalog.to_regclass('public.pgtap_no_such_table'), null, 'a well-formed name of no table: to_regclass is null');
select throws_ok($$ select csv_import.check_target('public.t; drop table x') $$, '42602', null,
  'a statement smuggled into the name is refused as a malformed name (not 42P01)');
select throws_like($$ select csv_import.check_target('public.t; drop table x') $$,
  '%is not a valid table name%', '… with the malformed-name message');
select throws_ok($$ select csv_import.check_target('"unterminated') $$, '42602', null, 'an unterminated quote is malformed');
select throws_ok($$ select csv_import.check_target('public.') $$, '42602', null, 'a trailing dot is malformed');
select throws_ok($$ select csv_import.check_target('postgres.public.pgtap_t') $$, '42602', null,
  'a three-part (cross-database) name is malformed');
select throws_ok($$ select csv_import.check_target('public.pgtap_no_such_table') $$, '42P01', null,
  'a well-formed name of no table is still 42P01');

select * from finish();
rollback;
