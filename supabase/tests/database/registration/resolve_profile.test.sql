-- csv_import.resolve_profile: the profile of the object's bucket whose LIKE pattern matches, longest wins.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(8);

insert into csv_import.profiles (name, bucket_id, path_pattern, target_table) values
  ('pgtap-all',       'pgtap-profiles', '%',              'public.t_all'),
  ('pgtap-orders',    'pgtap-profiles', 'orders/%',       'public.t_orders'),
  ('pgtap-orders-eu', 'pgtap-profiles', 'orders/eu/%',    'public.t_orders_eu'),
  ('pgtap-tie-a',     'pgtap-profiles', 'tie/_%',         'public.t_tie_a'),
  ('pgtap-tie-b',     'pgtap-profiles', 'tie/%_',         'public.t_tie_b'),
  ('pgtap-reports',   'pgtap-reports',  '%.csv',          'public.t_reports');

select is((csv_import.resolve_profile('pgtap-profiles', 'orders/eu/2026-11.csv')).name, 'pgtap-orders-eu',
  'the longest matching pattern wins');
select is((csv_import.resolve_profile('pgtap-profiles', 'orders/us/2026-11.csv')).name, 'pgtap-orders',
  'a shorter pattern when the longer does not match');
select is((csv_import.resolve_profile('pgtap-profiles', 'misc.csv')).name, 'pgtap-all', 'the catch-all last');
select is((csv_import.resolve_profile('pgtap-profiles', 'tie/x.csv')).name, 'pgtap-tie-a',
  'equally long patterns: the lowest id wins');
select is((csv_import.resolve_profile('pgtap-reports', 'r/2026.csv')).target_table, 'public.t_reports',
  'profiles are per bucket');
select is((csv_import.resolve_profile('pgtap-reports', 'r/2026.txt')).id, null, 'no match: null');
select is((csv_import.resolve_profile('pgtap-no-profiles', 'orders/eu/x.csv')).id, null,
  'a bucket without profiles: null');
select is((csv_import.resolve_profile('pgtap-profiles', 'ORDERS/eu/x.csv')).name, 'pgtap-all',
  'LIKE is case-sensitive');

select * from finish();
rollback;
