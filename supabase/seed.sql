-- Local development only (applied by `supabase db reset` / `supabase start`, and by scripts/stack.sh up):
-- the Vault entries through which the database calls the pipeline's Edge Functions (pg_net). Inside the
-- `supabase start` Docker network the API gateway is reached as api.supabase.internal:8000; the key is the
-- CLI's well-known local service role key. On a hosted project create these two secrets with your project's
-- URL and key instead (see README, "Deploying").
select vault.create_secret('http://api.supabase.internal:8000', 'csv_import_api_url')
where not exists (select 1 from vault.secrets where name = 'csv_import_api_url');
select vault.create_secret(
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU',
  'csv_import_service_key')
where not exists (select 1 from vault.secrets where name = 'csv_import_service_key');
