# shellcheck shell=bash
# Usage: source local-stack/postgres.sh   (after scripts/lib.sh); then pg_up / pg_down / pg_status / pg_apply
#
# The local stack's database: a private PostgreSQL 15 cluster with pg_cron preloaded, on 127.0.0.1:$DB_PORT,
# standing in for the Supabase Postgres image. Never deployed.
#
# Invariants:
# - The cluster runs as the invoking user, or as the `postgres` OS user when invoked as root (Postgres refuses
#   to run as root). Its data directory and socket then live where that user can reach them: under
#   $STATE_DIR when every parent folder is traversable, otherwise under /var/tmp (CI clones may sit in a
#   folder only root can enter); $STATE_DIR/pgdata-location records which.
# - Idempotent: pg_up on a running cluster only re-applies what is missing (bootstrap, migrations, seed).
# - Migrations are applied by the pinned Supabase CLI (`supabase migration up --db-url`), in file-name order,
#   and recorded in supabase_migrations.schema_migrations as on a hosted project, so `supabase db push` later
#   sees the same history.

PG_BIN="$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)"
LOCAL_STACK_DIR="$REPO_ROOT/local-stack"

_pg_run_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Picks (once) and prints the folder holding the cluster's data directory and socket.
_pg_home() {
  if [ -f "$STATE_DIR/pgdata-location" ]; then cat "$STATE_DIR/pgdata-location"; return; fi
  local home="$STATE_DIR/postgres"
  mkdir -p "$home"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$home"
    if ! runuser -u postgres -- test -w "$home"; then
      home="/var/tmp/csv-pipeline-pg-$(printf '%s' "$REPO_ROOT" | sha1sum | cut -c1-12)"
      mkdir -p "$home" && chown postgres:postgres "$home" && chmod 700 "$home"
    fi
  fi
  printf '%s\n' "$home" > "$STATE_DIR/pgdata-location"
  printf '%s\n' "$home"
}

pg_datadir() { printf '%s/data\n' "$(_pg_home)"; }

pg_is_running() {
  local data; data="$(pg_datadir)"
  [ -f "$data/postmaster.pid" ] && _pg_run_as "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

_pg_init() {
  local home data pwfile
  home="$(_pg_home)"; data="$home/data"
  [ -f "$data/PG_VERSION" ] && return 0
  log "initialising a PostgreSQL 15 cluster in $data"
  pwfile="$home/.pwfile"
  printf 'postgres\n' > "$pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$pwfile"
  _pg_run_as "$PG_BIN/initdb" -D "$data" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  cat > "$home/postgresql.local.conf" <<EOF
# Written by local-stack/postgres.sh: the settings the Supabase image has that the pipeline relies on.
listen_addresses = '127.0.0.1'
port = $DB_PORT
unix_socket_directories = '$home'
max_connections = 200
shared_buffers = 256MB
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
# With background workers pg_cron 1.4 runs at most 5 jobs at once by default (at most max_worker_processes - 1).
# Hosted projects have seconds schedules (pg_cron 1.5+); Debian's 1.4 does not, and the pipeline's lease reclaim
# then runs as six jobs a minute (see 20261204001500_schedule_cron_jobs.sql), besides reconcile.
cron.max_running_jobs = 20
max_worker_processes = 32
timezone = 'UTC'
log_timezone = 'UTC'
wal_level = logical
logging_collector = off
log_min_messages = warning
EOF
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$home/postgresql.local.conf"
  _pg_run_as sh -c "echo \"include '$home/postgresql.local.conf'\" >> '$data/postgresql.conf'"
}

pg_start() {
  _pg_init
  if pg_is_running; then return 0; fi
  local home; home="$(_pg_home)"
  mkdir -p "$STATE_DIR/logs"
  log "starting PostgreSQL on 127.0.0.1:$DB_PORT"
  _pg_run_as "$PG_BIN/pg_ctl" -D "$home/data" -l "$home/postgres.log" -w -t 60 start >/dev/null \
    || { tail -20 "$home/postgres.log" >&2; die "PostgreSQL did not start (log: $home/postgres.log)"; }
  ln -sf "$home/postgres.log" "$STATE_DIR/logs/postgres.log"
}

pg_stop() {
  pg_is_running || return 0
  log "stopping PostgreSQL"
  _pg_run_as "$PG_BIN/pg_ctl" -D "$(pg_datadir)" -m fast -w -t 60 stop >/dev/null
}

# Applies the platform bootstrap (what the Supabase image provides), then pending migrations, then the seed
# (once, on a fresh database, as `supabase db reset` would), then points the pipeline at this stack's API.
pg_apply() {
  psql_local -f "$LOCAL_STACK_DIR/sql/platform.sql" >/dev/null
  psql_local -f "$LOCAL_STACK_DIR/sql/pg_net.sql" >/dev/null
  # Migrations: the pinned Supabase CLI applies the pending ones (without Docker, straight to this database),
  # each file as one batch, and records them in supabase_migrations.schema_migrations as it does for a hosted
  # project. It refuses to run when the database holds a version that is not in supabase/migrations (e.g. one of
  # the pre-fold set): scripts/db_reset_pipeline.sh forgets those and rebuilds the pipeline's schema.
  local out applied
  if ! out="$(cd "$REPO_ROOT" && supabase migration up --db-url "$SUPABASE_DB_URL?sslmode=disable" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "supabase migration up failed (if it names versions missing locally: bash scripts/db_reset_pipeline.sh)"
  fi
  applied="$(printf '%s\n' "$out" | grep -c '^Applying migration' || true)"
  printf '%s\n' "$out" | { grep '^Applying migration' || true; } | while read -r line; do log "${line%...}"; done
  # Seeds are tracked by path and hash in supabase_migrations.seed_files, as the CLI does.
  local seed="$REPO_ROOT/supabase/seed.sql" hash
  psql_local -c "create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.seed_files (path text primary key, hash text not null);" >/dev/null
  if [ -f "$seed" ]; then
    hash="$(sha256sum "$seed" | cut -c1-64)"
    if [ "$(psql_local -tAc "select count(*) from supabase_migrations.seed_files where path = 'supabase/seed.sql'")" = "0" ]; then
      log "applying supabase/seed.sql"
      { cat "$seed"; printf "\n;insert into supabase_migrations.seed_files (path, hash) values ('supabase/seed.sql', '%s');\n" "$hash"; } \
        | psql_local --single-transaction -f - >/dev/null || die "supabase/seed.sql failed"
    fi
  fi
  psql_local -v api_url="$SUPABASE_URL" -f "$LOCAL_STACK_DIR/sql/local_endpoints.sql" >/dev/null
  [ "$applied" -eq 0 ] || log "applied $applied migration(s)"
}

# Drops the cluster's data entirely (the next pg_start initialises a fresh one).
pg_destroy() {
  pg_stop || true
  local home; home="$(_pg_home)"
  rm -rf "$home/data" "$home/postgres.log"
}
