#!/usr/bin/env bash
# Usage: bash scripts/stack.sh up|down|status|restart|restart-api|restart-db|reset|logs
#
# The Docker-free local Supabase stack (what `supabase start` gives, for this project):
#   up       install what is missing, start Postgres 15 + pg_cron on 127.0.0.1:54322, apply the platform
#            bootstrap, migrations and seed, then start the API gateway on 127.0.0.1:54321 (Storage API,
#            Edge Functions runtime, pg_net worker). Idempotent: on a running stack it only applies what changed.
#   down     stop the gateway and Postgres (state is kept in .local/).
#   status   print URLs, keys, processes and health; exit 1 when something is down.
#   restart  down + up.
#   restart-api  (re)start only the API gateway, leaving Postgres as it is (also after the gateway was killed).
#   restart-db   restart only Postgres (fast shutdown: open sessions are terminated), leaving the gateway.
#   reset    down, delete all local state (database, stored objects, logs), then up.
#   logs     follow the gateway and Postgres logs.
# Everything listens on loopback only. State lives in .local/ (git-ignored); the gateway publishes its URLs and
# keys in .local/stack.env (read by the operator CLI, cli/main.ts, for its local defaults).

source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/local-stack/postgres.sh"

GATEWAY_PID_FILE="$STATE_DIR/gateway.pid"
GATEWAY_LOG="$STATE_DIR/logs/gateway.log"

gateway_running() {
  [ -f "$GATEWAY_PID_FILE" ] && kill -0 "$(cat "$GATEWAY_PID_FILE")" 2>/dev/null
}

gateway_healthy() {
  curl -fsS -m 2 "$SUPABASE_URL/_local/health" >/dev/null 2>&1
}

gateway_start() {
  # A gateway started before it published stack.env (older checkout) is restarted so the file exists.
  if gateway_running && gateway_healthy && [ -f "$STATE_DIR/stack.env" ]; then return 0; fi
  gateway_stop
  mkdir -p "$STATE_DIR/logs" "$STATE_DIR/storage"
  log "starting the API gateway (Storage, Functions, pg_net worker, pg_cron runner on 17) on $SUPABASE_URL"
  cd "$REPO_ROOT"
  nohup deno run -A --config "$REPO_ROOT/deno.json" "$REPO_ROOT/local-stack/main.ts" </dev/null >>"$GATEWAY_LOG" 2>&1 &
  echo $! >"$GATEWAY_PID_FILE"
  for _ in $(seq 1 300); do
    if gateway_healthy; then return 0; fi
    gateway_running || { tail -30 "$GATEWAY_LOG" >&2; die "the API gateway exited (log: $GATEWAY_LOG)"; }
    sleep 0.1
  done
  tail -30 "$GATEWAY_LOG" >&2
  die "the API gateway did not become healthy within 30 s (log: $GATEWAY_LOG)"
}

gateway_stop() {
  gateway_running || { rm -f "$GATEWAY_PID_FILE"; return 0; }
  local pid; pid="$(cat "$GATEWAY_PID_FILE")"
  log "stopping the API gateway"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$GATEWAY_PID_FILE"
}

cmd_up() {
  bash "$REPO_ROOT/scripts/install.sh"
  mkdir -p "$STATE_DIR"
  pg_start
  pg_apply
  gateway_start
  cmd_status >/dev/null || die "the stack is not healthy: run 'bash scripts/stack.sh status'"
  log "local stack is up: API $SUPABASE_URL, DB $SUPABASE_DB_URL"
}

cmd_down() {
  gateway_stop
  pg_stop
}

cmd_status() {
  local ok=0
  echo "API URL:            $SUPABASE_URL"
  echo "DB URL:             $SUPABASE_DB_URL"
  echo "Functions:          $SUPABASE_URL/functions/v1/<name>"
  echo "Storage:            $SUPABASE_URL/storage/v1"
  # The keys as the gateway published them (local-stack/main.ts writes stack.env when it starts).
  echo "Publishable key:    $(sed -n 's/^SUPABASE_PUBLISHABLE_KEY=//p' "$STATE_DIR/stack.env" 2>/dev/null)"
  echo "Secret key:         $(sed -n 's/^SUPABASE_SECRET_KEY=//p' "$STATE_DIR/stack.env" 2>/dev/null)"
  echo "Published in:       $STATE_DIR/stack.env"
  echo "State:              $STATE_DIR"
  if pg_is_running; then echo "postgres:           running ($(pg_datadir))"; else echo "postgres:           DOWN"; ok=1; fi
  if gateway_healthy; then
    echo "gateway:            running (pid $(cat "$GATEWAY_PID_FILE" 2>/dev/null || echo '?'))"
    curl -fsS -m 2 "$SUPABASE_URL/_local/health" | sed 's/^/health:             /'; echo
  else
    echo "gateway:            DOWN"; ok=1
  fi
  return $ok
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart) cmd_down; cmd_up ;;
  restart-api) gateway_stop; gateway_start ;;
  restart-db) pg_stop; pg_start ;;
  reset) cmd_down; pg_destroy; rm -rf "$STATE_DIR"; cmd_up ;;
  logs) tail -F "$GATEWAY_LOG" "$STATE_DIR/logs/postgres.log" ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
