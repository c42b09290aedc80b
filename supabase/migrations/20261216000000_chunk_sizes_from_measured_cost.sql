-- Issue 14: chunk sizes from measured cost. Every invocation loading a chunk of at least CHUNK_SIZE_MIN (1 MiB)
-- records what its part cost (the file's bytes it covered, the rows it parsed and how many it rejected, the fields
-- per row, the milliseconds of synchronous work it did: parsing, checking, encoding); registration plans the next
-- file from that cost and the file's own rows per MiB, so that a load chunk's work fits one invocation
-- (pipeline/chunk_size.ts).
--
-- Why: the work of a chunk is per row far more than per byte, so a fixed byte size gives a file of narrow rows
-- several times the work per chunk of a file of wide ones. A chunk whose work passes WORKER_INVOCATION_WORK_MS is
-- handed to a fresh invocation part way (yield_chunk), and an isolate whose chunks pass WORKER_ISOLATE_WORK_MS is
-- retired with its open loads handed on: each hand-off is an HTTP hop, a lease and often a cold worker. Sized from
-- what loads measured, a narrow file's chunks stay inside those budgets from the start.
--
-- Invariants:
-- - A cost row belongs to a job (deleted with it: retention keeps it as long as the job's history) and names the
--   job's target table (a copy of jobs.target_table, which planning sets once, so that a lookup reads one index
--   and no job); only load chunks record costs.
-- - csv_import.measured_row_cost(table, fields) is the work per row of the table's latest 32 clean loads of the last
--   30 days; for a table with none, the work per field of the latest 32 clean loads into any table, times `fields`;
--   null when there are none either. Clean: at most 1 % of the rows rejected (a reject costs many times a loaded
--   row, and says nothing about the next file). Recent, so a changed machine or table shows within a few jobs;
--   bounded, so one lookup reads at most 32 rows through an index.

create table csv_import.load_costs (
  id bigint generated always as identity primary key,
  job_id bigint not null references csv_import.jobs (id) on delete cascade,
  target_table text not null,
  bytes bigint not null check (bytes > 0),
  rows bigint not null check (rows >= 0),
  rejected bigint not null check (rejected >= 0 and rejected <= rows),
  fields int not null check (fields >= 1),
  work_ms real not null check (work_ms >= 0),
  measured_at timestamptz not null default now()
);
create index load_costs_target_idx on csv_import.load_costs (target_table, id desc) where rejected * 100 <= rows;
create index load_costs_clean_idx on csv_import.load_costs (id desc) where rejected * 100 <= rows;
create index load_costs_job_idx on csv_import.load_costs (job_id);
comment on table csv_import.load_costs is
  'What load invocations cost (bytes covered, rows parsed and rejected, fields per row, ms of synchronous work), by '
  'target table: the basis of the chunk sizes registration plans (pipeline/chunk_size.ts).';

alter table csv_import.load_costs enable row level security;
revoke all on csv_import.load_costs from public, anon, authenticated;
grant all on csv_import.load_costs to service_role;

-- Records one load invocation's cost (chunk_worker.ts, after its last batch or its hand-off). Best effort on the
-- caller's side: a load never fails for it.
create or replace function csv_import.record_load_cost(
  p_chunk_id bigint, p_bytes bigint, p_rows bigint, p_rejected bigint, p_fields int, p_work_ms real
)
returns void
language plpgsql security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  if p_bytes is null or p_bytes < 1 or p_rows is null or p_rows < 0 or p_rejected is null or p_rejected < 0
    or p_rejected > p_rows or p_fields is null or p_fields < 1 or p_work_ms is null or p_work_ms < 0
    or p_work_ms = 'NaN'::real or p_work_ms = 'Infinity'::real then
    raise exception 'Invalid load cost for chunk %: bytes %, rows %, rejected %, fields %, work_ms %', p_chunk_id,
      p_bytes, p_rows, p_rejected, p_fields, p_work_ms using errcode = '22023';
  end if;
  insert into csv_import.load_costs (job_id, target_table, bytes, rows, rejected, fields, work_ms)
  select c.job_id, j.target_table, p_bytes, p_rows, p_rejected, p_fields, p_work_ms
  from csv_import.chunks c
  join csv_import.jobs j on j.id = c.job_id
  where c.id = p_chunk_id and c.kind = 'load' and j.target_table is not null;
end
$$;

-- Milliseconds of synchronous work per row for a file of `p_fields` fields per row into the table (see the
-- invariants above), or null.
create or replace function csv_import.measured_row_cost(p_target_table text, p_fields int)
returns double precision
language plpgsql stable security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_cost double precision;
begin
  select sum(recent.work_ms)::double precision / nullif(sum(recent.rows), 0)
  into v_cost
  from (
    select lc.work_ms, lc.rows
    from csv_import.load_costs lc
    where lc.target_table = p_target_table and lc.rejected * 100 <= lc.rows and lc.rows > 0
      and lc.measured_at > now() - interval '30 days'
    order by lc.id desc
    limit 32
  ) recent;
  if v_cost is not null or p_fields is null or p_fields < 1 then
    return v_cost;
  end if;
  select sum(recent.work_ms)::double precision / nullif(sum(recent.rows * recent.fields), 0) * p_fields
  into v_cost
  from (
    select lc.work_ms, lc.rows, lc.fields
    from csv_import.load_costs lc
    where lc.rejected * 100 <= lc.rows and lc.rows > 0 and lc.measured_at > now() - interval '30 days'
    order by lc.id desc
    limit 32
  ) recent;
  return v_cost;
end
$$;

revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
