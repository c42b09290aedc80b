-- Issue 15, dry runs: a job that validated its file without writing a row ends 'validated' (see
-- 20261209000200_dry_run.sql). In its own migration: a value added to an enum cannot be used in the transaction
-- that adds it.
alter type csv_import.job_status add value if not exists 'validated' after 'succeeded_with_rejects';
