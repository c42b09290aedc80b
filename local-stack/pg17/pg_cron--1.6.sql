-- Local only, never deployed: the install script of the pg_cron CATALOG STAND-IN for PostgreSQL 17. IT RUNS NO JOB
-- ITSELF: on a PG_MAJOR=17 stack the gateway's job runner (local-stack/pg_cron/runner.ts) reads cron.job, runs the
-- jobs and writes cron.job_run_details, as pg_cron's scheduler would; without it (CI's short-lived 17 cluster) jobs
-- are recorded and never run.
--
-- Why it exists: the migrations run `create extension pg_cron` and cron.schedule(...), and CI applies them to a
-- PostgreSQL 17 cluster (scripts/other_major.sh) as Supabase's 17 does. No honest source of the real pg_cron for 17
-- is reachable on this machine (Debian's source package answers 404, trixie's binary needs glibc 2.38, and fetched
-- upstream code may not be committed or built), so 17 gets this stand-in: this project's own SQL, written from
-- pg_cron's documented API (https://github.com/citusdata/pg_cron README; https://supabase.com/docs/guides/cron;
-- ../shared/reference/supabase-platform.md §3), not from pg_cron's source. The full local stack runs 15 with
-- Debian's real pg_cron 1.4, whose scheduler the pipeline's liveness tests need.
--
-- What it reproduces (tests/conformance/database_pg_cron17_test.ts checks it against the real pg_cron on 15):
-- - schema cron; cron.job and cron.job_run_details with pg_cron's columns, types, defaults, the
--   jobname_username_uniq constraint, row-level security (a role sees only rows whose username is its own) and
--   grants (whoever has USAGE on schema cron may read its own cron.job rows and read/delete its own
--   cron.job_run_details rows; only the functions write cron.job; schedule_in_database and alter_job are not
--   granted to public);
-- - cron.schedule(schedule, command), cron.schedule(job_name, schedule, command) (same name and user: the job's
--   schedule and command are replaced, its active flag kept, as pg_cron 1.4+ does), cron.schedule_in_database, cron.unschedule(job_id),
--   cron.unschedule(job_name), cron.alter_job; a job's username is the calling role, and a role changes only its
--   own jobs unless it is a superuser;
-- - schedule validation at least as strict as pg_cron: five cron fields (numbers, `*`, ranges, steps, lists,
--   month and weekday names), the @-macros pg_cron knows, or `N seconds` with N 1..59 (pg_cron 1.5+, the version
--   line of Supabase's 17). Refused although 1.5+ accepts them: `$` (last day of month) and any spelling of a
--   seconds schedule other than exactly `N seconds` (stricter).
-- What it does not: run anything. There is no library, no background worker, no launcher in the server; the
-- gateway's runner (see above) is the scheduler, and cron.job_run_details stays empty without it.
-- Known difference: the username is the session's role (SET ROLE, else the session user), read from the `role`
-- setting, because these functions are SECURITY DEFINER; real pg_cron records the current user, which differs
-- only when cron.schedule is called from inside another SECURITY DEFINER function.
--
-- Invariants: every function is SECURITY DEFINER (owned by the extension's bootstrap superuser, as pg_cron's C
-- functions write cron.job as the extension owner) with search_path = ''; cron.job is written only through them.

\echo Use "CREATE EXTENSION pg_cron" to load this file. \quit

create schema cron;
comment on schema cron is 'pg_cron catalog stand-in (local-stack, PostgreSQL 17): jobs are run by the gateway''s runner';

create sequence cron.jobid_seq;
create table cron.job (
  jobid bigint primary key default pg_catalog.nextval('cron.jobid_seq'),
  schedule text not null,
  command text not null,
  nodename text not null default 'localhost',
  nodeport integer not null default pg_catalog.inet_server_port(),
  database text not null default pg_catalog.current_database(),
  username text not null default current_user,
  active boolean not null default true,
  jobname name,
  constraint jobname_username_uniq unique (jobname, username)
);
alter sequence cron.jobid_seq owned by cron.job.jobid;

create sequence cron.runid_seq;
create table cron.job_run_details (
  jobid bigint,
  runid bigint primary key default pg_catalog.nextval('cron.runid_seq'),
  job_pid integer,
  database text,
  username text,
  command text,
  status text,
  return_message text,
  start_time timestamp with time zone,
  end_time timestamp with time zone
);
alter sequence cron.runid_seq owned by cron.job_run_details.runid;

select pg_catalog.pg_extension_config_dump('cron.job', '');
select pg_catalog.pg_extension_config_dump('cron.jobid_seq', '');
select pg_catalog.pg_extension_config_dump('cron.job_run_details', '');
select pg_catalog.pg_extension_config_dump('cron.runid_seq', '');

alter table cron.job enable row level security;
create policy cron_job_policy on cron.job using (username operator(pg_catalog.=) current_user);
alter table cron.job_run_details enable row level security;
create policy cron_job_run_details_policy on cron.job_run_details using (username operator(pg_catalog.=) current_user);

-- As pg_cron 1.4: no USAGE on the schema for public (the platform's after-create script grants it to postgres).
grant select on table cron.job to public;
grant select, delete on table cron.job_run_details to public;
grant select on sequence cron.jobid_seq, cron.runid_seq to public;

-- The role a job belongs to: the session's role (SET ROLE), else the session user. Read from the `role` setting,
-- which SECURITY DEFINER does not change (see the header for the one case where pg_cron would differ).
create function cron._caller() returns text
language sql stable
set search_path = ''
as $$
  select case pg_catalog.current_setting('role') when 'none' then session_user::text
    else pg_catalog.current_setting('role') end
$$;

create function cron._caller_is_superuser() returns boolean
language sql stable
set search_path = ''
as $$
  select coalesce((select r.rolsuper from pg_catalog.pg_roles as r where r.rolname = cron._caller()), false)
$$;

-- One cron field: a comma-separated list of `*`, a number or name, or a range a-b, `*` and ranges optionally
-- followed by /step (step 1 or more); numbers within [lo, hi]; names (3 letters, any case) only where names are given, the
-- first name standing for name_base.
create function cron._field_valid(field text, lo integer, hi integer, names text[], name_base integer)
returns boolean
language plpgsql immutable
set search_path = ''
as $$
declare
  v_item text;
  v_m text[];
  v_a integer;
  v_b integer;
begin
  if field is null or field = '' then return false; end if;
  foreach v_item in array pg_catalog.string_to_array(field, ',') loop
    v_m := pg_catalog.regexp_match(v_item, '^(?:(\*)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?$');
    if v_m is null then return false; end if;
    -- A step follows `*` or a range only (pg_cron refuses 5/10).
    if v_m[4] is not null and v_m[1] is null and v_m[3] is null then return false; end if;
    if v_m[1] is null then
      v_a := cron._field_number(v_m[2], lo, hi, names, name_base);
      if v_a is null then return false; end if;
      if v_m[3] is not null then
        v_b := cron._field_number(v_m[3], lo, hi, names, name_base);
        if v_b is null then return false; end if;
      end if;
    end if;
    if v_m[4] is not null and (pg_catalog.length(v_m[4]) > 9 or v_m[4]::integer < 1) then return false; end if;
  end loop;
  return true;
end
$$;

-- A number (digits) or a name, as the field's integer; NULL when it is neither or out of [lo, hi].
create function cron._field_number(token text, lo integer, hi integer, names text[], name_base integer)
returns integer
language plpgsql immutable
set search_path = ''
as $$
declare
  v_n integer;
  v_i integer;
begin
  if token ~ '^[0-9]+$' then
    if pg_catalog.length(pg_catalog.ltrim(token, '0')) > 9 then return null; end if;
    v_n := token::integer;
  elsif names is not null then
    v_i := pg_catalog.array_position(names, pg_catalog.lower(token));
    if v_i is null then return null; end if;
    v_n := name_base + v_i - 1;
  else
    return null;
  end if;
  if v_n < lo or v_n > hi then return null; end if;
  return v_n;
end
$$;

-- Whether pg_cron accepts the schedule (see the header for what this stand-in refuses although 1.5+ takes it).
create function cron._schedule_valid(schedule text) returns boolean
language plpgsql immutable
set search_path = ''
as $$
declare
  v_f text[];
begin
  if schedule is null then return false; end if;
  if schedule ~ '^([1-9]|[1-5][0-9]) seconds$' then return true; end if;
  if pg_catalog.btrim(schedule, E' \t') ~ '^@' then
    return pg_catalog.btrim(schedule, E' \t') in ('@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly', '@reboot');
  end if;
  v_f := pg_catalog.regexp_split_to_array(pg_catalog.btrim(schedule, E' \t'), E'[ \t]+');
  if pg_catalog.cardinality(v_f) <> 5 then return false; end if;
  return cron._field_valid(v_f[1], 0, 59, null, 0)
    and cron._field_valid(v_f[2], 0, 23, null, 0)
    and cron._field_valid(v_f[3], 1, 31, null, 0)
    and cron._field_valid(v_f[4], 1, 12,
      array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'], 1)
    and cron._field_valid(v_f[5], 0, 7, array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'], 0);
end
$$;

create function cron._check_schedule(schedule text) returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if not cron._schedule_valid(schedule) then
    raise exception 'invalid schedule: %', schedule using errcode = '22023',
      hint = 'Use cron format (e.g. 5 4 * * *), or interval format ''[1-59] seconds''';
  end if;
end
$$;

-- The database a job may run in: it must exist and the job's role must be allowed to connect to it.
create function cron._check_database(database text, username text) returns void
language plpgsql stable
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_database as d where d.datname = database) then
    raise exception 'database "%" does not exist', database using errcode = '3D000';
  end if;
  if not pg_catalog.has_database_privilege(username, database, 'CONNECT') then
    raise exception 'User % does not have CONNECT privilege on %', username, database using errcode = '42501';
  end if;
end
$$;

-- Inserts a job, or (same job name and role) replaces its schedule and command (active stays as it was).
create function cron._upsert_job(job_name text, schedule text, command text, database text, username text,
  active boolean)
returns bigint
language plpgsql volatile
set search_path = ''
as $$
declare
  v_id bigint;
begin
  perform cron._check_schedule(schedule);
  perform cron._check_database(database, username);
  insert into cron.job as j (schedule, command, database, username, active, jobname)
  values (schedule, command, database, username, active, job_name)
  on conflict on constraint jobname_username_uniq do update
    set schedule = excluded.schedule, command = excluded.command
  returning j.jobid into v_id;
  return v_id;
end
$$;

create function cron.schedule(schedule text, command text) returns bigint
language plpgsql strict volatile security definer
set search_path = ''
as $$
begin
  return cron._upsert_job(null, schedule, command, pg_catalog.current_database(), cron._caller(), true);
end
$$;
comment on function cron.schedule(text, text) is 'schedule a pg_cron job (local stand-in: run by the gateway''s runner)';

create function cron.schedule(job_name text, schedule text, command text) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if job_name is null then raise exception 'job_name can not be NULL'; end if;
  if schedule is null then raise exception 'schedule can not be NULL'; end if;
  if command is null then raise exception 'command can not be NULL'; end if;
  return cron._upsert_job(job_name, schedule, command, pg_catalog.current_database(), cron._caller(), true);
end
$$;
comment on function cron.schedule(text, text, text) is 'schedule a pg_cron job (local stand-in: run by the gateway''s runner)';

create function cron.schedule_in_database(job_name text, schedule text, command text, database text,
  username text default null, active boolean default true)
returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user text := coalesce(username, cron._caller());
begin
  if job_name is null then raise exception 'job_name can not be NULL'; end if;
  if schedule is null then raise exception 'schedule can not be NULL'; end if;
  if command is null then raise exception 'command can not be NULL'; end if;
  if v_user <> cron._caller() and not cron._caller_is_superuser() then
    raise exception 'must be superuser to create a job for another role' using errcode = '42501';
  end if;
  return cron._upsert_job(job_name, schedule, command, coalesce(database, pg_catalog.current_database()), v_user,
    coalesce(active, true));
end
$$;

-- The job's owner, after checking the caller may change it (its own job, or the caller is a superuser); the
-- messages are pg_cron 1.4's (unschedule, alter_job).
create function cron._owned_job(job_id bigint, for_alter boolean) returns text
language plpgsql stable
set search_path = ''
as $$
declare
  v_owner text;
begin
  select j.username into v_owner from cron.job as j where j.jobid = job_id;
  if not found or (for_alter and v_owner <> cron._caller() and not cron._caller_is_superuser()) then
    if for_alter then
      raise exception 'Job % does not exist or you don''t own it', job_id using errcode = '22023';
    end if;
    raise exception 'could not find valid entry for job %', job_id using errcode = '22023';
  end if;
  if v_owner <> cron._caller() and not cron._caller_is_superuser() then
    raise exception 'permission denied for table job' using errcode = '42501';
  end if;
  return v_owner;
end
$$;

create function cron.unschedule(job_id bigint) returns boolean
language plpgsql strict volatile security definer
set search_path = ''
as $$
begin
  perform cron._owned_job(job_id, false);
  delete from cron.job as j where j.jobid = job_id;
  return true;
end
$$;

create function cron.unschedule(job_name name) returns boolean
language plpgsql strict volatile security definer
set search_path = ''
as $$
begin
  delete from cron.job as j where j.jobname = job_name and j.username = cron._caller();
  if not found then
    raise exception 'could not find valid entry for job ''%''', job_name using errcode = '22023';
  end if;
  return true;
end
$$;

create function cron.alter_job(job_id bigint, schedule text default null, command text default null,
  database text default null, username text default null, active boolean default null)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_owner text;
  v_job cron.job;
begin
  if job_id is null then
    raise exception 'job_id can not be NULL';
  end if;
  v_owner := cron._owned_job(job_id, true);
  if username is not null and username <> v_owner and not cron._caller_is_superuser() then
    raise exception 'must be superuser to alter username' using errcode = '42501';
  end if;
  if schedule is not null then perform cron._check_schedule(schedule); end if;
  select * into v_job from cron.job as j where j.jobid = job_id;
  perform cron._check_database(coalesce(database, v_job.database), coalesce(username, v_owner));
  update cron.job as j
  set schedule = coalesce(alter_job.schedule, j.schedule),
      command = coalesce(alter_job.command, j.command),
      database = coalesce(alter_job.database, j.database),
      username = coalesce(alter_job.username, j.username),
      active = coalesce(alter_job.active, j.active)
  where j.jobid = job_id;
end
$$;

-- Only the SECURITY DEFINER entry points are callable; the helpers are internal.
revoke all on function cron._caller(), cron._caller_is_superuser(), cron._field_valid(text, integer, integer, text[], integer),
  cron._field_number(text, integer, integer, text[], integer), cron._check_schedule(text), cron._check_database(text, text),
  cron._upsert_job(text, text, text, text, text, boolean), cron._owned_job(bigint, boolean) from public;
-- As pg_cron 1.4: only superusers, and roles granted it (the platform grants postgres every cron function), may
-- call these two.
revoke all on function cron.schedule_in_database(text, text, text, text, text, boolean),
  cron.alter_job(bigint, text, text, text, text, boolean) from public;
