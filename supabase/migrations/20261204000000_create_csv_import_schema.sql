-- Migrations are append-only from here on. This set (20261204000000 … ) folds the whole pre-deploy history into one
-- definition per object, each in the file of its concern; nothing earlier was ever deployed. To change an object,
-- add a new migration (create or replace / alter) with a later timestamp; never edit an applied one.
--
-- The pipeline's state: import profiles, jobs, chunks and rejects, all in schema csv_import.
--
-- Invariants:
-- - SQL owns state: every change of a job's or chunk's status goes through a csv_import function; the Edge
--   Functions only call those functions.
-- - Byte ranges are half-open [start_offset, end_offset). A load chunk owns the records whose first byte lies in
--   its range (supabase/functions/_shared/csv/ states the rule); scan chunks summarise bytes for later chunks.
-- - One job per object version: unique (bucket_id, object_name, object_version).
-- - Row-level security is on for every table; owners of the uploaded object may read their jobs, chunks and
--   rejects; nobody but the service role (and the functions' database role) writes.

create schema if not exists csv_import;
grant usage on schema csv_import to authenticated, service_role;

create type csv_import.job_status as enum (
  'registering',             -- upload seen; the register function has not planned it yet
  'queued',                  -- planned; no chunk has started
  'running',
  'succeeded',
  'succeeded_with_rejects',
  'failed',
  'cancelled'
);

create type csv_import.chunk_kind as enum (
  'scan',  -- count quotes and newlines in the range, so later chunks learn their entry state
  'load'   -- parse, validate and write the records the range owns
);

create type csv_import.chunk_status as enum ('pending', 'running', 'succeeded', 'dead', 'cancelled');

-- A batch's answer (begin_batch's result; commit_batch's {"refused": …}): only 'ok' may be followed by writes.
create type csv_import.batch_state as enum (
  'ok',          -- this caller may write the batch
  'lease_lost',  -- the lease expired and the chunk was retried or given to another worker
  'duplicate',   -- that batch is already committed (a duplicate invocation got there first)
  'stopped',     -- the job was cancelled or failed, or the chunk cancelled
  'missing',     -- no such chunk
  'superseded'   -- the object no longer holds the job's version (overwritten, moved or deleted)
);

-- Where a job's rejects CSV stands (it is written once the job ends with rejects: claim_rejects_files → upload →
-- record_rejects_file).
create type csv_import.rejects_file_status as enum (
  'none',     -- nothing to write (no stored rejects, or the job is not finished)
  'pending',  -- due: a dispatch claims it, uploads <object>.rejects.csv and records it
  'written'   -- uploaded; rejects_object names it
);

create type csv_import.conflict_mode as enum (
  'insert',           -- plain insert; a duplicate key is a reject
  'upsert',           -- insert … on conflict (conflict_columns) do update
  'skip_duplicates'   -- insert … on conflict do nothing; skipped rows are counted, not rejected
);

create table csv_import.profiles (
  id bigint generated always as identity primary key,
  name text not null unique,
  bucket_id text not null default 'csv-uploads',
  -- SQL LIKE pattern on the object name; the longest matching pattern wins.
  path_pattern text not null,
  -- Target table, schema-qualified (e.g. public.orders).
  target_table text not null,
  -- Target column → accepted header names, e.g. {"email": ["E-mail", "mail address"]}. Header names are
  -- matched case- and space-insensitively; a column matches its own name without an alias.
  column_aliases jsonb not null default '{}'::jsonb,
  on_conflict csv_import.conflict_mode not null default 'insert',
  conflict_columns text[],
  tolerated_reject_rate numeric not null default 0 check (tolerated_reject_rate between 0 and 1),
  priority int not null default 0,
  -- Dialect overrides; null = sniffed from the file.
  delimiter text check (delimiter is null or length(delimiter) = 1),
  quote text check (quote is null or length(quote) = 1),
  has_header boolean,
  date_style text not null default 'iso' check (date_style in ('iso', 'dmy', 'mdy')),
  -- Planning overrides; null = the functions' configuration.
  chunk_size_bytes bigint check (chunk_size_bytes is null or chunk_size_bytes >= 1),
  max_parallel_chunks int check (max_parallel_chunks is null or max_parallel_chunks >= 1),
  max_attempts int not null default 5 check (max_attempts >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Per-profile limits: may lower MAX_FILE_BYTES and MAX_STORED_REJECTS, never raise them.
  max_file_bytes bigint check (max_file_bytes is null or max_file_bytes >= 1),
  max_stored_rejects bigint check (max_stored_rejects is null or max_stored_rejects >= 0),
  -- Whose rights imports write with (see csv_import.plan_write_as).
  write_as text check (write_as in ('uploader', 'service_role')),
  check (on_conflict <> 'upsert' or cardinality(conflict_columns) > 0)
);

create table csv_import.jobs (
  id bigint generated always as identity primary key,
  bucket_id text not null,
  object_name text not null,
  object_id uuid,
  object_version text not null,
  object_size bigint,
  owner_id text,
  profile_id bigint references csv_import.profiles (id) on delete set null,
  profile_name text,
  target_table text,
  status csv_import.job_status not null default 'registering',
  priority int not null default 0,
  max_parallel_chunks int not null default 4,
  max_attempts int not null default 5,
  tolerated_reject_rate numeric not null default 0,
  -- Registration attempts (the trigger's request, then the reconciler's re-kicks).
  register_attempts int not null default 0,
  register_after timestamptz not null default now(),
  dialect jsonb,
  columns jsonb,
  data_start bigint,
  header_lines bigint,
  chunk_size bigint,
  chunk_count int not null default 0,
  -- Scan prefix: scan chunks [0, scanned_prefix) are folded into the load chunks' entry states.
  scanned_prefix int not null default 0,
  prefix_parity smallint not null default 0,
  prefix_lines bigint not null default 0,
  rows_parsed bigint not null default 0,
  rows_loaded bigint not null default 0,
  rows_rejected bigint not null default 0,
  rows_skipped bigint not null default 0,
  rejects_stored bigint not null default 0,
  bytes_loaded bigint not null default 0,
  error text,
  rejects_object text,
  rejects_status csv_import.rejects_file_status not null default 'none',
  superseded_by bigint references csv_import.jobs (id),
  created_at timestamptz not null default now(),
  started_at timestamptz,
  first_row_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  -- A rejects file is claimed by one dispatch at a time until then (csv_import.claim_rejects_files).
  rejects_claimed_until timestamptz,
  -- The object version's ETag; the chunk worker never parses a range response whose ETag differs.
  object_etag text,
  unique (bucket_id, object_name, object_version)
);
create index jobs_active_idx on csv_import.jobs (status) where status in ('registering', 'queued', 'running');
create index jobs_owner_idx on csv_import.jobs (owner_id);
-- Every dispatch (one per finished chunk) and every reconcile look for due rejects files: without this, a scan of
-- all jobs ever imported.
create index jobs_rejects_pending_idx on csv_import.jobs (id) where rejects_status = 'pending';
-- Retention (csv_import.prune_finished_jobs) takes the oldest finished jobs first.
create index jobs_finished_at_idx on csv_import.jobs (finished_at) where finished_at is not null;

create table csv_import.chunks (
  id bigint generated always as identity primary key,
  job_id bigint not null references csv_import.jobs (id) on delete cascade,
  kind csv_import.chunk_kind not null,
  chunk_index int not null,
  start_offset bigint not null,
  end_offset bigint not null,
  status csv_import.chunk_status not null default 'pending',
  available_at timestamptz not null default now(),
  attempts int not null default 0,
  lease_token uuid,
  lease_until timestamptz,
  last_error text,
  -- Scan results.
  quote_parity smallint check (quote_parity in (0, 1)),
  newline_count bigint,
  ends_with_terminator boolean,
  -- Entry state of a load chunk: null until every earlier chunk is scanned. at_record_start: a record starts
  -- exactly at start_offset (the byte before it is a record terminator outside quotes).
  entry_parity smallint check (entry_parity in (0, 1)),
  lines_before bigint,
  at_record_start boolean,
  -- Progress marker, committed in the same transaction as each batch's rows.
  batches_committed int not null default 0,
  resume_offset bigint,
  resume_line bigint,
  first_record_at bigint,
  next_record_at bigint,
  rows_parsed bigint not null default 0,
  rows_loaded bigint not null default 0,
  rows_rejected bigint not null default 0,
  rows_skipped bigint not null default 0,
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  check (start_offset >= 0 and start_offset < end_offset),
  unique (job_id, kind, chunk_index)
);
create index chunks_ready_idx on csv_import.chunks (available_at) where status = 'pending';
create index chunks_running_idx on csv_import.chunks (lease_until) where status = 'running';

create table csv_import.rejects (
  id bigint generated always as identity primary key,
  job_id bigint not null references csv_import.jobs (id) on delete cascade,
  chunk_id bigint references csv_import.chunks (id) on delete set null,
  line_number bigint not null,
  column_name text,
  reason text not null,
  raw_record text not null,
  created_at timestamptz not null default now()
);
create index rejects_job_line_idx on csv_import.rejects (job_id, line_number);
-- rejects.chunk_id references chunks (on delete set null), so deleting a chunk makes PostgreSQL find its rejects;
-- without this index that is a scan of every reject of every job (7.4 ms per chunk deleted with 101,000 rejects).
create index rejects_chunk_idx on csv_import.rejects (chunk_id);

-- Committed batches: one row per batch, written by the trigger tg_chunks__log_batch in the batch's own
-- transaction (a rolled-back batch logs nothing), read by health() for throughput. No foreign keys, to add no lock
-- to the batch transaction; rows older than a day are pruned hourly (csv_import.prune_batch_log).
create table csv_import.batch_log (
  id bigint generated always as identity primary key,
  job_id bigint not null,
  chunk_id bigint not null,
  rows_parsed bigint not null,
  rows_loaded bigint not null,
  rows_rejected bigint not null,
  rows_skipped bigint not null,
  committed_at timestamptz not null default now()
);
create index batch_log_committed_at_idx on csv_import.batch_log (committed_at);

-- File order for keys repeated across chunks (upsert and skip_duplicates): the line of the occurrence whose values
-- the target holds, per job and key (the rule: 20261204000800_create_key_claims.sql). Written in the batch's own
-- transaction by the statements that write the target rows. No foreign key (as batch_log); rows are deleted by
-- csv_import.prune_finished_jobs.
create table csv_import.key_claims (
  job_id bigint not null,
  -- The key's values as jsonb (jsonb_build_array of the key columns, typed as the target's columns).
  key jsonb not null,
  -- The line of the occurrence whose values the table holds; 0: a row this job did not write holds the key
  -- (skip_duplicates).
  line bigint not null,
  -- skip_duplicates: the line this claim had before an earlier occurrence took it over (null: first claim).
  prev_line bigint,
  primary key (job_id, key)
);

-- Row-level security: read your own, write nothing. ---------------------------------------------------------
alter table csv_import.profiles enable row level security;
alter table csv_import.jobs enable row level security;
alter table csv_import.chunks enable row level security;
alter table csv_import.rejects enable row level security;
alter table csv_import.batch_log enable row level security;
alter table csv_import.key_claims enable row level security;

revoke all on all tables in schema csv_import from public, anon, authenticated;
grant select on csv_import.profiles, csv_import.jobs, csv_import.chunks, csv_import.rejects to authenticated;
grant all on all tables in schema csv_import to service_role;

create policy "authenticated users read profiles" on csv_import.profiles
  for select to authenticated using (true);
create policy "owners read their jobs" on csv_import.jobs
  for select to authenticated using (owner_id = (select auth.uid())::text);
create policy "owners read their chunks" on csv_import.chunks
  for select to authenticated using (
    exists (select 1 from csv_import.jobs j where j.id = job_id and j.owner_id = (select auth.uid())::text));
create policy "owners read their rejects" on csv_import.rejects
  for select to authenticated using (
    exists (select 1 from csv_import.jobs j where j.id = job_id and j.owner_id = (select auth.uid())::text));

-- Functions are not callable by clients unless a later migration grants them explicitly. PostgreSQL grants
-- EXECUTE on every new function to PUBLIC, and a per-schema default privilege cannot revoke that global default,
-- so every migration that creates functions in csv_import ends by revoking EXECUTE from public, anon and
-- authenticated, and granting it to the service role (as below, for functions created later).
alter default privileges in schema csv_import grant execute on functions to service_role;

-- Column comments ----------------------------------------------------------------------------------------------
comment on column csv_import.profiles.max_file_bytes is 'Largest file accepted for this profile (at most MAX_FILE_BYTES)';
comment on column csv_import.profiles.max_stored_rejects is
  'Rejects stored per job for this profile (at most MAX_STORED_REJECTS; all are counted)';

comment on column csv_import.profiles.write_as is
  'Whose rights imports write with: null = the uploader''s when the target has row-level security and the file '
  'a signed-in uploader, else the service role''s; ''uploader'' = always the uploader''s (files without a '
  'signed-in uploader fail); ''service_role'' = the pipeline''s, bypassing RLS (docs/security.md)';

comment on column csv_import.jobs.object_etag is
  'ETag of the object version the job loads (storage.objects.metadata->>''eTag''); range responses must match it';

-- Progress per job, readable by owners (security_invoker: RLS applies). Columns appended here:
-- rejects_stored and rejects_note, which says when only part of the rejects were stored.
create or replace view csv_import.job_progress with (security_invoker = true) as
select j.id as job_id, j.status, j.bucket_id, j.object_name, j.object_size, j.target_table, j.chunk_count,
  j.error, j.created_at, j.started_at, j.first_row_at, j.finished_at, j.rejects_object, j.rejects_status,
  p.chunks_done, p.chunks_running, p.chunks_dead, p.rows_parsed, p.rows_loaded, p.rows_rejected, p.rows_skipped,
  p.bytes_done,
  case when coalesce(j.object_size - j.data_start, 0) <= 0 then
         case when j.status in ('succeeded', 'succeeded_with_rejects') then 100.0 else 0.0 end
       else round(100.0 * p.bytes_done / (j.object_size - j.data_start), 1) end as percent,
  case when j.started_at is null then 0
       else round(p.rows_loaded / greatest(extract(epoch from coalesce(j.finished_at, now()) - j.started_at), 0.001))
  end as rows_per_second,
  j.rejects_stored,
  case when p.rows_rejected > j.rejects_stored then
    format('Only the first %s of %s rejects are stored (the per-job limit, MAX_STORED_REJECTS or the profile''s max_stored_rejects); all are counted',
           j.rejects_stored, p.rows_rejected)
  end as rejects_note
from csv_import.jobs j
cross join lateral (
  select count(*) filter (where c.kind = 'load' and c.status = 'succeeded') as chunks_done,
         count(*) filter (where c.status = 'running') as chunks_running,
         count(*) filter (where c.status = 'dead') as chunks_dead,
         coalesce(sum(c.rows_parsed) filter (where c.kind = 'load'), 0) as rows_parsed,
         coalesce(sum(c.rows_loaded) filter (where c.kind = 'load'), 0) as rows_loaded,
         coalesce(sum(c.rows_rejected) filter (where c.kind = 'load'), 0) as rows_rejected,
         coalesce(sum(c.rows_skipped) filter (where c.kind = 'load'), 0) as rows_skipped,
         coalesce(sum(case when c.kind <> 'load' then 0
                           when c.status = 'succeeded' then c.end_offset - c.start_offset
                           when c.resume_offset is not null then greatest(least(c.resume_offset, c.end_offset) - c.start_offset, 0)
                           else 0 end), 0) as bytes_done
  from csv_import.chunks c where c.job_id = j.id
) as p;
grant select on csv_import.job_progress to authenticated, service_role;
