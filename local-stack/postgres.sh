# shellcheck shell=bash
# Usage: source local-stack/postgres.sh   (after scripts/lib.sh); then pg_up / pg_down / pg_status / pg_apply
#
# The local stack's database: a private PostgreSQL cluster (major $PG_MAJOR, 17 by default; binaries chosen by
# pg_select_major in scripts/lib.sh) on 127.0.0.1:$DB_PORT, standing in for the Supabase Postgres image. On 15
# Debian's pg_cron is preloaded and runs the jobs; on 17 pg_cron is a catalog stand-in that runs nothing itself
# (local-stack/pg17/pg_cron--1.6.sql), so there is no scheduler to preload: the gateway's job runner
# (local-stack/pg_cron/runner.ts) runs its jobs. Never deployed.
#
# Invariants:
# - The cluster runs as the invoking user, or as the `postgres` OS user when invoked as root (Postgres refuses
#   to run as root). Its data directory and socket then live where that user can reach them: under
#   $STATE_DIR when every parent folder is traversable, otherwise under /var/tmp (CI clones may sit in a
#   folder only root can enter); $STATE_DIR/pgdata-location (15) or pg17-location records which. Each major has
#   its own cluster, so switching PG_MAJOR never hands a 15 data directory to a 17 server.
# - Idempotent: pg_up on a running cluster only re-applies what is missing (bootstrap, migrations, seed).
# - Migrations are applied by the pinned Supabase CLI (`supabase migration up --db-url`), in file-name order,
#   and recorded in supabase_migrations.schema_migrations as on a hosted project, so `supabase db push` later
#   sees the same history.
# - Roles as in the Supabase image (supabase/postgres migrations/db/init-scripts and
#   migrations/10000000000000_demote-postgres.sql): the cluster's bootstrap superuser is `supabase_admin`; `postgres`
#   is NOSUPERUSER (CREATEDB CREATEROLE REPLICATION BYPASSRLS). The bootstrap (local-stack/sql/platform.sql) runs as
#   supabase_admin; migrations, the seed and pgTAP run as postgres. pg_hba.conf is the image's
#   (ansible/files/postgresql_config/pg_hba.conf.j2): 127.0.0.1 is `trust`, every other address scram-sha-256 —
#   except that the Unix socket asks every role for a password where the image uses peer authentication (stricter;
#   it is the stand-in's password-checked route, as the image's Docker-network address is: dblink from a
#   non-superuser needs one, see supabase/tests/database/_fixtures/dblink_route.psql).
# - Privileged extensions as supautils gives them (see _pg_install_local_extensions): postgres creates pg_cron,
#   pg_net, dblink, pgtap, plpgsql_check itself; the bootstrap creates neither pg_cron nor pg_net.

LOCAL_STACK_DIR="$REPO_ROOT/local-stack"

_pg_run_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Picks (once) and prints the folder holding the cluster's data directory and socket.
_pg_home() {
  # 15 keeps the names it had before 17 was selectable, so an existing 15 cluster stays in use.
  local location="$STATE_DIR/pgdata-location" home="$STATE_DIR/postgres"
  if [ "$PG_MAJOR" != 15 ]; then location="$STATE_DIR/pg$PG_MAJOR-location" home="$STATE_DIR/postgres$PG_MAJOR"; fi
  if [ -f "$location" ]; then cat "$location"; return; fi
  mkdir -p "$home"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$home"
    if ! runuser -u postgres -- test -w "$home"; then
      home="/var/tmp/csv-pipeline-pg-$(printf '%s' "$REPO_ROOT" | sha1sum | cut -c1-12)"
      { [ "$PG_MAJOR" = 15 ] && [ "$STATE_DIR" = "$REPO_ROOT/.local" ]; } || home="/var/tmp/csv-pipeline-pg$PG_MAJOR-$(printf '%s' "$STATE_DIR" | sha1sum | cut -c1-12)"
      mkdir -p "$home" && chown postgres:postgres "$home" && chmod 700 "$home"
    fi
  fi
  printf '%s\n' "$home" > "$location"
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
  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL $PG_MAJOR in $PG_BIN (run bash scripts/install.sh)"
  log "initialising a PostgreSQL $PG_MAJOR cluster in $data"
  pwfile="$home/.pwfile"
  printf 'postgres\n' > "$pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$pwfile"
  _pg_run_as "$PG_BIN/initdb" -D "$data" -U supabase_admin --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  _pg_write_hba "$data"
  cat > "$home/postgresql.local.conf" <<EOF
# Written by local-stack/postgres.sh: the settings the Supabase image has that the pipeline relies on.
listen_addresses = '127.0.0.1'
port = $DB_PORT
unix_socket_directories = '$home'
max_connections = 200
shared_buffers = 256MB
max_worker_processes = 32
timezone = 'UTC'
log_timezone = 'UTC'
wal_level = logical
logging_collector = off
log_min_messages = warning
EOF
  _pg_cron_settings >> "$home/postgresql.local.conf"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$home/postgresql.local.conf"
  _pg_run_as sh -c "echo \"include '$home/postgresql.local.conf'\" >> '$data/postgresql.conf'"
}

# The scheduler's settings, where the server has the real pg_cron (15: Debian's postgresql-15-cron). 17's pg_cron
# is a catalog stand-in without a library (local-stack/pg17/build.sh): nothing to preload; the gateway's runner
# (local-stack/pg_cron/runner.ts) runs its jobs.
_pg_cron_settings() {
  if [ ! -f "$PG_PKGLIBDIR/pg_cron.so" ]; then
    echo "# pg_cron here is a catalog stand-in; the gateway runs its jobs (local-stack/pg_cron/runner.ts)"
    return 0
  fi
  cat <<'EOF'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
# With background workers pg_cron 1.4 runs at most 5 jobs at once by default (at most max_worker_processes - 1).
# Hosted projects have seconds schedules (pg_cron 1.5+); Debian's 1.4 does not, and the pipeline's lease reclaim
# then runs as six jobs a minute (see 20261204001500_schedule_cron_jobs.sql), besides reconcile.
cron.max_running_jobs = 20
EOF
}

pg_start() {
  _pg_reinit_if_pre_roles
  _pg_init
  if pg_is_running; then return 0; fi
  local home; home="$(_pg_home)"
  mkdir -p "$STATE_DIR/logs"
  log "starting PostgreSQL on 127.0.0.1:$DB_PORT"
  # The other major's cluster of this checkout still on the port (PG_MAJOR's default changed from 15 to 17):
  # say which, instead of the server's "could not create any TCP/IP sockets".
  if pg_isready -q -h 127.0.0.1 -p "$DB_PORT" 2>/dev/null; then
    local running
    running="$(psql -X -At -h 127.0.0.1 -p "$DB_PORT" -U postgres -d postgres \
      -c "select current_setting('server_version_num')::int / 10000" 2>/dev/null || echo "another")"
    die "PostgreSQL $running is already listening on 127.0.0.1:$DB_PORT; stop it first (for this project's" \
      "15 stack: PG_MAJOR=15 bash scripts/stack.sh down), or pick another DB_PORT"
  fi
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
  _pg_install_local_extensions
  psql_admin -f "$LOCAL_STACK_DIR/sql/platform.sql" >/dev/null
  # Migrations: the pinned Supabase CLI applies the pending ones (without Docker, straight to this database),
  # each file as one batch, and records them in supabase_migrations.schema_migrations as it does for a hosted
  # project. It refuses to run when the database holds a version that is not in supabase/migrations (e.g. one of
  # the pre-fold set): scripts/db_reset_pipeline.sh forgets those and rebuilds the pipeline's schema.
  local out applied
  # --include-all: a migration dated before the last applied one (20261203000000_enable_platform_extensions.sql on
  # a database that predates it) is applied too, as `supabase db push --include-all` would.
  if ! out="$(cd "$REPO_ROOT" && supabase migration up --include-all --db-url "$SUPABASE_DB_URL?sslmode=disable" 2>&1)"; then
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

# --- Supabase roles and privileged extensions (issue #13) ---------------------------------------------------------

# Runs psql as the bootstrap superuser supabase_admin (127.0.0.1 is `trust`, as in the image). For the platform
# bootstrap and the stand-ins that connect as platform roles only; migrations and tests use psql_local (postgres).
psql_admin() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$DB_HOST" -p "$DB_PORT" -U supabase_admin -d postgres "$@"
}

# The Supabase image's pg_hba.conf (supabase/postgres ansible/files/postgresql_config/pg_hba.conf.j2), but with a
# password for every role on the Unix socket instead of `peer map=supabase_map`: TCP connections from this machine
# always come from 127.0.0.1 (trusted, as in the image), so the socket is the one route where a password is checked.
_pg_write_hba() {
  local data="$1"
  _pg_run_as sh -c "cat > '$data/pg_hba.conf'" <<'EOF'
# Written by local-stack/postgres.sh: the Supabase image's rules (ansible/files/postgresql_config/pg_hba.conf.j2).
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local all  supabase_admin     scram-sha-256
# The image: `local all all peer map=supabase_map`. Here a password (stricter; see local-stack/postgres.sh).
local all  all                scram-sha-256
host  all  all  127.0.0.1/32  trust
host  all  all  ::1/128       trust
host  all  all  10.0.0.0/8  scram-sha-256
host  all  all  172.16.0.0/12  scram-sha-256
host  all  all  192.168.0.0/16  scram-sha-256
host  all  all  0.0.0.0/0     scram-sha-256
host  all  all  ::0/0     scram-sha-256
EOF
}

# A cluster made before the Supabase roles (bootstrap superuser `postgres`) cannot be converted in place (the
# bootstrap superuser is fixed at initdb): it is dropped and made again. The local stack's database is disposable
# (stack.sh reset does the same); objects stored under .local/storage stay, their rows go.
_pg_reinit_if_pre_roles() {
  local data; data="$(pg_datadir)"
  _pg_run_as test -f "$data/PG_VERSION" || return 0
  if ! _pg_run_as grep -q 'Supabase image' "$data/pg_hba.conf"; then
    log "this cluster predates the Supabase roles (bootstrap superuser postgres): making it again"
    pg_stop || true
    _pg_run_as rm -rf "$data"
  fi
}

# The folder with the extension control files of the running server's binaries (`pg_config` view: the server's
# own SHAREDIR, whichever PostgreSQL version or package it comes from). PG_EXTENSION_DIR overrides it.
pg_extension_dir() {
  if [ -n "${PG_EXTENSION_DIR:-}" ]; then printf '%s\n' "$PG_EXTENSION_DIR"; return; fi
  local share
  share="$(psql_admin -tAc "select setting from pg_catalog.pg_config where name = 'SHAREDIR'")" \
    || die "cannot ask the server on 127.0.0.1:$DB_PORT for its SHAREDIR as supabase_admin"
  printf '%s/extension\n' "$share"
}

# supautils' privileged extensions, locally. On hosted and in the Supabase image, supautils lets `postgres` create
# the extensions listed in supautils.privileged_extensions (ansible/files/postgresql_config/supautils.conf.j2): the
# CREATE EXTENSION runs as supabase_admin, then the extension's after-create script
# (ansible/files/postgresql_extension_custom_scripts/<ext>/after-create.sql) grants postgres what it needs.
# Locally, without supautils: the control files of the listed extensions this project uses are marked
# `trusted = true`, so PostgreSQL itself runs their scripts as the bootstrap superuser (supabase_admin; objects
# owned by it, as on hosted) when postgres creates them, and an event trigger installed by platform.sql
# (supautils_local.after_create) applies the same after-create grants. Also installs the pg_net stand-in as an
# extension (control + script, local-stack/sql/pg_net*), so that the migrations' `create extension pg_net` is what
# creates it. Idempotent; writes into the extension folder (as root when it is not writable).
LOCAL_PRIVILEGED_EXTENSIONS=(pg_cron pg_net dblink pgtap plpgsql_check pgcrypto uuid-ossp postgis)
_pg_install_local_extensions() {
  local dir ext control marker='# local-stack: trusted, as supautils.privileged_extensions (local-stack/postgres.sh)'
  dir="$(pg_extension_dir)"
  [ -d "$dir" ] || die "no extension folder at $dir"
  local writer=()
  [ -w "$dir" ] || writer=(as_root)
  # The pg_net stand-in: replaced whenever ours changed; never over a real pg_net (one without our marker).
  local ctl="$LOCAL_STACK_DIR/sql/pg_net.control" script="$LOCAL_STACK_DIR/sql/pg_net--0.20.4.sql"
  if [ ! -f "$dir/pg_net.control" ] || grep -q 'local-stack stand-in' "$dir/pg_net.control"; then
    cmp -s "$ctl" "$dir/pg_net.control" || "${writer[@]}" cp "$ctl" "$dir/pg_net.control"
    cmp -s "$script" "$dir/pg_net--0.20.4.sql" || "${writer[@]}" cp "$script" "$dir/pg_net--0.20.4.sql"
  fi
  for ext in "${LOCAL_PRIVILEGED_EXTENSIONS[@]}"; do
    control="$dir/$ext.control"
    [ -f "$control" ] || continue
    grep -Eq '^[[:space:]]*trusted[[:space:]]*=[[:space:]]*true' "$control" && continue
    "${writer[@]}" sh -c "printf '%s\ntrusted = true\n' '$marker' >> '$control'"
  done
}
