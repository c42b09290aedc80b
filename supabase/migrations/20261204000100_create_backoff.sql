-- The one backoff formula of the pipeline.

-- csv_import.retry_delay: the one backoff formula of the pipeline (exponential, capped, with jitter).
--
--   delay(attempt) = min(base * 2^(attempt - 1), cap) * (0.5 + jitter / 2),   jitter in [0, 1)
--
-- With the defaults (base 5 s, cap 10 min) the delay before retry n lies in:
--   attempt:  1        2         3          4          5           6           7            8+
--   delay:    2.5–5 s  5–10 s    10–20 s    20–40 s    40–80 s     80–160 s    160–320 s    300–600 s
-- "Equal jitter" keeps at least half the delay (so retries never stampede) and spreads the rest.
--
-- Pure: no table access; `jitter` defaults to random() and is a parameter so tests are deterministic.
-- Callers: csv_import.fail_chunk, csv_import.reconcile (expired leases, registration re-kicks).
-- Locks: none.
create or replace function csv_import.retry_delay(
  attempt int,
  base interval default interval '5 seconds',
  cap interval default interval '10 minutes',
  jitter double precision default random()
) returns interval
language sql immutable parallel safe
set search_path = ''
as $$
  -- The exponential is compared with the cap in seconds (2^(attempt-1) bounded so the double cannot overflow)
  -- before it becomes an interval: base * 2^(attempt-1) as an interval overflows from attempt ~43 on.
  select case when extract(epoch from base) * power(2, least(greatest(attempt, 1), 1000) - 1) >= extract(epoch from cap)
              then cap
              else base * power(2, greatest(attempt, 1) - 1) end
         * (0.5 + least(greatest(jitter, 0), 1) / 2)
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
