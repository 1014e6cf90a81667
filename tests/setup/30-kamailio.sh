# Kamailio 5.6 as the SIP load balancer, run as an HA pair: two instances sharing one
# dispatcher list in a PostgreSQL database of this run's own (named after its work folder, so
# that two test runs on one machine never touch each other's rows), dropped when it ends,
# each with its own SIP port and JSON-RPC over HTTP on loopback (tests/kamailio/run.sh).
#
# Exports for the tests:
#   PAIRSCALE_TEST_PG_URL  postgres URL of the test database (role with a password)
#   KAMAILIO_RPC_URL       the first instance's JSON-RPC endpoint (http://127.0.0.1:PORT/RPC)
#   KAMAILIO_RPC_URLS      both instances' endpoints, the first first, separated by a space
#   KAMAILIO_SIP_PORT      the first instance's SIP port (UDP, 127.0.0.1)
#   KAMAILIO_LOG           the first instance's log file (the second's: kamailio-2.log beside it)
#   KAMAILIO_MODULE_DIR    Kamailio's modules, for tests/kamailio/run.sh

apt_ensure kamailio kamailio-postgres-modules sip-tester postgresql postgresql-client curl

ps_kam_db=${PAIRSCALE_TEST_DB:-pairscale_test_$(basename "$PS_WORK" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')}
ps_kam_role=pairscale_test
ps_kam_pass=pairscale_test_pw

# Superuser access through the local socket (peer auth as postgres when root, which works on a
# fresh Debian install), so that the test role itself can use password auth over TCP.
ps_pg_admin() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 "$@"
  else
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres "$@"
  fi
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  for ps_kam_v in /etc/postgresql/*; do
    [ -d "$ps_kam_v/main" ] || continue
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$ps_kam_v")" main start || true
  done
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL is not accepting connections on 127.0.0.1:5432"
fi

ps_kam_schema=/usr/share/kamailio/postgres
[ -r "$ps_kam_schema/dispatcher-create.sql" ] || die "missing $ps_kam_schema/dispatcher-create.sql (kamailio-postgres-modules)"

# The databases of earlier runs that died without cleaning up (their work folder is gone).
ps_kam_db_of() { echo "pairscale_test_$(basename "$1" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')"; }
ps_kam_live=" "
for ps_kam_dir in /tmp/pairscale-test.*; do
  [ -d "$ps_kam_dir" ] && ps_kam_live="$ps_kam_live$(ps_kam_db_of "$ps_kam_dir") "
done
for ps_kam_old in $(ps_pg_admin -d postgres -At -c "SELECT datname FROM pg_database WHERE datname LIKE 'pairscale\\_test\\_%'"); do
  case "$ps_kam_live" in
    *" $ps_kam_old "*) ;;
    *) ps_pg_admin -d postgres -c "DROP DATABASE IF EXISTS $ps_kam_old WITH (FORCE)" >/dev/null 2>&1 || true ;;
  esac
done

ps_pg_admin -d postgres >/dev/null <<SQL || die "could not create the test database $ps_kam_db"
SET client_min_messages = warning;
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ps_kam_role') THEN
    CREATE ROLE $ps_kam_role LOGIN;
  END IF;
END \$\$;
ALTER ROLE $ps_kam_role LOGIN PASSWORD '$ps_kam_pass';
DROP DATABASE IF EXISTS $ps_kam_db WITH (FORCE);
CREATE DATABASE $ps_kam_db OWNER $ps_kam_role;
SQL

on_cleanup "DROP DATABASE $ps_kam_db" ps_pg_admin -d postgres -c "DROP DATABASE IF EXISTS $ps_kam_db WITH (FORCE)"
export PAIRSCALE_TEST_PG_URL="postgres://$ps_kam_role:$ps_kam_pass@127.0.0.1:5432/$ps_kam_db"

# Only the version table from standard-create.sql: the dispatcher module checks its row.
{
  sed -n '/^CREATE TABLE version/,/^);/p' "$ps_kam_schema/standard-create.sql"
  echo "INSERT INTO version (table_name, table_version) VALUES ('version', '1');"
  cat "$ps_kam_schema/dispatcher-create.sql"
  # Register is an insert-if-absent keyed on (setid, destination).
  echo "ALTER TABLE dispatcher ADD CONSTRAINT dispatcher_setid_destination_key UNIQUE (setid, destination);"
} | psql -X -q -v ON_ERROR_STOP=1 "$PAIRSCALE_TEST_PG_URL" >/dev/null \
  || die "could not create the dispatcher schema in $ps_kam_db"

ps_kam_mod=$(dirname "$(dpkg -L kamailio | grep -m1 '/dispatcher\.so$')")
[ -r "$ps_kam_mod/db_postgres.so" ] || die "kamailio modules not found (looked in '$ps_kam_mod')"

export KAMAILIO_MODULE_DIR=$ps_kam_mod

# ps_kam_supervise N SIP_PORT HTTP_PORT LOG: instance N, started again on the same ports
# whenever it exits, as a production proxy runs under systemd's Restart=always. Kamailio 5.6's
# dispatcher crashed (SIGSEGV, SIGABRT) when two of its processes reloaded at once, from many
# tests' fleets; kamailio.cfg now serves JSON-RPC from one process, which ended that, and this
# stays so that any other crash costs the tests of that moment, not every later one. Each
# restart is written to $PS_WORK/kamailio-restarts and the summary reports it. TERM stops it
# and Kamailio.
ps_kam_supervise() {
  local n=$1 sip=$2 http=$3 log=$4 child=
  trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait; exit 0' TERM INT
  local rc started
  while :; do
    started=$SECONDS
    "$PAIRSCALE_ROOT/tests/kamailio/run.sh" "$sip" "$http" "$PS_WORK/kamailio-run-$n" &
    child=$!
    wait "$child" && rc=0 || rc=$?
    # One that cannot even start (a configuration or database error) is not started again.
    [ $((SECONDS - started)) -ge 5 ] || exit "$rc"
    echo "[$(date +%H:%M:%S)] kamailio $n exited with status $rc and was started again (log: $log)" \
      >> "$PS_WORK/kamailio-restarts"
    sleep 0.5
  done
}

# ps_kam_start N SIP_PORT LOG: instance N in the background; sets ps_kam_url once it answers.
ps_kam_start() {
  local n=$1 sip=$2 log=$3 http pid
  http=$(free_port)
  ps_kam_url="http://127.0.0.1:$http/RPC"
  : > "$log"
  ps_kam_supervise "$n" "$sip" "$http" "$log" >> "$log" 2>&1 &
  pid=$!
  track_pid "$pid" "kamailio-$n"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break # exited: a config or database error, see the log
    if curl -s -m 2 -X POST -H 'Content-Type: application/json' \
        -d '{"jsonrpc":"2.0","method":"core.version","id":1}' "$ps_kam_url" 2>/dev/null \
        | grep -q '"result"'; then
      log "kamailio $n: SIP udp:127.0.0.1:$sip, JSON-RPC $ps_kam_url, db $ps_kam_db"
      return 0
    fi
    sleep 0.2
  done
  tail -30 "$log" >&2
  die "kamailio $n did not answer JSON-RPC at $ps_kam_url"
}

KAMAILIO_SIP_PORT=$(free_port)
export KAMAILIO_SIP_PORT
export KAMAILIO_LOG="$PS_WORK/kamailio.log"
ps_kam_start 1 "$KAMAILIO_SIP_PORT" "$KAMAILIO_LOG"
export KAMAILIO_RPC_URL=$ps_kam_url
ps_kam_start 2 "$(free_port)" "$PS_WORK/kamailio-2.log"
export KAMAILIO_RPC_URLS="$KAMAILIO_RPC_URL $ps_kam_url"
