-- csv_import.describe_target: a column counts as having a default when omitting it still gives it a value —
-- its own DEFAULT, its domain's DEFAULT (at any level), an identity, or a generation expression — so
-- registration never demands such a column from the file.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(2);

create schema pgtap_defaults;
create domain pgtap_defaults.status as text not null default 'new';
create domain pgtap_defaults.wrapped_status as pgtap_defaults.status;
create table pgtap_defaults.t (
  id int not null,
  s pgtap_defaults.status,
  w pgtap_defaults.wrapped_status,
  plain text not null
);

select results_eq(
  $$ select name, not_null, has_default from jsonb_to_recordset(csv_import.describe_target('pgtap_defaults.t'))
       as c(name text, not_null boolean, has_default boolean) $$,
  $$ values ('id', true, false), ('s', true, true), ('w', true, true), ('plain', true, false) $$,
  'a DEFAULT on the column''s domain, or on a domain under it, counts as a default');

insert into pgtap_defaults.t (id, plain) values (1, 'x');
select is((select (s, w)::text from pgtap_defaults.t), '(new,new)', '… as an insert that omits them confirms');

select * from finish();
rollback;
