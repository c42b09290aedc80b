-- Issue 14: the queue tables are vacuumed after a fixed number of changed rows, not after a fifth of their history.
--
-- Why: every claim counts the running chunks and looks for ready ones through the partial indexes
-- chunks_running_idx (status = 'running') and chunks_ready_idx (status = 'pending'). A chunk passes through both
-- (pending, running, then done), and each step leaves an index entry behind whose row version is dead. PostgreSQL
-- plans these small counts as bitmap scans, which visit the heap page of every entry and never mark one dead, so
-- they grow slower with every chunk that ever ran until VACUUM removes the entries. Autovacuum's default waits for
-- 50 + 20 % of the table's rows to be dead; the table keeps the chunks of every job still in the history, so that
-- takes longer the more the project has loaded.
--
-- Measured on the local stack after a day of benchmarks (csv_import.chunks: 145,000 rows, never vacuumed; 4,700
-- dead entries in chunks_running_idx), issue 14's small-file burst (`deno run -A bench/burst.ts --big 0`,
-- track_functions = all): claim_chunks 6.8–7.0 ms a call (a count of running chunks visited 652 heap pages, 5–11
-- ms; the lease reclaim's scan 46 ms at most) and reclaim_expired_leases 2.3–2.4 ms; after a VACUUM of the table,
-- 2.3–2.9 and 0.3–0.7 ms. Claims hold csv_import.claim_chunks' advisory lock, so every claim waits for the one
-- before: 600 claims of 7 ms are 4 s of a 12 s burst spent one at a time.
--
-- The threshold: a 300-file burst leaves ~600 dead chunk rows (each small file's chunk is claimed, then finished),
-- so the table is vacuumed about every other such burst, and the indexes hold at most ~1,000 dead entries more
-- than autovacuum's naptime lets through. A vacuum of a table this size (25 MB, its indexes 15 MB) costs tens of
-- milliseconds.
alter table csv_import.chunks set (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 1000
);

-- jobs: the claims' and dispatch's loops read the active jobs through jobs_active_idx (status in registering,
-- queued, running), which every job leaves behind the same way.
alter table csv_import.jobs set (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 1000
);
