-- Local only, never deployed: points the pipeline's Vault entries at this Docker-free stack, whose API
-- gateway listens on 127.0.0.1 (supabase/seed.sql has the `supabase start` Docker-network address instead).
-- psql variable :api_url is set by scripts/stack.sh. Idempotent.
select vault.update_secret(id, new_secret => :'api_url') from vault.secrets where name = 'csv_import_api_url';
select vault.create_secret(:'api_url', 'csv_import_api_url')
where not exists (select 1 from vault.secrets where name = 'csv_import_api_url');
